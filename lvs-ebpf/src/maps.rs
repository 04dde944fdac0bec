//! Every map of the data path. Pinned by the agent under
//! `/sys/fs/bpf/lvs/<instance>/<name>`; see README.md for who writes what.

use aya_ebpf::{
    btf_maps::{Array, DevMap, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
    macros::btf_map,
};
use lvs_common::{
    event, verdict, Backend, Conn, ConnCounts, FlowCacheEntry, FlowCacheEntry6, FlowKey, FlowKey6,
    LcPlace, LcTree, LocalMac, Persist, PersistKey, PersistKey6, Service, ServiceKey, ServiceKey6,
    Settings, Stats, SyncEvent, DEFAULT_CONN_TABLE_SIZE, DEFAULT_HALF_OPEN_PER_CPU,
    DEFAULT_PENDING_TEMPLATES_PER_CPU, FLOW_CACHE_SLOTS, MAX_BACKENDS, MAX_IFINDEX, MAX_LC_TREES,
    MAX_SERVICES, PERSIST_TABLE_SIZE, RING_CAPACITY, SYNC_RING_BYTES, VIP_FILTER_WORDS,
};

/// (VIP, port, proto) → service. Written by the agent.
#[btf_map(name = "services")]
pub static SERVICES: HashMap<ServiceKey, Service, { MAX_SERVICES as usize }> = HashMap::new();

/// Backend id → where to send. Written by the agent.
#[btf_map(name = "backends")]
pub static BACKENDS: Array<Backend, { MAX_BACKENDS as usize }> = Array::new();

/// Every service's precomputed schedule (backend ids), one slice each.
#[btf_map(name = "rings")]
pub static RINGS: Array<u32, { RING_CAPACITY as usize }> = Array::new();

/// Per-CPU position in each service's schedule.
#[btf_map(name = "cursors")]
pub static CURSORS: PerCpuArray<u32, { MAX_SERVICES as usize }> = PerCpuArray::new();

/// BPF_F_NO_COMMON_LRU: one LRU list per CPU, each holding an equal share
/// of max_entries, and a CPU evicts only from its own share. Right for the
/// flood buffers (an insert takes no global lock); wrong for `conns`, whose
/// capacity must not depend on how RSS spreads flows.
pub const NO_COMMON_LRU: usize = aya_ebpf::bindings::BPF_F_NO_COMMON_LRU as usize;

/// Client 5-tuple → established connection (promoted from `half_open`,
/// or written by sync). One common LRU: it holds what the agent sized it
/// for whatever the CPU count and RSS spread, and floods never insert here.
#[btf_map(name = "conns")]
pub static CONNS: LruHashMap<FlowKey, Conn, { DEFAULT_CONN_TABLE_SIZE as usize }> =
    LruHashMap::new();

/// Client 5-tuple → a new flow waiting for the client's second packet (the
/// handshake's ACK, the next datagram). SYN floods churn this table only.
/// Sized per possible CPU by the agent.
#[btf_map(name = "half_open")]
pub static HALF_OPEN: LruHashMap<
    FlowKey,
    Conn,
    { (DEFAULT_HALF_OPEN_PER_CPU * 2) as usize },
    NO_COMMON_LRU,
> = LruHashMap::new();

/// (service, masked client) → persistence template of established
/// connections. Written on promotion (and by sync): a flood cannot evict it.
#[btf_map(name = "persist")]
pub static PERSIST: LruHashMap<PersistKey, Persist, { PERSIST_TABLE_SIZE as usize }> =
    LruHashMap::new();

/// Templates of clients whose first connection is still half-open, so that
/// parallel SYNs of one client go to one real server (IPVS creates the
/// template on the first SYN); moved to `persist` on promotion.
#[btf_map(name = "persist_pending")]
pub static PERSIST_PENDING: LruHashMap<
    PersistKey,
    Persist,
    { (DEFAULT_PENDING_TEMPLATES_PER_CPU * 2) as usize },
    NO_COMMON_LRU,
> = LruHashMap::new();

/// Per-CPU direct-mapped cache of established flows' forwarding decisions.
#[btf_map(name = "flow_cache")]
pub static FLOW_CACHE: PerCpuArray<FlowCacheEntry, { FLOW_CACHE_SLOTS as usize }> =
    PerCpuArray::new();

/// Bitmap over hashes of VIP addresses: a clear bit means "not a VIP"
/// before L4 parsing and without a hash-map lookup. Written by the agent.
#[btf_map(name = "vip_filter")]
pub static VIP_FILTER: Array<u64, { VIP_FILTER_WORDS as usize }> = Array::new();

/// Global settings: the cache tick, flags, state timeouts.
#[btf_map(name = "settings")]
pub static SETTINGS: Array<Settings, 1> = Array::new();

/// Per-CPU counters per service id.
#[btf_map(name = "svc_stats")]
pub static SVC_STATS: PerCpuArray<Stats, { MAX_SERVICES as usize }> = PerCpuArray::new();

/// Per-CPU counters per backend id.
#[btf_map(name = "backend_stats")]
pub static BACKEND_STATS: PerCpuArray<Stats, { MAX_BACKENDS as usize }> = PerCpuArray::new();

/// Per-CPU packet counts per verdict reason (`lvs_common::verdict`).
#[btf_map(name = "verdicts")]
pub static VERDICTS: PerCpuArray<u64, { verdict::COUNT as usize }> = PerCpuArray::new();

/// Per-CPU counts of events (`lvs_common::event`), beside the verdicts.
#[btf_map(name = "events")]
pub static EVENTS: PerCpuArray<u64, { event::COUNT as usize }> = PerCpuArray::new();

/// ifindex → ifindex, for `bpf_redirect_map` to another interface.
#[btf_map(name = "tx_ports")]
pub static TX_PORTS: DevMap<{ MAX_IFINDEX as usize }> = DevMap::new();

/// New connections, state changes and new templates, for the agent's
/// connection sync (only while `settings.flags` has SET_F_SYNC).
#[btf_map(name = "sync_events")]
pub static SYNC_EVENTS: RingBuf<SyncEvent, { SYNC_RING_BYTES as usize }> = RingBuf::new();

/// ifindex → the interface's own MAC: frames for other hosts are not ours.
#[btf_map(name = "local_macs")]
pub static LOCAL_MACS: Array<LocalMac, { MAX_IFINDEX as usize }> = Array::new();

/// Backend id → its active / inactive connection counts, kept by this
/// program with atomic adds (see `lvs_common::ConnCounts`).
#[btf_map(name = "backend_conns")]
pub static BACKEND_CONNS: Array<ConnCounts, { MAX_BACKENDS as usize }> = Array::new();

/// Backend id → the agent's correction of `backend_conns` (only the agent
/// writes it).
#[btf_map(name = "backend_conns_adj")]
pub static BACKEND_CONNS_ADJ: Array<ConnCounts, { MAX_BACKENDS as usize }> = Array::new();

/// Slot 0: the IPv6 program (`lvs_xdp6`), tail-called for IPv6 frames so
/// that the IPv4 program carries none of the IPv6 code (and each has a
/// whole stack). Set by the agent when it loads the programs; empty, IPv6
/// frames pass as before.
#[btf_map(name = "ipv6_path")]
pub static IPV6_PATH: ProgramArray<1> = ProgramArray::new();

// IPv6: the same tables with 16-byte addresses, beside the IPv4 ones so
// the IPv4 path keeps its small keys. Backends, schedules, counters and
// settings are shared (one id space across both families). The types
// match their IPv4 twins' sizes so `family::Family` can hand out either.

/// (VIP, port, proto) → service, for IPv6 VIPs.
#[btf_map(name = "services6")]
pub static SERVICES6: HashMap<ServiceKey6, Service, { MAX_SERVICES as usize }> = HashMap::new();

/// IPv6 `conns`.
#[btf_map(name = "conns6")]
pub static CONNS6: LruHashMap<FlowKey6, Conn, { DEFAULT_CONN_TABLE_SIZE as usize }> =
    LruHashMap::new();

/// IPv6 `half_open`.
#[btf_map(name = "half_open6")]
pub static HALF_OPEN6: LruHashMap<
    FlowKey6,
    Conn,
    { (DEFAULT_HALF_OPEN_PER_CPU * 2) as usize },
    NO_COMMON_LRU,
> = LruHashMap::new();

/// IPv6 `persist` (client masked by the granularity prefix length).
#[btf_map(name = "persist6")]
pub static PERSIST6: LruHashMap<PersistKey6, Persist, { PERSIST_TABLE_SIZE as usize }> =
    LruHashMap::new();

/// IPv6 `persist_pending`.
#[btf_map(name = "persist_pending6")]
pub static PERSIST_PENDING6: LruHashMap<
    PersistKey6,
    Persist,
    { (DEFAULT_PENDING_TEMPLATES_PER_CPU * 2) as usize },
    NO_COMMON_LRU,
> = LruHashMap::new();

/// IPv6 `flow_cache`.
#[btf_map(name = "flow_cache6")]
pub static FLOW_CACHE6: PerCpuArray<FlowCacheEntry6, { FLOW_CACHE_SLOTS as usize }> =
    PerCpuArray::new();
/// Service id → the tournament tree of a least-connection service (the
/// agent creates and deletes them; see `lc_tree`).
#[btf_map(name = "lc_trees")]
pub static LC_TREES: HashMap<u32, LcTree, { MAX_LC_TREES as usize }> = HashMap::new();

/// Backend id → its leaf in a tree (written by the data path's rebuilds).
#[btf_map(name = "lc_place")]
pub static LC_PLACE: Array<LcPlace, { MAX_BACKENDS as usize }> = Array::new();

/// (source, destination, IP id, protocol) of a fragmented datagram → where
/// its first fragment went, for the later ones (see `frag`). Not pinned:
/// a datagram's fragments arrive within milliseconds.
#[btf_map(name = "frags")]
pub static FRAGS: LruHashMap<crate::frag::FragKey, crate::frag::FragDest, 8192> = LruHashMap::new();
