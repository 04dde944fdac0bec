//! Types shared by the XDP program (`lvs-ebpf`) and the agent (`lvs-userspace`).
//!
//! Every map key and value is `#[repr(C)]` with explicit padding fields, so the
//! layout the kernel sees, the layout userspace writes and the BTF that bpftool
//! prints are one and the same. Flags are `u32` bit sets, never `bool`/enums.
//!
//! Byte order: addresses and ports are kept in **network byte order** exactly as
//! they appear in the packet (fields named `*_be` hold such values), so the
//! data path compares them without swapping. Everything else is host order.
//!
//! Changing any struct here changes the pinned maps' layout: bump
//! [`LAYOUT_VERSION`] so a running datapath of the old layout is not re-adopted.
#![no_std]

#[cfg(feature = "bench")]
pub mod bench;
pub mod hash;
pub mod tcp;

/// Version of the shared map layout. A pinned datapath of another version is
/// refused by the agent instead of being silently re-used (aya does not check).
pub const LAYOUT_VERSION: u32 = 7;

/// Services (VIP:port:proto) the program knows. Also the size of `svc_stats`.
pub const MAX_SERVICES: u32 = 1024;
/// Backend slots. A backend id indexes `backends` and `backend_stats`.
pub const MAX_BACKENDS: u32 = 65536;
/// Real servers a least-connection service (`lc`, `wlc`, `sed`, `nq`) may
/// have: the data path compares them all for every new connection.
pub const LC_MAX_SERVERS: u32 = 1024;
/// Least-connection services whose choice comes from a tournament tree
/// (`lc_trees`, O(1) per new connection); further ones are scanned.
pub const MAX_LC_TREES: u32 = 64;
/// Total length of all schedule tables together (`rings`).
pub const RING_CAPACITY: u32 = 1 << 20;
/// Default size of the connection table (`conns`); the agent may override it.
pub const DEFAULT_CONN_TABLE_SIZE: u32 = 1 << 20;
/// Persistence templates (`persist`).
pub const PERSIST_TABLE_SIZE: u32 = 1 << 18;
/// Default per-CPU share of the half-open table (`half_open`): new flows
/// wait there for the client's second packet. A SYN flood churns only this
/// table; a legitimate handshake survives `share / flood rate per CPU`
/// seconds (16 Ki entries at 250 k SYN/s on one CPU: 65 ms).
pub const DEFAULT_HALF_OPEN_PER_CPU: u32 = 1 << 14;
/// Per-CPU share of `persist_pending` (templates of flows not yet promoted).
pub const DEFAULT_PENDING_TEMPLATES_PER_CPU: u32 = 1 << 12;
/// Free nodes the kernel's common LRU parks per CPU (`LOCAL_FREE_TARGET` in
/// kernel/bpf/bpf_lru_list.c). It starts evicting when the global free list
/// holds fewer, so a table of N must be created with N plus this per
/// possible CPU to really hold N entries.
pub const LRU_LOCAL_FREE_TARGET: u32 = 128;
/// The flow-cache epoch: `bpf_ktime_get_coarse_ns() >> FLOW_CACHE_EPOCH_SHIFT`
/// (about 1.07 s). A cached decision is good for one epoch at most, so an
/// established flow refreshes its connection entry by itself, with or
/// without an agent bumping the tick.
pub const FLOW_CACHE_EPOCH_SHIFT: u32 = 30;
/// Slots of the per-CPU flow cache; a power of two.
pub const FLOW_CACHE_SLOTS: u32 = 4096;
/// Bits of the VIP address pre-filter (`vip_filter`): `VIP_FILTER_WORDS` × 64.
pub const VIP_FILTER_WORDS: u32 = 1024;
/// Bytes of the `sync_events` ring buffer (connection sync).
pub const SYNC_RING_BYTES: u32 = 256 * 1024;
/// IPv6 extension headers (hop-by-hop, routing, destination options) the
/// data path walks before the transport header; more are passed.
pub const MAX_IPV6_EXT_HEADERS: u32 = 4;
/// Devmap slots for `bpf_redirect_map` (indexed by ifindex).
pub const MAX_IFINDEX: u32 = 4096;

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_ICMPV6: u8 = 58;

