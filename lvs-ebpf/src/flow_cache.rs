//! The established-flow fast path: a per-CPU, direct-mapped cache of
//! forwarding decisions in front of the service and connection lookups.
//!
//! Sound because (1) only plain ACK/data segments (and UDP) of entries in
//! `conns` use it, which never change an ESTABLISHED connection's state;
//! (2) an entry is only good for the `settings.tick` it was written in, and
//! the agent bumps the tick on every change to services or backends (so a
//! dead backend's flows are rescheduled on their next packet); and (3) an
//! entry is only good for the clock epoch (about a second) it was written
//! in, so every flow refreshes its `conns` entry, timestamps and LRU
//! position once an epoch by itself, however long the agent is away.

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
pub fn lookup(pkt: &Packet, tick: u32, epoch: u32) -> Option<(NextHop, u32, u32)> {
    if pkt.tcp_flags & NOT_CACHEABLE != 0 {
        return None;
    }
    let entry = FLOW_CACHE.get_ptr(slot(&pkt.key))?;
    // SAFETY: per-CPU slot; only this CPU writes it, and not while we read.
    let e = unsafe { &*entry };
    if e.tick != tick || e.epoch != epoch || !same_flow(&e.key, &pkt.key) {
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
pub fn store(pkt: &Packet, hop: &NextHop, service: u32, backend: u32, tick: u32, epoch: u32) {
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
                epoch,
            }
        };
    }
}

/// Drops this CPU's cached decision for the packet's flow, if it holds one:
/// a 5-tuple that starts a new connection (a SYN reusing a closed port) must
/// not have its handshake ACK sent to the old connection's real server.
#[inline(always)]
pub fn forget(pkt: &Packet) {
    if let Some(entry) = FLOW_CACHE.get_ptr_mut(slot(&pkt.key)) {
        // SAFETY: per-CPU slot, see lookup.
        let e = unsafe { &mut *entry };
        if same_flow(&e.key, &pkt.key) {
            e.key = FlowKey::default(); // no packet has source 0.0.0.0:0
        }
    }
}
