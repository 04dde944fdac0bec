//! The connection-sync datagram: what one director tells the other about
//! its connections and persistence templates, by address (never by local
//! id). UDP to 224.0.0.81:8848, the group and port IPVS's sync daemon uses.
//!
//! ```text
//! header  "LVSX" | version 1 | syncid | count (u16, big endian)
//! entry   kind | proto | state | 0 | client(4) | vip(4) | cport(2) | vport(2) | rs(4) | rsport(2) | 0 0
//! ```
//! A template entry has the masked client address and cport 0.

use std::net::Ipv4Addr;

use thiserror::Error;

pub const MAGIC: [u8; 4] = *b"LVSX";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 8;
pub const ENTRY_LEN: usize = 24;
/// Entries per datagram: stays under a 1500-byte MTU with IP/UDP headers.
pub const MAX_ENTRIES: usize = 58;

pub const KIND_CONN: u8 = 1;
pub const KIND_TEMPLATE: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: u8,
    pub proto: u8,
    pub state: u8,
    pub client: Ipv4Addr,
    pub cport: u16,
    pub vip: Ipv4Addr,
    pub vport: u16,
    pub rs: Ipv4Addr,
    pub rsport: u16,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("datagram of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("not an lvs-xdp sync datagram (bad magic)")]
    Magic,
    #[error("sync protocol version {0}, this lvsd speaks {VERSION}")]
    Version(u8),
    #[error("header announces {count} entries, the datagram holds {room}")]
    Count { count: usize, room: usize },
    #[error("entry {0} has an unknown kind")]
    Kind(usize),
}

/// Encodes entries into datagrams of at most MAX_ENTRIES each.
pub fn encode(syncid: u8, entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .chunks(MAX_ENTRIES)
        .map(|chunk| {
            let mut out = Vec::with_capacity(HEADER_LEN + chunk.len() * ENTRY_LEN);
            out.extend_from_slice(&MAGIC);
            out.push(VERSION);
            out.push(syncid);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            for e in chunk {
                out.extend_from_slice(&[e.kind, e.proto, e.state, 0]);
                out.extend_from_slice(&e.client.octets());
                out.extend_from_slice(&e.vip.octets());
                out.extend_from_slice(&e.cport.to_be_bytes());
                out.extend_from_slice(&e.vport.to_be_bytes());
                out.extend_from_slice(&e.rs.octets());
                out.extend_from_slice(&e.rsport.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
            out
        })
        .collect()
}

/// Decodes one datagram: its syncid and entries. Never panics.
pub fn decode(buf: &[u8]) -> Result<(u8, Vec<Entry>), WireError> {
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
    let count = u16::from_be_bytes([buf[6], buf[7]]) as usize;
    let room = (buf.len() - HEADER_LEN) / ENTRY_LEN;
    if count > room {
        return Err(WireError::Count { count, room });
    }
    let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let e = &buf[HEADER_LEN + i * ENTRY_LEN..HEADER_LEN + (i + 1) * ENTRY_LEN];
        if e[0] != KIND_CONN && e[0] != KIND_TEMPLATE {
            return Err(WireError::Kind(i));
        }
        out.push(Entry {
            kind: e[0],
            proto: e[1],
            state: e[2],
            client: ip(&e[4..8]),
            vip: ip(&e[8..12]),
            cport: port(&e[12..14]),
            vport: port(&e[14..16]),
            rs: ip(&e[16..20]),
            rsport: port(&e[20..22]),
        });
    }
    Ok((syncid, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> Entry {
        Entry {
            kind: KIND_CONN,
            proto: 6,
            state: 1,
            client: Ipv4Addr::new(198, 18, 1, n),
            cport: 40000 + n as u16,
            vip: Ipv4Addr::new(198, 18, 0, 100),
            vport: 80,
            rs: Ipv4Addr::new(198, 18, 0, 11),
            rsport: 80,
        }
    }

    #[test]
    fn round_trip_in_mtu_sized_datagrams() {
        let entries: Vec<Entry> = (0..130).map(|n| entry(n as u8)).collect();
        let grams = encode(20, &entries);
        assert_eq!(grams.len(), 3);
        assert!(grams.iter().all(|g| g.len() <= 1472));
        let back: Vec<Entry> = grams
            .iter()
            .flat_map(|g| {
                let (id, e) = decode(g).unwrap();
                assert_eq!(id, 20);
                e
            })
            .collect();
        assert_eq!(back, entries);
    }

    #[test]
    fn bad_datagrams_are_errors_not_panics() {
        let good = &encode(1, &[entry(1)])[0];
        assert_eq!(decode(&good[..3]), Err(WireError::Short(3)));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(decode(&bad), Err(WireError::Magic));
        let mut bad = good.clone();
        bad[4] = 9;
        assert_eq!(decode(&bad), Err(WireError::Version(9)));
        let mut bad = good.clone();
        bad[7] = 2;
        assert!(matches!(decode(&bad), Err(WireError::Count { .. })));
        let mut bad = good.clone();
        bad[HEADER_LEN] = 7;
        assert_eq!(decode(&bad), Err(WireError::Kind(0)));
        // Every prefix and a pseudo-random mutation never panic.
        let mut x = 0x2545F4914F6CDD1Du64;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = good.clone();
            let i = (x as usize) % m.len();
            m[i] = (x >> 32) as u8;
            let _ = decode(&m[..(x as usize >> 8) % (m.len() + 1)]);
        }
    }
}