/// EtherType of IPv6, host order (the data path and the agent's NA frames).
pub const ETH_P_IPV6: u16 = 0x86DD;
/// The fixed IPv6 header, before any extension header.
pub const IPV6_HDR_LEN: usize = 40;

/// Names of the pinned maps, as `bpftool map dump pinned <dir>/<name>` wants them.
pub mod map_names {
    pub const SERVICES: &str = "services";
    pub const BACKENDS: &str = "backends";
    pub const RINGS: &str = "rings";
    pub const CURSORS: &str = "cursors";
    pub const CONNS: &str = "conns";
    pub const PERSIST: &str = "persist";
    pub const FLOW_CACHE: &str = "flow_cache";
    pub const VIP_FILTER: &str = "vip_filter";
    pub const SETTINGS: &str = "settings";
    pub const SVC_STATS: &str = "svc_stats";
    pub const BACKEND_STATS: &str = "backend_stats";
    pub const VERDICTS: &str = "verdicts";
    pub const TX_PORTS: &str = "tx_ports";
    pub const SYNC_EVENTS: &str = "sync_events";
    pub const LOCAL_MACS: &str = "local_macs";
    pub const HALF_OPEN: &str = "half_open";
    pub const PERSIST_PENDING: &str = "persist_pending";
    pub const EVENTS: &str = "events";
    pub const BACKEND_CONNS: &str = "backend_conns";
    pub const BACKEND_CONNS_ADJ: &str = "backend_conns_adj";
    pub const LC_TREES: &str = "lc_trees";
    pub const LC_PLACE: &str = "lc_place";
    pub const SERVICES6: &str = "services6";
    pub const CONNS6: &str = "conns6";
    pub const HALF_OPEN6: &str = "half_open6";
    pub const PERSIST6: &str = "persist6";
    pub const PERSIST_PENDING6: &str = "persist_pending6";
    pub const FLOW_CACHE6: &str = "flow_cache6";
    /// Program array: the IPv6 program, tail-called for IPv6 frames.
    /// Pinned so that the slot stays filled while no agent runs (the
    /// kernel empties a program array when its last user reference goes).
    pub const IPV6_PATH: &str = "ipv6_path";
    /// Every map the program pins, in documentation order.
    pub const ALL: [&str; 29] = [
        SERVICES,
        BACKENDS,
        RINGS,
        CURSORS,
        CONNS,
        HALF_OPEN,
        PERSIST,
        PERSIST_PENDING,
        FLOW_CACHE,
        VIP_FILTER,
        SETTINGS,
        SVC_STATS,
        BACKEND_STATS,
        BACKEND_CONNS,
        BACKEND_CONNS_ADJ,
        LC_TREES,
        LC_PLACE,
        VERDICTS,
        EVENTS,
        TX_PORTS,
        SYNC_EVENTS,
        LOCAL_MACS,
        SERVICES6,
        CONNS6,
        HALF_OPEN6,
        PERSIST6,
        PERSIST_PENDING6,
        FLOW_CACHE6,
        IPV6_PATH,
    ];
}

/// `services` key: one virtual service.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// VIP, network byte order.
    pub addr_be: u32,
    /// Port, network byte order.
    pub port_be: u16,
    /// IPPROTO_TCP or IPPROTO_UDP.
    pub proto: u8,
    pub _pad: u8,
}

/// An IPv6 address as the maps keep it: the packet's 16 bytes read as four
/// native-endian words (so each word is in network byte order, as `*_be`
/// u32 addresses are), 4-byte aligned for cheap compares and folds.
pub type Ipv6Words = [u32; 4];

/// `services6` key: one IPv6 virtual service (value: [`Service`], shared
/// with IPv4; service ids are one space across both families).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey6 {
    /// VIP, network byte order.
    pub addr_be: Ipv6Words,
    /// Port, network byte order.
    pub port_be: u16,
    /// IPPROTO_TCP or IPPROTO_UDP.
    pub proto: u8,
    pub _pad: u8,
}

