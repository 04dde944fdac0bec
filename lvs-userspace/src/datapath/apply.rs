//! Applying a desired state by diff, so unchanged services and backends keep
//! their ids, flows, counters and schedules.
//!
//! Order of writes, so no packet ever sees a half-made service: new and
//! changed backends first, then each changed schedule into a fresh slice of
//! `rings`, then the `services` entry that points at it (one atomic hash
//! update), and only then the removal of what is gone. Last, the VIP
//! pre-filter and a tick, which retires every cached decision.

use std::collections::{BTreeMap, BTreeSet};

use aya::maps::PerCpuValues;
use lvs_common::{
    hash::{ipv6_fold, ipv6_words, vip_filter_bit},
    map_names as names, Backend, Service, Stats, BE_F_ALIVE, BE_F_CONFIGURED, BE_F_IPV6,
    LC_MAX_SERVERS, MAX_BACKENDS, MAX_SERVICES, RING_CAPACITY, SVC_F_PERSISTENT, SVC_F_SCHED_DH,
    SVC_F_SCHED_EXPECTED_DELAY, SVC_F_SCHED_FALLBACK, SVC_F_SCHED_IDLE_FIRST, SVC_F_SCHED_LC,
    SVC_F_SCHED_MH, SVC_F_SCHED_PORT, SVC_F_SCHED_SH, SVC_F_SCHED_WEIGHTED, SVC_F_SLOPPY,
    VIP_FILTER_WORDS,
};

use super::{map_err, Datapath, DatapathError, DesiredState, Maps, Result, SvcKey};
use crate::sched;

/// One service as it is in the maps.
#[derive(Clone, Debug, Default)]
pub(crate) struct AppliedService {
    pub svc: Service,
    /// Backend ids of this service, in list order.
    pub backends: Vec<u32>,
    /// The schedule as written in `rings`.
    pub ring: Vec<u32>,
}

/// The maps' contents as far as `apply` cares, mirrored in memory so a diff
/// costs no map reads. Rebuilt from the maps when a datapath is re-adopted.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub services: BTreeMap<SvcKey, AppliedService>,
    pub backends: BTreeMap<u32, Backend>,
    ring_free: RangeAllocator,
    /// Next backend id to try: ids are handed out round-robin so a freed id
    /// is not re-used while stale flows may still name it.
    next_backend: u32,
    vip_filter: Vec<u64>,
    /// IPVS `last_weight` per backend id (the last weight > 0 applied), for
    /// `mh` tables. Rebuilt as the current weight on re-adoption.
    pub last_weight: BTreeMap<u32, u32>,
}

/// What an `apply` changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub services_added: usize,
    pub services_removed: usize,
    pub services_changed: usize,
    pub backends_added: usize,
    pub backends_removed: usize,
    pub backends_changed: usize,
    pub schedules_rewritten: usize,
    /// Services that could not be applied as asked, and what traffic sees
    /// instead; every other service was applied all the same.
    pub problems: Vec<String>,
}

impl ApplyReport {
    pub fn is_empty(&self) -> bool {
        *self == ApplyReport::default()
    }

    /// Logs and records that service `d` could not be applied as asked.
    fn problem(&mut self, d: &super::DesiredService, what: String) {
        let msg = format!("{}:{} {}: {what}", d.vip, d.port, d.proto.name());
        tracing::error!("{msg}");
        self.problems.push(msg);
    }
}

