//! VRRPv3 over IPv6 (RFC 5798) against Debian's keepalived 2.2.7 in the
//! lab: an instance whose VIP is IPv6 (2001:2::100/64) runs over IPv6 on
//! both (adverts to ff02::12 from the link-local address, hop limit 255).
//! keepalived MASTER → ours takes over when it dies and yields when it
//! returns; ours MASTER → keepalived takes over at our priority 0 and when
//! ours dies; IPv6 unicast peers both ways. The gap
//! is measured as for IPv4: `ping -6` every 10 ms from the client to the
//! VIP, which must answer at the new master after its unsolicited
//! neighbour advertisement moved the client's neighbour entry.
//!
//! IPv6 is off in the lab's namespaces; these tests turn it on for the
//! directors' and the client's interface (without DAD, so the link-local
//! addresses are usable at once). Needs root, `ip`, `ping`, `keepalived`.

mod vrrp_util;

use std::time::Duration;

use vrrp_util::v6::*;
use vrrp_util::*;

/// keepalived MASTER, ours BACKUP: ours accepts keepalived's IPv6 adverts
/// (from its link-local address), takes over when keepalived dies, and
/// yields when it returns.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v6_keepalived_master_ours_backup() {
    if !have_keepalived() {
        eprintln!("keepalived not installed: skipped");
        return;
    }
    let lab = lab6();
    let ka_ll = link_local(&lab, 0).unwrap();
    let ka = start_keepalived6(&lab, 0, &conf6("MASTER", 200, "1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let ours = start_ours6(&lab, 1, &conf6("BACKUP", 100, "1"));
    lvs_testkit::wait_until(
        "ours to accept keepalived's IPv6 adverts",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || received(&ours) >= 2,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", log_text(&ours)));
    std::thread::sleep(Duration::from_secs(4)); // longer than master-down
    assert!(vip6_on(&lab, 1).is_none());
    wait_state(&ours, "Backup", Duration::from_secs(1)).unwrap();
    let st = stats(&ours).unwrap();
    assert!(
        st["rejected"].as_object().unwrap().is_empty(),
        "rejections: {st}"
    );
    assert_eq!(st["master_ip"], ka_ll.to_string(), "from its link-local");

    // keepalived dies: ours takes over, its NA moves the client.
    let ping = Ping6::start(&lab);
    std::thread::sleep(Duration::from_millis(500));
    let at = now_s();
    sigkill_keepalived(&ka);
    drop_vip6(&lab, 0);
    wait_master6(&lab, 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let gap = gap_around(&ping.stop(&lab), at).unwrap();
    println!(
        "v6: keepalived master crashed (VRRP child SIGKILLed) → ours took over, ping -6 gap {gap:?}"
    );
    assert!(gap <= Duration::from_millis(3700));
    assert!(
        log_text(&ours).contains(
            "(VI_6) Sending/queueing Unsolicited Neighbour Adverts on bond0 for 2001:2::100"
        ),
        "{}",
        log_text(&ours)
    );
    let _ = lab.kill(ka.pid);

    // keepalived returns with priority 200: it preempts ours.
    let ka2 = start_keepalived6(&lab, 0, &conf6("MASTER", 200, "1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    wait_state(&ours, "Backup", Duration::from_secs(2)).unwrap();
    let _ = lab.kill(ka2.pid);
    let _ = lab.kill(ours.pid);
}

/// Ours MASTER, keepalived BACKUP: keepalived accepts ours (checksum over
/// the IPv6 pseudo-header, hop limit 255); on our graceful stop
/// (priority 0) keepalived takes over at once; ours returns and preempts.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v6_ours_master_keepalived_backup() {
    if !have_keepalived() {
        eprintln!("keepalived not installed: skipped");
        return;
    }
    let lab = lab6();
    let ours = start_ours6(&lab, 0, &conf6("MASTER", 200, "0.1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let ka = start_keepalived6(&lab, 1, &conf6("BACKUP", 100, "0.1"));
    wait_log(&ka, "Entering BACKUP STATE", Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        vip6_on(&lab, 1).is_none(),
        "keepalived took the VIP: {}",
        log_text(&ka)
    );
    assert!(vip6_on(&lab, 0).is_some());
    let a = vip6_on(&lab, 0).unwrap();
    assert!(
        a.nodad,
        "IPv6 VIPs are added with nodad, as keepalived does"
    );

    let ping = Ping6::start(&lab);
    std::thread::sleep(Duration::from_millis(500));
    let at = now_s();
    sigterm(ours.pid);
    wait_master6(&lab, 1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let gap = gap_around(&ping.stop(&lab), at).unwrap();
    println!("v6: ours stopped (priority 0) → keepalived took over, ping -6 gap {gap:?}");
    assert!(gap <= Duration::from_secs(1));
    assert!(log_text(&ka).contains("(VI_6) Entering MASTER STATE"));
    let _ = lab.kill(ours.pid);

    let ours2 = start_ours6(&lab, 0, &conf6("MASTER", 200, "0.1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let _ = lab.kill(ours2.pid);
    let _ = lab.kill(ka.pid);
}

/// `unicast_src_ip` / `unicast_peer` IPv6 on both (global addresses, no
/// multicast): ours BACKUP accepts keepalived's unicast adverts (master
/// = keepalived's `unicast_src_ip`); keepalived's graceful stop
/// (priority 0) hands over to ours; keepalived back as BACKUP accepts ours
/// and stays BACKUP.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v6_unicast_peers_with_keepalived() {
    if !have_keepalived() {
        eprintln!("keepalived not installed: skipped");
        return;
    }
    let lab = lab6();
    let unicast = |me: u8, peer: u8| {
        format!(
            "    unicast_src_ip 2001:2::{me}\n    unicast_peer {{\n        2001:2::{peer}\n    }}\n"
        )
    };
    let ka_conf = |state: &str, prio: u8| conf6_with(state, prio, "0.5", "", &unicast(2, 3));
    let ka = start_keepalived6(&lab, 0, &ka_conf("MASTER", 200));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let ours = start_ours6(
        &lab,
        1,
        &conf6_with("BACKUP", 100, "0.5", "", &unicast(3, 2)),
    );
    lvs_testkit::wait_until(
        "ours to accept keepalived's unicast IPv6 adverts",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || received(&ours) >= 4,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", log_text(&ours)));
    wait_state(&ours, "Backup", Duration::from_secs(1)).unwrap();
    let st = stats(&ours).unwrap();
    assert_eq!(st["master_ip"], "2001:2::2", "{st}");
    assert!(
        st["rejected"].as_object().unwrap().is_empty(),
        "rejections: {st}"
    );

    let ping = Ping6::start(&lab);
    std::thread::sleep(Duration::from_millis(500));
    let at = now_s();
    sigterm(ka.pid);
    wait_master6(&lab, 1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let gap = gap_around(&ping.stop(&lab), at).unwrap();
    println!("v6 unicast: keepalived stopped (priority 0) → ours took over, ping -6 gap {gap:?}");
    assert!(gap <= Duration::from_secs(1));
    let _ = lab.kill(ka.pid);

    let ka2 = start_keepalived6(&lab, 0, &ka_conf("BACKUP", 100));
    wait_log(&ka2, "Entering BACKUP STATE", Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(vip6_on(&lab, 0).is_none(), "{}", log_text(&ka2));
    assert!(vip6_on(&lab, 1).is_some());
    assert!(!log_text(&ka2).contains("Entering MASTER STATE"));
    let _ = lab.kill(ka2.pid);
    let _ = lab.kill(ours.pid);
}

/// Ours MASTER dies (SIGKILL, VIP gone with its host): keepalived BACKUP
/// takes over on its master-down timer and its NA moves the client.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v6_ours_master_crashes_keepalived_takes_over() {
    if !have_keepalived() {
        eprintln!("keepalived not installed: skipped");
        return;
    }
    let lab = lab6();
    let ours = start_ours6(&lab, 0, &conf6("MASTER", 200, "1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let ka = start_keepalived6(&lab, 1, &conf6("BACKUP", 100, "1"));
    wait_log(&ka, "Entering BACKUP STATE", Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(vip6_on(&lab, 1).is_none(), "{}", log_text(&ka));
    let ping = Ping6::start(&lab);
    std::thread::sleep(Duration::from_millis(500));
    let at = now_s();
    sigkill(ours.pid);
    drop_vip6(&lab, 0);
    wait_master6(&lab, 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let gap = gap_around(&ping.stop(&lab), at).unwrap();
    println!("v6: ours master crashed (SIGKILL) → keepalived took over, ping -6 gap {gap:?}");
    assert!(gap <= Duration::from_millis(3700));
    let _ = lab.kill(ka.pid);
}
