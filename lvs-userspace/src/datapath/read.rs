//! Reading the data path: per-service and per-backend counters (summed over
//! CPUs), verdict counters, the connection table with IPVS states, and the
//! expiry of idle connections.

use std::{collections::BTreeMap, net::IpAddr};

use lvs_common::{
    event, map_names as names, tcp, verdict, Backend, Conn, ConnCounts as MapConnCounts, FlowKey,
    FlowKey6, Persist, PersistKey, PersistKey6, Service, Stats, BE_F_ALIVE, BE_F_IPV6,
    CONN_F_PERSISTENT,
};

use super::{
    desired::{addr6_of, addr_of},
    map_err,
    table::ConnCounts,
    Maps, Protocol, Result, State, SvcKey,
};

/// A backend's address, whichever family it is.
pub fn backend_addr(b: &Backend) -> IpAddr {
    if b.flags & BE_F_IPV6 != 0 {
        IpAddr::V6(addr6_of(&b.addr6_be))
    } else {
        IpAddr::V4(addr_of(b.addr_be))
    }
}

/// One real server as the maps have it.
#[derive(Clone, Debug)]
pub struct BackendView {
    pub id: u32,
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub alive: bool,
    pub mac: [u8; 6],
    pub stats: Stats,
    /// Connections in ESTABLISHED (IPVS ActiveConn).
    pub active: u64,
    /// Connections in any other state (IPVS InActConn).
    pub inactive: u64,
    /// Persistence templates pointing here.
    pub templates: u64,
    /// IPVS `u_threshold` / `l_threshold` (0 = none).
    pub u_threshold: u32,
    pub l_threshold: u32,
}

/// One virtual service as the maps have it.
#[derive(Clone, Debug)]
pub struct ServiceView {
    pub vip: IpAddr,
    pub port: u16,
    pub proto: Option<Protocol>,
    pub svc: Service,
    pub stats: Stats,
    /// In list order.
    pub backends: Vec<BackendView>,
}

/// This director's service and backend ids, as addresses (ids are local:
/// another director numbers the same real server differently).
#[derive(Clone, Debug, Default)]
pub struct IdMap {
    pub services: std::collections::BTreeMap<u32, SvcKey>,
    pub backends: std::collections::BTreeMap<u32, (IpAddr, u16)>,
}

/// A connection entry, decoded (`K`: `FlowKey6` for IPv6).
#[derive(Clone, Debug)]
pub struct ConnView<K = FlowKey> {
    pub key: K,
    pub conn: Conn,
    /// In `half_open`: scheduled, awaiting the client's second packet.
    pub half_open: bool,
    /// Seconds until it expires if idle (IPVS `expire`).
    pub expires_in_s: u64,
}

/// A persistence template, decoded (`K`: `PersistKey6` for IPv6).
#[derive(Clone, Debug)]
pub struct TemplateView<K = PersistKey> {
    pub key: K,
    pub value: Persist,
    pub expires_in_s: u64,
}

type Table<K, V> = aya::maps::HashMap<aya::maps::MapData, K, V>;

/// What one family's expiry pass did: connections gone, templates gone,
/// (backend, state) of each live connection.
type Expired = (usize, usize, Vec<(u32, u32)>);

