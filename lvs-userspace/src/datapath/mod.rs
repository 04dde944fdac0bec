//! The datapath API: everything the agent, `lvsadm`, the tests and the
//! bench do to the XDP program and its maps goes through here.
//!
//! - [`Datapath::open`] loads the program, re-using the instance's pinned
//!   maps when they exist (after checking their layout), so a restarted
//!   agent continues with every connection and counter.
//! - [`Datapath::attach`] swaps the program into the interface's pinned XDP
//!   link if there is one (no gap in forwarding), else attaches — native
//!   first, generic as the reported fallback — and pins the link.
//! - [`Datapath::apply`] makes the maps match a [`DesiredState`] by diff.
//! - `read` has the counters and the connection table.

mod apply;
pub mod desired;
mod entries;
pub mod objects;
pub mod owner;
pub mod pins;
pub mod read;
pub mod table;
#[cfg(feature = "test-support")]
pub mod testrun;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use aya::{
    maps::{Array, DevMap, HashMap, Map, MapData, MapError, MapInfo, PerCpuArray},
    programs::{links::FdLink, links::PinnedLink, ProgramError, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use lvs_common::{
    map_names as names, Backend, Conn, ConnCounts, FlowKey, FlowKey6, Persist, PersistKey,
    PersistKey6, Service, ServiceKey, ServiceKey6, Settings, Stats, LAYOUT_VERSION,
};
use thiserror::Error;

pub use apply::ApplyReport;
#[doc(hidden)]
pub use desired::Proto;
pub use desired::{
    DesiredBackend, DesiredService, DesiredState, NextHop, Persistence, Protocol, SvcKey,
};
pub use pins::PinDir;

#[derive(Debug, Error)]
pub enum DatapathError {
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("map `{name}`: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("map `{0}` is missing from the XDP object")]
    MissingMap(&'static str),
    #[error("XDP program: {0}")]
    Program(#[from] ProgramError),
    #[error("the datapath pinned in {dir} has map layout {found}, this binary has layout {expected}; stop it with `lvsd --flush` (or remove {dir}) first")]
    LayoutMismatch {
        dir: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("pinned map {path} has key/value sizes {found:?}, this binary expects {expected:?}; remove the stale pin directory")]
    PinnedMapMismatch {
        path: PathBuf,
        found: (u32, u32),
        expected: (u32, u32),
    },
    #[error(
        "no lvs-xdp datapath is pinned in {0} (is lvsd running, with this --instance and --bpffs?)"
    )]
    NotRunning(PathBuf),
    #[error("interface `{0}` not found")]
    NoSuchInterface(String),
    #[error("looking up interface `{ifname}`: {source}")]
    Interface {
        ifname: String,
        source: crate::netlink::NetlinkError,
    },
    #[error("attaching to `{ifname}` in {mode:?} mode: {source}")]
    Attach {
        ifname: String,
        mode: XdpMode,
        #[source]
        source: ProgramError,
    },
    #[error("bpffs path {path}: {source}")]
    Pin {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("link pin {path}: {reason}")]
    Link { path: PathBuf, reason: String },
    #[error(transparent)]
    Sched(#[from] crate::sched::SchedError),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("map `tx_ports`: {0}")]
    TxPorts(#[from] aya::maps::xdp::XdpMapError),
    #[error("out of {what}: {detail}")]
    Capacity { what: &'static str, detail: String },
}

pub type Result<T, E = DatapathError> = std::result::Result<T, E>;

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> DatapathError {
    move |source| DatapathError::Map { name, source }
}

/// How to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic (skb) mode with a warning.
    #[default]
    Auto,
    Native,
    Generic,
}

/// What `attach` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    pub ifname: String,
    pub ifindex: u32,
    /// The interface's MAC: the source MAC of frames sent out of it.
    pub mac: [u8; 6],
    /// `None` when an existing pinned link was re-used (its mode is kept).
    pub mode: Option<XdpMode>,
    /// The program was swapped into a link a previous agent pinned.
    pub adopted: bool,
    /// Native was asked for (Auto) but refused; generic mode is in use.
    pub fell_back: bool,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Instance name: one pin directory, one set of maps.
    pub instance: String,
    /// bpffs directory holding the instance directories.
    pub bpffs_root: PathBuf,
    /// Pin maps and links (false: everything goes away with this process; tests).
    pub pin: bool,
    /// Connections `conns` holds (only when the map is created, not when
    /// re-adopted), on any number of CPUs and however RSS spreads them.
    pub conn_table_size: u32,
    /// Each CPU's share of `half_open` (new flows awaiting their second
    /// packet; the SYN-flood buffer).
    pub half_open_per_cpu: u32,
}

impl Options {
    pub fn new(instance: &str) -> Self {
        Options {
            instance: instance.to_owned(),
            bpffs_root: PathBuf::from(pins::DEFAULT_ROOT),
            pin: true,
            conn_table_size: lvs_common::DEFAULT_CONN_TABLE_SIZE,
            half_open_per_cpu: lvs_common::DEFAULT_HALF_OPEN_PER_CPU,
        }
    }
    /// Unpinned, for tests: nothing outlives the process.
    pub fn ephemeral() -> Self {
        Options {
            pin: false,
            ..Options::new("ephemeral")
        }
    }
}

/// The `max_entries` the LRU tables are created with.
///
/// `conns` and `persist` are common LRUs: one table whatever the CPU count,
/// but the kernel starts evicting once fewer than
/// [`lvs_common::LRU_LOCAL_FREE_TARGET`] nodes are left on the global free
/// list (the rest sit on the CPUs' local free lists), so they get that much
/// per possible CPU on top of what was asked, and really hold it.
/// `half_open` and `persist_pending` are per-CPU LRUs (a flood on one CPU
/// evicts only that CPU's share): the share is per possible CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSizes {
    pub conns: u32,
    pub half_open: u32,
    pub persist: u32,
    pub persist_pending: u32,
}

impl TableSizes {
    pub fn new(conn_table_size: u32, half_open_per_cpu: u32, possible_cpus: u32) -> Self {
        let slack = lvs_common::LRU_LOCAL_FREE_TARGET * possible_cpus;
        TableSizes {
            conns: conn_table_size.saturating_add(slack),
            half_open: half_open_per_cpu.max(1).saturating_mul(possible_cpus),
            persist: lvs_common::PERSIST_TABLE_SIZE + slack,
            persist_pending: lvs_common::DEFAULT_PENDING_TEMPLATES_PER_CPU * possible_cpus,
        }
    }

    fn for_options(opts: &Options) -> Result<Self> {
        let cpus = apply::nr_cpus()? as u32;
        Ok(Self::new(
            opts.conn_table_size,
            opts.half_open_per_cpu,
            cpus,
        ))
    }

    /// The capacity a `conns` of `max_entries` was asked for.
    pub fn conn_capacity(max_entries: u32, possible_cpus: u32) -> u32 {
        max_entries.saturating_sub(lvs_common::LRU_LOCAL_FREE_TARGET * possible_cpus)
    }
}

/// The maps the agent reads and writes, typed. Public only as what
/// [`read::Family`] selects from (its fields stay the crate's business).
pub struct Maps {
    pub(crate) services: HashMap<MapData, ServiceKey, Service>,
    pub(crate) backends: Array<MapData, Backend>,
    pub(crate) rings: Array<MapData, u32>,
    pub(crate) cursors: PerCpuArray<MapData, u32>,
    pub(crate) conns: HashMap<MapData, FlowKey, Conn>,
    pub(crate) half_open: HashMap<MapData, FlowKey, Conn>,
    pub(crate) persist: HashMap<MapData, PersistKey, Persist>,
    pub(crate) persist_pending: HashMap<MapData, PersistKey, Persist>,
    pub(crate) vip_filter: Array<MapData, u64>,
    pub(crate) settings: Array<MapData, Settings>,
    pub(crate) svc_stats: PerCpuArray<MapData, Stats>,
    pub(crate) backend_stats: PerCpuArray<MapData, Stats>,
    pub(crate) backend_conns: Array<MapData, ConnCounts>,
    pub(crate) backend_conns_adj: Array<MapData, ConnCounts>,
    pub(crate) lc_trees: HashMap<MapData, u32, lvs_common::LcTree>,
    pub(crate) verdicts: PerCpuArray<MapData, u64>,
    pub(crate) events: PerCpuArray<MapData, u64>,
    pub(crate) tx_ports: DevMap<MapData>,
    pub(crate) local_macs: Array<MapData, lvs_common::LocalMac>,
    pub(crate) services6: HashMap<MapData, ServiceKey6, Service>,
    pub(crate) conns6: HashMap<MapData, FlowKey6, Conn>,
    pub(crate) half_open6: HashMap<MapData, FlowKey6, Conn>,
    pub(crate) persist6: HashMap<MapData, PersistKey6, Persist>,
    pub(crate) persist_pending6: HashMap<MapData, PersistKey6, Persist>,
}

/// Key and value sizes of every map, to refuse re-adopting stale pins.
fn expected_sizes(name: &str) -> Option<(u32, u32)> {
    use std::mem::size_of;
    let s = |k: usize, v: usize| Some((k as u32, v as u32));
    match name {
        names::SERVICES => s(size_of::<ServiceKey>(), size_of::<Service>()),
        names::BACKENDS => s(4, size_of::<Backend>()),
        names::RINGS | names::CURSORS => s(4, 4),
        names::CONNS | names::HALF_OPEN => s(size_of::<FlowKey>(), size_of::<Conn>()),
        names::PERSIST | names::PERSIST_PENDING => s(size_of::<PersistKey>(), size_of::<Persist>()),
        names::FLOW_CACHE => s(4, size_of::<lvs_common::FlowCacheEntry>()),
        names::VIP_FILTER | names::VERDICTS | names::EVENTS => s(4, 8),
        names::SETTINGS => s(4, size_of::<Settings>()),
        names::SVC_STATS | names::BACKEND_STATS => s(4, size_of::<Stats>()),
        names::BACKEND_CONNS | names::BACKEND_CONNS_ADJ => s(4, size_of::<ConnCounts>()),
        names::LC_TREES => s(4, size_of::<lvs_common::LcTree>()),
        names::LC_PLACE => s(4, size_of::<lvs_common::LcPlace>()),
        names::TX_PORTS => s(4, 8), // struct bpf_devmap_val: ifindex, prog fd
        names::SYNC_EVENTS => s(0, 0), // a ring buffer has neither
        names::LOCAL_MACS => s(4, 8),
        names::SERVICES6 => s(size_of::<ServiceKey6>(), size_of::<Service>()),
        names::CONNS6 | names::HALF_OPEN6 => s(size_of::<FlowKey6>(), size_of::<Conn>()),
        names::PERSIST6 | names::PERSIST_PENDING6 => {
            s(size_of::<PersistKey6>(), size_of::<Persist>())
        }
        names::FLOW_CACHE6 => s(4, size_of::<lvs_common::FlowCacheEntry6>()),
        names::IPV6_PATH => s(4, 4),
        _ => None,
    }
}

/// The maps and what is applied in them: everything reads go through.
/// Shared by [`Datapath`] (which also owns the program) and [`Inspector`]
/// (read-only, from pins, for `lvsadm`).
pub struct State {
    pub(crate) maps: Maps,
    pub(crate) applied: apply::Applied,
}

pub struct Datapath {
    ebpf: Ebpf,
    pins: Option<PinDir>,
    state: State,
    /// Connection-sync events, until the sync sender takes them.
    sync_events: Option<aya::maps::RingBuf<MapData>>,
    /// Links held by this process when not pinning (dropping them detaches).
    held_links: BTreeMap<String, FdLink>,
    /// The program found pinned maps and continued with them.
    adopted_maps: bool,
    /// Holds the IPv6 program in its slot while this agent runs (see
    /// `load_ipv6_path`).
    _ipv6_path: aya::maps::ProgramArray<MapData>,
}

impl Datapath {
    /// Loads the data path, re-using the instance's pinned maps if any.
    pub fn open(opts: &Options) -> Result<Self> {
        let pins = opts
            .pin
            .then(|| PinDir::new(&opts.bpffs_root, &opts.instance));
        let mut adopted_maps = false;
        if let Some(p) = &pins {
            pins::ensure_bpffs(&opts.bpffs_root).map_err(|source| DatapathError::Pin {
                path: opts.bpffs_root.clone(),
                source,
            })?;
            adopted_maps = check_pinned_layout(p)?;
            std::fs::create_dir_all(p.dir()).map_err(|source| DatapathError::Pin {
                path: p.dir().to_owned(),
                source,
            })?;
        }
        let map_paths: Vec<(&str, PathBuf)> = match &pins {
            Some(p) => names::ALL.iter().map(|n| (*n, p.map(n))).collect(),
            None => Vec::new(),
        };
        let mut loader = EbpfLoader::new();
        for (name, path) in &map_paths {
            loader.map_pin_path(name, path.as_path());
        }
        let sizes = TableSizes::for_options(opts)?;
        loader.map_max_entries(names::CONNS, sizes.conns);
        loader.map_max_entries(names::HALF_OPEN, sizes.half_open);
        loader.map_max_entries(names::PERSIST, sizes.persist);
        loader.map_max_entries(names::PERSIST_PENDING, sizes.persist_pending);
        // IPv6 tables: the same sizes (`--conn-table-size` holds for each
        // family).
        loader.map_max_entries(names::CONNS6, sizes.conns);
        loader.map_max_entries(names::HALF_OPEN6, sizes.half_open);
        loader.map_max_entries(names::PERSIST6, sizes.persist);
        loader.map_max_entries(names::PERSIST_PENDING6, sizes.persist_pending);
        let mut ebpf = loader.load(objects::LVS_XDP)?;
        let maps = take_maps(&mut ebpf)?;
        let sync_events = take(&mut ebpf, names::SYNC_EVENTS)?
            .try_into()
            .map_err(map_err(names::SYNC_EVENTS))?;
        let prog: &mut Xdp = program(&mut ebpf)?;
        prog.load()?;
        let ipv6_path = load_ipv6_path(&mut ebpf)?;

        let mut dp = Datapath {
            ebpf,
            pins,
            state: State {
                maps,
                applied: apply::Applied::default(),
            },
            held_links: BTreeMap::new(),
            adopted_maps,
            sync_events: Some(sync_events),
            _ipv6_path: ipv6_path,
        };
        dp.init_settings()?;
        dp.state.applied = apply::Applied::read(&dp.state.maps)?;
        Ok(dp)
    }

    /// Lets the program redirect frames out of `ifindex` (`attach` does it
    /// for every attached interface).
    pub fn add_tx_port(&mut self, ifindex: u32) -> Result<()> {
        self.state.maps.tx_ports.set(ifindex, ifindex, None, 0)?;
        Ok(())
    }

    /// The MAC frames must be addressed to on `ifindex` to be forwarded
    /// (`attach` sets it; tests set it for test-run's `lo`).
    pub fn set_local_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<()> {
        self.state
            .maps
            .local_macs
            .set(ifindex, lvs_common::LocalMac { mac, _pad: [0; 2] }, 0)
            .map_err(map_err(names::LOCAL_MACS))
    }

    /// The ring of connection-sync events (once: the sync sender owns it).
    /// Events flow only while sync is on (`set_sync`).
    pub fn take_sync_events(&mut self) -> Option<aya::maps::RingBuf<MapData>> {
        self.sync_events.take()
    }

    /// Turns the data path's connection-sync events on or off.
    pub fn set_sync(&mut self, on: bool) -> Result<()> {
        self.set_settings_flag(lvs_common::SET_F_SYNC, on)
    }

    /// IPVS's `expire_nodest_conn`: on, a packet of a connection whose real
    /// server is down is rescheduled (a TCP one then gets a RST from its new
    /// server); off (the default, as IPVS), such TCP segments are dropped
    /// and the connection waits for its server to come back.
    pub fn set_expire_nodest(&mut self, on: bool) -> Result<()> {
        self.set_settings_flag(lvs_common::SET_F_EXPIRE_NODEST, on)
    }

    /// IPVS's `expire_quiescent_template`: on, a persistence template naming
    /// a real server at weight 0 is treated as expired (persistent clients
    /// of a drained or failed-and-inhibited server are scheduled anew).
    pub fn set_expire_quiescent(&mut self, on: bool) -> Result<()> {
        self.set_settings_flag(lvs_common::SET_F_EXPIRE_QUIESCENT, on)
    }

    /// Sets or clears one `SET_F_*` bit of the settings.
    fn set_settings_flag(&mut self, flag: u32, on: bool) -> Result<()> {
        self.update_settings(|s| {
            if on {
                s.flags |= flag;
            } else {
                s.flags &= !flag;
            }
        })
    }

    /// keepalived's `lvs_timeouts` (ipvsadm --set tcp tcpfin udp): idle
    /// timeouts of ESTABLISHED, FIN_WAIT and UDP entries; `None` = IPVS's
    /// default. Applies to existing entries too, as in IPVS.
    pub fn set_timeouts(
        &mut self,
        tcp: Option<u32>,
        tcpfin: Option<u32>,
        udp: Option<u32>,
    ) -> Result<()> {
        use lvs_common::tcp as t;
        self.update_settings(|s| {
            let d = t::DEFAULT_TIMEOUTS_S;
            s.timeouts_s[t::ESTABLISHED as usize] = tcp.unwrap_or(d[t::ESTABLISHED as usize]);
            s.timeouts_s[t::FIN_WAIT as usize] = tcpfin.unwrap_or(d[t::FIN_WAIT as usize]);
            s.timeouts_s[t::STATE_UDP as usize] = udp.unwrap_or(d[t::STATE_UDP as usize]);
        })
    }

    /// Whether `open` continued with maps a previous agent pinned.
    pub fn adopted_maps(&self) -> bool {
        self.adopted_maps
    }

    pub fn pin_dir(&self) -> Option<&Path> {
        self.pins.as_ref().map(|p| p.dir())
    }

    /// The loaded XDP program (tests run it with BPF_PROG_TEST_RUN).
    pub fn program(&mut self) -> Result<&mut Xdp> {
        program(&mut self.ebpf)
    }

    fn init_settings(&mut self) -> Result<()> {
        let current = self
            .maps
            .settings
            .get(&0, 0)
            .map_err(map_err(names::SETTINGS))?;
        if current.layout != LAYOUT_VERSION {
            // A fresh map is all zero: start from IPVS's defaults.
            self.state
                .maps
                .settings
                .set(0, Settings::default(), 0)
                .map_err(map_err(names::SETTINGS))?;
        }
        Ok(())
    }

    /// Changes global settings (flags, timeouts); keeps the layout and tick.
    pub fn update_settings(&mut self, f: impl FnOnce(&mut Settings)) -> Result<()> {
        let mut s = self.settings()?;
        f(&mut s);
        s.layout = LAYOUT_VERSION;
        s.tick = s.tick.wrapping_add(1);
        self.state
            .maps
            .settings
            .set(0, s, 0)
            .map_err(map_err(names::SETTINGS))
    }

    /// Ends the current flow-cache generation: every established flow takes
    /// the slow path once (refreshing its connection entry). The agent calls
    /// this every second; `apply` calls it after each change.
    pub fn tick(&mut self) -> Result<()> {
        self.update_settings(|_| {})
    }

    /// Attaches the program to `ifname`, or swaps it into the interface's
    /// pinned link when a previous agent left one.
    pub fn attach(&mut self, ifname: &str, mode: AttachMode) -> Result<Attached> {
        let link = interface(ifname)?;
        let (ifindex, mac) = (link.index, link.mac);
        self.add_tx_port(ifindex)?;
        self.set_local_mac(ifindex, mac)?;
        let link_pin = self.pins.as_ref().map(|p| p.link(ifname));
        if let Some(path) = link_pin.as_ref().filter(|p| p.exists()) {
            let pinned = PinnedLink::from_pin(path).map_err(|e| DatapathError::Link {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let link =
                aya::programs::xdp::XdpLink::try_from(FdLink::from(pinned)).map_err(|e| {
                    DatapathError::Link {
                        path: path.clone(),
                        reason: e.to_string(),
                    }
                })?;
            let prog = program(&mut self.ebpf)?;
            let id = prog.attach_to_link(link)?;
            // The pin keeps the link (and now our program) attached; drop our fd.
            drop(prog.take_link(id)?);
            return Ok(Attached {
                ifname: ifname.to_owned(),
                ifindex,
                mac,
                mode: None,
                adopted: true,
                fell_back: false,
            });
        }

        let attempts: &[XdpMode] = match mode {
            AttachMode::Auto => &[XdpMode::Driver, XdpMode::Skb],
            AttachMode::Native => &[XdpMode::Driver],
            AttachMode::Generic => &[XdpMode::Skb],
        };
        let mut last_err = None;
        for (n, &m) in attempts.iter().enumerate() {
            let prog = program(&mut self.ebpf)?;
            match prog.attach_to_if_index(ifindex, m) {
                Ok(id) => {
                    let link =
                        FdLink::try_from(prog.take_link(id)?).map_err(|e| DatapathError::Link {
                            path: PathBuf::from(ifname),
                            reason: format!("not a bpf_link (kernel too old?): {e}"),
                        })?;
                    match &link_pin {
                        Some(path) => {
                            link.pin(path).map_err(|e| DatapathError::Link {
                                path: path.clone(),
                                reason: e.to_string(),
                            })?;
                        }
                        None => {
                            self.held_links.insert(ifname.to_owned(), link);
                        }
                    }
                    return Ok(Attached {
                        ifname: ifname.to_owned(),
                        ifindex,
                        mac,
                        mode: Some(m),
                        adopted: false,
                        fell_back: n > 0,
                    });
                }
                Err(source) => {
                    last_err = Some(DatapathError::Attach {
                        ifname: ifname.to_owned(),
                        mode: m,
                        source,
                    })
                }
            }
        }
        Err(last_err.expect("at least one attach attempt"))
    }

    /// Detaches from every interface and removes the instance's pins: the
    /// data path stops (clean shutdown without `--keep-datapath`).
    pub fn destroy(mut self) -> Result<()> {
        self.held_links.clear();
        if let Some(p) = self.pins.take() {
            for ifname in p.linked_interfaces() {
                let path = p.link(&ifname);
                if let Ok(pinned) = PinnedLink::from_pin(&path) {
                    // Unpinning drops the last reference: the link detaches.
                    let _ = pinned.unpin();
                }
            }
            remove_pin_dir(&p)?;
        }
        Ok(())
    }
}

impl std::ops::Deref for Datapath {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Datapath {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl State {
    pub fn settings(&self) -> Result<Settings> {
        self.maps
            .settings
            .get(&0, 0)
            .map_err(map_err(names::SETTINGS))
    }
}

/// Read-only access to a running instance's pinned maps, without loading
/// or touching the program: `lvsadm` works whether `lvsd` runs or not.
pub struct Inspector {
    state: State,
    dir: PathBuf,
}

impl Inspector {
    pub fn open(root: &Path, instance: &str) -> Result<Self> {
        let p = PinDir::new(root, instance);
        if !p.map(names::SERVICES).exists() {
            return Err(DatapathError::NotRunning(p.dir().to_owned()));
        }
        check_pinned_layout(&p)?;
        let pinned = |name: &'static str| -> Result<MapData> {
            MapData::from_pin(p.map(name)).map_err(map_err(name))
        };
        macro_rules! typed {
            ($name:expr, $variant:ident) => {
                Map::$variant(pinned($name)?)
                    .try_into()
                    .map_err(map_err($name))?
            };
        }
        let maps = Maps {
            services: typed!(names::SERVICES, HashMap),
            backends: typed!(names::BACKENDS, Array),
            rings: typed!(names::RINGS, Array),
            cursors: typed!(names::CURSORS, PerCpuArray),
            conns: typed!(names::CONNS, LruHashMap),
            half_open: typed!(names::HALF_OPEN, LruHashMap),
            persist: typed!(names::PERSIST, LruHashMap),
            persist_pending: typed!(names::PERSIST_PENDING, LruHashMap),
            vip_filter: typed!(names::VIP_FILTER, Array),
            settings: typed!(names::SETTINGS, Array),
            svc_stats: typed!(names::SVC_STATS, PerCpuArray),
            backend_stats: typed!(names::BACKEND_STATS, PerCpuArray),
            backend_conns: typed!(names::BACKEND_CONNS, Array),
            backend_conns_adj: typed!(names::BACKEND_CONNS_ADJ, Array),
            lc_trees: typed!(names::LC_TREES, HashMap),
            verdicts: typed!(names::VERDICTS, PerCpuArray),
            events: typed!(names::EVENTS, PerCpuArray),
            tx_ports: typed!(names::TX_PORTS, DevMap),
            local_macs: typed!(names::LOCAL_MACS, Array),
            services6: typed!(names::SERVICES6, HashMap),
            conns6: typed!(names::CONNS6, LruHashMap),
            half_open6: typed!(names::HALF_OPEN6, LruHashMap),
            persist6: typed!(names::PERSIST6, LruHashMap),
            persist_pending6: typed!(names::PERSIST_PENDING6, LruHashMap),
        };
        let applied = apply::Applied::read(&maps)?;
        Ok(Inspector {
            state: State { maps, applied },
            dir: p.dir().to_owned(),
        })
    }

    pub fn pin_dir(&self) -> &Path {
        &self.dir
    }
}

impl std::ops::Deref for Inspector {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp> {
    ebpf.program_mut(objects::PROGRAM)
        .ok_or(DatapathError::Program(ProgramError::UnexpectedProgramType))?
        .try_into()
        .map_err(DatapathError::Program)
}

/// Loads the IPv6 program and puts it in `ipv6_path`, where the main
/// program tail-calls it for IPv6 frames. The map is kept open (and
/// pinned with the others): the kernel empties a program array when its
/// last user reference goes.
fn load_ipv6_path(ebpf: &mut Ebpf) -> Result<aya::maps::ProgramArray<MapData>> {
    let prog: &mut Xdp = ebpf
        .program_mut(objects::PROGRAM6)
        .ok_or(DatapathError::Program(ProgramError::UnexpectedProgramType))?
        .try_into()
        .map_err(DatapathError::Program)?;
    prog.load()?;
    let fd = prog.fd()?.try_clone().map_err(|source| DatapathError::Io {
        what: "dup of the IPv6 program fd",
        source,
    })?;
    let mut table: aya::maps::ProgramArray<MapData> = take(ebpf, names::IPV6_PATH)?
        .try_into()
        .map_err(map_err(names::IPV6_PATH))?;
    table.set(0, &fd, 0).map_err(map_err(names::IPV6_PATH))?;
    Ok(table)
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<Map> {
    ebpf.take_map(name).ok_or(DatapathError::MissingMap(name))
}

fn take_maps(ebpf: &mut Ebpf) -> Result<Maps> {
    macro_rules! typed {
        ($name:expr) => {
            take(ebpf, $name)?.try_into().map_err(map_err($name))?
        };
    }
    Ok(Maps {
        services: typed!(names::SERVICES),
        backends: typed!(names::BACKENDS),
        rings: typed!(names::RINGS),
        cursors: typed!(names::CURSORS),
        conns: typed!(names::CONNS),
        half_open: typed!(names::HALF_OPEN),
        persist: typed!(names::PERSIST),
        persist_pending: typed!(names::PERSIST_PENDING),
        vip_filter: typed!(names::VIP_FILTER),
        settings: typed!(names::SETTINGS),
        svc_stats: typed!(names::SVC_STATS),
        backend_stats: typed!(names::BACKEND_STATS),
        backend_conns: typed!(names::BACKEND_CONNS),
        backend_conns_adj: typed!(names::BACKEND_CONNS_ADJ),
        lc_trees: typed!(names::LC_TREES),
        verdicts: typed!(names::VERDICTS),
        events: typed!(names::EVENTS),
        tx_ports: typed!(names::TX_PORTS),
        local_macs: typed!(names::LOCAL_MACS),
        services6: typed!(names::SERVICES6),
        conns6: typed!(names::CONNS6),
        half_open6: typed!(names::HALF_OPEN6),
        persist6: typed!(names::PERSIST6),
        persist_pending6: typed!(names::PERSIST_PENDING6),
    })
}

/// Before re-using pinned maps: same sizes, same layout version. Returns
/// whether there were pinned maps to re-use.
fn check_pinned_layout(p: &PinDir) -> Result<bool> {
    let mut found_any = false;
    for name in names::ALL {
        let path = p.map(name);
        if !path.exists() {
            continue;
        }
        found_any = true;
        let info = MapInfo::from_pin(&path).map_err(map_err(name))?;
        let found = (info.key_size(), info.value_size());
        let expected = expected_sizes(name).expect("every pinned map has sizes");
        if found != expected {
            return Err(DatapathError::PinnedMapMismatch {
                path,
                found,
                expected,
            });
        }
    }
    let settings_path = p.map(names::SETTINGS);
    if settings_path.exists() {
        let data = MapData::from_pin(&settings_path).map_err(map_err(names::SETTINGS))?;
        let settings: Array<MapData, Settings> = Map::Array(data)
            .try_into()
            .map_err(map_err(names::SETTINGS))?;
        let s = settings.get(&0, 0).map_err(map_err(names::SETTINGS))?;
        if s.layout != LAYOUT_VERSION && s.layout != 0 {
            return Err(DatapathError::LayoutMismatch {
                dir: p.dir().to_owned(),
                found: s.layout,
                expected: LAYOUT_VERSION,
            });
        }
    }
    Ok(found_any)
}

fn remove_pin_dir(p: &PinDir) -> Result<()> {
    match std::fs::remove_dir_all(p.dir()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DatapathError::Pin {
            path: p.dir().to_owned(),
            source,
        }),
    }
}

/// Removes an instance's pins without loading anything (`lvsd --flush`).
pub fn flush_instance(root: &Path, instance: &str) -> Result<()> {
    let p = PinDir::new(root, instance);
    for ifname in p.linked_interfaces() {
        if let Ok(pinned) = PinnedLink::from_pin(p.link(&ifname)) {
            let _ = pinned.unpin();
        }
    }
    remove_pin_dir(&p)
}

/// A network interface of this thread's namespace, by name (netlink: the
/// one way lvs-xdp looks interfaces up).
pub fn interface(ifname: &str) -> Result<crate::netlink::Link> {
    crate::netlink::link_by_name(ifname).map_err(|e| match e {
        crate::netlink::NetlinkError::NoSuchLink(_) => {
            DatapathError::NoSuchInterface(ifname.to_owned())
        }
        source => DatapathError::Interface {
            ifname: ifname.to_owned(),
            source,
        },
    })
}

/// The index of a network interface in this thread's namespace.
pub fn ifindex(ifname: &str) -> Result<u32> {
    Ok(interface(ifname)?.index)
}
