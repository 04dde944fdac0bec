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
    map_names as names, tcp, Conn, FlowKey, Persist, PersistKey, Service, ServiceKey, Settings,
};

use super::{map_err, read::monotonic_ns, DatapathError, Result, State};

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

/// The pass itself. Entries idle past their timeout are not counted
/// (ipvsadm does not show what IPVS has expired).
fn scan(
    conns: &MapData,
    half_open: &MapData,
    persist: &MapData,
    t: &Timeouts,
) -> Result<ConnCounts> {
    let now = monotonic_ns();
    let idle_s = |last_seen_ns: u64| now.saturating_sub(last_seen_ns) / 1_000_000_000;
    let mut counts = ConnCounts::default();
    for (map, name, half) in [
        (conns, names::CONNS, false),
        (half_open, names::HALF_OPEN, true),
    ] {
        for_each::<FlowKey, Conn>(map, name, |_, c| {
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
    for_each::<PersistKey, Persist>(persist, names::PERSIST, |k, p| {
        let timeout_s = t.persist_by_service.get(&k.service).copied().unwrap_or(0);
        if idle_s(p.last_seen_ns) < timeout_s {
            counts.backends.entry(p.backend).or_default().templates += 1;
        }
    })?;
    Ok(counts)
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
        scan(
            self.maps.conns.map(),
            self.maps.half_open.map(),
            self.maps.persist.map(),
            &self.timeouts()?,
        )
    }

    /// A scanner with handles of its own on the tables it reads.
    pub fn table_scanner(&self) -> Result<TableScanner> {
        Ok(TableScanner {
            conns: dup(self.maps.conns.map(), names::CONNS)?,
            half_open: dup(self.maps.half_open.map(), names::HALF_OPEN)?,
            persist: dup(self.maps.persist.map(), names::PERSIST)?,
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
    conns: MapData,
    half_open: MapData,
    persist: MapData,
    services: HashMap<MapData, ServiceKey, Service>,
    settings: Array<MapData, Settings>,
}

impl TableScanner {
    fn timeouts(&self) -> Result<Timeouts> {
        let settings = self.settings.get(&0, 0).map_err(map_err(names::SETTINGS))?;
        let mut services = Vec::new();
        for_each::<ServiceKey, Service>(self.services.map(), names::SERVICES, |_, s| {
            services.push(*s)
        })?;
        Ok(timeouts(&settings, services.into_iter()))
    }

    /// One pass.
    pub fn count(&self) -> Result<ConnCounts> {
        scan(
            &self.conns,
            &self.half_open,
            &self.persist,
            &self.timeouts()?,
        )
    }
}
