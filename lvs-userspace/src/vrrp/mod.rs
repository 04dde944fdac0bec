//! keepalived-compatible VRRP: VRRPv2 (RFC 3768, `auth_type PASS`) and
//! VRRPv3 (RFC 5798, centisecond intervals), multicast to
//! `vrrp_mcast_group4` (224.0.0.18) or unicast to `unicast_peer`s; over
//! IPv6 (an instance whose addresses are IPv6, or `native_ipv6`) VRRPv3 to
//! ff02::12 from the interface's link-local address, hop limit 255, VIPs
//! added with `nodad` and announced by unsolicited neighbour
//! advertisements (`garp_master_*` repeats apply to them).
//!
//! - [`packet`]: the advert codec, pure ([`parse_advert`] validates in
//!   keepalived's order and names the reason of every rejection);
//! - [`state`]: the state machine INIT/BACKUP/MASTER/FAULT, pure;
//! - `socket`: the raw protocol-112 socket (IPv4: `IP_HDRINCL`, TTL 255;
//!   IPv6: `IPV6_PKTINFO` source, hop limit 255 both ways);
//! - `instance`: one task per `vrrp_instance` tying them to netlink (VIPs),
//!   gratuitous ARP and unsolicited NA;
//! - [`notify`]: `notify_master/backup/fault/stop` and `notify` scripts;
//! - [`track`]: `track_script` / `vrrp_script` (weights, rise, fall).
//!
//! ```no_run
//! # async fn f(cfg: lvs_config::Config) -> anyhow::Result<()> {
//! let (tx, mut rx) = tokio::sync::mpsc::channel(16);
//! let gate = lvs_userspace::vrrp::PreemptGate::open();
//! let vrrp = lvs_userspace::vrrp::Vrrp::start(&cfg, tx, gate).await?;
//! while let Some(ev) = rx.recv().await {
//!     println!("{} {:?} -> {:?}", ev.instance, ev.prev, ev.state);
//! #   break;
//! }
//! vrrp.shutdown().await; // priority 0: the backup takes over at once
//! # Ok(()) }
//! ```

mod fifo;
mod gate;
mod instance;
pub mod notify;
pub mod packet;
mod socket;
pub mod state;
pub mod sync;
pub mod track;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

pub use gate::PreemptGate;
pub use packet::{parse_advert, Advert, Expect, RejectReason};
pub use state::VrrpState;

use instance::{Handle, Params, Shared};

/// A state change of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpEvent {
    pub instance: String,
    pub state: VrrpState,
    pub prev: VrrpState,
}

/// Counters and state of one instance.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VrrpStats {
    pub instance: String,
    pub state: VrrpState,
    pub priority: u8,
    /// Valid adverts for our VRID.
    pub adverts_received: u64,
    pub adverts_sent: u64,
    pub priority_zero_received: u64,
    pub priority_zero_sent: u64,
    /// Accepted adverts whose address list differs from ours (logged).
    pub addr_list_mismatch: u64,
    /// Rejected datagrams by [`RejectReason::key`].
    pub rejected: BTreeMap<String, u64>,
    /// Times this instance entered MASTER.
    pub became_master: u64,
    /// The current master: ourselves when MASTER, the last one heard when
    /// BACKUP.
    pub master_ip: Option<IpAddr>,
}

