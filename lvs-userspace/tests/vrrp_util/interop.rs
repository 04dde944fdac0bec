//! Interop with Debian's keepalived 2.2.7 (`keepalived --vrrp`), the same
//! for the IPv4 instance and the IPv6 one: which family is the configs'.

use std::time::Duration;

use super::*;

/// keepalived MASTER (`mc`), ours BACKUP (`bc`): ours accepts keepalived's
/// adverts (from its address on bond0, for IPv6 its link-local one),
/// takes over when keepalived dies and announces the VIP, and yields
/// when keepalived returns.
pub fn keepalived_master_ours_backup(mc: Conf, bc: Conf) {
    let fam = mc.family;
    let lab = fam.lab();
    let ka = start_master(&lab, 0, &mc, Peer::Keepalived);
    let ours = start_ours(&lab, 1, &bc);
    wait_received(&ours, 2);
    std::thread::sleep(Duration::from_secs(4)); // longer than master-down
    assert!(!fam.holds_vip(&lab, 1));
    assert_backup_of(&ours, &fam.advert_src(&lab, 0));

    // keepalived dies: ours takes over, its ARPs / NAs move the client.
    let gap = handover_gap(&lab, fam, || crash(&lab, fam, 0, &ka));
    println!(
        "{fam:?} v{}: keepalived master crashed (VRRP child SIGKILLed) → ours took over, ping gap {gap:?}",
        mc.version
    );
    assert!(gap <= Duration::from_millis(3700));
    let log = log_text(&ours);
    assert!(log.contains(&fam.announce()), "{log}");
    let _ = lab.kill(ka.pid);

    // keepalived returns with priority 200: it preempts ours.
    let ka2 = start_master(&lab, 0, &mc, Peer::Keepalived);
    wait_state(&ours, "Backup", Duration::from_secs(2));
    stop_all(&lab, &[&ka2, &ours]);
}

/// Ours MASTER (`mc`) and keepalived BACKUP (`bc`) in a new lab; after
/// 4 s (longer than keepalived's master-down interval) ours still holds
/// the VIP alone: keepalived accepts our adverts.
fn ours_master_heard_by_keepalived(mc: &Conf, bc: &Conf) -> (Lab, Speaker, Speaker) {
    let fam = mc.family;
    let lab = fam.lab();
    let (ours, ka) = start_master_then_backup(&lab, mc, bc, Peer::Keepalived);
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !fam.holds_vip(&lab, 1),
        "keepalived took the VIP: {}",
        log_text(&ka)
    );
    assert!(fam.holds_vip(&lab, 0));
    (lab, ours, ka)
}

/// Ours MASTER (`mc`), keepalived BACKUP (`bc`): keepalived accepts ours;
/// on our graceful stop (priority 0) keepalived takes over at once; when
/// ours returns with the higher priority, keepalived yields.
pub fn ours_master_keepalived_backup(mc: Conf, bc: Conf) {
    let fam = mc.family;
    let (lab, ours, ka) = ours_master_heard_by_keepalived(&mc, &bc);
    let gap = handover_gap(&lab, fam, || sigterm(ours.pid));
    println!(
        "{fam:?} v{}: ours stopped (priority 0) → keepalived took over, ping gap {gap:?}",
        mc.version
    );
    assert!(gap <= Duration::from_secs(1));
    let entering = format!("({}) Entering MASTER STATE", fam.instance());
    assert!(log_text(&ka).contains(&entering));
    let _ = lab.kill(ours.pid);

    let ours2 = start_master(&lab, 0, &mc, Peer::Ours);
    stop_all(&lab, &[&ours2, &ka]);
}

/// Ours MASTER (`mc`) dies (SIGKILL, its VIP gone with its host):
/// keepalived BACKUP (`bc`) takes over on its master-down timer and its
/// ARPs / NAs move the client.
pub fn ours_master_crashes_keepalived_takes_over(mc: Conf, bc: Conf) {
    let fam = mc.family;
    let (lab, ours, ka) = ours_master_heard_by_keepalived(&mc, &bc);
    let gap = handover_gap(&lab, fam, || crash(&lab, fam, 0, &ours));
    println!("{fam:?}: ours master crashed (SIGKILL) → keepalived took over, ping gap {gap:?}");
    assert!(gap <= Duration::from_millis(3700));
    stop_all(&lab, &[&ka]);
}