/// Service flag: clients stick to a backend through `persist` templates.
pub const SVC_F_PERSISTENT: u32 = 1 << 0;
/// Service flag: a TCP packet without SYN and without a connection entry is
/// scheduled anyway (needed after a takeover without synced connections).
/// Off by default: such packets are passed to the kernel, as IPVS does.
pub const SVC_F_SLOPPY: u32 = 1 << 1;
/// Service flag: the schedule is plain round robin (`rr`), else `wrr`. The
/// program does not look at it (the schedule says it all); listings do.
pub const SVC_F_SCHED_RR: u32 = 1 << 2;
/// Service flag: the schedule is an `sh` bucket table (`SH_TABLE_SIZE`
/// backend ids) indexed by a hash of the client address (IPVS `sh`).
pub const SVC_F_SCHED_SH: u32 = 1 << 3;
/// Service flag: the schedule is an `mh` Maglev lookup table
/// (`MH_TABLE_SIZE` backend ids) indexed by hsiphash of the client (IPVS `mh`).
pub const SVC_F_SCHED_MH: u32 = 1 << 4;
/// Service flag: the schedule is a `dh` bucket table indexed by a hash of
/// the destination (the VIP) (IPVS `dh`).
pub const SVC_F_SCHED_DH: u32 = 1 << 5;
/// Service flag (`sh`/`mh`): hash the client's source port too (`sh-port`,
/// `mh-port`; IPVS `IP_VS_SVC_F_SCHED2`).
pub const SVC_F_SCHED_PORT: u32 = 1 << 6;
/// Service flag (`sh`/`mh`): when the hashed server is unavailable, walk
/// on to the next one (`sh-fallback`, `mh-fallback`; `IP_VS_SVC_F_SCHED1`).
pub const SVC_F_SCHED_FALLBACK: u32 = 1 << 7;
/// Service flag: a least-connection scheduler (`lc`, `wlc`, `sed`, `nq`):
/// the ring lists the service's real servers in IPVS's list order and the
/// data path picks among them by their `backend_conns` counts.
pub const SVC_F_SCHED_LC: u32 = 1 << 8;
/// With SVC_F_SCHED_LC: compare overhead / weight (`wlc`, `sed`, `nq`),
/// else overhead alone (`lc`).
pub const SVC_F_SCHED_WEIGHTED: u32 = 1 << 9;
/// With SVC_F_SCHED_LC: overhead is active + 1 (`sed`, `nq`), else
/// (active << 8) + inactive (`lc`, `wlc`; `ip_vs_dest_conn_overhead`).
pub const SVC_F_SCHED_EXPECTED_DELAY: u32 = 1 << 10;
/// With SVC_F_SCHED_LC: a server with no active connection is taken at once
/// (`nq`, never queue).
pub const SVC_F_SCHED_IDLE_FIRST: u32 = 1 << 11;
/// With SVC_F_SCHED_LC: weighted failover (`fo`): the first server of the
/// highest weight, counts aside.
pub const SVC_F_SCHED_FO: u32 = 1 << 12;
/// With SVC_F_SCHED_LC: overflow (`ovf`): the first server of the highest
/// weight whose active connections do not exceed its weight.
pub const SVC_F_SCHED_OVF: u32 = 1 << 13;
/// One-packet scheduling (keepalived `ops`, IPVS `IP_VS_SVC_F_ONEPACKET`):
/// each UDP datagram is scheduled on its own; no connection entry is kept.
pub const SVC_F_ONEPACKET: u32 = 1 << 14;
/// Any of the hashed schedules: the ring is a table, not a sequence.
pub const SVC_F_SCHED_HASHED: u32 = SVC_F_SCHED_SH | SVC_F_SCHED_MH | SVC_F_SCHED_DH;