impl Applied {
    /// Reads what a previous agent left in the maps.
    pub fn read(maps: &Maps) -> Result<Applied> {
        let mut applied = Applied {
            ring_free: RangeAllocator::new(RING_CAPACITY),
            vip_filter: vec![0; VIP_FILTER_WORDS as usize],
            ..Default::default()
        };
        let v4 = maps.services.iter().map(|item| {
            item.map(|(k, s)| (SvcKey::V4(k), s))
                .map_err(map_err(names::SERVICES))
        });
        let v6 = maps.services6.iter().map(|item| {
            item.map(|(k, s)| (SvcKey::V6(k), s))
                .map_err(map_err(names::SERVICES6))
        });
        for item in v4.chain(v6) {
            let (key, svc) = item?;
            let mut ring = Vec::with_capacity(svc.ring_len as usize);
            for i in 0..svc.ring_len {
                ring.push(
                    maps.rings
                        .get(&(svc.ring_start + i), 0)
                        .map_err(map_err(names::RINGS))?,
                );
            }
            if svc.ring_len > 0 {
                applied.ring_free.reserve(svc.ring_start, svc.ring_len);
            }
            applied.services.insert(
                key,
                AppliedService {
                    svc,
                    backends: Vec::new(),
                    ring,
                },
            );
        }
        for (id, item) in maps.backends.iter().enumerate() {
            let b = item.map_err(map_err(names::BACKENDS))?;
            if b.flags & BE_F_CONFIGURED == 0 {
                continue;
            }
            let id = id as u32;
            if let Some(s) = applied
                .services
                .values_mut()
                .find(|s| s.svc.id == b.service)
            {
                s.backends.push(id);
            }
            applied.last_weight.insert(id, b.weight);
            applied.backends.insert(id, b);
            applied.next_backend = (id + 1) % MAX_BACKENDS;
        }
        for (i, item) in maps.vip_filter.iter().enumerate() {
            applied.vip_filter[i] = item.map_err(map_err(names::VIP_FILTER))?;
        }
        Ok(applied)
    }

    fn alloc_service_id(&self) -> Result<u32> {
        let used: BTreeSet<u32> = self.services.values().map(|s| s.svc.id).collect();
        (0..MAX_SERVICES)
            .find(|id| !used.contains(id))
            .ok_or_else(|| DatapathError::Capacity {
                what: "service ids",
                detail: format!("{MAX_SERVICES} services at most"),
            })
    }

    fn alloc_backend_id(&mut self) -> Result<u32> {
        for n in 0..MAX_BACKENDS {
            let id = (self.next_backend + n) % MAX_BACKENDS;
            if !self.backends.contains_key(&id) {
                self.next_backend = (id + 1) % MAX_BACKENDS;
                return Ok(id);
            }
        }
        Err(DatapathError::Capacity {
            what: "backend ids",
            detail: format!("{MAX_BACKENDS} backends at most"),
        })
    }
}

