//! Two of our VRRP speakers (`examples/vrrp_only`) on the seed's VI_1
//! (vrid 20, PASS 7890, priorities 200/100, VIP 198.18.0.100/16 brd
//! 198.18.255.255 label bond0:1) in two director namespaces. The MASTER
//! holds the VIP with its label, the BACKUP not; a client pings the VIP
//! every 10 ms and the test prints the longest gap when the master dies
//! (SIGKILL; the VIP it leaves behind is then removed, as if its host were
//! gone), or stops (SIGTERM → priority 0). The old master rejoining
//! preempts, or not with `nopreempt`.
//!
//! Needs root, `ip`, `ethtool`, `ping`.

mod vrrp_util;

use std::time::Duration;

use vrrp_util::*;

/// Kill the master, measure, let it rejoin (preempt).
fn failover(master: Conf, backup: Conf, bound: Duration, settle: Duration) {
    let lab = lab();
    let (m, b) = start_master_then_backup(&lab, &master, &backup, Peer::Ours);
    std::thread::sleep(settle);
    assert!(vip_on(&lab, 1).is_none(), "BACKUP must not hold the VIP");

    let gap = handover_gap(&lab, Family::V4, || crash(&lab, Family::V4, 0, &m));
    println!(
        "VRRPv{} advert_int {}: SIGKILL of the master → client ping gap {:?} (bound {:?})",
        master.version, master.advert_int, gap, bound
    );
    assert!(gap <= bound, "gap {gap:?} > {bound:?}");
    let _ = lab.kill(m.pid);
    let log_b = log_text(&b);
    assert!(
        log_b.contains("(VI_1) Transition to MASTER STATE"),
        "{log_b}"
    );
    assert!(log_b.contains("(VI_1) Entering MASTER STATE"), "{log_b}");
    assert!(log_b.contains("Sending/queueing gratuitous ARPs on bond0 for 198.18.0.100"));

    // The old master comes back with its higher priority: it preempts.
    let m2 = start_master(&lab, 0, &master, Peer::Ours);
    wait_log(
        &b,
        "with higher priority 200, ours 100",
        Duration::from_secs(2),
    );
    wait_state(&b, "Backup", Duration::from_secs(1));
    stop_all(&lab, &[&m2, &b]);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v2_advert_int_1_sigkill_gap_and_preempt() {
    failover(
        Conf::master(),
        Conf::backup(),
        Duration::from_millis(3700),
        Duration::from_millis(1500),
    );
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v3_advert_int_0_1_sigkill_gap_and_preempt() {
    failover(
        Conf::master().v3("0.1"),
        Conf::backup().v3("0.1"),
        Duration::from_millis(500),
        Duration::from_millis(500),
    );
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v2_graceful_stop_priority_0() {
    let lab = lab();
    let (m, b) = settled_seed_pair(&lab, Family::V4);
    let gap = handover_gap(&lab, Family::V4, || sigterm(m.pid));
    println!(
        "VRRPv2 advert_int 1: graceful stop (priority 0) → client ping gap {gap:?} (bound 1s)"
    );
    assert!(gap <= Duration::from_secs(1), "gap {gap:?}");
    assert!(log_text(&b).contains("Backup received priority 0 advertisement"));
    let st = stats(&b).unwrap();
    assert!(st["priority_zero_received"].as_u64().unwrap() >= 1);
    stop_all(&lab, &[&m, &b]);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn nopreempt_keeps_the_current_master() {
    let lab = lab();
    // The lower-priority node is master first; the higher one starts with
    // nopreempt (keepalived requires state BACKUP for it) and must wait.
    let low = start_master(&lab, 1, &Conf::backup().v3("0.1"), Peer::Ours);
    let hi = Conf {
        state: "BACKUP",
        nopreempt: true,
        ..Conf::master().v3("0.1")
    };
    let h = start_ours(&lab, 0, &hi);
    wait_log(&h, "Entering BACKUP STATE", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(2)); // 20 advert intervals
    assert!(vip_on(&lab, 0).is_none(), "nopreempt node took over");
    assert!(vip_on(&lab, 1).is_some());
    wait_state(&h, "Backup", Duration::from_secs(1));
    // Without nopreempt it does take over.
    let _ = lab.kill(h.pid);
    let h2 = start_master(&lab, 0, &Conf::master().v3("0.1"), Peer::Ours);
    stop_all(&lab, &[&h2, &low]);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v3_unicast_peers_failover() {
    let lab = lab();
    let mc = Conf::master().v3("0.1").unicast(0, 1);
    let bc = Conf::backup().v3("0.1").unicast(1, 0);
    let (m, b) = start_master_then_backup(&lab, &mc, &bc, Peer::Ours);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(vip_on(&lab, 1).is_none(), "unicast backup took over");
    let st = stats(&b).unwrap();
    assert!(st["adverts_received"].as_u64().unwrap() >= 5, "{st}");
    assert_eq!(st["master_ip"], "198.18.0.2");
    let gap = handover_gap(&lab, Family::V4, || crash(&lab, Family::V4, 0, &m));
    println!("VRRPv3 unicast advert_int 0.1: SIGKILL of the master → ping gap {gap:?}");
    assert!(gap <= Duration::from_millis(500));
    stop_all(&lab, &[&m, &b]);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn carrier_loss_is_fault_and_recovery_preempts() {
    let lab = lab();
    let (m, b) = start_fast_pair(&lab, "", "");
    // Director 1 loses its carrier (its bridge-side peer goes down).
    let (sw, peer) = lab.director_peer(0);
    let (sw, peer) = (sw.to_string(), peer.to_string());
    lab.exec_ok(&sw, &["ip", "link", "set", &peer, "down"])
        .unwrap();
    wait_log(&m, "(VI_1) Entering FAULT STATE", Duration::from_secs(3));
    wait_master(&lab, 1, Duration::from_secs(3)).unwrap();
    wait_state(&m, "Fault", Duration::from_secs(1));
    // Carrier back: BACKUP, then it preempts with its higher priority.
    lab.exec_ok(&sw, &["ip", "link", "set", &peer, "up"])
        .unwrap();
    wait_master(&lab, 0, Duration::from_secs(5)).unwrap();
    wait_state(&b, "Backup", Duration::from_secs(1));
    stop_all(&lab, &[&m, &b]);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn garp_bursts_on_master_then_after_delay_and_refresh() {
    let lab = lab();
    let conf = Conf {
        extra: "    garp_master_delay 1\n    garp_master_repeat 3\n    garp_master_refresh 2\n",
        ..Conf::master().v3("0.1")
    };
    let m = start_master(&lab, 0, &conf, Peer::Ours);
    let bursts = || {
        log_text(&m)
            .matches("Sending/queueing gratuitous ARPs on bond0 for 198.18.0.100")
            .count()
    };
    assert_eq!(bursts(), 1, "first burst on entering MASTER");
    // The second burst garp_master_delay (1 s) later, refreshes every 2 s.
    wait_for("second burst", Duration::from_millis(1800), || {
        bursts() == 2
    });
    wait_for("refresh burst", Duration::from_millis(1800), || {
        bursts() == 3
    });
    let _ = lab.kill(m.pid);
}
