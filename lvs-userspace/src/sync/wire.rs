//! The connection-sync datagram: what one director tells the others about
//! its connections and persistence templates, by address (never by local
//! id). UDP to 224.0.0.81:8848, the group and port IPVS's sync daemon uses.
//!
//! ```text
//! header  "LVSX" | version 2 | syncid | type | flags | count (u16) | 0 0
//!         request (u32) | seq (u32) | total (u32)                    24 bytes
//! entry   kind | proto | state | 0 | client(4) | vip(4) | cport(2) | vport(2) | rs(4) | rsport(2) | 0 0
//! entry6  kind | proto | state | 0 | client(16) | vip(16) | cport(2) | vport(2) | rs(16) | rsport(2) | 0 0
//! trailer HMAC-SHA256 of everything before it (flags bit 0), 32 bytes
//! ```
//! Types: `Update` (what the data path just did), `BulkRequest` ("send me
//! your tables", from a director that starts), `BulkEntries` (one datagram
//! `seq` of the answer to `request`), `BulkDone` (the answer is complete:
//! `seq` datagrams holding `total` entries). A template entry has the
//! masked client address and cport 0. IPv6 entries (kinds 3 and 4, 60
//! bytes) travel in datagrams of their own: an older director, which
//! rejects the unknown kinds, still takes every IPv4 datagram.
//!
//! Everything here is untrusted input: `decode` checks every field it can
//! and never panics (fuzzed by `cargo xtask fuzz --target sync_decode`).

use std::net::{IpAddr, Ipv4Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

pub const MAGIC: [u8; 4] = *b"LVSX";
pub const VERSION: u8 = 2;
pub const HEADER_LEN: usize = 24;
pub const ENTRY_LEN: usize = 24;
pub const MAC_LEN: usize = 32;
/// Entries per datagram: header, entries and MAC stay under a 1500-byte
/// MTU with IP and UDP headers (24 + 58 × 24 + 32 = 1448 ≤ 1472).
pub const MAX_ENTRIES: usize = 58;
pub const ENTRY6_LEN: usize = 60;
/// IPv6 entries per datagram: 24 + 23 × 60 + 32 = 1436 ≤ 1472.
pub const MAX_ENTRIES6: usize = 23;

pub const KIND_CONN: u8 = 1;
pub const KIND_TEMPLATE: u8 = 2;
/// On the wire only: `Entry::kind` is KIND_CONN/KIND_TEMPLATE, the
/// addresses say the family.
const KIND_CONN6: u8 = 3;
const KIND_TEMPLATE6: u8 = 4;

const FLAG_MAC: u8 = 1;

/// What a datagram is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgType {
    Update = 0,
    BulkRequest = 1,
    BulkEntries = 2,
    BulkDone = 3,
}

impl MsgType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => MsgType::Update,
            1 => MsgType::BulkRequest,
            2 => MsgType::BulkEntries,
            3 => MsgType::BulkDone,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: u8,
    pub proto: u8,
    pub state: u8,
    /// Client, VIP and real server are of one family (the VIP's).
    pub client: IpAddr,
    pub cport: u16,
    pub vip: IpAddr,
    pub vport: u16,
    pub rs: IpAddr,
    pub rsport: u16,
}

impl Entry {
    pub fn is_ipv6(&self) -> bool {
        self.vip.is_ipv6()
    }
}

/// One decoded datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub syncid: u8,
    pub kind: MsgType,
    /// The bulk request this belongs to (0 for updates).
    pub request: u32,
    /// BulkEntries: the datagram's number in the answer, from 0;
    /// BulkDone: how many datagrams the answer had.
    pub seq: u32,
    /// BulkDone: how many entries the answer had.
    pub total: u32,
    pub entries: Vec<Entry>,
}

