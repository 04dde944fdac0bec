//! The established-flow fast path: a per-CPU, direct-mapped cache of
//! forwarding decisions in front of the service and connection lookups
//! (one table per address family).
//!
//! Sound because (1) only plain ACK/data segments (and UDP) of entries in
//! `conns` use it, which never change an ESTABLISHED connection's state;
//! (2) an entry is only good for the `settings.tick` it was written in, and
//! the agent bumps the tick on every change to services or backends (so a
//! dead backend's flows are rescheduled on their next packet); and (3) an
//! entry is only good for the clock epoch (about a second) it was written
//! in, so every flow refreshes its `conns` entry, timestamps and LRU
//! position once an epoch by itself, however long the agent is away.

use lvs_common::tcp;

use crate::{family::Family, forward::NextHop, parse::Packet};

const NOT_CACHEABLE: u8 = tcp::FLAG_SYN | tcp::FLAG_FIN | tcp::FLAG_RST;

/// A cached decision for this packet, if it may use one.
#[inline(always)]
pub fn lookup<F: Family>(
    pkt: &Packet<F::Flow>,
    tick: u32,
    epoch: u32,
) -> Option<(NextHop, u32, u32)> {
    if pkt.tcp_flags & NOT_CACHEABLE != 0 {
        return None;
    }
    let entry = F::flow_cache().get_ptr(F::cache_slot(&pkt.key))?;
    // SAFETY: per-CPU slot; only this CPU writes it, and not while we read.
    let e = unsafe { &*entry };
    if !F::cache_hit(e, &pkt.key, tick, epoch) {
        return None;
    }
    Some(F::cache_decision(e))
}

/// Remembers the decision for an established flow.
#[inline(always)]
pub fn store<F: Family>(
    pkt: &Packet<F::Flow>,
    hop: &NextHop,
    service: u32,
    backend: u32,
    tick: u32,
    epoch: u32,
) {
    if pkt.tcp_flags & NOT_CACHEABLE != 0 {
        return;
    }
    if let Some(entry) = F::flow_cache().get_ptr_mut(F::cache_slot(&pkt.key)) {
        // SAFETY: per-CPU slot, see lookup.
        unsafe { *entry = F::cache_entry(&pkt.key, hop, service, backend, tick, epoch) };
    }
}

/// Drops this CPU's cached decision for the packet's flow, if it holds one:
/// a 5-tuple that starts a new connection (a SYN reusing a closed port) must
/// not have its handshake ACK sent to the old connection's real server.
#[inline(always)]
pub fn forget<F: Family>(pkt: &Packet<F::Flow>) {
    if let Some(entry) = F::flow_cache().get_ptr_mut(F::cache_slot(&pkt.key)) {
        // SAFETY: per-CPU slot, see lookup.
        F::cache_forget(unsafe { &mut *entry }, &pkt.key);
    }
}
