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

use lvs_userspace::vrrp::packet::{
    build_advert6, parse_advert6, Expect, Outgoing, Rx6, VRRP_MCAST_GROUP6,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vrrp_util::v6::*;
use vrrp_util::*;

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

fn expect() -> Expect<'static, Ipv6Addr> {
    Expect {
        version: 3,
        vrid: 60,
        auth_pass: None,
        adver_int_cs: 100,
        vips: &[VIP6],
        check_ttl: true,
    }
}

/// The client's link-local address (the source its datagrams carry).
fn client_ll(lab: &lvs_testkit::Lab) -> Ipv6Addr {
    lab.run_in_netns(lab.client_ns(), || {
        let l = lvs_userspace::netlink::link_by_name("eth0").unwrap();
        lvs_userspace::netlink::addrs6(l.index)
            .unwrap()
            .into_iter()
            .find(lvs_userspace::netlink::IfAddr6::is_link_local)
            .map(|a| a.addr)
            .expect("client link-local")
    })
    .unwrap()
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn malformed_and_forged_ipv6_adverts_are_counted_and_ignored() {
    let lab = lab6();
    let m = start_ours6(&lab, 0, &conf6("MASTER", 200, "1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let b = start_ours6(&lab, 1, &conf6("BACKUP", 100, "1"));
    wait_log(&b, "Entering BACKUP STATE", Duration::from_secs(5)).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let me = client_ll(&lab);
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
    lab.run_in_netns(lab.client_ns(), || {
        let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(112))).unwrap();
        s.bind_device(Some(b"eth0")).unwrap();
        let ifindex = lvs_userspace::netlink::link_by_name("eth0").unwrap().index;
        s.set_multicast_if_v6(ifindex).unwrap();
        let mut x: u32 = 0x1234_5678;
        for _ in 0..3 {
            for (_, p, hops) in &cases {
                s.set_multicast_hops_v6(*hops).unwrap();
                s.send_to(p, &to).unwrap();
            }
            s.set_multicast_hops_v6(255).unwrap();
            for _ in 0..200 {
                let mut p = build_advert6(&outgoing(me));
                for byte in p.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    if x.is_multiple_of(5) {
                        *byte = x as u8;
                    }
                }
                if parse_advert6(&p, &rx, &expect()).is_err() {
                    let _ = s.send_to(&p, &to);
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));

    for sp in [&m, &b] {
        assert!(lab.is_running(sp.pid), "a speaker died");
        for (key, _, _) in &cases {
            let n = rejected(sp, key);
            assert!(n >= 3, "{key}: counted {n} on {}", sp.log.display());
        }
        println!("rejected: {}", stats(sp).unwrap()["rejected"]);
    }
    assert!(vip6_on(&lab, 0).is_some() && vip6_on(&lab, 1).is_none());
    wait_state(&m, "Master", Duration::from_secs(1)).unwrap();
    wait_state(&b, "Backup", Duration::from_secs(1)).unwrap();
    let lb = log_text(&b);
    assert!(!lb.contains("Transition to MASTER"), "{lb}");
    for line in [
        "(VI_6) invalid ttl. 64 and expect 255",
        "(VI_6) Invalid VRRPv3 checksum",
        "(VI_6) Invalid packet type. 2 and expect 1",
        "(VI_6) invalid version. 2 and expect 3",
        "(VI_6) ip/vrrp header too short. 6 and expect at least 8",
    ] {
        assert!(lb.contains(line), "missing log line {line:?} in:\n{lb}");
    }
    let _ = lab.kill(m.pid);
    let _ = lab.kill(b.pid);
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

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn master_announces_ipv6_vip_by_unsolicited_na_with_garp_repeats() {
    let lab = lab6();
    let conf = conf6_with(
        "MASTER",
        200,
        "1",
        "    vrrp_gna_interval 0.05\n",
        "    garp_master_repeat 3\n    garp_master_delay 1\n",
    );
    let cap = {
        let lab = &lab;
        std::thread::scope(|sc| {
            let h = sc.spawn(|| capture_nas(lab, Duration::from_secs(5)));
            std::thread::sleep(Duration::from_millis(300));
            let m = start_ours6(lab, 0, &conf);
            wait_master6(lab, 0, Duration::from_secs(10));
            let r = h.join().unwrap();
            let _ = lab.kill(m.pid);
            r
        })
    };
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
    let m = start_ours6(&lab, 0, &conf6("MASTER", 200, "1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let b = start_ours6(&lab, 1, &conf6("BACKUP", 100, "1"));
    wait_log(&b, "Entering BACKUP STATE", Duration::from_secs(5)).unwrap();
    drop_vip6(&lab, 0);
    wait_log(
        &m,
        "(VI_6) VIP 2001:2::100 was removed while MASTER",
        Duration::from_secs(3),
    )
    .unwrap();
    wait_master6(&lab, 0, Duration::from_secs(5));
    let _ = lab.kill(m.pid);
    let _ = lab.kill(b.pid);
}

/// Whether director `dir` holds `addr` on bond0.
fn has6(lab: &lvs_testkit::Lab, dir: usize, addr: Ipv6Addr) -> bool {
    lab.run_in_netns(lab.director_ns(dir), move || {
        let l = lvs_userspace::netlink::link_by_name("bond0").unwrap();
        lvs_userspace::netlink::addrs6(l.index)
            .unwrap()
            .iter()
            .any(|a| a.addr == addr)
    })
    .unwrap()
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
    let m = start_ours(
        &lab,
        0,
        &Conf {
            extra,
            ..Conf::master()
        },
    );
    wait_master(&lab, 0, Duration::from_secs(10)).unwrap();
    let b = start_ours(
        &lab,
        1,
        &Conf {
            extra,
            ..Conf::backup()
        },
    );
    wait_log(&b, "Entering BACKUP STATE", Duration::from_secs(5)).unwrap();
    assert!(has6(&lab, 0, ex) && !has6(&lab, 1, ex));
    wait_log(
        &m,
        "(VI_1) Sending/queueing Unsolicited Neighbour Adverts on bond0 for 2001:2::200",
        Duration::from_secs(2),
    )
    .unwrap();
    sigterm(m.pid);
    wait_master(&lab, 1, Duration::from_secs(5)).unwrap();
    lvs_testkit::wait_until(
        "the excluded IPv6 address on dir2 alone",
        Duration::from_secs(3),
        Duration::from_millis(20),
        || has6(&lab, 1, ex) && !has6(&lab, 0, ex),
    )
    .unwrap();
    let st = stats(&b).unwrap();
    assert_eq!(st["addr_list_mismatch"], 0, "{st}");
    let _ = lab.kill(m.pid);
    let _ = lab.kill(b.pid);
}

/// VRRPv3 over IPv6 at `advert_int 0.1`: the master dies (SIGKILL, its VIP
/// gone with its host), the backup takes over and its NA moves the client:
/// `ping -6` to the VIP interrupted at most 0.5 s, the IPv4 bound.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v3_fast_adverts_over_ipv6_interrupt_at_most_0_5_s() {
    let lab = lab6();
    let m = start_ours6(&lab, 0, &conf6("MASTER", 200, "0.1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let b = start_ours6(&lab, 1, &conf6("BACKUP", 100, "0.1"));
    wait_log(&b, "Entering BACKUP STATE", Duration::from_secs(5)).unwrap();
    let ping = Ping6::start(&lab);
    std::thread::sleep(Duration::from_millis(700));
    let at = now_s();
    sigkill(m.pid);
    drop_vip6(&lab, 0);
    wait_master6(&lab, 1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let gap = gap_around(&ping.stop(&lab), at).unwrap();
    println!(
        "v6 VRRPv3 advert_int 0.1: master SIGKILLed → backup took over, ping -6 gap {gap:?} (bound 0.5 s)"
    );
    assert!(gap <= Duration::from_millis(500), "gap {gap:?}");
    let _ = lab.kill(m.pid);
    let _ = lab.kill(b.pid);
}

/// SIGHUP with one more IPv6 VIP: the MASTER adds it in place (no
/// failover) and announces it by NA; the instance stays MASTER.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn reload_adds_an_ipv6_vip_in_place() {
    let lab = lab6();
    let m = start_ours6(&lab, 0, &conf6("MASTER", 200, "1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let more: Ipv6Addr = "2001:2::101".parse().unwrap();
    let text = conf6("MASTER", 200, "1").replace(
        "2001:2::100/64 dev bond0\n",
        "2001:2::100/64 dev bond0\n        2001:2::101/64 dev bond0\n",
    );
    std::fs::write(&m.conf, text).unwrap();
    sighup(m.pid);
    lvs_testkit::wait_until(
        "2001:2::101 on dir1",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || has6(&lab, 0, more),
    )
    .unwrap();
    wait_log(
        &m,
        "(VI_6) Sending/queueing Unsolicited Neighbour Adverts on bond0 for 2001:2::101",
        Duration::from_secs(2),
    )
    .unwrap();
    assert!(vip6_on(&lab, 0).is_some());
    wait_state(&m, "Master", Duration::from_secs(1)).unwrap();
    assert_eq!(stats(&m).unwrap()["became_master"], 1, "no failover");
    let _ = lab.kill(m.pid);
}