impl Message {
    pub fn update(syncid: u8, entries: Vec<Entry>) -> Self {
        Message {
            syncid,
            kind: MsgType::Update,
            request: 0,
            seq: 0,
            total: 0,
            entries,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("datagram of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("not an lvs-xdp sync datagram (bad magic)")]
    Magic,
    #[error("sync protocol version {0}, this lvsd speaks {VERSION}")]
    Version(u8),
    #[error("unknown message type {0}")]
    Type(u8),
    #[error("header announces {count} entries, the datagram holds {room}")]
    Count { count: usize, room: usize },
    #[error("entry {0} has an unknown kind")]
    Kind(usize),
    #[error("entry {0} has protocol {1}, not TCP or UDP")]
    Proto(usize, u8),
    #[error("entry {0} has an impossible state {1}")]
    State(usize, u8),
    #[error("no HMAC, but a sync key is configured")]
    MissingMac,
    #[error("an HMAC, but no sync key is configured here")]
    UnexpectedMac,
    #[error("wrong HMAC (another sync key, or a forged datagram)")]
    BadMac,
}

fn mac_of(key: &[u8], data: &[u8]) -> [u8; MAC_LEN] {
    // HMAC takes keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED).octets(),
    }
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// One entry: `kind proto state 0`, client, VIP, cport, vport, real server,
/// rsport, 2 bytes of padding; the addresses 4 or 16 bytes by family.
fn put_entry(out: &mut Vec<u8>, e: &Entry) {
    let ipv6 = e.is_ipv6();
    let kind = match (ipv6, e.kind == KIND_TEMPLATE) {
        (false, _) => e.kind,
        (true, true) => KIND_TEMPLATE6,
        (true, false) => KIND_CONN6,
    };
    let put_addr = |out: &mut Vec<u8>, a: IpAddr| {
        if ipv6 {
            out.extend_from_slice(&v6(a));
        } else {
            out.extend_from_slice(&v4(a));
        }
    };
    out.extend_from_slice(&[kind, e.proto, e.state, 0]);
    put_addr(out, e.client);
    put_addr(out, e.vip);
    out.extend_from_slice(&e.cport.to_be_bytes());
    out.extend_from_slice(&e.vport.to_be_bytes());
    put_addr(out, e.rs);
    out.extend_from_slice(&e.rsport.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// Splits entries into datagram loads: IPv4 ones MAX_ENTRIES at a time,
/// then IPv6 ones MAX_ENTRIES6 at a time (never mixed, see the module).
pub fn split(entries: &[Entry]) -> Vec<Vec<Entry>> {
    let (v6, v4): (Vec<Entry>, Vec<Entry>) = entries.iter().partition(|e| e.is_ipv6());
    v4.chunks(MAX_ENTRIES)
        .chain(v6.chunks(MAX_ENTRIES6))
        .map(<[Entry]>::to_vec)
        .collect()
}

/// Encodes one message (at most MAX_ENTRIES entries) into a datagram,
/// signed with `key` if given.
pub fn encode_one(m: &Message, key: Option<&[u8]>) -> Vec<u8> {
    debug_assert!(m.entries.len() <= MAX_ENTRIES);
    let mut out = Vec::with_capacity(HEADER_LEN + m.entries.len() * ENTRY6_LEN + MAC_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(m.syncid);
    out.push(m.kind as u8);
    out.push(if key.is_some() { FLAG_MAC } else { 0 });
    out.extend_from_slice(&(m.entries.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&m.request.to_be_bytes());
    out.extend_from_slice(&m.seq.to_be_bytes());
    out.extend_from_slice(&m.total.to_be_bytes());
    for e in &m.entries {
        put_entry(&mut out, e);
    }
    if let Some(k) = key {
        let mac = mac_of(k, &out);
        out.extend_from_slice(&mac);
    }
    out
}

/// Encodes updates into MTU-sized datagrams (see [`split`]).
pub fn encode(syncid: u8, entries: &[Entry], key: Option<&[u8]>) -> Vec<Vec<u8>> {
    split(entries)
        .into_iter()
        .map(|chunk| encode_one(&Message::update(syncid, chunk), key))
        .collect()
}

/// Decodes and checks one datagram. With `key`, only datagrams carrying a
/// valid HMAC under it are accepted; without, none carrying one.
pub fn decode(buf: &[u8], key: Option<&[u8]>) -> Result<Message, WireError> {
    if buf.len() < HEADER_LEN {
        return Err(WireError::Short(buf.len()));
    }
    if buf[0..4] != MAGIC {
        return Err(WireError::Magic);
    }
    if buf[4] != VERSION {
        return Err(WireError::Version(buf[4]));
    }
    let syncid = buf[5];
    let kind = MsgType::from_u8(buf[6]).ok_or(WireError::Type(buf[6]))?;
    let signed = buf[7] & FLAG_MAC != 0;
    let body_end = match (signed, key) {
        (false, Some(_)) => return Err(WireError::MissingMac),
        (true, None) => return Err(WireError::UnexpectedMac),
        (false, None) => buf.len(),
        (true, Some(k)) => {
            if buf.len() < HEADER_LEN + MAC_LEN {
                return Err(WireError::Short(buf.len()));
            }
            let end = buf.len() - MAC_LEN;
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(k).expect("any key length");
            m.update(&buf[..end]);
            // Constant-time comparison.
            m.verify_slice(&buf[end..]).map_err(|_| WireError::BadMac)?;
            end
        }
    };
    let count = u16::from_be_bytes([buf[8], buf[9]]) as usize;
    // At least ENTRY_LEN per entry; IPv6 entries are checked as they come.
    let room = (body_end - HEADER_LEN) / ENTRY_LEN;
    if count > room || count > MAX_ENTRIES {
        return Err(WireError::Count { count, room });
    }
    let word = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    // An address of 4 or 16 bytes.
    let ip = |b: &[u8]| match <[u8; 4]>::try_from(b) {
        Ok(o) => IpAddr::from(o),
        Err(_) => IpAddr::from(<[u8; 16]>::try_from(b).expect("16 bytes")),
    };
    let mut entries = Vec::with_capacity(count);
    let mut at = HEADER_LEN;
    for i in 0..count {
        // Earlier IPv6 entries may have used up what the count check left.
        if at + ENTRY_LEN > body_end {
            return Err(WireError::Count { count, room: i });
        }
        let (kind, ipv6) = match buf[at] {
            KIND_CONN => (KIND_CONN, false),
            KIND_TEMPLATE => (KIND_TEMPLATE, false),
            KIND_CONN6 => (KIND_CONN, true),
            KIND_TEMPLATE6 => (KIND_TEMPLATE, true),
            _ => return Err(WireError::Kind(i)),
        };
        let len = if ipv6 { ENTRY6_LEN } else { ENTRY_LEN };
        if at + len > body_end {
            return Err(WireError::Count { count, room: i });
        }
        let e = &buf[at..at + len];
        at += len;
        if e[1] != lvs_common::IPPROTO_TCP && e[1] != lvs_common::IPPROTO_UDP {
            return Err(WireError::Proto(i, e[1]));
        }
        let state_ok = if kind == KIND_TEMPLATE {
            e[2] == 0
        } else if e[1] == lvs_common::IPPROTO_UDP {
            e[2] as u32 == lvs_common::tcp::STATE_UDP
        } else {
            (e[2] as u32) > lvs_common::tcp::NONE && (e[2] as u32) < lvs_common::tcp::STATE_UDP
        };
        if !state_ok {
            return Err(WireError::State(i, e[2]));
        }
        // The same layout in both families but for the addresses' width.
        let w = if ipv6 { 16 } else { 4 };
        entries.push(Entry {
            kind,
            proto: e[1],
            state: e[2],
            client: ip(&e[4..4 + w]),
            vip: ip(&e[4 + w..4 + 2 * w]),
            cport: port(&e[4 + 2 * w..]),
            vport: port(&e[6 + 2 * w..]),
            rs: ip(&e[8 + 2 * w..8 + 3 * w]),
            rsport: port(&e[8 + 3 * w..]),
        });
    }
    Ok(Message {
        syncid,
        kind,
        request: word(12),
        seq: word(16),
        total: word(20),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn entry(n: u8) -> Entry {
        Entry {
            kind: KIND_CONN,
            proto: 6,
            state: 1,
            client: Ipv4Addr::new(198, 18, 1, n).into(),
            cport: 40000 + n as u16,
            vip: Ipv4Addr::new(198, 18, 0, 100).into(),
            vport: 80,
            rs: Ipv4Addr::new(198, 18, 0, 11).into(),
            rsport: 80,
        }
    }

    fn entry6(n: u8) -> Entry {
        Entry {
            kind: KIND_CONN,
            proto: 6,
            state: 1,
            client: Ipv6Addr::new(0x2001, 2, 1, 0, 0, 0, 0, n as u16).into(),
            cport: 40000 + n as u16,
            vip: "2001:2::100".parse().unwrap(),
            vport: 443,
            rs: "2001:2::11".parse().unwrap(),
            rsport: 8443,
        }
    }

    fn template6(n: u8) -> Entry {
        Entry {
            kind: KIND_TEMPLATE,
            proto: 17,
            state: 0,
            client: Ipv6Addr::new(0x2001, 2, 2, n as u16, 0, 0, 0, 0).into(),
            cport: 0,
            vip: "2001:2::100".parse().unwrap(),
            vport: 53,
            rs: "2001:2::12".parse().unwrap(),
            rsport: 53,
        }
    }

    #[test]
    fn round_trip_in_mtu_sized_datagrams() {
        for key in [None, Some(&b"secret"[..])] {
            let entries: Vec<Entry> = (0..130).map(|n| entry(n as u8)).collect();
            let grams = encode(20, &entries, key);
            assert_eq!(grams.len(), 3);
            assert!(grams.iter().all(|g| g.len() <= 1472));
            let back: Vec<Entry> = grams
                .iter()
                .flat_map(|g| {
                    let m = decode(g, key).unwrap();
                    assert_eq!((m.syncid, m.kind), (20, MsgType::Update));
                    m.entries
                })
                .collect();
            assert_eq!(back, entries);
        }
    }

    #[test]
    fn bulk_messages_round_trip() {
        let m = Message {
            syncid: 7,
            kind: MsgType::BulkDone,
            request: 0xdead_beef,
            seq: 12,
            total: 690,
            entries: vec![],
        };
        assert_eq!(decode(&encode_one(&m, None), None).unwrap(), m);
    }

    #[test]
    fn keys_must_match() {
        let g = &encode(1, &[entry(1)], Some(b"k1"))[0];
        assert_eq!(decode(g, Some(b"k2")), Err(WireError::BadMac));
        assert_eq!(decode(g, None), Err(WireError::UnexpectedMac));
        let plain = &encode(1, &[entry(1)], None)[0];
        assert_eq!(decode(plain, Some(b"k1")), Err(WireError::MissingMac));
        let mut forged = g.clone();
        forged[HEADER_LEN + 4] ^= 1; // another client
        assert_eq!(decode(&forged, Some(b"k1")), Err(WireError::BadMac));
    }

    #[test]
    fn bad_datagrams_are_errors_not_panics() {
        let good = &encode(1, &[entry(1)], None)[0];
        assert_eq!(decode(&good[..3], None), Err(WireError::Short(3)));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(decode(&bad, None), Err(WireError::Magic));
        let mut bad = good.clone();
        bad[4] = 9;
        assert_eq!(decode(&bad, None), Err(WireError::Version(9)));
        let mut bad = good.clone();
        bad[6] = 9;
        assert_eq!(decode(&bad, None), Err(WireError::Type(9)));
        let mut bad = good.clone();
        bad[9] = 2;
        assert!(matches!(decode(&bad, None), Err(WireError::Count { .. })));
        let mut bad = good.clone();
        bad[HEADER_LEN] = 7;
        assert_eq!(decode(&bad, None), Err(WireError::Kind(0)));
        let mut bad = good.clone();
        bad[HEADER_LEN + 1] = 1;
        assert_eq!(decode(&bad, None), Err(WireError::Proto(0, 1)));
        let mut bad = good.clone();
        bad[HEADER_LEN + 2] = 200;
        assert_eq!(decode(&bad, None), Err(WireError::State(0, 200)));
        // Every prefix and a pseudo-random mutation never panic.
        let mut x = 0x2545F4914F6CDD1Du64;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = good.clone();
            let i = (x as usize) % m.len();
            m[i] = (x >> 32) as u8;
            let _ = decode(&m[..(x as usize >> 8) % (m.len() + 1)], None);
            let _ = decode(&m, Some(b"k"));
        }
    }

    #[test]
    fn ipv4_entries_are_byte_identical_to_version_2() {
        // What lvsd spoke before IPv6 entries: a mixed pair keeps syncing IPv4.
        let g = &encode(3, &[entry(9)], None)[0];
        assert_eq!(g.len(), HEADER_LEN + ENTRY_LEN);
        assert_eq!(
            &g[HEADER_LEN..],
            &[
                1, 6, 1, 0, 198, 18, 1, 9, 198, 18, 0, 100, 0x9c, 0x49, 0, 80, 198, 18, 0, 11, 0,
                80, 0, 0
            ]
        );
    }

    #[test]
    fn ipv6_entries_round_trip_in_datagrams_of_their_own() {
        for key in [None, Some(&b"secret"[..])] {
            let mut entries: Vec<Entry> = Vec::new();
            for n in 0..60u8 {
                entries.push(entry6(n));
                entries.push(entry(n));
                if n % 3 == 0 {
                    entries.push(template6(n));
                }
            }
            let grams = encode(20, &entries, key);
            // 60 IPv4 entries: 2 datagrams; 80 IPv6 ones: 4.
            assert_eq!(grams.len(), 6);
            assert!(grams.iter().all(|g| g.len() <= 1472));
            let mut back = Vec::new();
            for g in &grams {
                let m = decode(g, key).unwrap();
                let v6 = m.entries.iter().filter(|e| e.is_ipv6()).count();
                assert!(v6 == 0 || v6 == m.entries.len(), "mixed datagram");
                assert_eq!(encode_one(&m, key), *g);
                back.extend(m.entries);
            }
            let (want6, want4): (Vec<Entry>, Vec<Entry>) =
                entries.iter().partition(|e| e.is_ipv6());
            let (got6, got4): (Vec<Entry>, Vec<Entry>) = back.iter().partition(|e| e.is_ipv6());
            assert_eq!((got4, got6), (want4, want6));
        }
    }

    #[test]
    fn ipv6_entries_are_checked_as_strictly() {
        let good = &encode(1, &[entry6(1), template6(2)], None)[0];
        assert_eq!(good.len(), HEADER_LEN + 2 * ENTRY6_LEN);
        assert_eq!(good[HEADER_LEN], 3);
        assert_eq!(good[HEADER_LEN + ENTRY6_LEN], 4);
        let mut bad = good.clone();
        bad[HEADER_LEN] = 5;
        assert_eq!(decode(&bad, None), Err(WireError::Kind(0)));
        let mut bad = good.clone();
        bad[HEADER_LEN + 1] = 58; // ICMPv6
        assert_eq!(decode(&bad, None), Err(WireError::Proto(0, 58)));
        let mut bad = good.clone();
        bad[HEADER_LEN + 2] = lvs_common::tcp::STATE_UDP as u8; // UDP state on TCP
        assert_eq!(
            decode(&bad, None),
            Err(WireError::State(0, lvs_common::tcp::STATE_UDP as u8))
        );
        let mut bad = good.clone();
        bad[HEADER_LEN + ENTRY6_LEN + 2] = 1; // a template has no state
        assert_eq!(decode(&bad, None), Err(WireError::State(1, 1)));
        // Two IPv6 entries announced as three: the third is past the end
        // (found by the fuzzer), with and without a MAC after it.
        let mut more = good.clone();
        more[9] = 3;
        assert!(matches!(decode(&more, None), Err(WireError::Count { .. })));
        let signed = &encode(1, &[entry6(1), template6(2)], Some(b"k"))[0];
        let mut more = signed[..signed.len() - MAC_LEN].to_vec();
        more[9] = 3;
        let mac = mac_of(b"k", &more);
        more.extend_from_slice(&mac);
        assert!(matches!(
            decode(&more, Some(b"k")),
            Err(WireError::Count { .. })
        ));
        // A truncated IPv6 entry: the header promised more than is there.
        assert!(matches!(
            decode(&good[..good.len() - 1], None),
            Err(WireError::Count { .. })
        ));
        // An IPv4 kind byte on a 60-byte entry leaves garbage behind it,
        // which must fail a check, not pass as two entries.
        let mut bad = good.clone();
        bad[HEADER_LEN] = KIND_CONN;
        assert!(decode(&bad, None).is_err());
    }

    #[test]
    fn the_ipv6_fuzz_seed_decodes() {
        let seed = include_bytes!("../../fuzz/seeds/sync_decode/update_ipv6");
        let m = decode(seed, None).unwrap();
        assert_eq!(m.entries.len(), 3);
        assert!(m.entries.iter().all(Entry::is_ipv6));
        assert_eq!(m.entries[1].kind, KIND_TEMPLATE);
    }
}
