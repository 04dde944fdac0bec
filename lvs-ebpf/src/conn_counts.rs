//! IPVS's per-real-server connection counters, for the least-connection
//! schedulers and thresholds: active = TCP ESTABLISHED, inactive = the
//! rest. Shared by every CPU, so updated with atomic adds; the agent's
//! correction (`backend_conns_adj`) is subtracted on reading.

use core::intrinsics::{atomic_xadd, AtomicOrdering};

use lvs_common::tcp;

use crate::maps::{BACKEND_CONNS, BACKEND_CONNS_ADJ};

/// IPVS counts a connection active while it is ESTABLISHED (a UDP
/// "connection" never is).
#[inline(always)]
fn is_active(state: u32) -> bool {
    tcp::is_active(state)
}

#[inline(always)]
fn add(backend: u32, active: bool, delta: u64) {
    let Some(c) = BACKEND_CONNS.get_ptr_mut(backend) else {
        return;
    };
    // SAFETY: a live, aligned u64 of an array value, shared by all CPUs:
    // only ever changed through atomic adds here (the agent writes the
    // other map). The result is unused, so this is BPF's plain atomic add
    // (`lock xadd`), which every BPF CPU version has; core's `fetch_add`
    // is not offered for this target.
    unsafe {
        let word = if active {
            &raw mut (*c).active
        } else {
            &raw mut (*c).inactive
        };
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(word, delta);
    }
}

/// A connection in `state` now holds `backend`.
#[inline(always)]
pub fn opened(backend: u32, state: u32) {
    add(backend, is_active(state), 1);
}

/// A connection in `state` no longer holds `backend`.
#[inline(always)]
pub fn closed(backend: u32, state: u32) {
    add(backend, is_active(state), u64::MAX); // −1, wrapping
}

/// A connection of `backend` went from state `old` to `new`.
#[inline(always)]
pub fn changed(backend: u32, old: u32, new: u32) {
    let (was, is) = (is_active(old), is_active(new));
    if was != is {
        add(backend, was, u64::MAX);
        add(backend, is, 1);
    }
}

/// (active, inactive) of a backend, as IPVS would count them now.
#[inline(always)]
pub fn load(backend: u32) -> (u64, u64) {
    let Some(c) = BACKEND_CONNS.get(backend) else {
        return (0, 0);
    };
    let (a, i) = (c.active, c.inactive);
    let (da, di) = match BACKEND_CONNS_ADJ.get(backend) {
        Some(adj) => (adj.active, adj.inactive),
        None => (0, 0),
    };
    // Transiently negative (the agent corrected a count the data path had
    // not yet decremented): none.
    let clamp = |v: u64| if (v as i64) < 0 { 0 } else { v };
    (clamp(a.wrapping_sub(da)), clamp(i.wrapping_sub(di)))
}
