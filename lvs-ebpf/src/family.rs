//! The address family a packet's steps run for: its key types and its own
//! tables. `conntrack`, `schedule` and `flow_cache` are written once over
//! [`Family`] and monomorphised, so the IPv4 path compiles to what it was
//! (its 16-byte keys, its maps) and IPv6 gets the same steps with wider keys.

use aya_ebpf::btf_maps::{HashMap, LruHashMap, PerCpuArray};
use lvs_common::{
    hash::{flow_cache_slot, ipv6_fold, ipv6_prefix},
    Conn, FlowCacheEntry, FlowCacheEntry6, FlowKey, FlowKey6, Persist, PersistKey, PersistKey6,
    Service, ServiceKey, ServiceKey6, Settings, DEFAULT_CONN_TABLE_SIZE, DEFAULT_HALF_OPEN_PER_CPU,
    DEFAULT_PENDING_TEMPLATES_PER_CPU, FLOW_CACHE_SLOTS, MAX_SERVICES, PERSIST_TABLE_SIZE,
};

use crate::{
    forward::NextHop,
    maps::{
        CONNS, CONNS6, FLOW_CACHE, FLOW_CACHE6, HALF_OPEN, HALF_OPEN6, NO_COMMON_LRU, PERSIST,
        PERSIST6, PERSIST_PENDING, PERSIST_PENDING6, SERVICES, SERVICES6,
    },
    sync,
};

pub type Services<K> = HashMap<K, Service, { MAX_SERVICES as usize }>;
pub type Conns<K> = LruHashMap<K, Conn, { DEFAULT_CONN_TABLE_SIZE as usize }>;
pub type HalfOpen<K> =
    LruHashMap<K, Conn, { (DEFAULT_HALF_OPEN_PER_CPU * 2) as usize }, NO_COMMON_LRU>;
pub type Templates<K> = LruHashMap<K, Persist, { PERSIST_TABLE_SIZE as usize }>;
pub type PendingTemplates<K> =
    LruHashMap<K, Persist, { (DEFAULT_PENDING_TEMPLATES_PER_CPU * 2) as usize }, NO_COMMON_LRU>;
pub type Cache<E> = PerCpuArray<E, { FLOW_CACHE_SLOTS as usize }>;

/// One address family's keys and tables.
pub trait Family {
    /// Client-side 5-tuple.
    type Flow: Copy + 'static;
    type SvcKey: Copy + 'static;
    type TmplKey: Copy + 'static;
    type CacheEntry: Copy + 'static;

    fn services() -> &'static Services<Self::SvcKey>;
    fn conns() -> &'static Conns<Self::Flow>;
    fn half_open() -> &'static HalfOpen<Self::Flow>;
    fn persist() -> &'static Templates<Self::TmplKey>;
    fn persist_pending() -> &'static PendingTemplates<Self::TmplKey>;
    fn flow_cache() -> &'static Cache<Self::CacheEntry>;

    fn proto(k: &Self::Flow) -> u8;
    fn sport_be(k: &Self::Flow) -> u16;
    /// The client address folded to 32 bits, network order (the address
    /// itself for IPv4, IPVS's `addr_fold` for IPv6): what `sh`/`mh` hash.
    fn src_fold_be(k: &Self::Flow) -> u32;
    /// The VIP folded likewise: what `dh` hashes.
    fn dst_fold_be(k: &Self::Flow) -> u32;
    fn service_key(k: &Self::Flow) -> Self::SvcKey;
    /// The persistence template key: the client masked by the granularity.
    fn template_key(svc: &Service, k: &Self::Flow) -> Self::TmplKey;

    fn cache_slot(k: &Self::Flow) -> u32;
    /// The entry holds this flow's decision for this tick and epoch.
    fn cache_hit(e: &Self::CacheEntry, k: &Self::Flow, tick: u32, epoch: u32) -> bool;
    /// (next hop, service, backend) of a cache entry.
    fn cache_decision(e: &Self::CacheEntry) -> (NextHop, u32, u32);
    fn cache_entry(
        k: &Self::Flow,
        hop: &NextHop,
        service: u32,
        backend: u32,
        tick: u32,
        epoch: u32,
    ) -> Self::CacheEntry;
    /// Empties the entry if it is this flow's.
    fn cache_forget(e: &mut Self::CacheEntry, k: &Self::Flow);