/// `services` value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// Index into `svc_stats` and `cursors`; < MAX_SERVICES.
    pub id: u32,
    /// SVC_F_* bits.
    pub flags: u32,
    /// First slot of this service's schedule in `rings`.
    pub ring_start: u32,
    /// Slots in the schedule; 0 = no backend available (packets pass).
    pub ring_len: u32,
    /// Persistence timeout in seconds (with SVC_F_PERSISTENT).
    pub persist_timeout_s: u32,
    /// Persistence granularity netmask, network byte order (255.255.255.255 = per client).
    /// For an IPv6 service (in `services6`) the granularity prefix length,
    /// 0–128 (128 = per client), as IPVS keeps `svc->netmask` for AF_INET6.
    pub persist_mask_be: u32,
}

/// Backend flag: may receive traffic. Cleared when a health check fails:
/// flows and templates pointing at it are rescheduled on their next packet.
pub const BE_F_ALIVE: u32 = 1 << 0;
/// Backend flag: the slot is in use (alive or not). A free slot is all zero.
pub const BE_F_CONFIGURED: u32 = 1 << 1;

/// `backends` value (array indexed by backend id).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backend {
    /// The real server's MAC: the new destination MAC.
    pub mac: [u8; 6],
    /// The egress interface's MAC: the new source MAC.
    pub src_mac: [u8; 6],
    /// Egress interface; equal to the ingress one → XDP_TX, else redirect.
    pub ifindex: u32,
    /// Real server address, network byte order (for listings; DR does not rewrite it).
    pub addr_be: u32,
    /// Real server port, network byte order (for listings).
    pub port_be: u16,
    pub _pad: u16,
    /// BE_F_* bits.
    pub flags: u32,
    /// Configured weight (for listings; the schedule already encodes it).
    pub weight: u32,
    /// Owning service id (for listings).
    pub service: u32,
    /// IPVS `u_threshold`: at this many connections (active + inactive)
    /// the server is overloaded and takes no new ones; 0 = no limit.
    pub u_threshold: u32,
    /// IPVS `l_threshold`: an overloaded server takes new connections
    /// again below this many (0: below 3/4 of `u_threshold`).
    pub l_threshold: u32,
    /// With BE_F_IPV6: the real server's IPv6 address (for listings;
    /// `addr_be` is then 0).
    pub addr6_be: Ipv6Words,
}

/// Backend flag: the real server is an IPv6 one (`addr6_be` holds it).
pub const BE_F_IPV6: u32 = 1 << 2;

/// `backend_conns` / `backend_conns_adj` value (arrays indexed by backend
/// id): IPVS's per-real-server counters, active = TCP ESTABLISHED,
/// inactive = every other connection (half-open, closing, UDP).
///
/// The data path adds to `backend_conns` atomically as its connections are
/// created, change state and go. What it cannot see (LRU evictions, entries
/// the agent expires or sync writes) the agent corrects in
/// `backend_conns_adj`, which only it writes: a server's count is
/// `backend_conns - backend_conns_adj` (wrapping, as i64).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnCounts {
    // u64: BPF has 64-bit atomic adds on every CPU version.
    pub active: u64,
    pub inactive: u64,
    /// IPVS `IP_VS_DEST_F_OVERLOAD` (1 = set): kept by the data path, set
    /// when the server reaches `u_threshold`, cleared below `l_threshold`.
    pub overloaded: u64,
}

/// The kernel's `struct bpf_spin_lock`, by name: the verifier finds the
/// lock of a map value through its BTF type name.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct bpf_spin_lock {
    pub val: u32,
}

/// Leaves of an `LcTree` (a power of two, at least `LC_MAX_SERVERS`).
pub const LC_TREE_LEAVES: usize = LC_MAX_SERVERS as usize;
/// `LcTree::winner` value: no server below this node may be chosen.
pub const LC_NONE: u16 = u16::MAX;
/// `LcLeaf::flags`: the server may take new connections (alive, of this
/// service, weight > 0, not overloaded; `ovf`: active ≤ weight).
pub const LC_LEAF_ELIGIBLE: u32 = 1 << 0;
/// `LcLeaf::flags`: alive, of this service, weight > 0 (thresholds aside).
pub const LC_LEAF_USABLE: u32 = 1 << 1;