impl Default for VrrpStats {
    fn default() -> Self {
        VrrpStats {
            instance: String::new(),
            state: VrrpState::Init,
            priority: 0,
            adverts_received: 0,
            adverts_sent: 0,
            priority_zero_received: 0,
            priority_zero_sent: 0,
            addr_list_mismatch: 0,
            rejected: BTreeMap::new(),
            became_master: 0,
            master_ip: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VrrpError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
    #[error("VRRP socket: {0}")]
    Io(#[from] std::io::Error),
}

/// The running VRRP instances of a configuration.
pub struct Vrrp {
    instances: BTreeMap<String, Handle>,
    groups: Vec<GroupParams>,
    shared: Shared,
}

/// A resolved `vrrp_sync_group`: its existing members, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
struct GroupParams {
    name: String,
    members: Vec<String>,
    notify: notify::NotifyScripts,
}

/// Every instance's parameters and the sync groups, with keepalived's
/// sync group rules applied to the members' tracking.
fn resolve_all(
    cfg: &lvs_config::Config,
) -> Result<(BTreeMap<String, Params>, Vec<GroupParams>), VrrpError> {
    // Who scripts run as and which are refused: set before any script is
    // resolved, put back if the config is refused.
    let old = crate::script_security::current();
    crate::script_security::set(
        crate::script_security::Policy::from_global(&cfg.global).map_err(VrrpError::Config)?,
    );
    let r = resolve_with_policy(cfg);
    if r.is_err() {
        crate::script_security::set(old);
    }
    r
}

fn resolve_with_policy(
    cfg: &lvs_config::Config,
) -> Result<(BTreeMap<String, Params>, Vec<GroupParams>), VrrpError> {
    let mut out = BTreeMap::new();
    for i in &cfg.vrrp_instances {
        out.insert(i.name.clone(), Params::resolve(cfg, i)?);
    }
    let mut groups = Vec::new();
    let mut grouped = std::collections::BTreeSet::new();
    for g in &cfg.vrrp_sync_groups {
        let mut members = Vec::new();
        for name in &g.group {
            if !out.contains_key(name) {
                warn!(
                    "Virtual router {name} specified in sync group {} doesn't exist - ignoring",
                    g.name
                );
            } else if !grouped.insert(name.clone()) {
                warn!(
                    "Virtual router {name} cannot exist in more than one sync group; ignoring {}",
                    g.name
                );
            } else {
                members.push(name.clone());
            }
        }
        if members.is_empty() {
            warn!(
                "Sync group {}, no matching virtual router found in group declaration - removing",
                g.name
            );
            continue;
        }
        if members.len() == 1 {
            warn!(
                "Sync group {} has only 1 virtual router(s) - this probably isn't what you want",
                g.name
            );
        }
        let scripts =
            track::resolve_entries(cfg, &g.name, &g.track_script).map_err(VrrpError::Config)?;
        let processes =
            track::resolve_processes(cfg, &g.name, &g.track_process).map_err(VrrpError::Config)?;
        let files = track::resolve_files(cfg, &g.name, &g.track_file);
        for m in &members {
            let p = out.get_mut(m).expect("member exists");
            if !g.global_tracking {
                // keepalived: no floating priorities inside a sync group
                // (unless global_tracking / sync_group_tracking_weight).
                for t in &mut p.tracked_ifs {
                    if t.weight != 0 {
                        warn!(
                            "({m}) ignoring {} tracked interface weight due to SYNC group",
                            t.name
                        );
                        t.weight = 0;
                    }
                }
                p.scripts.retain(|s| {
                    if s.weight != 0 {
                        warn!(
                            "({m}) ignoring tracked script {} with weights due to SYNC group",
                            s.name
                        );
                    }
                    s.weight == 0
                });
                p.processes.retain(|t| {
                    if t.weight != 0 {
                        warn!(
                            "({m}) ignoring tracked process {} with weights due to SYNC group",
                            t.p.name
                        );
                    }
                    t.weight == 0
                });
                // keepalived: the default weight 1 becomes 0, an explicit
                // weight drops the file.
                p.files.retain_mut(|f| match f.weight {
                    0 => true,
                    1 => {
                        warn!(
                            "({m}) ignoring weight from tracked file {} due to SYNC group. specify weight 0",
                            f.name
                        );
                        f.weight = 0;
                        true
                    }
                    w => {
                        warn!(
                            "({m}) ignoring tracked file {} with weight {w} due to SYNC group",
                            f.name
                        );
                        false
                    }
                });
            }
            for t in &g.track_interface {
                track::merge_if(
                    &mut p.tracked_ifs,
                    &t.name,
                    t.weight.unwrap_or(0),
                    t.reverse,
                );
            }
            for s in &scripts {
                if !p.scripts.iter().any(|x| x.name == s.name) {
                    p.scripts.push(s.clone());
                }
            }
            for t in &processes {
                if !p.processes.iter().any(|x| x.p.name == t.p.name) {
                    p.processes.push(t.clone());
                }
            }
            for f in &files {
                if !p.files.iter().any(|x| x.name == f.name) {
                    p.files.push(f.clone());
                }
            }
        }
        groups.push(GroupParams {
            name: g.name.clone(),
            members,
            notify: notify::NotifyScripts::from(&g.notify).secure(),
        });
    }
    Ok((out, groups))
}

/// Starts the group tasks; returns each member's link, by instance name.
fn spawn_groups<'a>(
    groups: impl IntoIterator<Item = &'a GroupParams>,
    shared: &Shared,
) -> BTreeMap<String, sync::MemberLink> {
    let mut links = BTreeMap::new();
    for g in groups {
        let l = sync::spawn(
            g.name.clone(),
            g.members.len(),
            g.notify.clone(),
            shared.fifos.clone(),
        );
        for (name, link) in g.members.iter().zip(l) {
            links.insert(name.clone(), link);
        }
    }
    links
}

impl Vrrp {
    /// Starts one task per `vrrp_instance` of the config (in the calling
    /// thread's network namespace); state changes are sent to `events`
    /// (with `try_send`: a full queue loses the event, logged, rather than
    /// stalling the protocol; give it room, e.g. 64).
    /// While `gate` is held no instance becomes MASTER by preemption (see
    /// [`PreemptGate`]). `vrrp_sync_group`s run as in keepalived
    /// ([`sync`]).
    /// Nothing is started if any instance cannot be set up.
    pub async fn start(
        cfg: &lvs_config::Config,
        events: mpsc::Sender<VrrpEvent>,
        gate: PreemptGate,
    ) -> Result<Vrrp, VrrpError> {
        let (params, groups) = resolve_all(cfg)?;
        let shared = Shared {
            events,
            gate,
            fifos: std::sync::Arc::new(fifo::NotifyFifos::open(&cfg.global)),
        };
        let mut links = spawn_groups(&groups, &shared);
        let mut v = Vrrp {
            instances: BTreeMap::new(),
            groups,
            shared,
        };
        for (name, p) in params {
            let delay = cfg.global.vrrp_startup_delay;
            let link = links.remove(&name);
            match Handle::spawn(p, &v.shared, delay, link) {
                Ok(h) => {
                    v.instances.insert(name, h);
                }
                Err(e) => {
                    v.shutdown().await;
                    return Err(e);
                }
            }
        }
        Ok(v)
    }

    /// SIGHUP: applies a new config. Removed instances stop (priority 0 if
    /// MASTER), added ones start, unchanged ones keep running in their
    /// state. Changes to VIPs, peers, authentication, scripts, tracked
    /// interfaces, priority, intervals, preemption or GARP settings are
    /// applied in place (state kept, as keepalived's `restore_vrrp_state`);
    /// a changed interface, VRID, version, or multicast group / unicast
    /// mode restarts the instance, and so does a change of its sync group.
    /// A config that cannot be resolved changes nothing.
    pub async fn reload(&mut self, cfg: &lvs_config::Config) -> Result<(), VrrpError> {
        let (new, new_groups) = resolve_all(cfg)?;
        // Members of sync groups that changed restart with the new group.
        let changed_groups: Vec<&GroupParams> = self
            .groups
            .iter()
            .filter(|g| !new_groups.contains(g))
            .chain(new_groups.iter().filter(|g| !self.groups.contains(g)))
            .collect();
        let regroup: std::collections::BTreeSet<String> = changed_groups
            .iter()
            .flat_map(|g| g.members.iter().cloned())
            .collect();
        let new_changed: Vec<GroupParams> = new_groups
            .iter()
            .filter(|g| !self.groups.contains(g))
            .cloned()
            .collect();
        let names: Vec<String> = self.instances.keys().cloned().collect();
        for name in names {
            let cur = &self.instances[&name].params;
            match new.get(&name) {
                Some(p) if p == cur && !regroup.contains(&name) => {}
                Some(p) if p.same_identity(cur) && !regroup.contains(&name) => {
                    let p = p.clone();
                    if let Some(h) = self.instances.get_mut(&name) {
                        h.update(p).await;
                    }
                }
                _ => {
                    info!("({name}) stopping for reload");
                    if let Some(h) = self.instances.remove(&name) {
                        h.stop().await;
                    }
                }
            }
        }
        let mut links = spawn_groups(&new_changed, &self.shared);
        self.groups = new_groups;
        let mut first_err = None;
        for (name, p) in new {
            if self.instances.contains_key(&name) {
                continue;
            }
            let link = links.remove(&name);
            match Handle::spawn(p, &self.shared, Duration::ZERO, link) {
                Ok(h) => {
                    self.instances.insert(name, h);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Counters and state of every instance.
    pub fn stats(&self) -> Vec<VrrpStats> {
        self.instances
            .values()
            .map(|h| h.stats.lock().unwrap().clone())
            .collect()
    }

    /// Graceful stop: a MASTER sends priority 0 adverts and removes its VIPs.
    pub async fn shutdown(self) {
        // All at once: every backup should hear its priority 0 promptly.
        let tasks: Vec<_> = self
            .instances
            .into_values()
            .map(|h| tokio::spawn(h.stop()))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}
