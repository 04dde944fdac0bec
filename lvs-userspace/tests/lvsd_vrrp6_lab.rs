//! lvsd itself (not the VRRP-only harness) with a dual-stack config: the
//! seed's IPv4 instance VI_1 with its virtual server, and an IPv6 instance
//! VI_6 (2001:2::100/64) beside it. Two lvsd directors: the MASTER holds
//! both VIPs; on its graceful stop (priority 0 for both instances) the
//! BACKUP takes both over and `ping -6` to the IPv6 VIP is answered there
//! after its unsolicited NA (gap measured).
//!
//! Needs root, `ip`, `ethtool`, `ping`.

mod common;
mod vrrp_util;

use std::time::Duration;

use anyhow::Result;
use common::{Bpffs, Director};
use lvs_testkit::{Lab, LabSpec};
use vrrp_util::v6::{enable_ipv6_lab, vip6_on};
use vrrp_util::{ping_gap_across, Family};

fn config(state: &str, priority: u8) -> String {
    let mut s = format!(
        "global_defs {{\n router_id lab\n}}\n\
         vrrp_instance VI_1 {{\n state {state}\n priority {priority}\n interface bond0\n virtual_router_id 20\n version 3\n advert_int 0.2\n virtual_ipaddress {{\n  198.18.0.100/16 brd 198.18.255.255 dev bond0 label bond0:1\n }}\n}}\n\
         vrrp_instance VI_6 {{\n state {state}\n priority {priority}\n interface bond0\n virtual_router_id 60\n advert_int 0.2\n virtual_ipaddress {{\n  2001:2::100/64 dev bond0\n }}\n}}\n\
         virtual_server 198.18.0.100 80 {{\n lb_algo wrr\n lb_kind DR\n protocol TCP\n"
    );
    for n in 1..=3 {
        s += &format!(" real_server 198.18.0.{} 80 {{\n  weight 1\n }}\n", 10 + n);
    }
    s + "}\n"
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lvsd_runs_an_ipv6_instance_beside_the_ipv4_one() -> Result<()> {
    let lab = Lab::create(LabSpec {
        directors: 2,
        director_holds_vip: false,
        ..LabSpec::sized(3, 1)
    })?;
    enable_ipv6_lab(&lab);
    let bpffs = Bpffs::mount(&lab)?;
    let mut m = Director::new(&lab, &bpffs.0, &config("MASTER", 200))?;
    let mut b = Director::new(&lab, &bpffs.0, &config("BACKUP", 100))?;
    b.index = 1;
    b.instance = "lab2".into();
    // The backup starts once the master runs: with advert_int 0.2 its
    // master-down timer is shorter than lvsd's start (attaching XDP).
    m.start()?;
    for i in ["VI_1", "VI_6"] {
        m.wait_log(
            &format!("({i}) Entering MASTER STATE"),
            Duration::from_secs(10),
        )?;
    }
    b.start()?;
    for d in [&m, &b] {
        let want = if d.index == 0 { "MASTER" } else { "BACKUP" };
        for i in ["VI_1", "VI_6"] {
            d.wait_log(
                &format!("({i}) Entering {want} STATE"),
                Duration::from_secs(10),
            )?;
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(vip6_on(&lab, 0).is_some() && vip6_on(&lab, 1).is_none());
    assert!(
        !b.log().contains("(VI_6) Entering MASTER STATE"),
        "{}",
        b.log()
    );

    let gap = ping_gap_across(
        &lab,
        Family::V6,
        Duration::from_millis(500),
        || m.signal(libc::SIGTERM).unwrap(),
        || {
            for i in ["VI_6", "VI_1"] {
                b.wait_log(
                    &format!("({i}) Entering MASTER STATE"),
                    Duration::from_secs(3),
                )
                .unwrap();
            }
            Family::V6
                .wait_master(&lab, 1, Duration::from_secs(3))
                .unwrap();
        },
    );
    println!("lvsd, IPv6 instance: graceful stop → backup lvsd took over, ping -6 gap {gap:?}");
    assert!(gap <= Duration::from_secs(1), "gap {gap:?}");
    assert!(
        b.log().contains(
            "(VI_6) Sending/queueing Unsolicited Neighbour Adverts on bond0 for 2001:2::100"
        ),
        "{}",
        b.log()
    );
    b.signal(libc::SIGTERM)?;
    Ok(())
}