/// One real server of a least-connection service, at its place in IPVS's
/// list, with the counts the scheduler compares (`backend_conns -
/// backend_conns_adj`, wrapping; negative reads as 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LcLeaf {
    /// Backend id; u32::MAX = no server here.
    pub backend: u32,
    pub active: u32,
    pub inactive: u32,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// LC_LEAF_* bits.
    pub flags: u32,
    pub _pad: u32,
}

/// `lc_trees` value (hash keyed by service id; the agent creates one,
/// zeroed, per least-connection service): a tournament tree over the
/// service's list, so a new connection reads the winner at the root
/// instead of comparing every server. Node `k`'s children are `2k` and
/// `2k + 1`; leaf `i` is node `LC_TREE_LEAVES + i`; each node holds the
/// leaf IPVS's scan would pick among the leaves below it (the first of
/// the least overhead per weight). Changed only under `lock`: counts by
/// the data path as connections open, change state and close (one path
/// to the root), the whole tree from the maps when `generation` is not
/// `settings.lc_gen` (the agent changed a weight, a server's liveness, the
/// list or its count corrections).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LcTree {
    pub lock: bpf_spin_lock,
    /// `settings.lc_gen` of the last rebuild.
    pub generation: u32,
    /// The service's SVC_F_* bits at the last rebuild.
    pub flags: u32,
    /// Servers in the list at the last rebuild.
    pub len: u32,
    pub winner: [u16; 2 * LC_TREE_LEAVES],
    pub leaves: [LcLeaf; LC_TREE_LEAVES],
}

impl LcTree {
    pub const ZERO: LcTree = LcTree {
        lock: bpf_spin_lock { val: 0 },
        generation: 0,
        flags: 0,
        len: 0,
        winner: [0; 2 * LC_TREE_LEAVES],
        leaves: [LcLeaf {
            backend: 0,
            active: 0,
            inactive: 0,
            weight: 0,
            u_threshold: 0,
            l_threshold: 0,
            flags: 0,
            _pad: 0,
        }; LC_TREE_LEAVES],
    };
}

/// `lc_place` value (array indexed by backend id, written by the data
/// path when it rebuilds a tree): where the backend's leaf is, so a count
/// change finds it. `service_plus1` 0 = in no tree.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LcPlace {
    pub service_plus1: u32,
    pub leaf: u32,
}

/// `conns` and `half_open` key, `flow_cache` tag: the client-side 5-tuple.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src_be: u32,
    pub dst_be: u32,
    pub sport_be: u16,
    pub dport_be: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// `conns6` and `half_open6` key, `flow_cache6` tag: an IPv6 client-side
/// 5-tuple.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey6 {
    pub src_be: Ipv6Words,
    pub dst_be: Ipv6Words,
    pub sport_be: u16,
    pub dport_be: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// Connection flag: entry written by connection sync, not by this director.
pub const CONN_F_SYNCED: u32 = 1 << 0;
/// Connection flag: its service is persistent; its packets keep the
/// persistence template alive (IPVS: a template lives while it controls
/// connections).
pub const CONN_F_PERSISTENT: u32 = 1 << 1;

/// `conns` and `half_open` value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conn {
    pub backend: u32,
    pub service: u32,
    /// `tcp::State` as u32 for TCP, `tcp::STATE_UDP` for UDP.
    pub state: u32,
    /// CONN_F_* bits.
    pub flags: u32,
    /// CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns) of the first packet.
    pub created_ns: u64,
    /// CLOCK_MONOTONIC_COARSE of the last packet that went through the slow path
    /// (at least once per `settings.tick`, see `flow_cache`).
    pub last_seen_ns: u64,
}

/// `persist` key: (service, client address & granularity mask).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PersistKey {
    pub service: u32,
    pub client_be: u32,
}

/// `persist6` / `persist_pending6` key: (service, client address with only
/// its first `persistence_granularity` bits kept).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PersistKey6 {
    pub service: u32,
    pub client_be: Ipv6Words,
}

