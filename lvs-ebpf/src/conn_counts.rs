//! IPVS's per-real-server connection counters, for the least-connection
//! schedulers and thresholds: active = TCP ESTABLISHED, inactive = the
//! rest. Shared by every CPU, so updated with atomic adds; the agent's
//! correction (`backend_conns_adj`) is subtracted on reading.

use lvs_common::{tcp, Backend};

use crate::{
    lc_tree,
    maps::{BACKEND_CONNS, BACKEND_CONNS_ADJ},
};

/// IPVS counts a connection active while it is ESTABLISHED (a UDP
/// "connection" never is).
#[inline(always)]
fn is_active(state: u32) -> bool {
    tcp::is_active(state)
}

/// Adds `da` to the active and `di` to the inactive count (wrapping:
/// u64::MAX is −1), inside the backend's least-connection tree if it is in
/// one (so the tree's choice follows at once).
#[inline(always)]
fn add(backend: u32, da: u64, di: u64) {
    let Some(c) = BACKEND_CONNS.get_ptr_mut(backend) else {
        return;
    };
    // Only a backend in a least-connection tree pays for the tree's
    // update (a call, a spin lock): the common case is one array read here.
    // SAFETY: `c` is `backend`'s live value in `backend_conns`.
    if lc_tree::in_tree(backend) && unsafe { lc_tree::counted(backend, c, da, di) } {
        return;
    }
    // SAFETY: a live, aligned array value shared by all CPUs: its counts
    // are only ever changed through atomic adds (the agent writes the
    // other map).
    unsafe { lc_tree::add_counts(c, da, di) };
}

const ONE: u64 = 1;
const MINUS_ONE: u64 = u64::MAX;

/// A connection in `state` now holds `backend`.
#[inline(always)]
pub fn opened(backend: u32, state: u32) {
    add_in_state(backend, state, ONE);
}

/// A connection in `state` no longer holds `backend`.
#[inline(always)]
pub fn closed(backend: u32, state: u32) {
    add_in_state(backend, state, MINUS_ONE);
}

/// Adds `delta` (ONE or MINUS_ONE) to `backend`'s active or inactive
/// count, as `state` is.
#[inline(always)]
fn add_in_state(backend: u32, state: u32, delta: u64) {
    if is_active(state) {
        add(backend, delta, 0);
    } else {
        add(backend, 0, delta);
    }
}

/// A connection of `backend` went from state `old` to `new`.
#[inline(always)]
pub fn changed(backend: u32, old: u32, new: u32) {
    let (was, is) = (is_active(old), is_active(new));
    if was && !is {
        add(backend, MINUS_ONE, ONE);
    } else if is && !was {
        add(backend, ONE, MINUS_ONE);
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

/// IPVS's `IP_VS_DEST_F_OVERLOAD` for a new connection to backend `id`: set
/// once its connections (active + inactive) reach `u_threshold`, cleared
/// when they fall below `l_threshold` (or 3/4 of `u_threshold` without
/// one), as `ip_vs_bind_dest` / `ip_vs_unbind_dest` do. Evaluated when a
/// scheduler looks at the server; the flag lives in `backend_conns` (plain
/// stores: two CPUs racing store the same answer).
#[inline(always)]
pub fn overloaded(id: u32, b: &Backend) -> bool {
    let upper = b.u_threshold as u64;
    if upper == 0 {
        return false;
    }
    let Some(c) = BACKEND_CONNS.get_ptr_mut(id) else {
        return false;
    };
    let (active, inactive) = load(id);
    let total = active + inactive;
    // SAFETY: a live array value; the flag word is only stored whole.
    let flagged = unsafe { (*c).overloaded } != 0;
    let now = overload_now(flagged, total, upper, b.l_threshold as u64);
    if now != flagged {
        // SAFETY: as above.
        unsafe { (*c).overloaded = now as u64 };
    }
    now
}

/// IPVS's overload hysteresis (`IP_VS_DEST_F_OVERLOAD`): a server with
/// `total` connections is overloaded at `upper`, and once so (`flagged`)
/// stays so until it is under `lower`, or under three quarters of `upper`
/// when there is no lower threshold.
#[inline(always)]
pub fn overload_now(flagged: bool, total: u64, upper: u64, lower: u64) -> bool {
    if !flagged {
        total >= upper
    } else if lower != 0 {
        total >= lower
    } else {
        total * 4 >= upper * 3
    }
}
