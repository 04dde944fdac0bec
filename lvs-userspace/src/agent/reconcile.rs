//! The one owner of the data path. Everything that changes what the XDP
//! program does — a new config, a health-check result, a resolved MAC, a
//! drained real server — arrives here as a message; the reconciler computes
//! the whole desired state and lets `Datapath::apply` write the difference.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::{info, warn};

mod policy;

use self::policy::{Memory, RealState, Transition};
use super::plan::{Plan, PlannedReal, PlannedService, RealKey, ServiceId};
use crate::{
    datapath::{
        desired::{addr6_of, addr_of, any_service_key},
        read::IdMap,
        table::{ConnCounts, TableScanner},
        Datapath, DesiredState, NextHop, Protocol, SvcKey,
    },
    netlink,
    sync::{self, Entry},
};
use lvs_common::{
    hash::ipv6_words, Conn, FlowKey, FlowKey6, Persist, PersistKey, PersistKey6, CONN_F_PERSISTENT,
    CONN_F_SYNCED, PERSIST_F_SYNCED,
};

/// A datapath interface: where real servers are reached.
#[derive(Clone, Debug)]
pub struct Egress {
    pub ifindex: u32,
    pub name: String,
    pub mac: [u8; 6],
}

/// Seconds between passes that delete idle connections and templates.
const EXPIRE_EVERY_TICKS: u64 = 30;

/// Between two passes of the connection-table thread: how stale metrics'
/// and drains' connection counts may be, for a small table.
const COUNT_EVERY: Duration = Duration::from_secs(2);

/// A big table takes longer to walk (about 0.2 s of CPU per million
/// entries): the thread then rests this many times the CPU time a pass
/// took, so that it never uses more than 1/(1 + this) of a core. (CPU time,
/// not wall time: on a busy machine a pass takes longer without costing
/// more, and the counts should not go stale for it.)
const REST_PER_PASS: u32 = 39;

pub struct Reconciler {
    dp: Datapath,
    egress: Vec<Egress>,
    plan: Plan,
    reals: BTreeMap<RealKey, RealState>,
    /// Removed from the config by a reload: kept with weight 0 (existing
    /// flows continue, no new ones) until idle or the drain timeout.
    draining: BTreeMap<RealKey, (PlannedReal, Instant)>,
    drain_timeout: Duration,
    /// The policy's memory: what is in service, quorum, sorry servers.
    memory: Memory,
    ticks: u64,
    /// Something changed since the last apply (ticks skip a no-op diff).
    dirty: bool,
    /// Connection sync: where the sender learns ids → addresses.
    ids: Option<tokio::sync::watch::Sender<std::sync::Arc<IdMap>>>,
    /// The latest counts from the connection-table thread; `None` when it
    /// could not start (then this loop counts when asked).
    counts: Option<tokio::sync::watch::Receiver<Arc<ConnCounts>>>,
}

impl Reconciler {
    pub fn new(dp: Datapath, egress: Vec<Egress>, drain_timeout: Duration) -> Self {
        let counts = match dp.table_scanner() {
            Ok(scanner) => spawn_table_thread(scanner),
            Err(e) => {
                warn!("counting connections in the agent's loop: {e}");
                None
            }
        };
        Reconciler {
            dp,
            egress,
            plan: Plan::default(),
            reals: BTreeMap::new(),
            draining: BTreeMap::new(),
            drain_timeout,
            memory: Memory::default(),
            ticks: 0,
            dirty: true,
            ids: None,
            counts,
        }
    }

