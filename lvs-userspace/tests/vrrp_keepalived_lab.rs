//! Interop with Debian's keepalived 2.2.7 (`keepalived --vrrp`) in the lab:
//! keepalived MASTER + ours BACKUP and the reverse, takeover both ways; a
//! v2 PASS mismatch makes both sides refuse each other's adverts (counted
//! and logged on ours, logged on keepalived); VRRPv3 works.
//!
//! Needs root, `ip`, `ethtool`, `ping`, `keepalived`.

mod vrrp_util;

use std::time::Duration;

use vrrp_util::*;

/// keepalived MASTER, ours BACKUP: ours accepts keepalived's adverts, takes
/// over when keepalived dies, and yields when it returns.
fn keepalived_master_ours_backup(version: u8) {
    let lab = lab();
    let (mc, bc) = if version == 3 {
        (Conf::master().v3("1"), Conf::backup().v3("1"))
    } else {
        (Conf::master(), Conf::backup())
    };
    let ka = start_keepalived(&lab, 0, &mc);
    wait_master(&lab, 0, Duration::from_secs(10)).unwrap();
    let ours = start_ours(&lab, 1, &bc);
    lvs_testkit::wait_until(
        "ours to accept keepalived's adverts",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || received(&ours) >= 2,
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(4)); // longer than master-down
    assert!(vip_on(&lab, 1).is_none());
    wait_state(&ours, "Backup", Duration::from_secs(1)).unwrap();
    let st = stats(&ours).unwrap();
    assert!(
        st["rejected"].as_object().unwrap().is_empty(),
        "rejections: {st}"
    );
    assert_eq!(st["master_ip"], "198.18.0.2");

    // keepalived dies: ours takes over.
    let gap = ping_gap_across(
        &lab,
        Duration::from_millis(500),
        || {
            sigkill_keepalived(&ka);
            drop_vip(&lab, 0);
        },
        || wait_master(&lab, 1, Duration::from_secs(10)).unwrap(),
    );
    println!(
        "v{version}: keepalived master crashed (VRRP child SIGKILLed) → ours took over, ping gap {gap:?}"
    );
    assert!(gap <= Duration::from_millis(3700));
    let _ = lab.kill(ka.pid);

    // keepalived returns with priority 200: it preempts ours.
    let ka2 = start_keepalived(&lab, 0, &mc);
    wait_master(&lab, 0, Duration::from_secs(10)).unwrap();
    wait_state(&ours, "Backup", Duration::from_secs(2)).unwrap();
    stop_all(&lab, &[&ka2, &ours]);
}

keepalived_tests! {
    v2_keepalived_master_ours_backup => keepalived_master_ours_backup(2);
    v3_keepalived_master_ours_backup => keepalived_master_ours_backup(3);
}

/// Ours MASTER, keepalived BACKUP: keepalived accepts ours; on our graceful
/// stop (priority 0) keepalived takes over at once; when ours returns
/// with the higher priority, keepalived yields.
fn ours_master_keepalived_backup(version: u8) {
    let lab = lab();
    let (mc, bc) = if version == 3 {
        (Conf::master().v3("0.1"), Conf::backup().v3("0.1"))
    } else {
        (Conf::master(), Conf::backup())
    };
    let (ours, ka) =
        start_master_then_backup(&lab, &mc, &bc, Peer::Keepalived, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        vip_on(&lab, 1).is_none(),
        "keepalived took the VIP: {}",
        log_text(&ka)
    );
    assert!(vip_on(&lab, 0).is_some());

    let gap = ping_gap_across(
        &lab,
        Duration::from_millis(500),
        || sigterm(ours.pid),
        || wait_master(&lab, 1, Duration::from_secs(5)).unwrap(),
    );
    println!("v{version}: ours stopped (priority 0) → keepalived took over, ping gap {gap:?}");
    assert!(gap <= Duration::from_secs(1));
    assert!(log_text(&ka).contains("(VI_1) Entering MASTER STATE"));
    let _ = lab.kill(ours.pid);

    let ours2 = start_ours(&lab, 0, &mc);
    wait_master(&lab, 0, Duration::from_secs(10)).unwrap();
    stop_all(&lab, &[&ours2, &ka]);
}

keepalived_tests! {
    v2_ours_master_keepalived_backup => ours_master_keepalived_backup(2);
    v3_ours_master_keepalived_backup => ours_master_keepalived_backup(3);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v2_pass_mismatch_is_refused_both_ways() {
    if !have_keepalived() {
        eprintln!("keepalived not installed: skipped");
        return;
    }
    let lab = lab();
    let ours = start_ours(&lab, 0, &Conf::master());
    let ka = start_keepalived(
        &lab,
        1,
        &Conf {
            pass: Some("1234"),
            ..Conf::backup()
        },
    );
    // Neither accepts the other: both end up MASTER (split brain by
    // configuration), and both say why.
    wait_log(&ka, "received an invalid passwd!", Duration::from_secs(10)).unwrap();
    wait_log(
        &ours,
        "(VI_1) received an invalid passwd!",
        Duration::from_secs(10),
    )
    .unwrap();
    lvs_testkit::wait_until(
        "both to hold the VIP",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || vip_on(&lab, 0).is_some() && vip_on(&lab, 1).is_some(),
    )
    .unwrap();
    // keepalived's MASTER advertises irregularly while it keeps reading
    // our (refused) adverts, so allow time.
    lvs_testkit::wait_until(
        "2 auth_failure rejections",
        Duration::from_secs(12),
        Duration::from_millis(50),
        || rejected(&ours, "auth_failure") >= 2,
    )
    .unwrap();
    let n = rejected(&ours, "auth_failure");
    assert_eq!(received(&ours), 0, "ours accepted a mismatched advert");
    println!("pass mismatch: ours counted {n} auth_failure rejections");
    stop_all(&lab, &[&ka, &ours]);
}
