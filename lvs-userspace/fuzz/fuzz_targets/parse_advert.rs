//! `parse_advert` on arbitrary bytes: never panics; whatever it accepts is
//! consistent with what was expected and survives a rebuild/re-parse.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/vrrp/packet.rs"]
mod packet;

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use packet::{build_advert, pad_pass, parse_advert, vrrp_checksum, Expect, Outgoing};

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
    let version = if sel & 1 == 0 { 2 } else { 3 };
    let exp = Expect {
        version,
        vrid: 20,
        auth_pass: (version == 2 && sel & 2 != 0).then(|| pad_pass("7890")),
        adver_int_cs: 100,
        vips: &VIPS[..((sel >> 2) & 3).min(3) as usize],
        check_ttl: sel & 16 != 0,
    };
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
        assert_eq!(a.version, version);
        assert_eq!(a.vrid, 20);
        assert_eq!(a.addrs.len(), exp.vips.len());
        // What we accept, we can build again identically enough to accept.
        let again = build_advert(&Outgoing {
            version,
            vrid: a.vrid,
            priority: a.priority,
            adver_int_cs: a.adver_int_cs,
            addrs: &a.addrs,
            auth_pass: exp.auth_pass,
            src: a.src,
            dst: a.dst,
        });
        let b = parse_advert(&again, &exp).expect("rebuilt advert must parse");
        assert_eq!((b.priority, b.addrs), (a.priority, a.addrs));
    }
});
