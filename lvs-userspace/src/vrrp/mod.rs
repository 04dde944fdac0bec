//! keepalived-compatible VRRP for IPv4: VRRPv2 (RFC 3768, `auth_type PASS`)
//! and VRRPv3 (RFC 5798, centisecond intervals), multicast to
//! `vrrp_mcast_group4` (224.0.0.18) or unicast to `unicast_peer`s.
//!
//! - [`packet`]: the advert codec, pure ([`parse_advert`] validates in
//!   keepalived's order and names the reason of every rejection);
//! - [`state`]: the state machine INIT/BACKUP/MASTER/FAULT, pure;
//! - `socket`: the raw protocol-112 socket (`IP_HDRINCL`, TTL 255);
//! - `instance`: one task per `vrrp_instance` tying them to netlink (VIPs)
//!   and gratuitous ARP;
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

mod gate;
mod instance;
pub mod notify;
pub mod packet;
mod socket;
pub mod state;
pub mod track;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::info;

pub use gate::PreemptGate;
pub use packet::{parse_advert, Advert, Expect, RejectReason};
pub use state::VrrpState;

use instance::{Handle, Params};

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
    pub master_ip: Option<Ipv4Addr>,
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
    events: mpsc::Sender<VrrpEvent>,
    gate: PreemptGate,
}

fn resolve_all(cfg: &lvs_config::Config) -> Result<BTreeMap<String, Params>, VrrpError> {
    let mut out = BTreeMap::new();
    for i in &cfg.vrrp_instances {
        out.insert(i.name.clone(), Params::resolve(cfg, i)?);
    }
    Ok(out)
}

impl Vrrp {
    /// Starts one task per `vrrp_instance` of the config (in the calling
    /// thread's network namespace); state changes are sent to `events`
    /// (with `try_send`: a full queue loses the event, logged, rather than
    /// stalling the protocol; give it room, e.g. 64).
    /// While `gate` is held no instance becomes MASTER by preemption (see
    /// [`PreemptGate`]).
    /// Nothing is started if any instance cannot be set up.
    pub async fn start(
        cfg: &lvs_config::Config,
        events: mpsc::Sender<VrrpEvent>,
        gate: PreemptGate,
    ) -> Result<Vrrp, VrrpError> {
        let params = resolve_all(cfg)?;
        let mut v = Vrrp {
            instances: BTreeMap::new(),
            events,
            gate,
        };
        for (name, p) in params {
            let delay = cfg.global.vrrp_startup_delay;
            match Handle::spawn(p, v.events.clone(), &v.gate, delay) {
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
    /// mode restarts the instance. A config that cannot be resolved
    /// changes nothing.
    pub async fn reload(&mut self, cfg: &lvs_config::Config) -> Result<(), VrrpError> {
        let new = resolve_all(cfg)?;
        let names: Vec<String> = self.instances.keys().cloned().collect();
        for name in names {
            let cur = &self.instances[&name].params;
            match new.get(&name) {
                Some(p) if p == cur => {}
                Some(p) if p.same_identity(cur) => {
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
        let mut first_err = None;
        for (name, p) in new {
            if self.instances.contains_key(&name) {
                continue;
            }
            match Handle::spawn(p, self.events.clone(), &self.gate, Duration::ZERO) {
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
