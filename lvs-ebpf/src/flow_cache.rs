//! The established-flow fast path: a per-CPU, direct-mapped cache of
//! forwarding decisions in front of the service and connection lookups.
//!
//! Sound because (1) only plain ACK/data segments (and UDP) use it, which
//! never change an ESTABLISHED connection's state, and (2) an entry is only
//! good for the `settings.tick` it was written in: the agent bumps the tick
//! every second (so every flow still refreshes its `conns` entry, timestamps
//! and LRU position once a second) and on every change to services or
//! backends (so a dead backend's flows are rescheduled on their next packet).

use lvs_common::{hash::flow_cache_slot, tcp, FlowCacheEntry, FlowKey};

use crate::{forward::NextHop, maps::FLOW_CACHE, parse::Packet};

const NOT_CACHEABLE: u8 = tcp::FLAG_SYN | tcp::FLAG_FIN | tcp::FLAG_RST;

#[inline(always)]
fn slot(key: &FlowKey) -> u32 {
    let ports = (key.sport_be as u32) << 16 | key.dport_be as u32;
    flow_cache_slot(key.src_be, key.dst_be, ports, key.proto)
}

#[inline(always)]
fn same_flow(a: &FlowKey, b: &FlowKey) -> bool {
    a.src_be == b.src_be
        && a.dst_be == b.dst_be
        && a.sport_be == b.sport_be
        && a.dport_be == b.dport_be
        && a.proto == b.proto
}

/// A cached decision for this packet, if it may use one.
#[inline(always)]
pub fn lookup(pkt: &Packet, tick: u32) -> Option<(NextHop, u32, u32)> {
    if pkt.tcp_flags & NOT_CACHEABLE != 0 {
        return None;
    }
    let entry = FLOW_CACHE.get_ptr(slot(&pkt.key))?;
    // SAFETY: per-CPU slot; only this CPU writes it, and not while we read.
    let e = unsafe { &*entry };
    if e.tick != tick || !same_flow(&e.key, &pkt.key) {
        return None;
    }
    Some((
        NextHop {
            mac: e.mac,
            src_mac: e.src_mac,
            ifindex: e.ifindex,
        },
        e.service,
        e.backend,
    ))
}

/// Remembers the decision for an established flow.
#[inline(always)]
pub fn store(pkt: &Packet, hop: &NextHop, service: u32, backend: u32, tick: u32) {
    if pkt.tcp_flags & NOT_CACHEABLE != 0 {
        return;
    }
    if let Some(entry) = FLOW_CACHE.get_ptr_mut(slot(&pkt.key)) {
        // SAFETY: per-CPU slot, see lookup.
        unsafe {
            *entry = FlowCacheEntry {
                key: pkt.key,
                mac: hop.mac,
                src_mac: hop.src_mac,
                ifindex: hop.ifindex,
                backend,
                service,
                tick,
            }
        };
    }
}