/// Template flag: written by connection sync, not by this director (it is
/// not sent back, so two directors never keep each other's templates alive).
pub const PERSIST_F_SYNCED: u32 = 1 << 0;

/// `persist` value: the persistence template.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Persist {
    pub backend: u32,
    /// PERSIST_F_* bits.
    pub flags: u32,
    /// CLOCK_MONOTONIC of the last use; the template expires `persist_timeout_s` later.
    pub last_seen_ns: u64,
}

/// `flow_cache` value (per-CPU array, direct-mapped by a hash of the 5-tuple).
///
/// Lets an established flow skip the VIP hash and the connection table: a hit
/// needs the full 5-tuple to match and `tick` to equal `settings.tick`. The
/// agent bumps the tick every second and on every change of services or
/// backends, so each flow still refreshes its `conns` entry once a tick and no
/// cached decision outlives a configuration change.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCacheEntry {
    pub key: FlowKey,
    pub mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ifindex: u32,
    pub backend: u32,
    pub service: u32,
    pub tick: u32,
    /// `now >> FLOW_CACHE_EPOCH_SHIFT` when written: valid in that epoch only.
    pub epoch: u32,
}

/// `flow_cache6` value: [`FlowCacheEntry`] for IPv6 flows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCacheEntry6 {
    pub key: FlowKey6,
    pub mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ifindex: u32,
    pub backend: u32,
    pub service: u32,
    pub tick: u32,
    pub epoch: u32,
}

/// Global flag: schedule non-SYN TCP packets that have no connection entry
/// for every service (as `SVC_F_SLOPPY` does for one).
pub const SET_F_SLOPPY: u32 = 1 << 0;
/// Global flag: report new connections, state changes and new persistence
/// templates in `sync_events`, for connection sync to the backup director.
pub const SET_F_SYNC: u32 = 1 << 1;
/// Global flag (IPVS `expire_nodest_conn = 1`): a packet of a connection
/// whose real server is down is rescheduled to another one (for TCP the
/// new server answers a mid-stream segment with RST). Off: such TCP
/// segments are dropped and the connection waits for its server.
pub const SET_F_EXPIRE_NODEST: u32 = 1 << 2;
/// Global flag (IPVS `expire_quiescent_template = 1`): a persistence
/// template naming a real server at weight 0 (drained, or failed with
/// `inhibit_on_failure`) is treated as expired, so its client's next
/// connection is scheduled anew instead of following the template.
pub const SET_F_EXPIRE_QUIESCENT: u32 = 1 << 3;

/// `SyncEvent::kind`: a connection was created or changed state.
pub const SYNC_CONN: u32 = 1;
/// `SyncEvent::kind`: a persistence template was (re)written.
pub const SYNC_TEMPLATE: u32 = 2;
/// `SyncEvent6::kind`: an IPv6 connection was created or changed state.
pub const SYNC_CONN6: u32 = 3;
/// `SyncEvent6::kind`: an IPv6 persistence template was (re)written.
pub const SYNC_TEMPLATE6: u32 = 4;

/// `sync_events` record (ring buffer), read by the agent's sync sender.
/// Ids are this director's: the agent turns them into addresses before
/// anything leaves the machine.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncEvent {
    /// SYNC_CONN or SYNC_TEMPLATE.
    pub kind: u32,
    /// Connection state (SYNC_CONN).
    pub state: u32,
    pub backend: u32,
    pub service: u32,
    /// The connection (SYNC_CONN).
    pub key: FlowKey,
    /// Masked client address of the template (SYNC_TEMPLATE), network order.
    pub client_be: u32,
    pub _pad: u32,
}

/// `sync_events` record for IPv6 entries: its own, longer record (the
/// IPv4 one stays 40 bytes). The reader tells them apart by `kind`, the
/// first word of both.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncEvent6 {
    /// SYNC_CONN6 or SYNC_TEMPLATE6.
    pub kind: u32,
    pub state: u32,
    pub backend: u32,
    pub service: u32,
    /// The connection (SYNC_CONN6).
    pub key: FlowKey6,
    /// Masked client address of the template (SYNC_TEMPLATE6).
    pub client_be: Ipv6Words,
}

