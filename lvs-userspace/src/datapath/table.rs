//! One pass over the connection table and the persistence templates: the
//! per-real-server counts ipvsadm shows (ActiveConn, InActConn, templates)
//! and, when asked, the entries idle past their timeout. Entries are read
//! in batches (`BPF_MAP_LOOKUP_BATCH`, thousands per system call; one key at
//! a time where the kernel has no batch lookup), so a million connections
//! cost a few hundred system calls, not two million.
//!
//! A [`TableScanner`] holds map handles of its own: the agent runs it on a
//! thread of its own, off the loop that owns the data path, and reads its
//! latest [`ConnCounts`] for metrics and drains.

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
    /// Entries in the connection table, expired ones included (what the
    /// table holds).
    pub entries: u64,
}

impl ConnCounts {
    pub fn of(&self, backend: u32) -> BackendCounts {
        self.backends.get(&backend).copied().unwrap_or_default()
    }
}

/// Keys found idle past their timeout.
#[derive(Debug, Default)]
struct Expired {
    conns: Vec<FlowKey>,
    templates: Vec<PersistKey>,
}

/// Timeouts a pass needs: per connection state, per persistent service.
struct Timeouts {
    by_state: Vec<u64>,
    persist_by_service: StdHashMap<u32, u64>,
}

/// Calls `f` for every entry of a hash map, in batches.
fn for_each<K: aya::Pod, V: aya::Pod>(
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

fn for_each_one_by_one<K: aya::Pod, V: aya::Pod>(
    map: &MapData,
    name: &'static str,
    mut f: impl FnMut(&K, &V),
) -> Result<()> {
    let fd = map
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|source| DatapathError::Io {
            what: "dup of a map fd",
            source,
        })?;
    let data = MapData::from_fd(fd).map_err(map_err(name))?;
    let typed: HashMap<MapData, K, V> = Map::HashMap(data).try_into().map_err(map_err(name))?;
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

/// The pass itself: counts, and collects expired keys when `expired` is given.
fn scan(
    conns: &MapData,
    persist: &MapData,
    t: &Timeouts,
    mut expired: Option<&mut Expired>,
) -> Result<ConnCounts> {
    let now = monotonic_ns();
    let idle_s = |last_seen_ns: u64| now.saturating_sub(last_seen_ns) / 1_000_000_000;
    let mut counts = ConnCounts::default();
    for_each::<FlowKey, Conn>(conns, names::CONNS, |k, c| {
        counts.entries += 1;
        let timeout_s = t.by_state.get(c.state as usize).copied().unwrap_or(0);
        if idle_s(c.last_seen_ns) >= timeout_s {
            if let Some(x) = expired.as_deref_mut() {
                x.conns.push(*k);
            }
            return;
        }
        let b = counts.backends.entry(c.backend).or_default();
        if tcp::is_active(c.state) {
            b.active += 1;
        } else {
            b.inactive += 1;
        }
    })?;
    for_each::<PersistKey, Persist>(persist, names::PERSIST, |k, p| {
        let timeout_s = t.persist_by_service.get(&k.service).copied().unwrap_or(0);
        if idle_s(p.last_seen_ns) >= timeout_s {
            if let Some(x) = expired.as_deref_mut() {
                x.templates.push(*k);
            }
            return;
        }
        counts.backends.entry(p.backend).or_default().templates += 1;
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

    /// Per-real-server counts, from one pass over both tables.
    pub fn count_conns(&self) -> Result<ConnCounts> {
        scan(
            self.maps.conns.map(),
            self.maps.persist.map(),
            &self.timeouts()?,
            None,
        )
    }

    /// Deletes connections and templates idle past their timeout, as IPVS's
    /// timers do; returns how many went. (The LRU also evicts under pressure.)
    pub fn expire(&mut self) -> Result<(usize, usize)> {
        let mut x = Expired::default();
        scan(
            self.maps.conns.map(),
            self.maps.persist.map(),
            &self.timeouts()?,
            Some(&mut x),
        )?;
        remove_expired(&mut self.maps.conns, &mut self.maps.persist, x)
    }

    /// A scanner with handles of its own on the tables it reads.
    pub fn table_scanner(&self) -> Result<TableScanner> {
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
        Ok(TableScanner {
            conns: Map::LruHashMap(dup(self.maps.conns.map(), names::CONNS)?)
                .try_into()
                .map_err(map_err(names::CONNS))?,
            persist: Map::LruHashMap(dup(self.maps.persist.map(), names::PERSIST)?)
                .try_into()
                .map_err(map_err(names::PERSIST))?,
            services: Map::HashMap(dup(self.maps.services.map(), names::SERVICES)?)
                .try_into()
                .map_err(map_err(names::SERVICES))?,
            settings: Map::Array(dup(self.maps.settings.map(), names::SETTINGS)?)
                .try_into()
                .map_err(map_err(names::SETTINGS))?,
        })
    }
}

fn remove_expired(
    conns: &mut HashMap<MapData, FlowKey, Conn>,
    persist: &mut HashMap<MapData, PersistKey, Persist>,
    x: Expired,
) -> Result<(usize, usize)> {
    let mut gone = (0, 0);
    for k in &x.conns {
        match conns.remove(k) {
            Ok(()) => gone.0 += 1,
            Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_err(names::CONNS)(e)),
        }
    }
    for k in &x.templates {
        match persist.remove(k) {
            Ok(()) => gone.1 += 1,
            Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_err(names::PERSIST)(e)),
        }
    }
    Ok(gone)
}

/// Counts (and expires) the connection table from its own map handles,
/// for a thread other than the one that owns the data path. Timeouts are
/// read from the maps on each pass, so reloads and `ipvsadm --set`-style
/// changes apply without telling it.
pub struct TableScanner {
    conns: HashMap<MapData, FlowKey, Conn>,
    persist: HashMap<MapData, PersistKey, Persist>,
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

    /// One pass; with `expire`, entries idle past their timeout are deleted
    /// too. Returns the counts and how many connections and templates went.
    pub fn pass(&mut self, expire: bool) -> Result<(ConnCounts, (usize, usize))> {
        let t = self.timeouts()?;
        let mut x = Expired::default();
        let counts = scan(
            self.conns.map(),
            self.persist.map(),
            &t,
            expire.then_some(&mut x),
        )?;
        let gone = remove_expired(&mut self.conns, &mut self.persist, x)?;
        Ok((counts, gone))
    }
}
