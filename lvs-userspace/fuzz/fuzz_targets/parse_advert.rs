//! `parse_advert` (IPv4 datagrams) and `parse_advert6` (IPv6 messages with
//! their addresses and hop limit) on arbitrary bytes: never panic; whatever
//! they accept is consistent with what was expected and survives a
//! rebuild/re-parse.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/vrrp/packet.rs"]
mod packet;

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use packet::{
    build_advert, build_advert6, pad_pass, parse_advert, parse_advert6, vrrp_checksum, Advert,
    Expect, Outgoing, RejectReason, Rx6,
};

/// The expectations the selector's low bits pick: version (bit 0), auth
/// (bit 1, v2), how many of `vips` (bits 2–3), the TTL check (bit 4).
fn expect<A>(sel: u8, vips: &[A]) -> Expect<'_, A> {
    let version = if sel & 1 == 0 { 2 } else { 3 };
    Expect {
        version,
        vrid: 20,
        auth_pass: (version == 2 && sel & 2 != 0).then(|| pad_pass("7890")),
        adver_int_cs: 100,
        vips: &vips[..((sel >> 2) & 3).min(vips.len() as u8) as usize],
        check_ttl: sel & 16 != 0,
    }
}

/// An accepted advert is consistent with `exp` (a different address list
/// is accepted and flagged, as keepalived does), and what we accept we can
/// `build` again identically enough to accept (`reparse`).
fn check_accepted<A: Copy + PartialEq + std::fmt::Debug>(
    a: &Advert<A>,
    exp: &Expect<'_, A>,
    build: fn(&Outgoing<'_, A>) -> Vec<u8>,
    reparse: impl Fn(&[u8]) -> Result<Advert<A>, RejectReason>,
) {
    assert_eq!((a.version, a.vrid), (exp.version, 20));
    assert!(a.addr_mismatch.is_some() || a.addrs.len() == exp.vips.len());
    let again = build(&Outgoing {
        version: exp.version,
        vrid: a.vrid,
        priority: a.priority,
        adver_int_cs: a.adver_int_cs,
        addrs: &a.addrs,
        auth_pass: exp.auth_pass,
        src: a.src,
        dst: a.dst,
    });
    let b = reparse(&again).expect("rebuilt advert must parse");
    assert_eq!((b.priority, &b.addrs), (a.priority, &a.addrs));
}

const VIPS6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x100),
    Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x101),
];

/// Bit 6 of the selector: the rest is `src(16) dst(16) hop(1) message`.
fn ipv6(sel: u8, bytes: &[u8]) {
    if bytes.len() < 33 {
        return;
    }
    let rx = Rx6 {
        src: Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[..16]).unwrap()),
        dst: Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[16..32]).unwrap()),
        hop_limit: Some(bytes[32]),
    };
    let exp = expect(sel, &VIPS6);
    let version = exp.version;
    let mut msg = bytes[33..].to_vec();
    if sel & 32 != 0 && msg.len() >= 8 {
        msg[6] = 0;
        msg[7] = 0;
        let c = vrrp_checksum(version, rx.src, rx.dst, &msg);
        msg[6..8].copy_from_slice(&c.to_be_bytes());
    }
    if let Ok(a) = parse_advert6(&msg, &rx, &exp) {
        check_accepted(&a, &exp, build_advert6, |m| parse_advert6(m, &rx, &exp));
    }
}

const VIPS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(198, 18, 0, 100),
    Ipv4Addr::new(198, 18, 0, 101),
    Ipv4Addr::new(198, 18, 0, 102),
];

fuzz_target!(|data: &[u8]| {
    // First byte: which expectations (version, auth, VIP count, TTL check).
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    if sel & 64 != 0 {
        return ipv6(sel, bytes);
    }
    let exp = expect(sel, &VIPS);
    let version = exp.version;
    // Bit 5: fix the VRRP checksum up first, so the fuzzer gets past it
    // and explores the checks behind it.
    let mut owned = bytes.to_vec();
    if sel & 32 != 0 && owned.len() >= 28 {
        let ihl = ((owned[0] & 0x0f) as usize * 4).max(20);
        let tot = u16::from_be_bytes([owned[2], owned[3]]) as usize;
        if owned.len() >= ihl + 8 {
            let end = tot.clamp(ihl + 8, owned.len());
            let src = Ipv4Addr::new(owned[12], owned[13], owned[14], owned[15]);
            let dst = Ipv4Addr::new(owned[16], owned[17], owned[18], owned[19]);
            owned[ihl + 6] = 0;
            owned[ihl + 7] = 0;
            let c = vrrp_checksum(version, src, dst, &owned[ihl..end]);
            owned[ihl + 6..ihl + 8].copy_from_slice(&c.to_be_bytes());
        }
    }
    if let Ok(a) = parse_advert(&owned, &exp) {
        check_accepted(&a, &exp, build_advert, |m| parse_advert(m, &exp));
    }
});