impl Datapath {
    /// Makes the maps match `desired`, touching only what differs.
    pub fn apply(&mut self, desired: &DesiredState) -> Result<ApplyReport> {
        let mut report = ApplyReport::default();
        let mut keep: BTreeSet<SvcKey> = BTreeSet::new();

        for d in &desired.services {
            let key = d.key();
            keep.insert(key);
            let current = self.state.applied.services.get(&key).cloned();
            let id = match &current {
                Some(c) => c.svc.id,
                None => {
                    report.services_added += 1;
                    let id = self.state.applied.alloc_service_id()?;
                    // A re-used service id starts with clean counters.
                    zero_stats(&mut self.state.maps, names::SVC_STATS, id)?;
                    id
                }
            };

            // Backends: same (addr, port) keeps its id (indexed: a service
            // may have thousands).
            let by_addr: std::collections::HashMap<([u32; 4], u16), u32> = current
                .as_ref()
                .map(|c| {
                    c.backends
                        .iter()
                        .map(|id| {
                            let v = &self.state.applied.backends[id];
                            ((backend_addr_words(v), v.port_be), *id)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut ids = Vec::with_capacity(d.backends.len());
            for b in &d.backends {
                let (addr_be, addr6_be, family_flag) = match b.addr {
                    std::net::IpAddr::V4(a) => (u32::from_ne_bytes(a.octets()), [0; 4], 0),
                    std::net::IpAddr::V6(a) => (0, ipv6_words(a.octets()), BE_F_IPV6),
                };
                let port_be = b.port.to_be();
                let words = if family_flag == 0 {
                    [addr_be, 0, 0, 0]
                } else {
                    addr6_be
                };
                let existing = by_addr.get(&(words, port_be)).copied();
                let bid = match existing {
                    Some(bid) => bid,
                    None => {
                        let bid = self.state.applied.alloc_backend_id()?;
                        zero_stats(&mut self.state.maps, names::BACKEND_STATS, bid)?;
                        zero_conn_counts(&mut self.state.maps, bid)?;
                        report.backends_added += 1;
                        bid
                    }
                };
                let value = Backend {
                    mac: b.next_hop.mac,
                    src_mac: b.next_hop.src_mac,
                    ifindex: b.next_hop.ifindex,
                    addr_be,
                    port_be,
                    _pad: 0,
                    flags: BE_F_CONFIGURED | family_flag | if b.alive { BE_F_ALIVE } else { 0 },
                    weight: b.weight,
                    service: id,
                    u_threshold: b.u_threshold,
                    l_threshold: b.l_threshold,
                    addr6_be,
                };
                if self.state.applied.backends.get(&bid) != Some(&value) {
                    if existing.is_some() {
                        report.backends_changed += 1;
                    }
                    self.state
                        .maps
                        .backends
                        .set(bid, value, 0)
                        .map_err(map_err(names::BACKENDS))?;
                    self.state.applied.backends.insert(bid, value);
                }
                ids.push(bid);
            }

            // The schedule over alive backends; down ones weigh nothing.
            let weights: Vec<u32> = d
                .backends
                .iter()
                .map(|b| if b.alive { b.weight } else { 0 })
                .collect();
            let ring: Vec<u32> = if d.algo.is_hashed() {
                self.hashed_table(d, &ids)
            } else if d.algo.is_least_connections() {
                // The list the data path compares: alive servers in IPVS's
                // order (config reversed, see sched::HashDest).
                let list: Vec<u32> = d
                    .backends
                    .iter()
                    .zip(&ids)
                    .rev()
                    .filter(|(b, _)| b.alive)
                    .map(|(_, &bid)| bid)
                    .collect();
                if list.len() > LC_MAX_SERVERS as usize {
                    return Err(DatapathError::Capacity {
                        what: "least-connection real servers",
                        detail: format!(
                            "{} alive in {}:{}, {LC_MAX_SERVERS} at most for {}",
                            list.len(),
                            d.vip,
                            d.port,
                            d.algo.name()
                        ),
                    });
                }
                list
            } else {
                // IPVS walks its list from the head, and keepalived adds
                // the real servers in config order to the head
                // (`list_add_rcu` in `__ip_vs_update_dest`): the config
                // reversed.
                let weights: Vec<u32> = weights.iter().rev().copied().collect();
                let last = ids.len().saturating_sub(1);
                let order = match sched::schedule(d.algo, &weights) {
                    Ok(order) => order,
                    Err(e) => {
                        // Never leave a dead server scheduled, nor the
                        // services after this one unapplied: round robin
                        // over the live servers always fits.
                        report.problem(
                            d,
                            format!("{e}; scheduled as rr over its live real servers until the weights change"),
                        );
                        sched::schedule(sched::Algorithm::Rr, &weights)?
                    }
                };
                order.into_iter().map(|i| ids[last - i]).collect()
            };
            let (mut ring_start, mut ring_len) = current
                .as_ref()
                .map(|c| (c.svc.ring_start, c.svc.ring_len))
                .unwrap_or((0, 0));
            let old_ring = current.as_ref().map(|c| c.ring.clone()).unwrap_or_default();
            let ring_changed = ring != old_ring;
            if ring_changed {
                report.schedules_rewritten += 1;
                ring_len = ring.len() as u32;
                ring_start = 0;
                if ring_len > 0 {
                    match self.state.applied.ring_free.alloc(ring_len) {
                        Some(start) => {
                            ring_start = start;
                            for (i, bid) in ring.iter().enumerate() {
                                self.state
                                    .maps
                                    .rings
                                    .set(ring_start + i as u32, *bid, 0)
                                    .map_err(map_err(names::RINGS))?;
                            }
                        }
                        None => {
                            // Out of slots: this service gets no new
                            // connections (they pass to the kernel) and says
                            // so; the others are still applied.
                            report.problem(
                                d,
                                format!("no room for its {ring_len}-slot schedule ({RING_CAPACITY} slots for all services together); new connections are passed to the kernel"),
                            );
                            ring_len = 0;
                        }
                    }
                }
            }

            let mut flags = 0;
            let (mut persist_timeout_s, mut persist_mask_be) = (0, 0);
            if let Some(p) = d.persistence {
                flags |= SVC_F_PERSISTENT;
                persist_timeout_s = p.timeout_s;
                persist_mask_be = match key {
                    SvcKey::V4(_) => u32::from_ne_bytes(p.netmask.octets()),
                    // IPVS keeps an IPv6 service's granularity as a prefix
                    // length in the same field.
                    SvcKey::V6(_) => u32::from(p.prefix_len6.min(128)),
                };
            }
            if d.sloppy {
                flags |= SVC_F_SLOPPY;
            }
            if d.one_packet && d.proto == super::Protocol::Udp {
                flags |= lvs_common::SVC_F_ONEPACKET;
            }
            flags |= match d.algo {
                sched::Algorithm::Rr => lvs_common::SVC_F_SCHED_RR,
                sched::Algorithm::Wrr => 0,
                sched::Algorithm::Sh { port, fallback } => {
                    SVC_F_SCHED_SH | sched_flags(port, fallback)
                }
                // Sloppy: a director that never saw the SYN (active-active,
                // a takeover) hashes a mid-stream segment to the same server.
                sched::Algorithm::Mh { port, fallback } => {
                    SVC_F_SCHED_MH | SVC_F_SLOPPY | sched_flags(port, fallback)
                }
                sched::Algorithm::Dh => SVC_F_SCHED_DH,
                sched::Algorithm::Lc => SVC_F_SCHED_LC,
                sched::Algorithm::Wlc => SVC_F_SCHED_LC | SVC_F_SCHED_WEIGHTED,
                sched::Algorithm::Sed => {
                    SVC_F_SCHED_LC | SVC_F_SCHED_WEIGHTED | SVC_F_SCHED_EXPECTED_DELAY
                }
                sched::Algorithm::Nq => {
                    SVC_F_SCHED_LC
                        | SVC_F_SCHED_WEIGHTED
                        | SVC_F_SCHED_EXPECTED_DELAY
                        | SVC_F_SCHED_IDLE_FIRST
                }
                sched::Algorithm::Fo => SVC_F_SCHED_LC | lvs_common::SVC_F_SCHED_FO,
                sched::Algorithm::Ovf => SVC_F_SCHED_LC | lvs_common::SVC_F_SCHED_OVF,
            };
            let svc = Service {
                id,
                flags,
                ring_start,
                ring_len,
                persist_timeout_s,
                persist_mask_be,
            };
            if current.as_ref().map(|c| c.svc) != Some(svc) {
                if current.is_some() {
                    report.services_changed += 1;
                }
                let (inserted, name) = match key {
                    SvcKey::V4(k) => (self.state.maps.services.insert(k, svc, 0), names::SERVICES),
                    SvcKey::V6(k) => (
                        self.state.maps.services6.insert(k, svc, 0),
                        names::SERVICES6,
                    ),
                };
                inserted.map_err(map_err(name))?;
            }
            if ring_changed {
                // IPVS restarts its wrr walk when the destinations change;
                // with one cursor per CPU, every CPU restarting at slot 0
                // would hand the first slots most new connections between
                // frequent changes. CPU k restarts at k/n of the schedule
                // instead (CPU 0 at its beginning, as IPVS).
                let starts = cursor_starts(ring_len, nr_cpus()?);
                let zeros = PerCpuValues::try_from(starts).map_err(|source| DatapathError::Io {
                    what: "per-CPU values",
                    source,
                })?;
                self.state
                    .maps
                    .cursors
                    .set(id, zeros, 0)
                    .map_err(map_err(names::CURSORS))?;
                if let Some(c) = &current {
                    if c.svc.ring_len > 0 {
                        self.state
                            .applied
                            .ring_free
                            .free(c.svc.ring_start, c.svc.ring_len);
                    }
                }
            }

            // Backends gone from this service: free their slots (flows that
            // still name them are rescheduled on their next packet).
            if let Some(c) = &current {
                let kept: BTreeSet<u32> = ids.iter().copied().collect();
                for bid in c.backends.iter().filter(|b| !kept.contains(b)) {
                    self.remove_backend(*bid)?;
                    report.backends_removed += 1;
                }
            }
            self.state.applied.services.insert(
                key,
                super::apply::AppliedService {
                    svc,
                    backends: ids,
                    ring,
                },
            );
        }

        // Services gone.
        let gone: Vec<SvcKey> = self
            .applied
            .services
            .keys()
            .filter(|k| !keep.contains(k))
            .copied()
            .collect();
        for key in gone {
            let s = self
                .state
                .applied
                .services
                .remove(&key)
                .expect("listed above");
            let removed = match key {
                SvcKey::V4(k) => self.state.maps.services.remove(&k),
                SvcKey::V6(k) => self.state.maps.services6.remove(&k),
            };
            match removed {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(names::SERVICES)(e)),
            }
            for bid in s.backends {
                self.remove_backend(bid)?;
                report.backends_removed += 1;
            }
            if s.svc.ring_len > 0 {
                self.state
                    .applied
                    .ring_free
                    .free(s.svc.ring_start, s.svc.ring_len);
            }
            report.services_removed += 1;
        }

        self.write_vip_filter()?;
        self.sync_lc_trees()?;
        if !report.is_empty() {
            // A new cache generation, and the least-connection trees
            // re-read weights, liveness and lists.
            self.update_settings(|s| s.lc_gen = s.lc_gen.wrapping_add(1))?;
        }
        Ok(report)
    }

    /// One zeroed tournament tree per least-connection service (the data
    /// path builds it on its first new connection and after every tick),
    /// MAX_LC_TREES at most: further services are scanned per connection.
    fn sync_lc_trees(&mut self) -> Result<()> {
        let want: BTreeSet<u32> = self
            .state
            .applied
            .services
            .values()
            .filter(|s| s.svc.flags & SVC_F_SCHED_LC != 0)
            .map(|s| s.svc.id)
            .take(lvs_common::MAX_LC_TREES as usize)
            .collect();
        let have: BTreeSet<u32> = self
            .state
            .maps
            .lc_trees
            .keys()
            .collect::<std::result::Result<_, _>>()
            .map_err(map_err(names::LC_TREES))?;
        for id in have.difference(&want) {
            match self.state.maps.lc_trees.remove(id) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(names::LC_TREES)(e)),
            }
        }
        for id in want.difference(&have) {
            self.state
                .maps
                .lc_trees
                .insert(id, lvs_common::LcTree::ZERO, 0)
                .map_err(map_err(names::LC_TREES))?;
        }
        Ok(())
    }

    /// The hashed scheduler's table for `d`, as backend ids. The
    /// destination list is IPVS's: alive real servers (keepalived removes
    /// failed ones), newest first (config order reversed).
    fn hashed_table(&mut self, d: &super::DesiredService, ids: &[u32]) -> Vec<u32> {
        let mut dests = Vec::new();
        let mut dest_ids = Vec::new();
        for (b, &bid) in d.backends.iter().zip(ids).rev() {
            let last = self.state.applied.last_weight.entry(bid).or_insert(0);
            if b.weight > 0 {
                *last = b.weight;
            }
            if !b.alive {
                continue;
            }
            dests.push(sched::HashDest {
                addr: b.addr,
                port: b.port,
                weight: b.weight,
                last_weight: *last,
            });
            dest_ids.push(bid);
        }
        sched::table(d.algo, &dests)
            .into_iter()
            .map(|i| dest_ids[i])
            .collect()
    }

    fn remove_backend(&mut self, bid: u32) -> Result<()> {
        self.state.applied.last_weight.remove(&bid);
        self.state
            .maps
            .backends
            .set(bid, Backend::default(), 0)
            .map_err(map_err(names::BACKENDS))?;
        self.state.applied.backends.remove(&bid);
        Ok(())
    }

    fn write_vip_filter(&mut self) -> Result<()> {
        let mut words = vec![0u64; VIP_FILTER_WORDS as usize];
        for key in self.state.applied.services.keys() {
            let (w, b) = vip_filter_bit(match key {
                SvcKey::V4(k) => k.addr_be,
                SvcKey::V6(k) => ipv6_fold(&k.addr_be),
            });
            words[w as usize] |= 1 << b;
        }
        for (i, w) in words.iter().enumerate() {
            if self.state.applied.vip_filter.get(i) != Some(w) {
                self.state
                    .maps
                    .vip_filter
                    .set(i as u32, *w, 0)
                    .map_err(map_err(names::VIP_FILTER))?;
            }
        }
        self.state.applied.vip_filter = words;
        Ok(())
    }
}

/// A backend's address as four words (IPv4: the address, then zeros), to
/// find it again across applies.
fn backend_addr_words(b: &Backend) -> [u32; 4] {
    if b.flags & BE_F_IPV6 != 0 {
        b.addr6_be
    } else {
        [b.addr_be, 0, 0, 0]
    }
}

/// A new backend id starts with no connections (a re-used id's flows were
/// rescheduled off it long ago; any late one is corrected on expiry).
fn zero_conn_counts(maps: &mut Maps, bid: u32) -> Result<()> {
    let zero = lvs_common::ConnCounts::default();
    maps.backend_conns
        .set(bid, zero, 0)
        .map_err(map_err(names::BACKEND_CONNS))?;
    maps.backend_conns_adj
        .set(bid, zero, 0)
        .map_err(map_err(names::BACKEND_CONNS_ADJ))
}

fn sched_flags(port: bool, fallback: bool) -> u32 {
    (if port { SVC_F_SCHED_PORT } else { 0 }) | if fallback { SVC_F_SCHED_FALLBACK } else { 0 }
}

fn zero_stats(maps: &mut Maps, name: &'static str, index: u32) -> Result<()> {
    let zeros = PerCpuValues::try_from(vec![Stats::default(); nr_cpus()?]).map_err(|source| {
        DatapathError::Io {
            what: "per-CPU values",
            source,
        }
    })?;
    let map = if name == names::SVC_STATS {
        &mut maps.svc_stats
    } else {
        &mut maps.backend_stats
    };
    map.set(index, zeros, 0).map_err(map_err(name))
}

/// Where each of `cpus` cursors starts walking a schedule of `len` slots:
/// evenly spread, CPU 0 at slot 0.
pub(crate) fn cursor_starts(len: u32, cpus: usize) -> Vec<u32> {
    (0..cpus as u64)
        .map(|k| (k * len as u64 / cpus.max(1) as u64) as u32)
        .collect()
}

pub(crate) fn nr_cpus() -> Result<usize> {
    aya::util::nr_cpus().map_err(|(_, source)| DatapathError::Pin {
        path: "/sys/devices/system/cpu/possible".into(),
        source,
    })
}

/// First-fit allocator of slices of `rings`, merging freed neighbours.
#[derive(Debug, Default)]
struct RangeAllocator {
    /// Free ranges, start → len, never adjacent.
    free: BTreeMap<u32, u32>,
}

impl RangeAllocator {
    fn new(capacity: u32) -> Self {
        RangeAllocator {
            free: BTreeMap::from([(0, capacity)]),
        }
    }

