//! `vrrp_sync_group`: instances that fail over together (e.g. an outside
//! and an inside VIP), as keepalived's vrrp_sync.c:
//! - one member in FAULT takes every member to FAULT (a MASTER sends
//!   priority 0), until no member has a fault of its own;
//! - one member leaving MASTER for BACKUP takes the other MASTERs along;
//! - a member becomes MASTER only when every member wants to (its
//!   master-down timer ran out, or it already is MASTER): "prefer backup
//!   state to avoid thrashing".
//!
//! [`Group`] is the pure rule; `run` is the task that carries reports
//! from the member tasks to it and its commands back.

use tokio::sync::mpsc;
use tracing::{info, warn};

use std::sync::Arc;

use super::fifo::NotifyFifos;
use super::notify::{notify_group, NotifyScripts};
use super::state::VrrpState;

/// What a member tells the group, whenever any of it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    pub state: VrrpState,
    /// A tracked interface or script of its own is down.
    pub own_fault: bool,
    /// BACKUP whose master-down timer ran out.
    pub wants_master: bool,
    /// It left MASTER because its VIP was removed: the others should come
    /// back quickly too (keepalived's set_vrrp_backup).
    pub quick: bool,
}

/// What the group tells a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupCmd {
    /// Some member (maybe this one) has a fault: FAULT while true.
    Fault(bool),
    ToMaster,
    ToBackup {
        quick: bool,
    },
}

/// The group's view of its members.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    members: Vec<Option<Report>>,
    fault: bool,
    pub state: VrrpState,
}

impl Group {
    pub fn new(name: String, n: usize) -> Group {
        Group {
            name,
            members: vec![None; n],
            fault: false,
            state: VrrpState::Init,
        }
    }

    /// Member `idx` reports; returns the commands for the members.
    pub fn report(&mut self, idx: usize, r: Report) -> Vec<(usize, GroupCmd)> {
        let mut out = Vec::new();
        let prev = self.members[idx].replace(r);
        let n = self.members.len();
        let fault = self.members.iter().flatten().any(|m| m.own_fault);
        if fault != self.fault {
            self.fault = fault;
            if fault {
                info!("VRRP_Group({}) Syncing instances to FAULT state", self.name);
            }
            out.extend((0..n).map(|i| (i, GroupCmd::Fault(fault))));
        }
        let known: Vec<Report> = self.members.iter().flatten().copied().collect();
        if fault || known.len() < n {
            return out;
        }
        if prev.is_some_and(|p| p.state == VrrpState::Master) && r.state == VrrpState::Backup {
            let others: Vec<usize> = (0..n)
                .filter(|&i| i != idx && known[i].state == VrrpState::Master)
                .collect();
            if !others.is_empty() {
                info!(
                    "VRRP_Group({}) Syncing instances to BACKUP state",
                    self.name
                );
            }
            out.extend(
                others
                    .into_iter()
                    .map(|i| (i, GroupCmd::ToBackup { quick: r.quick })),
            );
            return out;
        }
        let ready = known.iter().all(|m| {
            m.state == VrrpState::Master || (m.state == VrrpState::Backup && m.wants_master)
        });
        let all_master = known.iter().all(|m| m.state == VrrpState::Master);
        if ready && !all_master {
            info!(
                "VRRP_Group({}) Syncing instances to MASTER state",
                self.name
            );
            out.extend(
                (0..n)
                    .filter(|&i| known[i].state != VrrpState::Master)
                    .map(|i| (i, GroupCmd::ToMaster)),
            );
        }
        out
    }

    /// The group's state as its notify scripts see it: FAULT while a
    /// member has a fault, MASTER when every member is, else BACKUP
    /// (`None` until every member has reported or nothing changed).
    pub fn update_state(&mut self) -> Option<VrrpState> {
        let known: Vec<Report> = self.members.iter().flatten().copied().collect();
        if known.len() < self.members.len() {
            return None;
        }
        let st = if self.fault || known.iter().all(|m| m.state == VrrpState::Fault) {
            VrrpState::Fault
        } else if known.iter().all(|m| m.state == VrrpState::Master) {
            VrrpState::Master
        } else if known.iter().all(|m| m.state == VrrpState::Backup) {
            VrrpState::Backup
        } else {
            return None; // in transition
        };
        (st != self.state).then(|| {
            self.state = st;
            st
        })
    }
}

