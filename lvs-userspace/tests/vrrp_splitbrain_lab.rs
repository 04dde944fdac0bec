//! Split brain: director 1's bridge port is cut for 5 s (taken out of the
//! bridge, carrier stays up, so both directors believe they are MASTER and
//! the client's ARP entry for the VIP moves to director 2), then restored:
//! within one advert interval exactly one MASTER remains (the higher
//! priority), and its gratuitous ARPs (sent when it hears the lower
//! priority master) put the client's ARP entry back.
//!
//! Needs root, `ip`, `ethtool`, `ping`.

mod vrrp_util;

use std::time::{Duration, Instant};

use lvs_userspace::netlink;
use vrrp_util::*;

fn client_vip_mac(lab: &lvs_testkit::Lab) -> Option<[u8; 6]> {
    lab.run_in_netns(lab.client_ns(), || {
        let l = netlink::link_by_name("eth0").unwrap();
        netlink::neighbour(l.index, VIP).unwrap()
    })
    .unwrap()
}

/// Until the client's ARP entry for the VIP names director `dir`'s MAC.
fn wait_client_arp(lab: &lvs_testkit::Lab, dir: usize, what: &str, timeout: Duration) {
    lvs_testkit::wait_until(what, timeout, Duration::from_millis(10), || {
        client_vip_mac(lab) == Some(lab.director_mac(dir))
    })
    .unwrap();
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn split_brain_heals_within_one_advert_interval() {
    let lab = lab();
    let (m, b) = start_seed_pair(&lab, Family::V4);
    let ping = Ping::start(&lab);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(client_vip_mac(&lab), Some(lab.director_mac(0)));

    // Cut director 1's port for 5 s.
    let (sw, peer) = lab.director_peer(0);
    let (sw, peer) = (sw.to_string(), peer.to_string());
    lab.exec_ok(&sw, &["ip", "link", "set", &peer, "nomaster"])
        .unwrap();
    wait_both_masters(&lab, "both directors MASTER", Duration::from_secs(5));
    wait_client_arp(
        &lab,
        1,
        "the client to follow director 2's GARP",
        Duration::from_secs(2),
    );
    std::thread::sleep(Duration::from_millis(1500)); // 5 s cut in all

    // Restore.
    lab.exec_ok(&sw, &["ip", "link", "set", &peer, "master", "br0"])
        .unwrap();
    let t0 = Instant::now();
    wait_master(&lab, 0, Duration::from_secs(3)).unwrap();
    let one_master = t0.elapsed();
    wait_client_arp(
        &lab,
        0,
        "the client's ARP entry back on director 1",
        Duration::from_secs(3),
    );
    let arp_fixed = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let ts = ping.stop(&lab);
    let gap = gap_around(&ts, now_s() - 0.6).unwrap_or_default();
    println!(
        "split brain healed: one MASTER after {one_master:?}, client ARP corrected after \
         {arp_fixed:?} (advert_int 1 s); last ping gap {gap:?}"
    );
    assert!(one_master <= Duration::from_millis(1200), "{one_master:?}");
    assert!(arp_fixed <= Duration::from_millis(1500), "{arp_fixed:?}");
    assert!(log_text(&m).contains("forcing new election"));
    wait_state(&b, "Backup", Duration::from_secs(1));
    stop_all(&lab, &[&m, &b]);
}
