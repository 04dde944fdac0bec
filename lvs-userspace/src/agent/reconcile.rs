//! The one owner of the data path. Everything that changes what the XDP
//! program does — a new config, a health-check result, a resolved MAC, a
//! drained real server — arrives here as a message; the reconciler computes
//! the whole desired state and lets `Datapath::apply` write the difference.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use tracing::{info, warn};

use super::plan::{fmt_service, Plan, PlannedReal, PlannedService, RealId, ServiceId};
use crate::{
    datapath::{
        desired::service_key, read::IdMap, Datapath, DesiredBackend, DesiredService, DesiredState,
        NextHop, Persistence, Proto,
    },
    netlink,
    sync::{self, Entry},
};
use lvs_common::{
    Conn, FlowKey, Persist, PersistKey, CONN_F_PERSISTENT, CONN_F_SYNCED, PERSIST_F_SYNCED,
};

/// A datapath interface: where real servers are reached.
#[derive(Clone, Debug)]
pub struct Egress {
    pub ifindex: u32,
    pub name: String,
    pub mac: [u8; 6],
}

/// What the agent knows about one real server at run time.
#[derive(Clone, Debug)]
struct RealState {
    /// As the checkers say (no checkers: always up).
    up: bool,
    /// MISC_CHECK misc_dynamic's weight, replacing the configured one.
    dyn_weight: Option<u32>,
    /// Resolved next hop; a real server without one is kept out.
    hop: Option<NextHop>,
    /// Logged as unresolvable already (log once, not every tick).
    warned_unresolved: bool,
}

type RealKey = (ServiceId, RealId);

/// Seconds between passes that delete idle connections and templates.
const EXPIRE_EVERY_TICKS: u64 = 30;

pub struct Reconciler {
    dp: Datapath,
    egress: Vec<Egress>,
    plan: Plan,
    reals: BTreeMap<RealKey, RealState>,
    /// Removed from the config by a reload: kept with weight 0 (existing
    /// flows continue, no new ones) until idle or the drain timeout.
    draining: BTreeMap<RealKey, (PlannedReal, Instant)>,
    drain_timeout: Duration,
    /// Real servers currently in a schedule (for keepalived's Adding/Removing logs).
    in_service: BTreeSet<RealKey>,
    /// Services whose sorry server is in use.
    sorry_active: BTreeSet<ServiceId>,
    /// Services that have lost their quorum (hysteresis applies).
    quorum_lost: BTreeSet<ServiceId>,
    ticks: u64,
    /// Something changed since the last apply (ticks skip a no-op diff).
    dirty: bool,
    /// Connection sync: where the sender learns ids → addresses.
    ids: Option<tokio::sync::watch::Sender<std::sync::Arc<IdMap>>>,
}

impl Reconciler {
    pub fn new(dp: Datapath, egress: Vec<Egress>, drain_timeout: Duration) -> Self {
        Reconciler {
            dp,
            egress,
            plan: Plan::default(),
            reals: BTreeMap::new(),
            draining: BTreeMap::new(),
            drain_timeout,
            in_service: BTreeSet::new(),
            sorry_active: BTreeSet::new(),
            quorum_lost: BTreeSet::new(),
            ticks: 0,
            dirty: true,
            ids: None,
        }
    }

    pub fn datapath(&self) -> &Datapath {
        &self.dp
    }

    pub fn datapath_mut(&mut self) -> &mut Datapath {
        &mut self.dp
    }

    /// Connection sync is on: keep the sender's id map current.
    pub fn publish_ids(&mut self, tx: tokio::sync::watch::Sender<std::sync::Arc<IdMap>>) {
        let _ = tx.send(std::sync::Arc::new(self.dp.id_map()));
        self.ids = Some(tx);
    }

