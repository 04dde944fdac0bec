//! Which VIPs this director announces over BGP (`bgp_announce`): a pure
//! decision from the plan and the reconciler's quorum view; the
//! `announce` module carries it out through BIRD.

use std::{collections::BTreeSet, net::Ipv4Addr};

use super::plan::{Plan, ServiceId};

/// An IPv4 VIP (`bgp_announce` announces IPv4 routes only).
fn v4(vip: std::net::IpAddr) -> Option<Ipv4Addr> {
    match vip {
        std::net::IpAddr::V4(a) => Some(a),
        std::net::IpAddr::V6(_) => None,
    }
}

/// Every IPv4 VIP of the plan (announced or not: the metrics show both).
pub fn candidates(plan: &Plan) -> BTreeSet<Ipv4Addr> {
    plan.services.iter().filter_map(|s| v4(s.id.vip)).collect()
}

/// The VIPs to announce. `serving` is false while the data path is not
/// forwarding for us (not attached yet, stopping): nothing is announced.
/// Otherwise a VIP is announced while at least one of its services has its
/// quorum (which is lost at the latest when every real server is down): a
/// VIP carrying :80 and :443 stays reachable on :80 when :443's pool is
/// gone, as one keepalived director would serve it.
pub fn wanted(
    plan: &Plan,
    serving: bool,
    has_quorum: impl Fn(&ServiceId) -> bool,
) -> BTreeSet<Ipv4Addr> {
    if !serving {
        return BTreeSet::new();
    }
    plan.services
        .iter()
        .filter(|s| has_quorum(&s.id))
        .filter_map(|s| v4(s.id.vip))
        .collect()
}

/// Tells BIRD what to announce now: every VIP with quorum while serving.
pub async fn update(a: &mut crate::announce::Announcer, rec: &super::reconcile::Reconciler) {
    let plan = rec.plan();
    let want = wanted(plan, true, |id| rec.has_quorum(id));
    a.set(candidates(plan), want).await;
}

/// A reloaded config: the block changed, appeared or went away.
pub async fn reload(
    slot: &mut Option<crate::announce::Announcer>,
    block: Option<&lvs_config::BgpAnnounce>,
    instance: &str,
) {
    match (block, slot.as_mut()) {
        (Some(b), Some(a)) => a.reload(b).await,
        (Some(b), None) => match crate::announce::Announcer::start(b, instance) {
            Ok(a) => *slot = Some(a),
            Err(e) => tracing::error!("{e}"),
        },
        (None, Some(_)) => {
            if let Some(mut a) = slot.take() {
                a.withdraw_and_drain().await;
                a.stop().await;
            }
        }
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::plan::PlannedService;
    use crate::sched::Algorithm;

    fn svc(vip: [u8; 4], port: u16) -> PlannedService {
        let id = ServiceId {
            vip: Ipv4Addr::from(vip).into(),
            port,
            proto: lvs_config::Protocol::Tcp,
        };
        PlannedService {
            id,
            checked_as: id,
            omega: false,
            one_packet: false,
            algo: Algorithm::Wrr,
            lb_algo: "wrr".into(),
            persistence: None,
            reals: Vec::new(),
            sorry_server: None,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
        }
    }

    #[test]
    fn a_vip_is_announced_while_one_of_its_services_has_quorum_and_never_when_stopping() {
        let plan = Plan {
            services: vec![
                svc([198, 18, 0, 100], 80),
                svc([198, 18, 0, 100], 443),
                svc([198, 18, 0, 101], 80),
            ],
            skipped: Vec::new(),
        };
        let vip100 = Ipv4Addr::new(198, 18, 0, 100);
        let vip101 = Ipv4Addr::new(198, 18, 0, 101);
        assert_eq!(candidates(&plan), [vip100, vip101].into_iter().collect());
        assert_eq!(wanted(&plan, true, |_| true), candidates(&plan));
        // :443 lost, :80 still up: .100 stays; .101 lost everything.
        let w = wanted(&plan, true, |id| id.port == 80 && id.vip == vip100);
        assert_eq!(w, [vip100].into_iter().collect());
        assert!(wanted(&plan, false, |_| true).is_empty());
    }
}