    fn alloc(&mut self, len: u32) -> Option<u32> {
        let (&start, &free_len) = self.free.iter().find(|(_, &l)| l >= len)?;
        self.free.remove(&start);
        if free_len > len {
            self.free.insert(start + len, free_len - len);
        }
        Some(start)
    }

    /// Marks a range in use (when re-reading the maps).
    fn reserve(&mut self, start: u32, len: u32) {
        let Some((&fs, &fl)) = self.free.range(..=start).next_back() else {
            return;
        };
        if fs + fl < start + len {
            return; // not inside one free range: already reserved
        }
        self.free.remove(&fs);
        if start > fs {
            self.free.insert(fs, start - fs);
        }
        if fs + fl > start + len {
            self.free.insert(start + len, fs + fl - start - len);
        }
    }

    fn free(&mut self, start: u32, len: u32) {
        let mut s = start;
        let mut l = len;
        if let Some((&ps, &pl)) = self.free.range(..start).next_back() {
            if ps + pl == start {
                self.free.remove(&ps);
                s = ps;
                l += pl;
            }
        }
        if let Some(&nl) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            l += nl;
        }
        self.free.insert(s, l);
    }
}

#[cfg(test)]
mod tests {
    use super::{cursor_starts, RangeAllocator};

    /// The data path's walk (`next_in_ring`): the slot at the cursor, then
    /// the cursor moves on, wrapping at the end.
    fn walk(ring: &[usize], cursor: &mut u32) -> usize {
        if *cursor as usize >= ring.len() {
            *cursor = 0;
        }
        let b = ring[*cursor as usize];
        *cursor += 1;
        b
    }