/// `settings` value (array with one element).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// LAYOUT_VERSION of the program that created the maps: a restarted
    /// agent re-adopts pinned maps only when it matches its own.
    pub layout: u32,
    /// Generation of cached decisions; see [`FlowCacheEntry`].
    pub tick: u32,
    /// SET_F_* bits.
    pub flags: u32,
    /// Generation of what the least-connection trees read from the maps
    /// (weights, liveness, lists, the agent's count corrections): the
    /// agent bumps it on each such change; a tree whose generation differs
    /// is rebuilt by the next new connection (`LcTree::generation`).
    pub lc_gen: u32,
    /// Idle timeout in seconds per connection state, indexed by `tcp::State`
    /// (and `tcp::STATE_UDP`). IPVS defaults.
    pub timeouts_s: [u32; tcp::NUM_STATES],
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            layout: LAYOUT_VERSION,
            tick: 1,
            flags: 0,
            lc_gen: 0,
            timeouts_s: tcp::DEFAULT_TIMEOUTS_S,
        }
    }
}

/// `local_macs` value (array indexed by ifindex): the interface's own MAC.
/// A frame to a VIP whose destination MAC is not this is not ours to
/// forward. All zero = not attached there: no check (test-run).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalMac {
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// `svc_stats` / `backend_stats` value (per-CPU arrays; userspace sums CPUs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    /// New connections scheduled.
    pub conns: u64,
}

/// Why the program returned what it returned: index into `verdicts`
/// (per-CPU array of u64 packet counts).
pub mod verdict {
    /// Forwarded out of the ingress interface (XDP_TX).
    pub const TX: u32 = 0;
    /// Forwarded out of another interface (bpf_redirect_map).
    pub const REDIRECT: u32 = 1;
    /// Neither IPv4 nor IPv6 (ARP, LLDP…): passed. (The name predates IPv6
    /// support; kept for the metrics' sake.)
    pub const PASS_NOT_IPV4: u32 = 2;
    /// 802.1Q/802.1ad tagged: passed untouched, not handled.
    pub const PASS_VLAN: u32 = 3;
    /// IP but not to a virtual service (or not TCP/UDP; for IPv6 also
    /// ESP, AH, unknown or more than `MAX_IPV6_EXT_HEADERS` extension
    /// headers, neighbour discovery): passed.
    pub const PASS_NOT_SERVICE: u32 = 4;
    /// IPv4 later fragment to a virtual service whose first fragment was
    /// not seen (or whose server is down), or an IPv6 fragment (Fragment
    /// header) to a virtual service: passed.
    pub const PASS_FRAGMENT: u32 = 5;
    /// Truncated or malformed header: passed, the kernel drops and counts it.
    pub const PASS_MALFORMED: u32 = 6;
    /// TCP without SYN and without a connection entry (not sloppy): passed.
    pub const PASS_NO_CONN: u32 = 7;
    /// Service with no available backend: passed.
    pub const PASS_NO_BACKEND: u32 = 8;
    /// Redirect to a port missing from `tx_ports`: dropped (XDP_ABORTED).
    pub const DROP_NO_TX_PORT: u32 = 9;
    /// Addressed to another host's MAC (flooded by a switch to a backup
    /// director, say): passed, so the kernel drops it; never forwarded.
    pub const PASS_OTHER_HOST: u32 = 10;
    /// A mid-stream TCP segment of a connection whose real server is down:
    /// dropped, as IPVS does with `expire_nodest_conn = 0` (the client
    /// retransmits; a server back within the retransmission time keeps its
    /// connections). With `--expire-nodest-conn` they are rescheduled.
    pub const DROP_DEST_DOWN: u32 = 11;
    pub const COUNT: u32 = 12;
    /// Names in index order, for listings and metrics.
    pub const NAMES: [&str; COUNT as usize] = [
        "tx",
        "redirect",
        "pass_not_ipv4",
        "pass_vlan",
        "pass_not_service",
        "pass_fragment",
        "pass_malformed",
        "pass_no_conn",
        "pass_no_backend",
        "drop_no_tx_port",
        "pass_other_host",
        "drop_dest_down",
    ];
}

