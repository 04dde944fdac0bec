//! `vrrp_sync_group` of two instances on two interfaces (VI_1 on bond0,
//! VI_2 on a second segment `in0`): cutting the master's `in0` cable moves
//! both VIPs to the backup, and both come back together. Our pair, and
//! ours with keepalived 2.2.7 as the backup.
//!
//! Needs root, `ip`, `ethtool`, `keepalived` (its case is skipped without
//! it).

mod vrrp_util;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use vrrp_util::*;

const VIP2: Ipv4Addr = Ipv4Addr::new(198, 19, 3, 100);

fn top(priority: u8, notify_master: &str) -> &'static str {
    leak(format!(
        "vrrp_sync_group G {{\n    group {{\n        VI_1\n        VI_2\n    }}\n{notify_master}}}\n\
         vrrp_instance VI_2 {{\n    state BACKUP\n    interface in0\n    virtual_router_id 21\n    \
         priority {priority}\n    advert_int 1\n    virtual_ipaddress {{\n        \
         198.19.3.100/24 dev in0\n    }}\n}}\n"
    ))
}

fn both_on(lab: &lvs_testkit::Lab, dir: usize) -> bool {
    vip_on(lab, dir).is_some()
        && addr_on(lab, dir, "in0", VIP2)
        && vip_on(lab, 1 - dir).is_none()
        && !addr_on(lab, 1 - dir, "in0", VIP2)
}

fn wait_both(lab: &lvs_testkit::Lab, dir: usize, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    wait_for(
        &format!("both VIPs on dir{} alone", dir + 1),
        timeout,
        || both_on(lab, dir),
    );
    t0.elapsed()
}

fn cut_one_interface(backup: Peer) {
    let lab = lab();
    add_shared_in0(&lab);
    let flag = lab.log_dir().join("group-master");
    let notify = format!("    notify_master \"/usr/bin/touch {}\"\n", flag.display());
    let m = start_ours(
        &lab,
        0,
        &Conf {
            top: top(200, &notify),
            ..Conf::master()
        },
    );
    wait_both(&lab, 0, Duration::from_secs(10));
    wait_log(
        &m,
        "VRRP_Group(G) Syncing instances to MASTER state",
        Duration::from_secs(1),
    );
    wait_for("the group's notify_master", Duration::from_secs(3), || {
        flag.exists()
    });
    let bconf = Conf {
        top: top(100, ""),
        ..Conf::backup()
    };
    let b = start(&lab, 1, &bconf, backup);
    std::thread::sleep(Duration::from_secs(3));
    assert!(both_on(&lab, 0));

    // Cut the master's in0: VI_2 FAULT takes VI_1 along (priority 0 on
    // bond0); the backup's VI_2 hears nothing more and its group goes
    // MASTER once both members want to.
    shared_in0_cable(&lab, 0, false);
    let took = wait_both(&lab, 1, Duration::from_secs(8));
    println!("{backup:?} backup: master's in0 cut → both VIPs on the backup after {took:?}");
    let log = log_text(&m);
    assert!(
        log.contains("VRRP_Group(G) Syncing instances to FAULT state"),
        "{log}"
    );
    assert!(log.contains("(VI_1) Entering FAULT STATE"), "{log}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(both_on(&lab, 1), "flapped");

    // Cable back: the higher-priority group takes both back.
    shared_in0_cable(&lab, 0, true);
    let back = wait_both(&lab, 0, Duration::from_secs(10));
    println!("in0 restored → both VIPs back on the master after {back:?}");
    stop_all(&lab, &[&m, &b]);
}

peer_tests! {
    sync_group_cut_one_interface_moves_both_vips_pair,
    sync_group_cut_one_interface_moves_both_vips_keepalived_backup => cut_one_interface;
}