    /// Writes what another director synced into our maps, by our own ids.
    pub fn apply_synced(&mut self, entries: &[Entry]) -> usize {
        let now = crate::datapath::read::monotonic_ns();
        let mut applied = 0;
        for e in entries {
            let Some(proto) = Proto::from_number(e.proto) else {
                continue;
            };
            let key = service_key(e.vip, e.vport, proto);
            let (Some(service), Some(backend)) = (
                self.dp.service_id(&key),
                self.dp.backend_id(&key, e.rs, e.rsport),
            ) else {
                continue; // a service or real server we do not have
            };
            let persistent = self
                .plan
                .services
                .iter()
                .any(|s| s.id == (e.vip, e.vport, proto) && s.persistence.is_some());
            let ok = if e.kind == sync::wire::KIND_TEMPLATE {
                self.dp
                    .insert_template(
                        PersistKey {
                            service,
                            client_be: u32::from_ne_bytes(e.client.octets()),
                        },
                        Persist {
                            backend,
                            flags: PERSIST_F_SYNCED,
                            last_seen_ns: now,
                        },
                    )
                    .is_ok()
            } else {
                let fkey = FlowKey {
                    src_be: u32::from_ne_bytes(e.client.octets()),
                    dst_be: key.addr_be,
                    sport_be: e.cport.to_be(),
                    dport_be: key.port_be,
                    proto: e.proto,
                    _pad: [0; 3],
                };
                let flags = CONN_F_SYNCED | if persistent { CONN_F_PERSISTENT } else { 0 };
                self.dp
                    .insert_conn(
                        fkey,
                        Conn {
                            backend,
                            service,
                            state: e.state as u32,
                            flags,
                            created_ns: now,
                            last_seen_ns: now,
                        },
                    )
                    .is_ok()
            };
            applied += ok as usize;
        }
        applied
    }

    /// Our own long-lived connections and templates, to send again so the
    /// other director does not time them out.
    pub fn resend_entries(&self) -> anyhow::Result<Vec<Entry>> {
        self.sync_entries(false)
    }

    /// Every live connection and template, ours and synced, for a peer's
    /// bulk request (a returning director needs the ones we learned from it
    /// before it failed, too).
    pub fn bulk_entries(&self) -> anyhow::Result<Vec<Entry>> {
        self.sync_entries(true)
    }

    fn sync_entries(&self, bulk: bool) -> anyhow::Result<Vec<Entry>> {
        let ids = self.dp.id_map();
        let mut out = Vec::new();
        for c in self.dp.conns()? {
            let wanted = if bulk {
                c.expires_in_s > 0
            } else {
                c.conn.flags & CONN_F_SYNCED == 0 && sync::worth_resending(c.conn.state)
            };
            if c.half_open || !wanted {
                continue;
            }
            let ev = lvs_common::SyncEvent {
                kind: lvs_common::SYNC_CONN,
                state: c.conn.state,
                backend: c.conn.backend,
                service: c.conn.service,
                key: c.key,
                client_be: 0,
                _pad: 0,
            };
            out.extend(sync::entry_of(&ev, &ids));
        }
        for t in self.dp.templates()? {
            if t.expires_in_s == 0 || (!bulk && t.value.flags & PERSIST_F_SYNCED != 0) {
                continue;
            }
            let ev = lvs_common::SyncEvent {
                kind: lvs_common::SYNC_TEMPLATE,
                state: 0,
                backend: t.value.backend,
                service: t.key.service,
                key: FlowKey::default(),
                client_be: t.key.client_be,
                _pad: 0,
            };
            out.extend(sync::entry_of(&ev, &ids));
        }
        Ok(out)
    }