    #[test]
    fn wrr_split_holds_across_16_cpus_with_a_change_every_60_schedulings() {
        // The seed pool 2:3:3:2:2, and the same pool with its last server
        // down: a health flap every 60 new connections, each landing on a
        // pseudo-random one of 16 CPUs.
        let a = [2u32, 3, 3, 2, 2];
        let b = [2u32, 3, 3, 2, 0];
        let rings = [
            crate::sched::schedule(crate::sched::Algorithm::Wrr, &a).unwrap(),
            crate::sched::schedule(crate::sched::Algorithm::Wrr, &b).unwrap(),
        ];
        const CPUS: usize = 16;
        let mut counts = [0u64; 5];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let phases = 2000;
        for phase in 0..phases {
            let ring = &rings[phase % 2];
            let mut cursors = cursor_starts(ring.len() as u32, CPUS);
            for _ in 0..60 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let cpu = (x % CPUS as u64) as usize;
                counts[walk(ring, &mut cursors[cpu])] += 1;
            }
        }
        let total: u64 = counts.iter().sum();
        for i in 0..5 {
            let want = (a[i] as f64 / 12.0 + b[i] as f64 / 10.0) / 2.0;
            let got = counts[i] as f64 / total as f64;
            assert!(
                (got - want).abs() <= 0.03,
                "server {i}: {:.1} % of new connections, weights say {:.1} % ({counts:?})",
                100.0 * got,
                100.0 * want
            );
        }
    }

    #[test]
    fn cursors_start_spread_with_cpu_0_at_the_beginning() {
        assert_eq!(cursor_starts(12, 4), vec![0, 3, 6, 9]);
        assert_eq!(cursor_starts(3, 4), vec![0, 0, 1, 2]);
        assert_eq!(cursor_starts(0, 2), vec![0, 0]);
    }

    #[test]
    fn ranges_are_reused_and_merged() {
        let mut r = RangeAllocator::new(100);
        let a = r.alloc(10).unwrap();
        let b = r.alloc(20).unwrap();
        assert_eq!((a, b), (0, 10));
        r.free(a, 10);
        assert_eq!(r.alloc(5), Some(0));
        r.free(0, 5);
        r.free(b, 20);
        assert_eq!(r.free.len(), 1);
        assert_eq!(r.alloc(100), Some(0));
        let mut r = RangeAllocator::new(100);
        r.reserve(40, 10);
        assert_eq!(r.alloc(45), Some(50));
        assert_eq!(r.alloc(40), Some(0));
        assert_eq!(r.alloc(5), Some(95));
        assert_eq!(r.alloc(1), None);
    }
}