/// Things that happen to some packets, counted beside their verdict: index
/// into `events` (per-CPU array of u64). A packet has exactly one verdict
/// and any number of events.
pub mod event {
    /// Forwarded from the flow cache (the established fast path).
    pub const FLOW_CACHE_HIT: u32 = 0;
    /// Sync events lost because `sync_events` was full.
    pub const SYNC_LOST: u32 = 1;
    /// A new flow was scheduled into the half-open table (a SYN, a first
    /// UDP datagram). Far above `promoted`: a SYN flood.
    pub const HALF_OPEN_NEW: u32 = 2;
    /// A half-open flow's second packet arrived: moved into `conns`.
    pub const PROMOTED: u32 = 3;
    /// A retransmitted SYN (or repeated first datagram) of a half-open flow:
    /// sent to the backend it was scheduled to.
    pub const HALF_OPEN_REPEAT: u32 = 4;
    /// An ICMP error about a known connection (fragmentation needed, port
    /// unreachable…), forwarded to that connection's real server.
    pub const ICMP_ERROR_FORWARDED: u32 = 5;
    pub const COUNT: u32 = 6;
    /// Names in index order, for listings and metrics.
    pub const NAMES: [&str; COUNT as usize] = [
        "flow_cache_hit",
        "sync_lost",
        "half_open_new",
        "promoted",
        "half_open_repeat",
        "icmp_error_forwarded",
    ];
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are #[repr(C)], made only of integers and byte
    // arrays, with every padding byte spelled out as a field: any bit pattern
    // is a valid value and none has uninitialised bytes.
    unsafe impl aya::Pod for ServiceKey {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for Service {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for Backend {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for FlowKey {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for Conn {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for PersistKey {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for Persist {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for FlowCacheEntry {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for Settings {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for Stats {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for ConnCounts {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for SyncEvent {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for SyncEvent6 {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for LocalMac {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for ServiceKey6 {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for FlowKey6 {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for PersistKey6 {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for FlowCacheEntry6 {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for LcTree {}
    // SAFETY: as for ServiceKey above.
    unsafe impl aya::Pod for LcPlace {}
}

// The layouts the kernel sees: no implicit padding anywhere.
const _: () = {
    assert!(core::mem::size_of::<ServiceKey>() == 8);
    assert!(core::mem::size_of::<Service>() == 24);
    assert!(core::mem::size_of::<Backend>() == 60);
    assert!(core::mem::size_of::<ServiceKey6>() == 20);
    assert!(core::mem::size_of::<FlowKey6>() == 40);
    assert!(core::mem::size_of::<PersistKey6>() == 20);
    assert!(core::mem::size_of::<FlowCacheEntry6>() == 72);
    assert!(core::mem::size_of::<ConnCounts>() == 24);
    assert!(core::mem::size_of::<FlowKey>() == 16);
    assert!(core::mem::size_of::<Conn>() == 32);
    assert!(core::mem::size_of::<PersistKey>() == 8);
    assert!(core::mem::size_of::<Persist>() == 16);
    assert!(core::mem::size_of::<FlowCacheEntry>() == 48);
    assert!(core::mem::size_of::<Settings>() == 16 + 4 * tcp::NUM_STATES);
    assert!(core::mem::size_of::<Stats>() == 24);
    assert!(core::mem::size_of::<SyncEvent>() == 40);
    assert!(core::mem::size_of::<SyncEvent6>() == 72);
    assert!(core::mem::size_of::<LocalMac>() == 8);
    assert!(core::mem::size_of::<LcLeaf>() == 32);
    assert!(core::mem::size_of::<LcTree>() == 16 + 4 * LC_TREE_LEAVES + 32 * LC_TREE_LEAVES);
    assert!(core::mem::size_of::<LcPlace>() == 8);
};