    pub fn into_datapath(self) -> Datapath {
        self.dp
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// A new (or the first) config: keep what is unchanged, drain what went.
    pub fn set_plan(&mut self, plan: Plan) {
        let new_keys: BTreeSet<RealKey> = plan
            .services
            .iter()
            .flat_map(|s| s.reals.iter().map(move |r| (s.id, (r.addr, r.port))))
            .collect();
        // Real servers that went away: drain those of services that stay.
        let staying: BTreeSet<ServiceId> = plan.services.iter().map(|s| s.id).collect();
        for old in &self.plan.services {
            for r in &old.reals {
                let key = (old.id, (r.addr, r.port));
                if !new_keys.contains(&key) && staying.contains(&old.id) {
                    info!(
                        "Removing service {} from VS {} (draining: weight 0 until idle)",
                        fmt_service(r.addr, r.port, old.id.2),
                        fmt_service(old.id.0, old.id.1, old.id.2)
                    );
                    self.draining.insert(key, (r.clone(), Instant::now()));
                }
            }
        }
        // A real server added back while draining stops draining.
        self.draining.retain(|k, _| !new_keys.contains(k));
        for s in &plan.services {
            for r in &s.reals {
                self.reals
                    .entry((s.id, (r.addr, r.port)))
                    .or_insert_with(|| RealState {
                        up: !r.alpha,
                        dyn_weight: None,
                        hop: None,
                        warned_unresolved: false,
                    });
            }
        }
        let draining = &self.draining;
        self.reals
            .retain(|k, _| new_keys.contains(k) || draining.contains_key(k));
        self.plan = plan;
        self.dirty = true;
        self.resolve_all(false);
    }

    /// A checker's verdict on a real server of every service that has it.
    pub fn set_up(&mut self, service: ServiceId, real: RealId, up: bool, reason: &str) {
        if let Some(st) = self.reals.get_mut(&(service, real)) {
            if st.up != up {
                st.up = up;
                self.dirty = true;
                if !up {
                    warn!(
                        "{} of VS {} is down: {reason}",
                        fmt_service(real.0, real.1, service.2),
                        fmt_service(service.0, service.1, service.2)
                    );
                }
            }
        }
    }

    /// Whether a service has its quorum (lost at the latest when every real
    /// server is down); decided by the last `apply`.
    pub fn has_quorum(&self, id: &ServiceId) -> bool {
        !self.quorum_lost.contains(id)
    }

    /// Whether a real server is up as far as the checkers know.
    /// Services below their quorum (sorry server in use), for the metrics.
    pub fn quorum_lost(&self) -> impl Iterator<Item = ServiceId> + '_ {
        self.quorum_lost.iter().copied()
    }

    pub fn is_up(&self, key: &(ServiceId, RealId)) -> bool {
        self.reals.get(key).is_some_and(|st| st.up)
    }

    pub fn set_dyn_weight(&mut self, service: ServiceId, real: RealId, weight: u32) {
        if let Some(st) = self.reals.get_mut(&(service, real)) {
            if st.dyn_weight != Some(weight) {
                st.dyn_weight = Some(weight);
                self.dirty = true;
            }
        }
    }

    /// Finds next hops for real servers that have none: neighbour table
    /// first, else ask the kernel to resolve (found on a later tick). With
    /// `refresh`, known ones are looked up again too, so a real server whose
    /// MAC changed (a replaced NIC, a bond failover) is followed.
    fn resolve_all(&mut self, refresh: bool) {
        let needed = refresh
            || self.reals.values().any(|st| st.hop.is_none())
            || self.plan.services.iter().any(|s| {
                s.sorry_server
                    .is_some_and(|(a, p)| !self.reals.contains_key(&(s.id, (a, p))))
            });
        if !needed {
            return;
        }
        // One dump per interface, whatever the number of real servers.
        let tables: Vec<(Egress, std::collections::HashMap<Ipv4Addr, [u8; 6]>)> = self
            .egress
            .iter()
            .map(|e| {
                (
                    e.clone(),
                    netlink::neighbours(e.ifindex).unwrap_or_default(),
                )
            })
            .collect();
        let lookup = |addr: Ipv4Addr| {
            tables.iter().find_map(|(e, t)| {
                t.get(&addr).map(|mac| NextHop {
                    mac: *mac,
                    src_mac: e.mac,
                    ifindex: e.ifindex,
                })
            })
        };
        for s in &self.plan.services {
            if let Some((addr, port)) = s.sorry_server {
                self.reals
                    .entry((s.id, (addr, port)))
                    .or_insert_with(|| RealState {
                        up: true,
                        dyn_weight: None,
                        hop: None,
                        warned_unresolved: false,
                    });
            }
        }
        let mut solicited = std::collections::BTreeSet::new();
        for ((_, (addr, _)), st) in self.reals.iter_mut() {
            match (st.hop, lookup(*addr)) {
                (Some(old), Some(new)) if refresh && new.mac != old.mac => {
                    info!("{addr}: MAC address changed, now {}", fmt_mac(new.mac));
                    st.hop = Some(new);
                    self.dirty = true;
                }
                (None, Some(new)) => {
                    st.hop = Some(new);
                    self.dirty = true;
                }
                // Ask the kernel to resolve it; found on a later tick.
                (None, None) if solicited.insert(*addr) => {
                    for (e, _) in &tables {
                        let _ = netlink::solicit(e.ifindex, *addr);
                    }
                }
                _ => {}
            }
        }
    }