    /// Connections per real server, as of the last pass over the table.
    pub fn conn_counts(&self) -> Arc<ConnCounts> {
        match &self.counts {
            Some(rx) => rx.borrow().clone(),
            None => Arc::new(self.dp.count_conns().unwrap_or_default()),
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

    /// Writes what another director synced into our maps, by our own ids
    /// (`conns`/`persist` for IPv4 entries, `conns6`/`persist6` for IPv6).
    pub fn apply_synced(&mut self, entries: &[Entry]) -> usize {
        let now = crate::datapath::read::monotonic_ns();
        let mut applied = 0;
        for e in entries {
            let Some(proto) = Protocol::from_number(e.proto) else {
                continue;
            };
            let key = any_service_key(e.vip, e.vport, proto);
            let (Some(service), Some(backend)) = (
                self.dp.service_id(key),
                self.dp.backend_id(key, e.rs, e.rsport),
            ) else {
                continue; // a service or real server we do not have
            };
            let id = ServiceId {
                vip: e.vip,
                port: e.vport,
                proto,
            };
            let persistent = self
                .plan
                .services
                .iter()
                .any(|s| s.id == id && s.persistence.is_some());
            let template = Persist {
                backend,
                flags: PERSIST_F_SYNCED,
                last_seen_ns: now,
            };
            let conn = Conn {
                backend,
                service,
                state: e.state as u32,
                flags: CONN_F_SYNCED | if persistent { CONN_F_PERSISTENT } else { 0 },
                created_ns: now,
                last_seen_ns: now,
            };
            let is_template = e.kind == sync::wire::KIND_TEMPLATE;
            // The same write in both families, but for the key types.
            macro_rules! insert {
                ($flow:ident, $tmpl:ident, $svc:expr, $client_be:expr) => {{
                    let client_be = $client_be;
                    if is_template {
                        let k = $tmpl { service, client_be };
                        self.dp.insert_template(k, template).is_ok()
                    } else {
                        let fkey = $flow {
                            src_be: client_be,
                            dst_be: $svc.addr_be,
                            sport_be: e.cport.to_be(),
                            dport_be: $svc.port_be,
                            proto: e.proto,
                            _pad: [0; 3],
                        };
                        self.dp.insert_conn(fkey, conn).is_ok()
                    }
                }};
            }
            let ok = match (key, e.client) {
                (SvcKey::V4(svc), IpAddr::V4(client)) => {
                    insert!(
                        FlowKey,
                        PersistKey,
                        svc,
                        u32::from_ne_bytes(client.octets())
                    )
                }
                (SvcKey::V6(svc), IpAddr::V6(client)) => {
                    insert!(FlowKey6, PersistKey6, svc, ipv6_words(client.octets()))
                }
                _ => false, // a client of the other family than its VIP
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
        let wanted = |c: &Conn, expires_in_s| {
            if bulk {
                expires_in_s > 0
            } else {
                c.flags & CONN_F_SYNCED == 0 && sync::worth_resending(c.state)
            }
        };
        let conn_event = |c: &Conn, client: IpAddr, sport_be: u16| sync::Event {
            kind: sync::wire::KIND_CONN,
            state: c.state,
            service: c.service,
            backend: c.backend,
            client,
            cport: u16::from_be(sport_be),
        };
        let template_event = |t: &Persist, service, client| sync::Event {
            kind: sync::wire::KIND_TEMPLATE,
            state: 0,
            service,
            backend: t.backend,
            client,
            cport: 0,
        };
        let template_wanted = |t: &Persist, expires_in_s| {
            expires_in_s > 0 && (bulk || t.flags & PERSIST_F_SYNCED == 0)
        };
        for c in self.dp.conns()? {
            if !c.half_open && wanted(&c.conn, c.expires_in_s) {
                let client = IpAddr::V4(addr_of(c.key.src_be));
                out.extend(conn_event(&c.conn, client, c.key.sport_be).entry(&ids));
            }
        }
        for c in self.dp.conns6()? {
            if !c.half_open && wanted(&c.conn, c.expires_in_s) {
                let client = IpAddr::V6(addr6_of(&c.key.src_be));
                out.extend(conn_event(&c.conn, client, c.key.sport_be).entry(&ids));
            }
        }
        for t in self.dp.templates()? {
            if template_wanted(&t.value, t.expires_in_s) {
                let client = IpAddr::V4(addr_of(t.key.client_be));
                out.extend(template_event(&t.value, t.key.service, client).entry(&ids));
            }
        }
        for t in self.dp.templates6()? {
            if template_wanted(&t.value, t.expires_in_s) {
                let client = IpAddr::V6(addr6_of(&t.key.client_be));
                out.extend(template_event(&t.value, t.key.service, client).entry(&ids));
            }
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
            .flat_map(|s| s.reals.iter().map(move |r| s.id.real(r.id())))
            .collect();
        // Real servers that went away: drain those of services that stay.
        let staying: BTreeSet<ServiceId> = plan.services.iter().map(|s| s.id).collect();
        for old in &self.plan.services {
            for r in &old.reals {
                let key = old.id.real(r.id());
                if !new_keys.contains(&key) && staying.contains(&old.id) {
                    info!(
                        "Removing service {key} from VS {} (draining: weight 0 until idle)",
                        old.id
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
                    .entry(s.id.real(r.id()))
                    .or_insert_with(|| RealState::new(!r.alpha));
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
    pub fn set_up(&mut self, key: RealKey, up: bool, reason: &str) {
        if let Some(st) = self.reals.get_mut(&key) {
            if st.up != up {
                st.up = up;
                self.dirty = true;
                if !up {
                    warn!("{key} of VS {} is down: {reason}", key.service);
                }
            }
        }
    }

    /// Whether a service has its quorum (lost at the latest when every real
    /// server is down); decided by the last `apply`.
    pub fn has_quorum(&self, id: &ServiceId) -> bool {
        !self.memory.quorum_lost.contains(id)
    }

    /// Services below their quorum (sorry server in use), for the metrics.
    pub fn quorum_lost(&self) -> impl Iterator<Item = ServiceId> + '_ {
        self.memory.quorum_lost.iter().copied()
    }

    /// Whether a real server is up as far as the checkers know.
    pub fn is_up(&self, key: &RealKey) -> bool {
        self.reals.get(key).is_some_and(|st| st.up)
    }

    pub fn set_dyn_weight(&mut self, key: RealKey, weight: u32) {
        if let Some(st) = self.reals.get_mut(&key) {
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
                    .is_some_and(|sorry| !self.reals.contains_key(&s.id.real(sorry)))
            });
        if !needed {
            return;
        }
        // One dump per interface, whatever the number of real servers.
        let tables: Vec<(Egress, std::collections::HashMap<std::net::IpAddr, [u8; 6]>)> = self
            .egress
            .iter()
            .map(|e| {
                (
                    e.clone(),
                    netlink::neighbours(e.ifindex).unwrap_or_default(),
                )
            })
            .collect();
        let lookup = |addr: std::net::IpAddr| {
            tables.iter().find_map(|(e, t)| {
                t.get(&addr).map(|mac| NextHop {
                    mac: *mac,
                    src_mac: e.mac,
                    ifindex: e.ifindex,
                })
            })
        };
        for s in &self.plan.services {
            if let Some(sorry) = s.sorry_server {
                self.reals
                    .entry(s.id.real(sorry))
                    .or_insert_with(|| RealState::new(true));
            }
        }
        let mut solicited = std::collections::BTreeSet::new();
        for (key, st) in self.reals.iter_mut() {
            let addr = &key.real.addr;
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
        // Drains read the connection-table thread's counts. Expiry scans the
        // table: not every second. The LRU bounds memory on its own; this
        // only keeps listings and drains honest.
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
        let services = self.dp.services_counted(&self.conn_counts())?;
        let now = Instant::now();
        let mut done = Vec::new();
        for (key, (_, since)) in &self.draining {
            let busy = services
                .iter()
                .filter(|s| s.vip == key.service.vip && s.port == key.service.port)
                .flat_map(|s| s.backends.iter())
                .find(|b| b.addr == key.real.addr && b.port == key.real.port)
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

    /// The whole desired state from the plan and what is known at run time
    /// (see [`policy`]); its transitions are logged and acted on here.
    fn desired(&mut self) -> DesiredState {
        let out = policy::desired(&self.plan, &self.reals, &self.draining, &self.memory);
        self.memory = out.memory;
        for t in &out.transitions {
            self.carry_out(t);
        }
        out.state
    }

    /// Logs a transition in keepalived's words and runs its script.
    fn carry_out(&mut self, t: &Transition) {
        // A group's services share one quorum_up/quorum_down run: the
        // script of the service its checkers report under.
        let group_script = |id: &ServiceId, script: fn(&PlannedService) -> &Option<String>| {
            self.plan
                .services
                .iter()
                .find(|s| s.id == *id && s.checked_as == *id)
                .and_then(|s| script(s).as_deref())
        };
        match t {
            Transition::Unresolved(key) => {
                warn!(
                    "{key} of VS {}: no MAC address in the neighbour table yet; kept out until it resolves",
                    key.service
                );
                if let Some(st) = self.reals.get_mut(key) {
                    st.warned_unresolved = true;
                }
            }
            Transition::Added(key) => info!("Adding service {key} to VS {}", key.service),
            Transition::Removed(key) => {
                info!("Removing service {key} from VS {}", key.service)
            }
            Transition::QuorumLost {
                service,
                alive_weight,
                quorum,
                hysteresis,
            } => {
                warn!(
                    "Lost quorum {alive_weight}-{hysteresis}={} > {quorum} for VS {service}",
                    alive_weight.saturating_sub(*hysteresis),
                );
                run_script(group_script(service, |s| &s.quorum_down));
            }
            Transition::QuorumGained {
                service,
                alive_weight,
                quorum,
                hysteresis,
            } => {
                info!(
                    "Gained quorum {alive_weight}+{hysteresis}={} >= {quorum} for VS {service}",
                    alive_weight + hysteresis,
                );
                run_script(group_script(service, |s| &s.quorum_up));
            }
            Transition::SorryServerIn(s) => {
                warn!("No real server available for VS {s}: using its sorry server")
            }
            Transition::SorryServerOut(s) => {
                info!("VS {s} has real servers again: sorry server out")
            }
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
            .filter(|s| s.omega && !self.memory.quorum_lost.contains(&s.id))
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

/// Starts the thread that counts the connection table every
/// [`COUNT_EVERY`] or [`REST_PER_PASS`] times as long as a pass takes,
/// whichever is longer, off the agent's loop. It ends when the reconciler
/// is gone.
fn spawn_table_thread(
    scanner: TableScanner,
) -> Option<tokio::sync::watch::Receiver<Arc<ConnCounts>>> {
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(ConnCounts::default()));
    let spawned = std::thread::Builder::new()
        .name("conn-table".into())
        .spawn(move || loop {
            let started = thread_cpu_time();
            match scanner.count() {
                Ok(counts) => {
                    if tx.send(Arc::new(counts)).is_err() {
                        return;
                    }
                }
                Err(e) => warn!("reading the connection table: {e}"),
            }
            let cost = thread_cpu_time().saturating_sub(started);
            std::thread::sleep(COUNT_EVERY.max(cost * REST_PER_PASS));
            if tx.is_closed() {
                return;
            }
        });
    match spawned {
        Ok(_) => Some(rx),
        Err(e) => {
            warn!("counting connections in the agent's loop: {e}");
            None
        }
    }
}

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs quorum_up/quorum_down without waiting for it (reaped in the
/// background), by [`crate::script`]'s rule.
fn run_script(script: Option<&str>) {
    let Some(script) = script else { return };
    if let Err(e) = crate::script::spawn_reaped(script, &[]) {
        warn!("running {script}: {e}");
    }
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
