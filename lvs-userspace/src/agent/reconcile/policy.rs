//! The reconciler's policy as a pure function: from the plan and what is
//! known at run time (checker verdicts, dynamic weights, next hops, drains)
//! to the data path's desired state, plus the transitions since the last
//! computation. Logging them and running quorum scripts is the caller's
//! job (as `vrrp::state` returns actions for its caller to carry out), so
//! every rule here is tested without a data path, a runtime or a shell.
//!
//! The rules, as keepalived applies them to IPVS:
//! - a real server that is down leaves the schedule; with
//!   `inhibit_on_failure` it stays with weight 0 (its flows continue);
//! - MISC_CHECK's `misc_dynamic` weight replaces the configured weight;
//! - a real server removed by a reload drains: weight 0 until idle;
//! - quorum with hysteresis: lost when the alive weight drops below
//!   quorum − hysteresis, gained again at quorum + hysteresis;
//! - with quorum lost, the sorry server (if any) takes every new flow:
//!   keepalived's `perform_quorum_state` deletes the alive real servers,
//!   which for an `inhibit_on_failure` one means weight 0 (`ipvs_cmd`
//!   turns its DELDEST into EDITDEST with weight 0), so its connections
//!   continue; without a sorry server the pool is left as it is;
//! - a real server whose MAC is not known yet is kept out.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Instant,
};

use crate::{
    agent::plan::{Plan, PlannedReal, PlannedService, RealKey, ServiceId},
    datapath::{DesiredBackend, DesiredService, DesiredState, NextHop, Persistence},
};

/// What the agent knows about one real server at run time.
#[derive(Clone, Debug)]
pub struct RealState {
    /// As the checkers say (no checkers: always up).
    pub up: bool,
    /// MISC_CHECK misc_dynamic's weight, replacing the configured one.
    pub dyn_weight: Option<u32>,
    /// Resolved next hop; a real server without one is kept out.
    pub hop: Option<NextHop>,
    /// Reported as unresolvable already (report once, not every tick).
    pub warned_unresolved: bool,
}

impl RealState {
    /// A real server as the config starts it: `alpha` starts it down.
    pub fn new(up: bool) -> Self {
        RealState {
            up,
            dyn_weight: None,
            hop: None,
            warned_unresolved: false,
        }
    }
}

/// What the policy remembers from one computation to the next: quorum's
/// hysteresis needs the previous verdict, and transitions are differences.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Real servers in a schedule with their weight (up, or inhibited).
    pub in_service: BTreeSet<RealKey>,
    /// Services whose sorry server is in use.
    pub sorry_active: BTreeSet<ServiceId>,
    /// Services that have lost their quorum.
    pub quorum_lost: BTreeSet<ServiceId>,
}

/// A change the caller logs (in keepalived's words) or acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// No MAC address known yet: kept out until it resolves. Reported while
    /// `warned_unresolved` is false.
    Unresolved(RealKey),
    /// Up (again) and scheduled.
    Added(RealKey),
    /// Down and out of the schedule (a drained one is reported at reload).
    Removed(RealKey),
    /// Run `quorum_down`.
    QuorumLost {
        service: ServiceId,
        alive_weight: u32,
        quorum: u32,
        hysteresis: u32,
    },
    /// Run `quorum_up`.
    QuorumGained {
        service: ServiceId,
        alive_weight: u32,
        quorum: u32,
        hysteresis: u32,
    },
    SorryServerIn(ServiceId),
    SorryServerOut(ServiceId),
}

/// The result of one computation.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub state: DesiredState,
    /// To pass as `prev` next time.
    pub memory: Memory,
    pub transitions: Vec<Transition>,
}