    /// Every second: new cache generation, MACs still missing, drains done,
    /// idle connections expired.
    pub fn tick(&mut self) -> anyhow::Result<()> {
        self.ticks += 1;
        self.dp.tick()?;
        self.resolve_all(self.ticks.is_multiple_of(10));
        // Both scan the connection table: not every second. The LRU bounds
        // memory on its own; this only keeps listings and drains honest.
        if !self.draining.is_empty() && self.ticks.is_multiple_of(5) {
            self.finish_drains()?;
        }
        if self.ticks.is_multiple_of(EXPIRE_EVERY_TICKS) {
            let (conns, templates) = self.dp.expire()?;
            if conns + templates > 0 {
                tracing::debug!("expired {conns} connections, {templates} persistence templates");
            }
        }
        if self.dirty {
            self.apply()?;
        }
        Ok(())
    }

    fn finish_drains(&mut self) -> anyhow::Result<()> {
        let services = self.dp.services()?;
        let now = Instant::now();
        let mut done = Vec::new();
        for (key, (_, since)) in &self.draining {
            let ((vip, port, _), (addr, rport)) = *key;
            let busy = services
                .iter()
                .filter(|s| s.vip == vip && s.port == port)
                .flat_map(|s| s.backends.iter())
                .find(|b| b.addr == addr && b.port == rport)
                .map(|b| b.active + b.inactive)
                .unwrap_or(0);
            if busy == 0 || now.duration_since(*since) >= self.drain_timeout {
                done.push(*key);
            }
        }
        for key in done {
            self.draining.remove(&key);
            self.reals.remove(&key);
            self.dirty = true;
        }
        Ok(())
    }

