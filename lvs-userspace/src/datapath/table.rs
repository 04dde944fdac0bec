//! One pass over the connection tables (`conns` and `half_open`) and the
//! persistence templates: the per-real-server counts ipvsadm shows
//! (ActiveConn, InActConn, templates). Entries are read
//! in batches (`BPF_MAP_LOOKUP_BATCH`, thousands per system call; one key at
//! a time where the kernel has no batch lookup), so a million connections
//! cost a few hundred system calls, not two million.
//!
//! A [`TableScanner`] holds map handles of its own: the agent runs it on a
//! thread of its own, off the loop that owns the data path, and reads its
//! latest [`ConnCounts`] for metrics and drains. (Expiry, which re-checks
//! and refreshes entries, stays `State::expire`.)

use std::{
    collections::HashMap as StdHashMap,
    mem::size_of,
    os::fd::{AsFd, AsRawFd},
};

use aya::maps::{Array, HashMap, IterableMap, Map, MapData};
use lvs_common::{
    map_names as names, tcp, Conn, FlowKey, FlowKey6, Persist, Service, ServiceKey, ServiceKey6,
    Settings,
};

use super::read::{monotonic_ns, Family};
use super::{map_err, DatapathError, Maps, Result, State};

/// Counts of one real server (by backend id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendCounts {
    /// Connections in ESTABLISHED (IPVS ActiveConn).
    pub active: u64,
    /// Connections in any other state (IPVS InActConn).
    pub inactive: u64,
    /// Persistence templates pointing here.
    pub templates: u64,
}

/// What one pass counted. Expired entries are not counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnCounts {
    pub backends: StdHashMap<u32, BackendCounts>,
    /// Entries in `conns` (established), expired ones included: what the
    /// table holds.
    pub entries: u64,
    /// Entries in `half_open` (awaiting the client's second packet).
    pub half_open_entries: u64,
}

impl ConnCounts {
    pub fn of(&self, backend: u32) -> BackendCounts {
        self.backends.get(&backend).copied().unwrap_or_default()
    }
}

/// Timeouts a pass needs: per connection state, per persistent service.
struct Timeouts {
    by_state: Vec<u64>,
    persist_by_service: StdHashMap<u32, u64>,
}

/// Calls `f` for every entry of a hash map, in batches.
pub(super) fn for_each<K: aya::Pod, V: aya::Pod>(
    map: &MapData,
    name: &'static str,
    mut f: impl FnMut(&K, &V),
) -> Result<()> {
    const BATCH: usize = 4096;
    let fd = map.fd().as_fd().as_raw_fd();
    let mut keys: Vec<K> = Vec::with_capacity(BATCH);
    let mut values: Vec<V> = Vec::with_capacity(BATCH);
    // The batch token: a bucket index for hash maps (u32); room for more.
    let mut token_in = [0u64; 1];
    let mut token_out = [0u64; 1];
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { token_in.as_ptr() as u64 },
            out_batch: token_out.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: BATCH as u32,
            map_fd: fd as u32,
            elem_flags: 0,
            flags: 0,
        };
        // SAFETY: `attr` is a valid bpf_attr prefix for BPF_MAP_LOOKUP_BATCH;
        // `keys` and `values` have room for `count` entries of the map's key
        // and value sizes (K and V are the map's types, checked when the maps
        // were opened), and the tokens for a u64 each.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr as *mut BatchAttr,
                size_of::<BatchAttr>(),
            )
        };
        let err = (rc < 0).then(std::io::Error::last_os_error);
        if first && err.as_ref().is_some_and(batch_unsupported) {
            return for_each_one_by_one(map, name, f);
        }
        let n = (attr.count as usize).min(BATCH);
        // SAFETY: the kernel filled the first `count` keys and values.
        unsafe {
            keys.set_len(n);
            values.set_len(n);
        }
        for (k, v) in keys.iter().zip(&values) {
            f(k, v);
        }
        keys.clear();
        values.clear();
        match err {
            None => {}
            // The last batch: the table has been walked.
            Some(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Some(e) => {
                return Err(DatapathError::Io {
                    what: "BPF_MAP_LOOKUP_BATCH",
                    source: e,
                })
            }
        }
        token_in = token_out;
        first = false;
    }
}

/// `union bpf_attr` for the BPF_MAP_*_BATCH commands.
#[repr(C)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// Kernels before 5.6 (and map types without batch ops) refuse the command.
fn batch_unsupported(e: &std::io::Error) -> bool {
    // 524 is the kernel's ENOTSUPP.
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EOPNOTSUPP | 524)
    )
}

/// A handle of its own on `map` (a dup of its fd).
fn dup(map: &MapData, name: &'static str) -> Result<MapData> {
    let fd = map
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|source| DatapathError::Io {
            what: "dup of a map fd",
            source,
        })?;
    MapData::from_fd(fd).map_err(map_err(name))
}

fn for_each_one_by_one<K: aya::Pod, V: aya::Pod>(
    map: &MapData,
    name: &'static str,
    mut f: impl FnMut(&K, &V),
) -> Result<()> {
    let typed: HashMap<MapData, K, V> = Map::HashMap(dup(map, name)?)
        .try_into()
        .map_err(map_err(name))?;
    for item in typed.iter() {
        match item {
            Ok((k, v)) => f(&k, &v),
            // An entry evicted or expired between listing and reading.
            Err(aya::maps::MapError::KeyNotFound) => continue,
            Err(e) => return Err(map_err(name)(e)),
        }
    }
    Ok(())
}

