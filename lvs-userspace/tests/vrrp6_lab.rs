//! VRRPv3 over IPv6 between two of our speakers in the lab:
//! - forged and malformed IPv6 adverts injected from the client are
//!   dropped, counted under their reason and logged in keepalived's
//!   wording, and change nothing;
//! - becoming MASTER announces the IPv6 VIP by unsolicited neighbour
//!   advertisements with keepalived's repeat behaviour: `garp_master_repeat`
//!   at once, again after `garp_master_delay`, paced by
//!   `vrrp_gna_interval` (counted on the wire from the client);
//! - an IPv6 VIP removed under the MASTER is noticed and put back; one
//!   added by SIGHUP is added in place and announced;
//! - an IPv6 `virtual_ipaddress_excluded` moves with an IPv4 instance;
//! - `advert_int 0.1` master death: the `ping -6` gap, as for IPv4.
//!
//! Needs root, `ip`.

mod vrrp_util;

use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant};

use lvs_userspace::vrrp::packet::{build_advert6, parse_advert6, Outgoing, Rx6, VRRP_MCAST_GROUP6};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vrrp_util::inject::*;
use vrrp_util::v6::*;
use vrrp_util::*;

const V6: Family = Family::V6;

fn outgoing(src: Ipv6Addr) -> Outgoing<'static, Ipv6Addr> {
    Outgoing {
        version: 3,
        vrid: 60,
        priority: 254,
        adver_int_cs: 100,
        addrs: &[VIP6],
        auth_pass: None,
        src,
        dst: VRRP_MCAST_GROUP6,
    }
}

fn injector6() -> Socket {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(112))).unwrap();
    s.bind_device(Some(b"eth0")).unwrap();
    let ifindex = lvs_userspace::netlink::link_by_name("eth0").unwrap().index;
    s.set_multicast_if_v6(ifindex).unwrap();
    s
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn malformed_and_forged_ipv6_adverts_are_counted_and_ignored() {
    let lab = lab6();
    let (m, b) = settled_seed_pair(&lab, V6);
    // The client's link-local address (the source its datagrams carry).
    let me = link_local_in(&lab, lab.client_ns(), "eth0").expect("client link-local");
    let good = build_advert6(&outgoing(me));
    // (counter, message, hop limit). Priority 254: had any been accepted,
    // the backup would have taken over.
    let mut cases: Vec<(&str, Vec<u8>, u32)> = vec![("ip_ttl", good.clone(), 64)];
    // Forged: computed for another source than the one it comes from.
    let forged = build_advert6(&outgoing(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2)));
    cases.push(("checksum", forged, 255));
    let mut p = good.clone();
    p[6] ^= 0x55;
    cases.push(("checksum", p, 255));
    let mut p = good.clone();
    p.extend_from_slice(&[0; 4]);
    cases.push(("packet_length", p, 255));
    let mut p = good.clone();
    p[1] = 61;
    cases.push(("vrid", p, 255));
    let mut p = good.clone();
    p[0] = 0x32;
    cases.push(("invalid_type", p, 255));
    let mut p = good.clone();
    p[0] = 0x21;
    cases.push(("version", p, 255));
    cases.push(("packet_too_short", good[..6].to_vec(), 255));

    let to = SockAddr::from(SocketAddrV6::new(VRRP_MCAST_GROUP6, 0, 0, 0));
    let rx = Rx6 {
        src: me,
        dst: VRRP_MCAST_GROUP6,
        hop_limit: Some(255),
    };
    let expect = expect_of(&outgoing(me));
    inject_rounds(&lab, injector6, |s, noise| {
        for (_, p, hops) in &cases {
            s.set_multicast_hops_v6(*hops).unwrap();
            s.send_to(p, &to).unwrap();
        }
        s.set_multicast_hops_v6(255).unwrap();
        for p in noise.batch(&good, 0, |p| parse_advert6(p, &rx, &expect).is_err()) {
            let _ = s.send_to(&p, &to);
        }
    });
    assert_counted_and_unmoved(&lab, V6, &m, &b, cases.iter().map(|c| c.0));
    assert_logged(
        &b,
        &[
            "(VI_6) invalid ttl. 64 and expect 255",
            "(VI_6) Invalid VRRPv3 checksum",
            "(VI_6) Invalid packet type. 2 and expect 1",
            "(VI_6) invalid version. 2 and expect 3",
            "(VI_6) ip/vrrp header too short. 6 and expect at least 8",
        ],
    );
    stop_all(&lab, &[&m, &b]);
}

/// Unsolicited NAs for the VIP seen on the client's eth0: (time, sender MAC).
fn capture_nas(lab: &lvs_testkit::Lab, for_how_long: Duration) -> Vec<(Instant, [u8; 6])> {
    lab.run_in_netns(lab.client_ns(), move || {
        let s = Socket::new(
            Domain::PACKET,
            Type::RAW,
            Some(Protocol::from(i32::from(0x86ddu16.to_be()))),
        )
        .unwrap();
        s.bind_device(Some(b"eth0")).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let end = Instant::now() + for_how_long;
        let mut out = Vec::new();
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
        while Instant::now() < end {
            let Ok(n) = s.recv(&mut buf) else { continue };
            // SAFETY: recv initialised the first n bytes.
            let f: Vec<u8> = buf[..n]
                .iter()
                .map(|b| unsafe { b.assume_init() })
                .collect();
            if n >= 78 && f[20] == 58 && f[54] == 136 && f[62..78] == VIP6.octets() {
                out.push((Instant::now(), f[6..12].try_into().unwrap()));
            }
        }
        out
    })
    .unwrap()
}