    /// The whole desired state from the plan and what is known at run time.
    fn desired(&mut self) -> DesiredState {
        let mut services = Vec::new();
        let mut in_service = BTreeSet::new();
        let mut sorry_active = BTreeSet::new();
        for s in &self.plan.services {
            let mut backends = Vec::new();
            let mut alive_weight = 0u32;
            for r in &s.reals {
                let key = (s.id, (r.addr, r.port));
                let Some(st) = self.reals.get_mut(&key) else {
                    continue;
                };
                let Some(hop) = st.hop else {
                    if !st.warned_unresolved {
                        warn!(
                            "{} of VS {}: no MAC address in the neighbour table yet; kept out until it resolves",
                            fmt_service(r.addr, r.port, s.id.2),
                            fmt_service(s.id.0, s.id.1, s.id.2)
                        );
                        st.warned_unresolved = true;
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
                    in_service.insert(key);
                }
                backends.push(DesiredBackend {
                    addr: r.addr,
                    port: r.port,
                    weight,
                    alive,
                    next_hop: hop,
                });
            }
            for (key, (r, _)) in &self.draining {
                if key.0 != s.id {
                    continue;
                }
                if let Some(hop) = self.reals.get(key).and_then(|st| st.hop) {
                    backends.push(DesiredBackend {
                        addr: r.addr,
                        port: r.port,
                        weight: 0,
                        alive: true,
                        next_hop: hop,
                    });
                }
            }
            // Quorum, with keepalived's hysteresis: lost below
            // quorum − hysteresis, gained again at quorum + hysteresis.
            let quorum = s.quorum.max(1);
            let was_lost = self.quorum_lost.contains(&s.id);
            let lost = if was_lost {
                alive_weight < quorum.saturating_add(s.hysteresis)
            } else {
                alive_weight < quorum.saturating_sub(s.hysteresis).max(1)
            };
            if lost != was_lost {
                let vs = fmt_service(s.id.0, s.id.1, s.id.2);
                if lost {
                    warn!(
                        "Lost quorum {alive_weight}-{}={} > {quorum} for VS {vs}",
                        s.hysteresis,
                        alive_weight.saturating_sub(s.hysteresis)
                    );
                    self.quorum_lost.insert(s.id);
                    // A group's services share one quorum_down run.
                    if s.id == s.checked_as {
                        run_script(s.quorum_down.as_deref());
                    }
                } else {
                    info!(
                        "Gained quorum {alive_weight}+{}={} >= {quorum} for VS {vs}",
                        s.hysteresis,
                        alive_weight + s.hysteresis
                    );
                    self.quorum_lost.remove(&s.id);
                    if s.id == s.checked_as {
                        run_script(s.quorum_up.as_deref());
                    }
                }
            }
            // Quorum lost (no real server up, at the least): the sorry server.
            if lost {
                if let Some((addr, port)) = s.sorry_server {
                    if let Some(hop) = self.reals.get(&(s.id, (addr, port))).and_then(|st| st.hop) {
                        sorry_active.insert(s.id);
                        for b in &mut backends {
                            b.alive = false;
                        }
                        backends.push(DesiredBackend {
                            addr,
                            port,
                            weight: 1,
                            alive: true,
                            next_hop: hop,
                        });
                    }
                }
            }
            services.push(desired_service(s, backends));
        }
        self.log_transitions(&in_service, &sorry_active);
        self.in_service = in_service;
        self.sorry_active = sorry_active;
        DesiredState { services }
    }

    fn log_transitions(&self, now: &BTreeSet<RealKey>, sorry: &BTreeSet<ServiceId>) {
        for (s, r) in now.difference(&self.in_service) {
            info!(
                "Adding service {} to VS {}",
                fmt_service(r.0, r.1, s.2),
                fmt_service(s.0, s.1, s.2)
            );
        }
        for (s, r) in self.in_service.difference(now) {
            if self.draining.contains_key(&(*s, *r)) {
                continue; // logged when the reload removed it
            }
            info!(
                "Removing service {} from VS {}",
                fmt_service(r.0, r.1, s.2),
                fmt_service(s.0, s.1, s.2)
            );
        }
        for s in sorry.difference(&self.sorry_active) {
            warn!(
                "No real server available for VS {}: using its sorry server",
                fmt_service(s.0, s.1, s.2)
            );
        }
        for s in self.sorry_active.difference(sorry) {
            info!(
                "VS {} has real servers again: sorry server out",
                fmt_service(s.0, s.1, s.2)
            );
        }
    }

    /// `omega` at shutdown: the `quorum_down` scripts of the virtual
    /// servers whose quorum is up, once per virtual server (a group's
    /// services share theirs).
    pub fn omega_quorum_down(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.plan
            .services
            .iter()
            .filter(|s| s.omega && !self.quorum_lost.contains(&s.id))
            .filter(|s| seen.insert(s.checked_as))
            .filter_map(|s| s.quorum_down.clone())
            .collect()
    }

    /// Writes whatever differs into the maps.
    pub fn apply(&mut self) -> anyhow::Result<()> {
        self.dirty = false;
        let desired = self.desired();
        let report = self.dp.apply(&desired)?;
        if !report.is_empty() {
            tracing::debug!("datapath updated: {report:?}");
            if let Some(tx) = &self.ids {
                let _ = tx.send(std::sync::Arc::new(self.dp.id_map()));
            }
        }
        Ok(())
    }
}

/// Runs a notify script (quorum_up/quorum_down) without waiting for it;
/// it is reaped by the runtime, never left a zombie.
fn run_script(script: Option<&str>) {
    let Some(script) = script else { return };
    match tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => warn!("running {script}: {e}"),
    }
}

fn desired_service(s: &PlannedService, backends: Vec<DesiredBackend>) -> DesiredService {
    DesiredService {
        vip: s.id.0,
        port: s.id.1,
        proto: s.id.2,
        algo: s.algo,
        persistence: s
            .persistence
            .map(|(timeout_s, netmask)| Persistence { timeout_s, netmask }),
        sloppy: false,
        backends,
    }
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