/// One family's tables a pass walks, with their names: established,
/// half-open, templates.
type FamilyTables<M> = [(M, &'static str); 3];

/// `K`'s tables in `m`.
fn family_tables<K: Family>(m: &Maps) -> FamilyTables<&MapData> {
    let (conns, c) = K::flow_table(m, false);
    let (half_open, h) = K::flow_table(m, true);
    let (persist, p) = K::template_table(m, false);
    [(conns.map(), c), (half_open.map(), h), (persist.map(), p)]
}

/// The pass itself, over both families (backend ids are one space).
/// Entries idle past their timeout are not counted (ipvsadm does not show
/// what IPVS has expired).
fn scan(
    v4: FamilyTables<&MapData>,
    v6: FamilyTables<&MapData>,
    t: &Timeouts,
) -> Result<ConnCounts> {
    let mut counts = ConnCounts::default();
    scan_family::<FlowKey>(v4, t, &mut counts)?;
    scan_family::<FlowKey6>(v6, t, &mut counts)?;
    Ok(counts)
}

fn scan_family<K: Family>(
    [conns, half_open, persist]: FamilyTables<&MapData>,
    t: &Timeouts,
    counts: &mut ConnCounts,
) -> Result<()> {
    let now = monotonic_ns();
    let idle_s = |last_seen_ns: u64| now.saturating_sub(last_seen_ns) / 1_000_000_000;
    for ((map, name), half) in [(conns, false), (half_open, true)] {
        for_each::<K, Conn>(map, name, |_, c| {
            if half {
                counts.half_open_entries += 1;
            } else {
                counts.entries += 1;
            }
            let timeout_s = t.by_state.get(c.state as usize).copied().unwrap_or(0);
            if idle_s(c.last_seen_ns) >= timeout_s {
                return;
            }
            let b = counts.backends.entry(c.backend).or_default();
            if tcp::is_active(c.state) {
                b.active += 1;
            } else {
                b.inactive += 1;
            }
        })?;
    }
    for_each::<K::Tmpl, Persist>(persist.0, persist.1, |k, p| {
        let timeout_s = t
            .persist_by_service
            .get(&K::tmpl_service(k))
            .copied()
            .unwrap_or(0);
        if idle_s(p.last_seen_ns) < timeout_s {
            counts.backends.entry(p.backend).or_default().templates += 1;
        }
    })?;
    Ok(())
}

/// Owned `tables` as the borrowed ones a pass walks.
fn borrowed(tables: &FamilyTables<MapData>) -> FamilyTables<&MapData> {
    tables.each_ref().map(|(map, name)| (map, *name))
}

/// Handles of their own on `tables` (for a [`TableScanner`]).
fn dup_tables(tables: FamilyTables<&MapData>) -> Result<FamilyTables<MapData>> {
    let [(c, cn), (h, hn), (p, pn)] = tables;
    Ok([(dup(c, cn)?, cn), (dup(h, hn)?, hn), (dup(p, pn)?, pn)])
}

fn timeouts(settings: &Settings, services: impl Iterator<Item = Service>) -> Timeouts {
    Timeouts {
        by_state: settings.timeouts_s.iter().map(|&s| s as u64).collect(),
        persist_by_service: services
            .map(|s| (s.id, s.persist_timeout_s as u64))
            .collect(),
    }
}

impl State {
    fn timeouts(&self) -> Result<Timeouts> {
        Ok(timeouts(
            &self.settings()?,
            self.applied.services.values().map(|s| s.svc),
        ))
    }

    /// Per-real-server counts, from one pass over the tables.
    pub fn count_conns(&self) -> Result<ConnCounts> {
        let m = &self.maps;
        scan(
            family_tables::<FlowKey>(m),
            family_tables::<FlowKey6>(m),
            &self.timeouts()?,
        )
    }

    /// A scanner with handles of its own on the tables it reads.
    pub fn table_scanner(&self) -> Result<TableScanner> {
        Ok(TableScanner {
            v4: dup_tables(family_tables::<FlowKey>(&self.maps))?,
            v6: dup_tables(family_tables::<FlowKey6>(&self.maps))?,
            services6: Map::HashMap(dup(self.maps.services6.map(), names::SERVICES6)?)
                .try_into()
                .map_err(map_err(names::SERVICES6))?,
            services: Map::HashMap(dup(self.maps.services.map(), names::SERVICES)?)
                .try_into()
                .map_err(map_err(names::SERVICES))?,
            settings: Map::Array(dup(self.maps.settings.map(), names::SETTINGS)?)
                .try_into()
                .map_err(map_err(names::SETTINGS))?,
        })
    }
}

/// Counts the connection tables from its own map handles, for a thread
/// other than the one that owns the data path. Timeouts are read from the
/// maps on each pass, so reloads and `ipvsadm --set`-style changes apply
/// without telling it.
pub struct TableScanner {
    v4: FamilyTables<MapData>,
    v6: FamilyTables<MapData>,
    services: HashMap<MapData, ServiceKey, Service>,
    services6: HashMap<MapData, ServiceKey6, Service>,
    settings: Array<MapData, Settings>,
}

impl TableScanner {
    fn timeouts(&self) -> Result<Timeouts> {
        let settings = self.settings.get(&0, 0).map_err(map_err(names::SETTINGS))?;
        let mut services = Vec::new();
        for_each::<ServiceKey, Service>(self.services.map(), names::SERVICES, |_, s| {
            services.push(*s)
        })?;
        for_each::<ServiceKey6, Service>(self.services6.map(), names::SERVICES6, |_, s| {
            services.push(*s)
        })?;
        Ok(timeouts(&settings, services.into_iter()))
    }

    /// One pass.
    pub fn count(&self) -> Result<ConnCounts> {
        scan(borrowed(&self.v4), borrowed(&self.v6), &self.timeouts()?)
    }
}
