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

use vrrp_util::interop::*;
use vrrp_util::*;

// keepalived MASTER, ours BACKUP; ours MASTER, keepalived BACKUP (at
// advert_int 0.1); ours MASTER crashes: see `vrrp_util::interop`.
keepalived_tests! {
    v6_keepalived_master_ours_backup =>
        keepalived_master_ours_backup(Conf::master().v6("1"), Conf::backup().v6("1"));
    v6_ours_master_keepalived_backup =>
        ours_master_keepalived_backup(Conf::master().v6("0.1"), Conf::backup().v6("0.1"));
    v6_ours_master_crashes_keepalived_takes_over =>
        ours_master_crashes_keepalived_takes_over(Conf::master().v6("1"), Conf::backup().v6("1"));
    v6_unicast_peers_with_keepalived => unicast_peers_with_keepalived(Family::V6);
}

/// `unicast_src_ip` / `unicast_peer` on both (global addresses, no
/// multicast): ours BACKUP accepts keepalived's unicast adverts (master
/// = keepalived's `unicast_src_ip`); keepalived's graceful stop
/// (priority 0) hands over to ours; keepalived back as BACKUP accepts ours
/// and stays BACKUP.
fn unicast_peers_with_keepalived(fam: Family) {
    let lab = fam.lab();
    let (mc, bc) = fam.seed();
    // advert_int 0.5, director `me` to `peer`.
    let unicast = |c: Conf, me, peer| {
        Conf {
            advert_int: "0.5",
            ..c
        }
        .unicast(me, peer)
    };
    let ka = start_master(&lab, 0, &unicast(mc, 0, 1), Peer::Keepalived);
    let ours = start_ours(&lab, 1, &unicast(bc.clone(), 1, 0));
    wait_received(&ours, 4);
    assert_backup_of(&ours, &fam.director_addr(0));

    let gap = handover_gap(&lab, fam, || sigterm(ka.pid));
    println!("{fam:?} unicast: keepalived stopped (priority 0) → ours took over, ping gap {gap:?}");
    assert!(gap <= Duration::from_secs(1));
    let _ = lab.kill(ka.pid);

    let ka2 = start_keepalived(&lab, 0, &unicast(bc, 0, 1));
    wait_log(&ka2, "Entering BACKUP STATE", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!fam.holds_vip(&lab, 0), "{}", log_text(&ka2));
    assert!(fam.holds_vip(&lab, 1));
    assert!(!log_text(&ka2).contains("Entering MASTER STATE"));
    stop_all(&lab, &[&ka2, &ours]);
}