/// The whole desired state. `draining` holds real servers a reload removed
/// (with when); `prev` is the last computation's memory.
pub fn desired(
    plan: &Plan,
    reals: &BTreeMap<RealKey, RealState>,
    draining: &BTreeMap<RealKey, (PlannedReal, Instant)>,
    prev: &Memory,
) -> Outcome {
    let mut services = Vec::new();
    let mut memory = Memory::default();
    let mut transitions = Vec::new();
    for s in &plan.services {
        let mut backends = Vec::new();
        // Per backend, whether a quorum loss keeps it at weight 0
        // (inhibit_on_failure, or draining) rather than taking it out.
        let mut keep_on_quorum_loss = Vec::new();
        let mut alive_weight = 0u32;
        for r in &s.reals {
            let key = s.id.real(r.id());
            let Some(st) = reals.get(&key) else {
                continue;
            };
            let Some(hop) = st.hop else {
                if !st.warned_unresolved {
                    transitions.push(Transition::Unresolved(key));
                }
                continue;
            };
            let weight = st.dyn_weight.unwrap_or(r.weight);
            let (alive, weight) = match (st.up, r.inhibit_on_failure) {
                (true, _) => (true, weight),
                // inhibit_on_failure: stays with weight 0 (flows continue).
                (false, true) => (true, 0),
                (false, false) => (false, weight),
            };
            if st.up {
                alive_weight += weight;
                memory.in_service.insert(key);
            }
            backends.push(DesiredBackend {
                addr: r.addr,
                port: r.port,
                weight,
                alive,
                u_threshold: r.uthreshold,
                l_threshold: r.lthreshold,
                next_hop: hop,
            });
            keep_on_quorum_loss.push(r.inhibit_on_failure);
        }
        for (key, (r, _)) in draining {
            if key.service != s.id {
                continue;
            }
            if let Some(hop) = reals.get(key).and_then(|st| st.hop) {
                backends.push(DesiredBackend {
                    addr: r.addr,
                    port: r.port,
                    weight: 0,
                    alive: true,
                    u_threshold: r.uthreshold,
                    l_threshold: r.lthreshold,
                    next_hop: hop,
                });
                // Not in the config any more: keepalived's quorum handling
                // never sees it; it goes on draining.
                keep_on_quorum_loss.push(true);
            }
        }
        let lost = quorum(s, alive_weight, prev, &mut transitions);
        if lost {
            memory.quorum_lost.insert(s.id);
            // Quorum lost (no real server up, at the least): the sorry server.
            let sorry_hop = s
                .sorry_server
                .and_then(|sorry| reals.get(&s.id.real(sorry)).and_then(|st| st.hop));
            if let (Some(sorry), Some(hop)) = (s.sorry_server, sorry_hop) {
                memory.sorry_active.insert(s.id);
                for (b, keep) in backends.iter_mut().zip(&keep_on_quorum_loss) {
                    if *keep {
                        b.weight = 0;
                    } else {
                        b.alive = false;
                    }
                }
                backends.push(DesiredBackend {
                    addr: sorry.addr,
                    port: sorry.port,
                    weight: 1,
                    alive: true,
                    u_threshold: 0,
                    l_threshold: 0,
                    next_hop: hop,
                });
            }
        }
        services.push(desired_service(s, backends));
    }
    transitions.extend(
        memory
            .in_service
            .difference(&prev.in_service)
            .map(|k| Transition::Added(*k)),
    );
    transitions.extend(
        prev.in_service
            .difference(&memory.in_service)
            // A drained one was logged when the reload removed it.
            .filter(|k| !draining.contains_key(k))
            .map(|k| Transition::Removed(*k)),
    );
    transitions.extend(
        memory
            .sorry_active
            .difference(&prev.sorry_active)
            .map(|s| Transition::SorryServerIn(*s)),
    );
    transitions.extend(
        prev.sorry_active
            .difference(&memory.sorry_active)
            .map(|s| Transition::SorryServerOut(*s)),
    );
    Outcome {
        state: DesiredState { services },
        memory,
        transitions,
    }
}