    /// Connection sync events (each family its own ring record).
    fn sync_conn(settings: &Settings, k: &Self::Flow, state: u32, backend: u32, service: u32);
    fn sync_template(settings: &Settings, service: u32, t: &Self::TmplKey, backend: u32);
}

pub enum V4 {}
pub enum V6 {}

/// The parts of a cache entry that are the same for both families.
macro_rules! cache_common {
    ($flow:ty, $entry:ident, $same:path) => {
        #[inline(always)]
        fn cache_hit(e: &$entry, k: &$flow, tick: u32, epoch: u32) -> bool {
            e.tick == tick && e.epoch == epoch && $same(&e.key, k)
        }
        #[inline(always)]
        fn cache_decision(e: &$entry) -> (NextHop, u32, u32) {
            (
                NextHop {
                    mac: e.mac,
                    src_mac: e.src_mac,
                    ifindex: e.ifindex,
                },
                e.service,
                e.backend,
            )
        }
        #[inline(always)]
        fn cache_entry(
            k: &$flow,
            hop: &NextHop,
            service: u32,
            backend: u32,
            tick: u32,
            epoch: u32,
        ) -> $entry {
            $entry {
                key: *k,
                mac: hop.mac,
                src_mac: hop.src_mac,
                ifindex: hop.ifindex,
                backend,
                service,
                tick,
                epoch,
            }
        }
        #[inline(always)]
        fn cache_forget(e: &mut $entry, k: &$flow) {
            if $same(&e.key, k) {
                // No packet has source address 0 and port 0.
                e.key = <$flow>::default();
            }
        }
    };
}

#[inline(always)]
fn same_flow4(a: &FlowKey, b: &FlowKey) -> bool {
    a.src_be == b.src_be
        && a.dst_be == b.dst_be
        && a.sport_be == b.sport_be
        && a.dport_be == b.dport_be
        && a.proto == b.proto
}

/// Word by word: a derived `==` on arrays may become a `bcmp` call, which
/// BPF does not have.
#[inline(always)]
fn same_addr6(a: &[u32; 4], b: &[u32; 4]) -> bool {
    (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) == 0
}

#[inline(always)]
fn same_flow6(a: &FlowKey6, b: &FlowKey6) -> bool {
    same_addr6(&a.src_be, &b.src_be)
        && same_addr6(&a.dst_be, &b.dst_be)
        && a.sport_be == b.sport_be
        && a.dport_be == b.dport_be
        && a.proto == b.proto
}

#[inline(always)]
fn ports(sport_be: u16, dport_be: u16) -> u32 {
    (sport_be as u32) << 16 | dport_be as u32
}

impl Family for V4 {
    type Flow = FlowKey;
    type SvcKey = ServiceKey;
    type TmplKey = PersistKey;
    type CacheEntry = FlowCacheEntry;