/// The NAs of [`capture_nas`] over 5 s in which `conf` starts alone on
/// director 0 and becomes MASTER.
fn nas_while_master_starts(lab: &lvs_testkit::Lab, conf: &Conf) -> Vec<(Instant, [u8; 6])> {
    std::thread::scope(|sc| {
        let h = sc.spawn(|| capture_nas(lab, Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(300));
        let m = start_master(lab, 0, conf, Peer::Ours);
        let r = h.join().unwrap();
        let _ = lab.kill(m.pid);
        r
    })
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn master_announces_ipv6_vip_by_unsolicited_na_with_garp_repeats() {
    let lab = lab6();
    let conf = Conf {
        global: "    vrrp_gna_interval 0.05\n",
        extra: "    garp_master_repeat 3\n    garp_master_delay 1\n",
        ..V6.seed().0
    };
    let cap = nas_while_master_starts(&lab, &conf);
    let mac = lab
        .run_in_netns(lab.director_ns(0), || {
            lvs_userspace::netlink::link_by_name("bond0").unwrap().mac
        })
        .unwrap();
    assert!(cap.iter().all(|(_, m)| *m == mac), "NAs from another MAC");
    let t: Vec<f64> = cap
        .iter()
        .map(|(t, _)| t.duration_since(cap[0].0).as_secs_f64())
        .collect();
    println!("unsolicited NAs for {VIP6} at {t:.3?} s");
    assert_eq!(t.len(), 6, "3 at MASTER, 3 after garp_master_delay: {t:?}");
    for w in t[..3].windows(2).chain(t[3..].windows(2)) {
        assert!(w[1] - w[0] >= 0.04, "vrrp_gna_interval 0.05 apart: {t:?}");
    }
    assert!(
        (0.8..=1.6).contains(&(t[3] - t[0])),
        "second burst garp_master_delay (1 s) later: {t:?}"
    );
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_vip_removed_under_master_comes_back() {
    let lab = lab6();
    let (m, b) = start_seed_pair(&lab, V6);
    V6.drop_vip(&lab, 0);
    wait_log(
        &m,
        "(VI_6) VIP 2001:2::100 was removed while MASTER",
        Duration::from_secs(3),
    );
    V6.wait_master(&lab, 0, Duration::from_secs(5)).unwrap();
    stop_all(&lab, &[&m, &b]);
}

/// An IPv4 instance with an IPv6 `virtual_ipaddress_excluded`: the IPv6
/// address moves with the instance (announced by NA) but is not in the
/// (IPv4) adverts, so the peers' address lists agree.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_excluded_vip_moves_with_an_ipv4_instance() {
    let lab = lab6();
    let ex: Ipv6Addr = "2001:2::200".parse().unwrap();
    let extra = "    virtual_ipaddress_excluded {\n        2001:2::200/64 dev bond0\n    }\n";
    let (m, b) = start_master_then_backup(
        &lab,
        &Conf {
            extra,
            ..Conf::master()
        },
        &Conf {
            extra,
            ..Conf::backup()
        },
        Peer::Ours,
    );
    let has6 = |dir: usize| addr_on(&lab, dir, "bond0", ex);
    assert!(has6(0) && !has6(1));
    wait_log(
        &m,
        "(VI_1) Sending/queueing Unsolicited Neighbour Adverts on bond0 for 2001:2::200",
        Duration::from_secs(2),
    );
    sigterm(m.pid);
    wait_master(&lab, 1, Duration::from_secs(5)).unwrap();
    wait_for(
        "the excluded IPv6 address on dir2 alone",
        Duration::from_secs(3),
        || has6(1) && !has6(0),
    );
    let st = stats(&b).unwrap();
    assert_eq!(st["addr_list_mismatch"], 0, "{st}");
    stop_all(&lab, &[&m, &b]);
}

/// VRRPv3 over IPv6 at `advert_int 0.1`: the master dies (SIGKILL, its VIP
/// gone with its host), the backup takes over and its NA moves the client:
/// `ping -6` to the VIP interrupted at most 0.5 s, the IPv4 bound.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v3_fast_adverts_over_ipv6_interrupt_at_most_0_5_s() {
    let lab = lab6();
    let (m, b) = start_master_then_backup(
        &lab,
        &Conf::master().v6("0.1"),
        &Conf::backup().v6("0.1"),
        Peer::Ours,
    );
    let gap = handover_gap(&lab, V6, || crash(&lab, V6, 0, &m));
    println!(
        "v6 VRRPv3 advert_int 0.1: master SIGKILLed → backup took over, ping -6 gap {gap:?} (bound 0.5 s)"
    );
    assert!(gap <= Duration::from_millis(500), "gap {gap:?}");
    stop_all(&lab, &[&m, &b]);
}

/// SIGHUP with one more IPv6 VIP: the MASTER adds it in place (no
/// failover) and announces it by NA; the instance stays MASTER.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn reload_adds_an_ipv6_vip_in_place() {
    let lab = lab6();
    let conf = V6.seed().0;
    let m = start_master(&lab, 0, &conf, Peer::Ours);
    let more: Ipv6Addr = "2001:2::101".parse().unwrap();
    let with_more = Conf {
        more_vips: "        2001:2::101/64 dev bond0\n",
        ..conf
    };
    reload(&m, &with_more.text());
    wait_for("2001:2::101 on dir1", Duration::from_secs(5), || {
        addr_on(&lab, 0, "bond0", more)
    });
    wait_log(
        &m,
        "(VI_6) Sending/queueing Unsolicited Neighbour Adverts on bond0 for 2001:2::101",
        Duration::from_secs(2),
    );
    assert!(V6.holds_vip(&lab, 0));
    wait_state(&m, "Master", Duration::from_secs(1));
    assert_eq!(stats(&m).unwrap()["became_master"], 1, "no failover");
    let _ = lab.kill(m.pid);
}