/// Whether `s` is below quorum, with keepalived's hysteresis: lost below
/// quorum − hysteresis, gained again at quorum + hysteresis.
fn quorum(
    s: &PlannedService,
    alive_weight: u32,
    prev: &Memory,
    transitions: &mut Vec<Transition>,
) -> bool {
    let quorum = s.quorum.max(1);
    let was_lost = prev.quorum_lost.contains(&s.id);
    let lost = if was_lost {
        alive_weight < quorum.saturating_add(s.hysteresis)
    } else {
        alive_weight < quorum.saturating_sub(s.hysteresis).max(1)
    };
    if lost != was_lost {
        let (service, hysteresis) = (s.id, s.hysteresis);
        transitions.push(if lost {
            Transition::QuorumLost {
                service,
                alive_weight,
                quorum,
                hysteresis,
            }
        } else {
            Transition::QuorumGained {
                service,
                alive_weight,
                quorum,
                hysteresis,
            }
        });
    }
    lost
}

fn desired_service(s: &PlannedService, backends: Vec<DesiredBackend>) -> DesiredService {
    DesiredService {
        vip: s.id.vip,
        port: s.id.port,
        proto: s.id.proto,
        algo: s.algo,
        persistence: s.persistence.map(|(timeout_s, g)| {
            let (netmask, prefix_len6) = match g {
                lvs_config::Granularity::V4Mask(m) => (m, 128),
                lvs_config::Granularity::V6Prefix(p) => (std::net::Ipv4Addr::BROADCAST, p),
            };
            Persistence {
                timeout_s,
                netmask,
                prefix_len6,
            }
        }),
        sloppy: false,
        one_packet: s.one_packet,
        backends,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::{agent::plan::RealId, datapath::Protocol, sched::Algorithm};

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    const SORRY: RealId = RealId {
        addr: std::net::IpAddr::V4(Ipv4Addr::new(198, 18, 0, 99)),
        port: 80,
    };

    fn rs(n: u8) -> RealId {
        RealId {
            addr: Ipv4Addr::new(198, 18, 0, 10 + n).into(),
            port: 80,
        }
    }

    fn svc() -> ServiceId {
        ServiceId {
            vip: VIP.into(),
            port: 80,
            proto: Protocol::Tcp,
        }
    }

    /// Real server `n` of the service.
    fn key(n: u8) -> RealKey {
        svc().real(rs(n))
    }

    fn hop(n: u8) -> NextHop {
        NextHop {
            mac: [2, 0, 0, 0, 0, n],
            src_mac: [2, 0, 0, 0, 1, 1],
            ifindex: 7,
        }
    }

    fn real(n: u8, weight: u32) -> PlannedReal {
        PlannedReal {
            addr: rs(n).addr,
            port: rs(n).port,
            weight,
            inhibit_on_failure: false,
            checked: true,
            alpha: false,
            check_port: rs(n).port,
            uthreshold: 0,
            lthreshold: 0,
        }
    }

    fn service(reals: Vec<PlannedReal>) -> PlannedService {
        PlannedService {
            id: svc(),
            algo: Algorithm::Wrr,
            lb_algo: "wrr".into(),
            persistence: None,
            reals,
            sorry_server: None,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            checked_as: svc(),
            omega: false,
            one_packet: false,
        }
    }

    /// A plan of one service and run-time state with every real server up
    /// and resolved.
    struct World {
        plan: Plan,
        reals: BTreeMap<RealKey, RealState>,
        draining: BTreeMap<RealKey, (PlannedReal, Instant)>,
        memory: Memory,
    }

    impl World {
        fn new(s: PlannedService) -> Self {
            let mut reals = BTreeMap::new();
            for (n, r) in s.reals.iter().enumerate() {
                let mut st = RealState::new(true);
                st.hop = Some(hop(n as u8));
                reals.insert(s.id.real(r.id()), st);
            }
            if let Some(sorry) = s.sorry_server {
                let mut st = RealState::new(true);
                st.hop = Some(hop(99));
                reals.insert(s.id.real(sorry), st);
            }
            World {
                plan: Plan {
                    services: vec![s],
                    skipped: vec![],
                },
                reals,
                draining: BTreeMap::new(),
                memory: Memory::default(),
            }
        }

        fn set_up(&mut self, n: u8, up: bool) -> &mut Self {
            self.reals.get_mut(&key(n)).unwrap().up = up;
            self
        }

        /// One computation, remembered as the reconciler does.
        fn step(&mut self) -> Outcome {
            let out = desired(&self.plan, &self.reals, &self.draining, &self.memory);
            self.memory = out.memory.clone();
            out
        }
    }

    /// (address, weight, alive) of each backend, in order.
    fn backends(out: &Outcome) -> Vec<(std::net::IpAddr, u32, bool)> {
        out.state.services[0]
            .backends
            .iter()
            .map(|b| (b.addr, b.weight, b.alive))
            .collect()
    }

    fn quorum_changes(out: &Outcome) -> Vec<&'static str> {
        out.transitions
            .iter()
            .filter_map(|t| match t {
                Transition::QuorumLost { .. } => Some("lost"),
                Transition::QuorumGained { .. } => Some("gained"),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn first_computation_adds_every_resolved_real_server_in_config_order() {
        let mut w = World::new(service(vec![real(1, 2), real(2, 3)]));
        let out = w.step();
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 2, true), (rs(2).addr, 3, true)]
        );
        assert_eq!(
            out.transitions,
            [Transition::Added(key(1)), Transition::Added(key(2))]
        );
        // Nothing changed: nothing to report.
        assert_eq!(w.step().transitions, []);
    }

    #[test]
    fn a_down_real_server_leaves_the_schedule_and_comes_back() {
        let mut w = World::new(service(vec![real(1, 2), real(2, 3)]));
        w.step();
        let out = w.set_up(1, false).step();
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 2, false), (rs(2).addr, 3, true)]
        );
        assert_eq!(out.transitions, [Transition::Removed(key(1))]);
        let out = w.set_up(1, true).step();
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 2, true), (rs(2).addr, 3, true)]
        );
        assert_eq!(out.transitions, [Transition::Added(key(1))]);
    }

    #[test]
    fn inhibit_on_failure_keeps_a_down_real_server_with_weight_0() {
        let mut s = service(vec![real(1, 2), real(2, 3)]);
        s.reals[0].inhibit_on_failure = true;
        let mut w = World::new(s);
        w.step();
        let out = w.set_up(1, false).step();
        // Alive with weight 0: its flows continue, it gets no new ones.
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 0, true), (rs(2).addr, 3, true)]
        );
        assert_eq!(out.transitions, [Transition::Removed(key(1))]);
        let out = w.set_up(1, true).step();
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 2, true), (rs(2).addr, 3, true)]
        );
    }

    #[test]
    fn misc_dynamic_weight_replaces_the_configured_one_and_counts_for_quorum() {
        let mut s = service(vec![real(1, 2), real(2, 3)]);
        s.quorum = 4;
        let mut w = World::new(s);
        assert_eq!(quorum_changes(&w.step()), Vec::<&str>::new());
        w.reals.get_mut(&key(2)).unwrap().dyn_weight = Some(1);
        let out = w.step();
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 2, true), (rs(2).addr, 1, true)]
        );
        // 2 + 1 < 4.
        assert_eq!(quorum_changes(&out), ["lost"]);
        w.reals.get_mut(&key(2)).unwrap().dyn_weight = Some(7);
        let out = w.step();
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 2, true), (rs(2).addr, 7, true)]
        );
        assert_eq!(quorum_changes(&out), ["gained"]);
    }

    #[test]
    fn quorum_is_lost_below_quorum_minus_hysteresis_and_gained_at_quorum_plus() {
        // Five real servers of weight 1; quorum 3, hysteresis 1: lost below
        // 2 alive, gained again at 4.
        let mut s = service((1..=5).map(|n| real(n, 1)).collect());
        s.quorum = 3;
        s.hysteresis = 1;
        let mut w = World::new(s);
        assert_eq!(quorum_changes(&w.step()), Vec::<&str>::new());
        // Going down: 4, 3, 2 alive keep quorum; 1 loses it.
        for n in 1..=3 {
            assert_eq!(
                quorum_changes(&w.set_up(n, false).step()),
                Vec::<&str>::new()
            );
        }
        let out = w.set_up(4, false).step();
        assert!(out.transitions.contains(&Transition::QuorumLost {
            service: svc(),
            alive_weight: 1,
            quorum: 3,
            hysteresis: 1
        }));
        assert!(w.memory.quorum_lost.contains(&svc()));
        // Coming back: 2 and 3 alive are not enough; 4 is.
        for n in 1..=2 {
            assert_eq!(
                quorum_changes(&w.set_up(n, true).step()),
                Vec::<&str>::new()
            );
        }
        let out = w.set_up(3, true).step();
        assert!(out.transitions.contains(&Transition::QuorumGained {
            service: svc(),
            alive_weight: 4,
            quorum: 3,
            hysteresis: 1
        }));
        assert!(w.memory.quorum_lost.is_empty());
    }

    #[test]
    fn the_default_quorum_is_lost_when_no_real_server_is_up() {
        let mut w = World::new(service(vec![real(1, 1)]));
        w.step();
        assert_eq!(quorum_changes(&w.set_up(1, false).step()), ["lost"]);
        assert_eq!(quorum_changes(&w.set_up(1, true).step()), ["gained"]);
    }

    #[test]
    fn the_sorry_server_takes_over_when_quorum_is_lost_and_leaves_after() {
        let mut s = service(vec![real(1, 2), real(2, 3)]);
        s.sorry_server = Some(SORRY);
        let mut w = World::new(s);
        let out = w.step();
        assert_eq!(
            backends(&out).len(),
            2,
            "no sorry server while quorum holds"
        );
        w.set_up(1, false);
        let out = w.set_up(2, false).step();
        // Every real server out, the sorry server alone takes new flows.
        assert_eq!(
            backends(&out),
            [
                (rs(1).addr, 2, false),
                (rs(2).addr, 3, false),
                (SORRY.addr, 1, true)
            ]
        );
        assert!(out.transitions.contains(&Transition::SorryServerIn(svc())));
        let out = w.set_up(2, true).step();
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 2, false), (rs(2).addr, 3, true)]
        );
        assert!(out.transitions.contains(&Transition::SorryServerOut(svc())));
    }

    #[test]
    fn an_inhibited_real_server_does_not_hold_quorum_against_the_sorry_server() {
        let mut s = service(vec![real(1, 2)]);
        s.reals[0].inhibit_on_failure = true;
        s.sorry_server = Some(SORRY);
        let mut w = World::new(s);
        w.step();
        let out = w.set_up(1, false).step();
        // Down and inhibited: kept at weight 0 (its connections go on),
        // as keepalived keeps it in IPVS; the sorry server takes new ones.
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 0, true), (SORRY.addr, 1, true)]
        );
    }

    /// keepalived's perform_quorum_state on quorum loss with a sorry
    /// server: alive real servers are deleted, except that ipvs_cmd turns
    /// the delete of an `inhibit_on_failure` one into weight 0, so its
    /// established connections continue; the quorum comes back with their
    /// weights.
    #[test]
    fn quorum_loss_sets_inhibit_on_failure_servers_to_weight_0_and_removes_the_rest() {
        let mut s = service(vec![real(1, 2), real(2, 3), real(3, 4)]);
        s.reals[0].inhibit_on_failure = true;
        s.reals[1].inhibit_on_failure = true;
        s.quorum = 8;
        s.sorry_server = Some(SORRY);
        let mut w = World::new(s);
        assert_eq!(quorum_changes(&w.step()), Vec::<&str>::new());
        // rs3 fails: 5 < 8, quorum lost. rs1 and rs2 (up, inhibited) stay
        // at weight 0; rs3 (down, not inhibited) is out.
        let out = w.set_up(3, false).step();
        assert_eq!(quorum_changes(&out), ["lost"]);
        assert_eq!(
            backends(&out),
            [
                (rs(1).addr, 0, true),
                (rs(2).addr, 0, true),
                (rs(3).addr, 4, false),
                (SORRY.addr, 1, true)
            ]
        );
        // Still up: not reported removed.
        assert!(!out.transitions.contains(&Transition::Removed(key(1))));
        let out = w.set_up(3, true).step();
        assert_eq!(quorum_changes(&out), ["gained"]);
        assert_eq!(
            backends(&out),
            [
                (rs(1).addr, 2, true),
                (rs(2).addr, 3, true),
                (rs(3).addr, 4, true)
            ]
        );
    }

    /// Without a sorry server keepalived leaves the pool alone on quorum
    /// loss (only `quorum_down` runs).
    #[test]
    fn quorum_loss_without_a_sorry_server_leaves_the_pool_alone() {
        let mut s = service(vec![real(1, 2), real(2, 3)]);
        s.quorum = 5;
        let mut w = World::new(s);
        w.step();
        let out = w.set_up(2, false).step();
        assert_eq!(quorum_changes(&out), ["lost"]);
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 2, true), (rs(2).addr, 3, false)]
        );
    }

    #[test]
    fn a_sorry_server_without_a_mac_is_not_used() {
        let mut s = service(vec![real(1, 2)]);
        s.sorry_server = Some(SORRY);
        let mut w = World::new(s);
        w.reals.get_mut(&svc().real(SORRY)).unwrap().hop = None;
        w.step();
        let out = w.set_up(1, false).step();
        assert_eq!(backends(&out), [(rs(1).addr, 2, false)]);
        assert!(w.memory.sorry_active.is_empty());
        assert_eq!(quorum_changes(&out), ["lost"]);
    }

    #[test]
    fn a_draining_real_server_stays_with_weight_0_and_is_not_reported_removed() {
        let mut w = World::new(service(vec![real(1, 2), real(2, 3)]));
        w.step();
        // A reload removed rs2: the plan no longer has it; it drains.
        let gone = w.plan.services[0].reals.remove(1);
        w.draining.insert(key(2), (gone.clone(), Instant::now()));
        let out = w.step();
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 2, true), (rs(2).addr, 0, true)]
        );
        assert_eq!(out.transitions, [], "the reload logged its removal");
        // Drained: gone from the state.
        w.draining.clear();
        w.reals.remove(&key(2));
        assert_eq!(backends(&w.step()), [(rs(1).addr, 2, true)]);
    }

    #[test]
    fn an_unresolved_real_server_is_kept_out_and_reported_until_warned() {
        let mut w = World::new(service(vec![real(1, 2), real(2, 3)]));
        w.reals.get_mut(&key(2)).unwrap().hop = None;
        let out = w.step();
        assert_eq!(backends(&out), [(rs(1).addr, 2, true)]);
        assert!(out.transitions.contains(&Transition::Unresolved(key(2))));
        w.reals.get_mut(&key(2)).unwrap().warned_unresolved = true;
        assert_eq!(w.step().transitions, []);
        // Resolved: scheduled and added.
        w.reals.get_mut(&key(2)).unwrap().hop = Some(hop(2));
        let out = w.step();
        assert_eq!(
            backends(&out),
            [(rs(1).addr, 2, true), (rs(2).addr, 3, true)]
        );
        assert_eq!(out.transitions, [Transition::Added(key(2))]);
    }
}
