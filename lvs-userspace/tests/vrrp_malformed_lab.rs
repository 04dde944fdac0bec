//! Malformed adverts injected on the wire from another namespace (the
//! client's, through a raw IP socket): every one is counted under its
//! reason and logged in keepalived's wording, nothing changes state (each
//! would have made the BACKUP preempt, or the MASTER yield, had it been
//! accepted), and nobody panics.
//!
//! Needs root, `ip`, `ethtool`.

mod vrrp_util;

use std::net::{Ipv4Addr, SocketAddrV4};

use lvs_userspace::vrrp::packet::{
    build_advert, pad_pass, parse_advert, Outgoing, VRRP_MCAST_GROUP,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vrrp_util::inject::*;
use vrrp_util::*;

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);

fn advert(priority: u8) -> Vec<u8> {
    build_advert(&Outgoing {
        priority,
        ..outgoing()
    })
}

/// (expected counter, packet). Priority 254 everywhere: accepted, any of
/// them would take the VIP from the priority-200 master.
fn malformed() -> Vec<(&'static str, Vec<u8>)> {
    let good = advert(254);
    let mut out = Vec::new();
    let mut p = good.clone();
    p[8] = 64;
    fix_ip(&mut p);
    out.push(("ip_ttl", p));
    let mut p = good.clone();
    p[26] ^= 0x55;
    out.push(("checksum", p));
    out.push((
        "auth_failure",
        build_advert(&Outgoing {
            auth_pass: Some(pad_pass("1234")),
            ..outgoing()
        }),
    ));
    out.push((
        "auth_type_mismatch",
        build_advert(&Outgoing {
            auth_pass: None,
            ..outgoing()
        }),
    ));
    out.push((
        "advert_interval",
        build_advert(&Outgoing {
            adver_int_cs: 300,
            ..outgoing()
        }),
    ));
    out.push((
        "version",
        build_advert(&Outgoing {
            version: 3,
            adver_int_cs: 0x100, // byte 4 = 1 (PASS), byte 5 = 0
            auth_pass: None,
            ..outgoing()
        }),
    ));
    let mut p = good.clone();
    p[20] = 0x22; // type 2
    out.push(("invalid_type", p));
    let mut p = good.clone();
    p[21] = 21;
    out.push(("vrid", p));
    // An address list that differs from ours is not a malformed advert:
    // it is logged and accepted (keepalived ≥ 2.3.3), see vrrp_addrs.rs.
    // Truncated VRRP header (IP total length says so too).
    let mut p = good[..24].to_vec();
    p[2..4].copy_from_slice(&24u16.to_be_bytes());
    fix_ip(&mut p);
    out.push(("packet_too_short", p));
    // Trailing garbage after a correct advert (IP length covers it).
    let mut p = good.clone();
    p.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let n = p.len() as u16;
    p[2..4].copy_from_slice(&n.to_be_bytes());
    fix_ip(&mut p);
    out.push(("auth_failure", p));
    // A priority-0 advert with a bad checksum: accepted it would make the
    // backup take over at once.
    let mut p = advert(0);
    p[27] ^= 1;
    out.push(("checksum", p));
    out
}

/// An advert of the seed's VI_1 from another router.
fn outgoing() -> Outgoing<'static> {
    Outgoing {
        version: 2,
        vrid: 20,
        priority: 254,
        adver_int_cs: 100,
        addrs: &[VIP],
        auth_pass: Some(pad_pass("7890")),
        src: SRC,
        dst: VRRP_MCAST_GROUP,
    }
}

/// Recomputes the IPv4 header checksum (the kernel leaves ours alone).
fn fix_ip(p: &mut [u8]) {
    p[10] = 0;
    p[11] = 0;
    let mut acc: u32 = 0;
    for c in p[..20].chunks(2) {
        acc += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    p[10..12].copy_from_slice(&(!(acc as u16)).to_be_bytes());
}

fn injector() -> Socket {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
    s.set_header_included_v4(true).unwrap();
    s.bind_device(Some(b"eth0")).unwrap();
    s
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn malformed_adverts_are_counted_logged_and_ignored() {
    let lab = lab();
    let (m, b) = settled_seed_pair(&lab, Family::V4);

    let cases = malformed();
    let to = SockAddr::from(SocketAddrV4::new(VRRP_MCAST_GROUP, 0));
    let expect = expect_of(&outgoing());
    // Three rounds over 3 s, plus noise on the VRRP part of the advert.
    inject_rounds(&lab, injector, |s, noise| {
        for (_, p) in &cases {
            s.send_to(p, &to).unwrap();
        }
        for p in noise.batch(&advert(254), 20, |p| parse_advert(p, &expect).is_err()) {
            let _ = s.send_to(&p, &to);
        }
    });
    assert_counted_and_unmoved(&lab, Family::V4, &m, &b, cases.iter().map(|c| c.0));
    assert_logged(
        &b,
        &[
            "(VI_1) invalid ttl. 64 and expect 255",
            "(VI_1) Invalid VRRPv2 checksum",
            "(VI_1) received an invalid passwd!",
            "(VI_1) received a 0 auth, expecting 1!",
            "(VI_1) advertisement interval mismatch mine=1 sec rcv'd=3 sec",
            "(VI_1) invalid version. 3 and expect 2",
            "(VI_1) Invalid packet type. 2 and expect 1",
            "(VI_1) ip/vrrp header too short. 24 and expect at least 28",
        ],
    );
    stop_all(&lab, &[&m, &b]);
}