/// One member's end of the group.
pub struct MemberLink {
    pub idx: usize,
    pub reports: mpsc::Sender<(usize, Report)>,
    pub cmds: mpsc::Receiver<GroupCmd>,
}

/// Starts the group's task; returns one link per member (in `members`'
/// order).
pub fn spawn(
    name: String,
    n: usize,
    notify: NotifyScripts,
    fifos: Arc<NotifyFifos>,
) -> Vec<MemberLink> {
    let (rtx, rrx) = mpsc::channel(64);
    let mut links = Vec::new();
    let mut cmd_txs = Vec::new();
    for idx in 0..n {
        let (ctx, crx) = mpsc::channel(16);
        cmd_txs.push(ctx);
        links.push(MemberLink {
            idx,
            reports: rtx.clone(),
            cmds: crx,
        });
    }
    tokio::spawn(run(Group::new(name, n), notify, fifos, rrx, cmd_txs));
    links
}

/// Ends when every member has gone (all report senders dropped).
async fn run(
    mut g: Group,
    notify: NotifyScripts,
    fifos: Arc<NotifyFifos>,
    mut reports: mpsc::Receiver<(usize, Report)>,
    cmds: Vec<mpsc::Sender<GroupCmd>>,
) {
    while let Some((idx, r)) = reports.recv().await {
        for (i, c) in g.report(idx, r) {
            if cmds[i].try_send(c).is_err() {
                warn!("VRRP_Group({}) member {i} does not take commands", g.name);
            }
        }
        if let Some(st) = g.update_state() {
            notify_group(&notify, &g.name, st);
            fifos.group(&g.name, st);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(state: VrrpState, own_fault: bool, wants_master: bool) -> Report {
        Report {
            state,
            own_fault,
            wants_master,
            quick: false,
        }
    }
    use VrrpState::*;

    #[test]
    fn masters_together_only_when_all_want_to() {
        let mut g = Group::new("G".into(), 2);
        assert!(g.report(0, r(Backup, false, false)).is_empty());
        assert!(g.report(1, r(Backup, false, false)).is_empty());
        assert_eq!(g.update_state(), Some(Backup));
        // One timer runs out: wait for the other.
        assert!(g.report(0, r(Backup, false, true)).is_empty());
        let c = g.report(1, r(Backup, false, true));
        assert_eq!(c, vec![(0, GroupCmd::ToMaster), (1, GroupCmd::ToMaster)]);
        g.report(0, r(Master, false, false));
        assert_eq!(g.update_state(), None, "in transition");
        g.report(1, r(Master, false, false));
        assert_eq!(g.update_state(), Some(Master));
    }

    #[test]
    fn one_backup_takes_the_others_along() {
        let mut g = Group::new("G".into(), 3);
        for i in 0..3 {
            g.report(i, r(Master, false, false));
        }
        let c = g.report(1, r(Backup, false, false));
        assert_eq!(
            c,
            vec![
                (0, GroupCmd::ToBackup { quick: false }),
                (2, GroupCmd::ToBackup { quick: false })
            ]
        );
    }

    #[test]
    fn one_fault_takes_all_to_fault_until_none_left() {
        let mut g = Group::new("G".into(), 2);
        g.report(0, r(Master, false, false));
        g.report(1, r(Master, false, false));
        let c = g.report(1, r(Fault, true, false));
        assert_eq!(
            c,
            vec![(0, GroupCmd::Fault(true)), (1, GroupCmd::Fault(true))]
        );
        g.report(0, r(Fault, false, false));
        assert_eq!(g.update_state(), Some(Fault));
        // A member wanting MASTER while the group is in FAULT: nothing.
        assert!(g.report(0, r(Backup, false, true)).is_empty());
        let c = g.report(1, r(Fault, false, false));
        assert_eq!(
            c,
            vec![(0, GroupCmd::Fault(false)), (1, GroupCmd::Fault(false))]
        );
    }
}