/// One address family's connection and template tables, for the walks
/// both families share (listing, expiry).
pub trait Family: aya::Pod + Copy {
    type Tmpl: aya::Pod + Copy + Eq + std::hash::Hash;
    fn flow_table(m: &Maps, half_open: bool) -> (&Table<Self, Conn>, &'static str);
    fn flow_table_mut(m: &mut Maps, half_open: bool) -> (&mut Table<Self, Conn>, &'static str);
    fn template_table(m: &Maps, pending: bool) -> (&Table<Self::Tmpl, Persist>, &'static str);
    fn template_table_mut(
        m: &mut Maps,
        pending: bool,
    ) -> (&mut Table<Self::Tmpl, Persist>, &'static str);
    fn tmpl_service(t: &Self::Tmpl) -> u32;
    /// The template a connection of `service` (granularity `mask`) uses.
    fn template_of(flow: &Self, service: u32, mask: u32) -> Self::Tmpl;
}

macro_rules! tables {
    ($conns:ident, $half:ident, $persist:ident, $pending:ident, $n:ident, $nh:ident, $np:ident, $npp:ident) => {
        fn flow_table(m: &Maps, half_open: bool) -> (&Table<Self, Conn>, &'static str) {
            if half_open {
                (&m.$half, names::$nh)
            } else {
                (&m.$conns, names::$n)
            }
        }
        fn flow_table_mut(m: &mut Maps, half_open: bool) -> (&mut Table<Self, Conn>, &'static str) {
            if half_open {
                (&mut m.$half, names::$nh)
            } else {
                (&mut m.$conns, names::$n)
            }
        }
        fn template_table(m: &Maps, pending: bool) -> (&Table<Self::Tmpl, Persist>, &'static str) {
            if pending {
                (&m.$pending, names::$npp)
            } else {
                (&m.$persist, names::$np)
            }
        }
        fn template_table_mut(
            m: &mut Maps,
            pending: bool,
        ) -> (&mut Table<Self::Tmpl, Persist>, &'static str) {
            if pending {
                (&mut m.$pending, names::$npp)
            } else {
                (&mut m.$persist, names::$np)
            }
        }
    };
}

impl Family for FlowKey {
    type Tmpl = PersistKey;
    tables!(
        conns,
        half_open,
        persist,
        persist_pending,
        CONNS,
        HALF_OPEN,
        PERSIST,
        PERSIST_PENDING
    );
    fn tmpl_service(t: &PersistKey) -> u32 {
        t.service
    }
    fn template_of(flow: &FlowKey, service: u32, mask: u32) -> PersistKey {
        PersistKey {
            service,
            client_be: flow.src_be & mask,
        }
    }
}

impl Family for FlowKey6 {
    type Tmpl = PersistKey6;
    tables!(
        conns6,
        half_open6,
        persist6,
        persist_pending6,
        CONNS6,
        HALF_OPEN6,
        PERSIST6,
        PERSIST_PENDING6
    );
    fn tmpl_service(t: &PersistKey6) -> u32 {
        t.service
    }
    fn template_of(flow: &FlowKey6, service: u32, prefix_len: u32) -> PersistKey6 {
        PersistKey6 {
            service,
            client_be: lvs_common::hash::ipv6_prefix(&flow.src_be, prefix_len),
        }
    }
}

/// CLOCK_MONOTONIC in ns: the clock `bpf_ktime_get_coarse_ns` reads (at
/// jiffy resolution).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sum_stats(values: &[Stats]) -> Stats {
    values.iter().fold(Stats::default(), |a, s| Stats {
        packets: a.packets + s.packets,
        bytes: a.bytes + s.bytes,
        conns: a.conns + s.conns,
    })
}

/// A per-CPU counter array (`verdicts`, `events`), each slot summed over CPUs.
fn summed_counters<const N: usize>(
    map: &aya::maps::PerCpuArray<aya::maps::MapData, u64>,
    name: &'static str,
) -> Result<[u64; N]> {
    let mut out = [0u64; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = map.get(&(i as u32), 0).map_err(map_err(name))?.iter().sum();
    }
    Ok(out)
}

/// The `max_entries` a table was created with.
fn max_entries<K: aya::Pod>(map: &Table<K, Conn>, name: &'static str) -> Result<u32> {
    use aya::maps::IterableMap;
    let info = map.map().info().map_err(map_err(name))?;
    Ok(info.max_entries())
}

impl State {
    /// Counters per verdict reason, summed over CPUs, in `verdict::NAMES` order.
    pub fn verdicts(&self) -> Result<[u64; verdict::COUNT as usize]> {
        summed_counters(&self.maps.verdicts, names::VERDICTS)
    }

    /// Counters per event (`lvs_common::event`), summed over CPUs.
    pub fn events(&self) -> Result<[u64; event::COUNT as usize]> {
        summed_counters(&self.maps.events, names::EVENTS)
    }

    fn stats_of(&self, backend: bool, id: u32) -> Result<Stats> {
        let (map, name) = if backend {
            (&self.maps.backend_stats, names::BACKEND_STATS)
        } else {
            (&self.maps.svc_stats, names::SVC_STATS)
        };
        let v = map.get(&id, 0).map_err(map_err(name))?;
        Ok(sum_stats(&v))
    }

    /// Connections `conns` holds at most (what `--conn-table-size` asked
    /// for; the map is created a little larger, see `TableSizes`).
    pub fn conn_table_size(&self) -> Result<u32> {
        let max = max_entries(&self.maps.conns, names::CONNS)?;
        let cpus = super::apply::nr_cpus()? as u32;
        Ok(super::TableSizes::conn_capacity(max, cpus))
    }

    /// Entries `half_open` holds at most (every CPU's share).
    pub fn half_open_size(&self) -> Result<u32> {
        max_entries(&self.maps.half_open, names::HALF_OPEN)
    }

    /// Every IPv4 connection entry, established and half-open, with its
    /// time left.
    pub fn conns(&self) -> Result<Vec<ConnView>> {
        self.flows::<FlowKey>()
    }

    /// Every IPv6 connection entry (`conns6`, `half_open6`).
    pub fn conns6(&self) -> Result<Vec<ConnView<FlowKey6>>> {
        self.flows::<FlowKey6>()
    }

    fn flows<K: Family>(&self) -> Result<Vec<ConnView<K>>> {
        let settings = self.settings()?;
        let now = monotonic_ns();
        let mut out = Vec::new();
        for half_open in [false, true] {
            let (map, name) = K::flow_table(&self.maps, half_open);
            super::table::for_each::<K, Conn>(
                aya::maps::IterableMap::map(map),
                name,
                |key, conn| {
                    let timeout_s = settings
                        .timeouts_s
                        .get(conn.state as usize)
                        .copied()
                        .unwrap_or(0) as u64;
                    let idle_s = now.saturating_sub(conn.last_seen_ns) / 1_000_000_000;
                    out.push(ConnView {
                        key: *key,
                        conn: *conn,
                        half_open,
                        expires_in_s: timeout_s.saturating_sub(idle_s),
                    });
                },
            )?;
        }
        Ok(out)
    }

    /// Every IPv4 persistence template, with its time left.
    pub fn templates(&self) -> Result<Vec<TemplateView>> {
        self.templates_in::<FlowKey>(false)
    }

    /// IPv4 templates of clients whose connections are all still half-open.
    pub fn pending_templates(&self) -> Result<Vec<TemplateView>> {
        self.templates_in::<FlowKey>(true)
    }

    /// Every IPv6 persistence template (`persist6`).
    pub fn templates6(&self) -> Result<Vec<TemplateView<PersistKey6>>> {
        self.templates_in::<FlowKey6>(false)
    }

    fn templates_in<K: Family>(&self, pending: bool) -> Result<Vec<TemplateView<K::Tmpl>>> {
        let now = monotonic_ns();
        let timeouts: std::collections::HashMap<u32, u64> = self
            .applied
            .services
            .values()
            .map(|s| (s.svc.id, s.svc.persist_timeout_s as u64))
            .collect();
        let mut out = Vec::new();
        let (map, name) = K::template_table(&self.maps, pending);
        super::table::for_each::<K::Tmpl, Persist>(
            aya::maps::IterableMap::map(map),
            name,
            |key, value| {
                let timeout_s = timeouts.get(&K::tmpl_service(key)).copied().unwrap_or(0);
                let idle_s = now.saturating_sub(value.last_seen_ns) / 1_000_000_000;
                out.push(TemplateView {
                    key: *key,
                    value: *value,
                    expires_in_s: timeout_s.saturating_sub(idle_s),
                });
            },
        )?;
        Ok(out)
    }

    /// Services with their backends and counters, in VIP/port order; one
    /// pass over the connection table counts the connections.
    pub fn services(&self) -> Result<Vec<ServiceView>> {
        self.services_counted(&self.count_conns()?)
    }

    /// Services with their backends and counters, the connections counted
    /// by an earlier pass (`count_conns`, or a `TableScanner`).
    pub fn services_counted(&self, counts: &ConnCounts) -> Result<Vec<ServiceView>> {
        let mut out = Vec::new();
        for (key, applied) in &self.applied.services {
            let mut backends = Vec::new();
            for &id in &applied.backends {
                let b: &Backend = &self.applied.backends[&id];
                let n = counts.of(id);
                backends.push(BackendView {
                    id,
                    addr: backend_addr(b),
                    port: u16::from_be(b.port_be),
                    weight: b.weight,
                    alive: b.flags & BE_F_ALIVE != 0,
                    u_threshold: b.u_threshold,
                    l_threshold: b.l_threshold,
                    mac: b.mac,
                    stats: self.stats_of(true, id)?,
                    active: n.active,
                    inactive: n.inactive,
                    templates: n.templates,
                });
            }
            out.push(ServiceView {
                vip: key.vip(),
                port: u16::from_be(key.port_be()),
                proto: Protocol::from_number(key.proto()),
                svc: applied.svc,
                stats: self.stats_of(false, applied.svc.id)?,
                backends,
            });
        }
        out.sort_by_key(|s| (s.vip, s.port, s.svc.id));
        Ok(out)
    }

    /// Deletes connections and templates idle past their timeout, as IPVS's
    /// timers do; returns how many went. (The LRU also evicts under pressure.)
    ///
    /// Then re-syncs the data path's per-server connection counts with the
    /// tables (see [`State::reconcile_conn_counts`]).
    pub fn expire(&mut self) -> Result<(usize, usize)> {
        let (c4, t4, mut live) = self.expire_family::<FlowKey>()?;
        let (c6, t6, live6) = self.expire_family::<FlowKey6>()?;
        live.extend(live6);
        self.reconcile_counts(&live)?;
        Ok((c4 + c6, t4 + t6))
    }

    /// `expire` for one family's tables; returns what went and the
    /// (backend, state) of every live connection.
    fn expire_family<K: Family>(&mut self) -> Result<Expired> {
        // Each entry is read again right before it is deleted and kept if
        // the data path touched it since the scan: a SYN or a packet that
        // revived the 5-tuple in between must not lose its entry (the window
        // left is the few microseconds between that read and the delete).
        let conns = self.flows::<K>()?;
        // IPVS keeps a persistence template while it controls connections
        // (and `persistence_timeout` after the last one): the clients of
        // live persistent connections, by template key.
        let mask_of: std::collections::HashMap<u32, u32> = self
            .applied
            .services
            .values()
            .map(|s| (s.svc.id, s.svc.persist_mask_be))
            .collect();
        let controlling: std::collections::HashSet<K::Tmpl> = conns
            .iter()
            .filter(|c| !c.half_open && c.expires_in_s > 0 && c.conn.flags & CONN_F_PERSISTENT != 0)
            .filter_map(|c| {
                let mask = *mask_of.get(&c.conn.service)?;
                Some(K::template_of(&c.key, c.conn.service, mask))
            })
            .collect();
        let mut conns_gone = 0;
        let mut live = Vec::new();
        for c in conns {
            if c.expires_in_s > 0 {
                live.push((c.conn.backend, c.conn.state));
                continue;
            }
            let (map, name) = K::flow_table_mut(&mut self.maps, c.half_open);
            if map
                .get(&c.key, 0)
                .is_ok_and(|now| now.last_seen_ns != c.conn.last_seen_ns)
            {
                live.push((c.conn.backend, c.conn.state)); // used since it was read: not idle
                continue;
            }
            match map.remove(&c.key) {
                Ok(()) => conns_gone += 1,
                Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(name)(e)),
            }
        }
        let mut templates_gone = 0;
        for (pending, t) in self
            .templates_in::<K>(false)?
            .into_iter()
            .map(|t| (false, t))
            .chain(self.templates_in::<K>(true)?.into_iter().map(|t| (true, t)))
        {
            if !pending && controlling.contains(&t.key) {
                // Half its timeout gone: keep it alive for its connections
                // (one write per template per half timeout, not per pass).
                let timeout_s = self
                    .applied
                    .services
                    .values()
                    .find(|s| s.svc.id == K::tmpl_service(&t.key))
                    .map(|s| s.svc.persist_timeout_s as u64)
                    .unwrap_or(0);
                if t.expires_in_s <= timeout_s / 2 {
                    let mut v = t.value;
                    v.last_seen_ns = monotonic_ns();
                    let _ = K::template_table_mut(&mut self.maps, false)
                        .0
                        .insert(t.key, v, 0);
                }
                continue;
            }
            if t.expires_in_s > 0 {
                continue;
            }
            let (map, name) = K::template_table_mut(&mut self.maps, pending);
            if map
                .get(&t.key, 0)
                .is_ok_and(|now| now.last_seen_ns != t.value.last_seen_ns)
            {
                continue;
            }
            match map.remove(&t.key) {
                Ok(()) => templates_gone += 1,
                Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(name)(e)),
            }
        }
        Ok((conns_gone, templates_gone, live))
    }

    /// Makes each backend's count (`backend_conns - backend_conns_adj`)
    /// equal to what `live` (a walk of both tables) holds, by rewriting
    /// the agent's correction. This is how connections the data path never
    /// saw go are uncounted: LRU evictions, entries this agent expired,
    /// entries written or replaced by connection sync. Approximate by what
    /// changes during the walk: a connection opened after it was read is
    /// left out until the next pass, one closed after is counted once more.
    pub fn reconcile_conn_counts(&mut self, live: &[ConnView]) -> Result<()> {
        let mut all: Vec<(u32, u32)> = live
            .iter()
            .map(|c| (c.conn.backend, c.conn.state))
            .collect();
        // Backend ids are one space across both families: the IPv6 tables
        // count too.
        all.extend(
            self.conns6()?
                .iter()
                .filter(|c| c.expires_in_s > 0)
                .map(|c| (c.conn.backend, c.conn.state)),
        );
        self.reconcile_counts(&all)
    }

    /// `reconcile_conn_counts` from (backend, state) pairs of both families.
    fn reconcile_counts(&mut self, live: &[(u32, u32)]) -> Result<()> {
        let mut truth: BTreeMap<u32, MapConnCounts> = BTreeMap::new();
        for &(backend, state) in live {
            let t = truth.entry(backend).or_default();
            if tcp::is_active(state) {
                t.active += 1;
            } else {
                t.inactive += 1;
            }
        }
        let ids: Vec<u32> = self.applied.backends.keys().copied().collect();
        let mut corrected = false;
        for id in ids {
            let counted = self
                .maps
                .backend_conns
                .get(&id, 0)
                .map_err(map_err(names::BACKEND_CONNS))?;
            let t = truth.get(&id).copied().unwrap_or_default();
            let adj = MapConnCounts {
                active: counted.active.wrapping_sub(t.active),
                inactive: counted.inactive.wrapping_sub(t.inactive),
                overloaded: 0, // not read from here
            };
            let old = self
                .maps
                .backend_conns_adj
                .get(&id, 0)
                .map_err(map_err(names::BACKEND_CONNS_ADJ))?;
            if old != adj {
                self.maps
                    .backend_conns_adj
                    .set(id, adj, 0)
                    .map_err(map_err(names::BACKEND_CONNS_ADJ))?;
                corrected = true;
            }
        }
        if corrected {
            // The least-connection trees re-read the corrections.
            let mut settings = self
                .maps
                .settings
                .get(&0, 0)
                .map_err(map_err(names::SETTINGS))?;
            settings.lc_gen = settings.lc_gen.wrapping_add(1);
            self.maps
                .settings
                .set(0, settings, 0)
                .map_err(map_err(names::SETTINGS))?;
        }
        Ok(())
    }

    /// A backend's (active, inactive) connections as the data path's
    /// schedulers see them.
    pub fn conn_counts(&self, id: u32) -> Result<(u64, u64)> {
        let c = self
            .maps
            .backend_conns
            .get(&id, 0)
            .map_err(map_err(names::BACKEND_CONNS))?;
        let a = self
            .maps
            .backend_conns_adj
            .get(&id, 0)
            .map_err(map_err(names::BACKEND_CONNS_ADJ))?;
        let clamp = |v: u64| if (v as i64) < 0 { 0 } else { v };
        Ok((
            clamp(c.active.wrapping_sub(a.active)),
            clamp(c.inactive.wrapping_sub(a.inactive)),
        ))
    }

    /// Ids → addresses of what is applied (both families), for
    /// connection sync.
    pub fn id_map(&self) -> IdMap {
        IdMap {
            services: self
                .applied
                .services
                .iter()
                .map(|(k, s)| (s.svc.id, *k))
                .collect(),
            backends: self
                .applied
                .backends
                .iter()
                .map(|(id, b)| (*id, (backend_addr(b), u16::from_be(b.port_be))))
                .collect(),
        }
    }

    /// The local id of a service's real server, if applied.
    pub fn backend_id(
        &self,
        key: impl Into<SvcKey>,
        addr: impl Into<IpAddr>,
        port: u16,
    ) -> Option<u32> {
        let s = self.applied.services.get(&key.into())?;
        let addr = addr.into();
        s.backends.iter().copied().find(|id| {
            self.applied
                .backends
                .get(id)
                .is_some_and(|b| backend_addr(b) == addr && b.port_be == port.to_be())
        })
    }

    /// The service a key names, if applied.
    pub fn service_id(&self, key: impl Into<SvcKey>) -> Option<u32> {
        self.applied.services.get(&key.into()).map(|s| s.svc.id)
    }
}
