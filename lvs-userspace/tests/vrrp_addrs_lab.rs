//! A rolling VIP change: one node gets a new VIP before the other. The
//! adverts' address lists then differ; keepalived ≥ 2.3.3 (and we) log it
//! and accept the advert, so there are never two masters. (keepalived
//! 2.2.7 still drops such adverts, so this is a test of our pair.)
//!
//! Needs root, `ip`, `ethtool`.

mod vrrp_util;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use vrrp_util::*;

const VIP2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 101);

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn vip_added_on_one_node_first_keeps_one_master() {
    let lab = lab();
    let m = start_master(&lab, 0, &Conf::master(), Peer::Ours);
    // The backup already has the new VIP in its list.
    let b = start_ours(
        &lab,
        1,
        &Conf {
            more_vips: "        198.18.0.101/16 dev bond0\n",
            ..Conf::backup()
        },
    );
    wait_log(&b, "Entering BACKUP STATE", Duration::from_secs(5));
    let t0 = Instant::now();
    // Longer than the master-down interval (3.6 s): had the adverts been
    // dropped, the backup would have taken over.
    while t0.elapsed() < Duration::from_secs(6) {
        assert!(vip_on(&lab, 1).is_none(), "two masters");
        assert!(!addr_on(&lab, 1, "bond0", VIP2), "two masters");
        assert!(vip_on(&lab, 0).is_some());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_backup_of(&b, &Family::V4.director_addr(0));
    let st = stats(&b).unwrap();
    assert!(st["addr_list_mismatch"].as_u64().unwrap() >= 3, "{st}");
    wait_log(
        &b,
        "(VI_1) expected 2 VIPs but received 1",
        Duration::from_secs(1),
    );
    stop_all(&lab, &[&m, &b]);
}
