//! Preemption in the lab (two `examples/vrrp_only` speakers on the seed's
//! VI_1): the preemption gate (held while connection sync fills a
//! returning director) and `preempt_delay`.
//!
//! Needs root, `ip`, `ethtool`, `ping`.

mod vrrp_util;

use std::time::{Duration, Instant};

use vrrp_util::*;

/// A returning higher-priority director with the gate held for 3 s stays
/// BACKUP under the current (lower) master until the hold ends, then
/// preempts.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn held_gate_delays_failback_until_released() {
    let lab = lab();
    let low = start_master(&lab, 1, &Conf::backup().v3("0.1"), Peer::Ours);
    vrrp_only_bin(); // built before the clock starts
    let t0 = Instant::now();
    let hi = start_ours_with(&lab, 0, &Conf::master().v3("0.1"), &["--hold-preempt", "3"]);
    wait_log(
        &hi,
        "(VI_1) delaying preemption: connection sync in progress",
        Duration::from_secs(5),
    );
    // Held: 30 advert intervals pass without a takeover.
    while t0.elapsed() < Duration::from_millis(2500) {
        assert!(
            vip_on(&lab, 0).is_none(),
            "preempted while the gate was held"
        );
        assert!(vip_on(&lab, 1).is_some(), "the VIP was left unowned");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_master(&lab, 0, Duration::from_secs(3)).unwrap();
    let took = t0.elapsed();
    println!("held for 3 s: the higher-priority director took over after {took:?}");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(
        log_text(&hi).contains("(VI_1) preemption no longer delayed")
            || took >= Duration::from_secs(3)
    );
    stop_all(&lab, &[&hi, &low]);
}

/// Held but alone: no master is heard, so the master-down timer takes
/// over at once (the gate never leaves the VIP unowned).
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn held_gate_alone_still_takes_the_vip() {
    let lab = lab();
    vrrp_only_bin(); // built before the clock starts
    let t0 = Instant::now();
    let hi = start_ours_with(
        &lab,
        0,
        &Conf::master().v3("0.1"),
        &["--hold-preempt", "30"],
    );
    wait_master(&lab, 0, Duration::from_secs(5)).unwrap();
    let took = t0.elapsed();
    println!("held for 30 s, no master heard: MASTER after {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let _ = lab.kill(hi.pid);
}