    #[inline(always)]
    fn services() -> &'static Services<ServiceKey> {
        &SERVICES
    }
    #[inline(always)]
    fn conns() -> &'static Conns<FlowKey> {
        &CONNS
    }
    #[inline(always)]
    fn half_open() -> &'static HalfOpen<FlowKey> {
        &HALF_OPEN
    }
    #[inline(always)]
    fn persist() -> &'static Templates<PersistKey> {
        &PERSIST
    }
    #[inline(always)]
    fn persist_pending() -> &'static PendingTemplates<PersistKey> {
        &PERSIST_PENDING
    }
    #[inline(always)]
    fn flow_cache() -> &'static Cache<FlowCacheEntry> {
        &FLOW_CACHE
    }
    #[inline(always)]
    fn proto(k: &FlowKey) -> u8 {
        k.proto
    }
    #[inline(always)]
    fn sport_be(k: &FlowKey) -> u16 {
        k.sport_be
    }
    #[inline(always)]
    fn src_fold_be(k: &FlowKey) -> u32 {
        k.src_be
    }
    #[inline(always)]
    fn dst_fold_be(k: &FlowKey) -> u32 {
        k.dst_be
    }
    #[inline(always)]
    fn service_key(k: &FlowKey) -> ServiceKey {
        ServiceKey {
            addr_be: k.dst_be,
            port_be: k.dport_be,
            proto: k.proto,
            _pad: 0,
        }
    }
    #[inline(always)]
    fn template_key(svc: &Service, k: &FlowKey) -> PersistKey {
        PersistKey {
            service: svc.id,
            client_be: k.src_be & svc.persist_mask_be,
        }
    }
    #[inline(always)]
    fn cache_slot(k: &FlowKey) -> u32 {
        flow_cache_slot(k.src_be, k.dst_be, ports(k.sport_be, k.dport_be), k.proto)
    }
    cache_common!(FlowKey, FlowCacheEntry, same_flow4);
    #[inline(always)]
    fn sync_conn(settings: &Settings, k: &FlowKey, state: u32, backend: u32, service: u32) {
        sync::conn(settings, k, state, backend, service);
    }
    #[inline(always)]
    fn sync_template(settings: &Settings, service: u32, t: &PersistKey, backend: u32) {
        sync::template(settings, service, t.client_be, backend);
    }
}

impl Family for V6 {
    type Flow = FlowKey6;
    type SvcKey = ServiceKey6;
    type TmplKey = PersistKey6;
    type CacheEntry = FlowCacheEntry6;

    #[inline(always)]
    fn services() -> &'static Services<ServiceKey6> {
        &SERVICES6
    }
    #[inline(always)]
    fn conns() -> &'static Conns<FlowKey6> {
        &CONNS6
    }
    #[inline(always)]
    fn half_open() -> &'static HalfOpen<FlowKey6> {
        &HALF_OPEN6
    }
    #[inline(always)]
    fn persist() -> &'static Templates<PersistKey6> {
        &PERSIST6
    }
    #[inline(always)]
    fn persist_pending() -> &'static PendingTemplates<PersistKey6> {
        &PERSIST_PENDING6
    }
    #[inline(always)]
    fn flow_cache() -> &'static Cache<FlowCacheEntry6> {
        &FLOW_CACHE6
    }
    #[inline(always)]
    fn proto(k: &FlowKey6) -> u8 {
        k.proto
    }
    #[inline(always)]
    fn sport_be(k: &FlowKey6) -> u16 {
        k.sport_be
    }
    #[inline(always)]
    fn src_fold_be(k: &FlowKey6) -> u32 {
        ipv6_fold(&k.src_be)
    }
    #[inline(always)]
    fn dst_fold_be(k: &FlowKey6) -> u32 {
        ipv6_fold(&k.dst_be)
    }
    #[inline(always)]
    fn service_key(k: &FlowKey6) -> ServiceKey6 {
        ServiceKey6 {
            addr_be: k.dst_be,
            port_be: k.dport_be,
            proto: k.proto,
            _pad: 0,
        }
    }
    #[inline(always)]
    fn template_key(svc: &Service, k: &FlowKey6) -> PersistKey6 {
        PersistKey6 {
            service: svc.id,
            client_be: ipv6_prefix(&k.src_be, svc.persist_mask_be),
        }
    }
    #[inline(always)]
    fn cache_slot(k: &FlowKey6) -> u32 {
        flow_cache_slot(
            ipv6_fold(&k.src_be),
            ipv6_fold(&k.dst_be),
            ports(k.sport_be, k.dport_be),
            k.proto,
        )
    }
    cache_common!(FlowKey6, FlowCacheEntry6, same_flow6);
    #[inline(always)]
    fn sync_conn(settings: &Settings, k: &FlowKey6, state: u32, backend: u32, service: u32) {
        sync::conn6(settings, k, state, backend, service);
    }
    #[inline(always)]
    fn sync_template(settings: &Settings, service: u32, t: &PersistKey6, backend: u32) {
        sync::template6(settings, service, &t.client_be, backend);
    }
}
