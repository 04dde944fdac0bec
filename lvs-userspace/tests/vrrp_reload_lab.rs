//! SIGHUP: an added instance starts, a removed one stops (its VIP goes),
//! an unchanged one keeps its state without a new transition, a priority
//! or VIP change is applied in place, a VRID change restarts the instance.
//!
//! Needs root, `ip`, `ethtool`.

mod vrrp_util;

use std::net::Ipv4Addr;
use std::time::Duration;

use lvs_userspace::netlink;
use vrrp_util::*;

const VIP2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 101);

fn vi_2() -> &'static str {
    "vrrp_instance VI_2 {\n    state MASTER\n    priority 150\n    interface bond0\n    \
     virtual_router_id 21\n    version 3\n    advert_int 0.5\n    virtual_ipaddress {\n        \
     198.18.0.101/16 dev bond0 label bond0:2\n    }\n}\n"
}

fn has(lab: &lvs_testkit::Lab, a: Ipv4Addr) -> Option<netlink::IfAddr> {
    bond0_addr(lab, 0, a)
}

/// Reloads `s` with `text` and waits until VIP2 is on director 0 (or gone).
fn reload_until_vip2(lab: &lvs_testkit::Lab, s: &Speaker, text: &str, present: bool) {
    reload(s, text);
    let what = if present {
        "VIP2 on dir1"
    } else {
        "VIP2 gone from dir1"
    };
    wait_for(what, Duration::from_secs(5), || {
        has(lab, VIP2).is_some() == present
    });
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn sighup_adds_and_removes_instances_keeping_unchanged_ones() {
    let lab = lab();
    let base = Conf::master().text();
    let s = start_master(&lab, 0, &Conf::master(), Peer::Ours);
    let entering = |s: &Speaker| log_text(s).matches("(VI_1) Entering MASTER STATE").count();
    assert_eq!(entering(&s), 1);

    // Add VI_2 (lines of VI_1 move: only spans change, VI_1 stays).
    reload_until_vip2(&lab, &s, &format!("# reloaded\n\n{base}{}", vi_2()), true);
    assert_eq!(has(&lab, VIP2).unwrap().label.as_deref(), Some("bond0:2"));
    assert!(log_text(&s).contains("(VI_2) Entering MASTER STATE"));
    assert_eq!(entering(&s), 1, "VI_1 went through a transition");
    assert!(vip_on(&lab, 0).is_some());

    // Remove VI_2 again.
    reload_until_vip2(&lab, &s, &base, false);
    assert_eq!(entering(&s), 1);
    assert!(vip_on(&lab, 0).is_some());
    // A priority change is applied in place: no transition, VIP stays.
    reload(&s, &base.replace("priority 200", "priority 201"));
    wait_log(
        &s,
        "(VI_1) configuration updated (priority 201",
        Duration::from_secs(3),
    );
    wait_for("priority 201 in the stats", Duration::from_secs(2), || {
        stats(&s).is_some_and(|v| v["priority"] == 201)
    });
    assert_eq!(entering(&s), 1);
    assert!(vip_on(&lab, 0).is_some());
    // A VRID change restarts it (priority 0 first, then a new election).
    reload(
        &s,
        &base.replace("virtual_router_id 20", "virtual_router_id 22"),
    );
    wait_for("VI_1 restarted", Duration::from_secs(8), || {
        entering(&s) == 2
    });
    wait_master(&lab, 0, Duration::from_secs(2)).unwrap();
    let _ = lab.kill(s.pid);
}

/// A reload adding a VIP to the MASTER of a pair keeps it MASTER: the new
/// VIP appears, no transition, no priority-0 advert reaches the backup
/// (keepalived's restore_vrrp_state; before, the instance restarted).
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn reload_adding_a_vip_keeps_the_master() {
    let lab = lab();
    let (m, b) = settled_seed_pair(&lab, Family::V4);
    let with_vip2 = Conf {
        more_vips: "        198.18.0.101/16 dev bond0 label bond0:2\n",
        ..Conf::master()
    };
    reload_until_vip2(&lab, &m, &with_vip2.text(), true);
    assert_eq!(has(&lab, VIP2).unwrap().label.as_deref(), Some("bond0:2"));
    // The backup still has the old list: it logs the mismatch, stays.
    std::thread::sleep(Duration::from_secs(5));
    let log = log_text(&m);
    assert_eq!(
        log.matches("(VI_1) Entering MASTER STATE").count(),
        1,
        "{log}"
    );
    // Only the start's "Entering BACKUP STATE (init)" (state MASTER takes
    // over after one interval), no BACKUP since.
    assert_eq!(log.matches("Entering BACKUP STATE").count(), 1, "{log}");
    assert!(vip_on(&lab, 0).is_some() && vip_on(&lab, 1).is_none());
    assert_eq!(priority_zero_received(&b), 0, "priority 0 on the wire");
    let st = stats(&m).unwrap();
    assert_eq!(st["priority_zero_sent"], 0, "{st}");
    wait_state(&b, "Backup", Duration::from_secs(1));
    // And removing it again removes it, still MASTER.
    reload_until_vip2(&lab, &m, &Conf::master().text(), false);
    std::thread::sleep(Duration::from_millis(500));
    assert!(vip_on(&lab, 0).is_some());
    assert_eq!(
        log_text(&m).matches("(VI_1) Entering MASTER STATE").count(),
        1
    );
    stop_all(&lab, &[&m, &b]);
}
