//! The least-connection schedulers' tournament trees (`lc_trees`): IPVS's
//! scan over the service's list (`ip_vs_lc/wlc/sed/nq/fo/ovf.c`: the first
//! server with the least overhead per weight, compared by cross product)
//! kept as connections come and go instead of run per new connection.
//!
//! Each node holds the leaf the scan would pick among the leaves below it.
//! "The first of the least" is associative (the left side wins ties), so
//! the root is exactly what the scan over the whole list returns, and a
//! count change only has to replay the ten matches on its leaf's path.
//! Counts enter the tree under the tree's spin lock together with the
//! atomic add to `backend_conns`, so the leaf and the counter never
//! disagree; everything the agent changes (weights, liveness, the list,
//! `backend_conns_adj`) is read again when it bumps `settings.lc_gen`.

use aya_ebpf::cty::c_void;
use core::intrinsics::{atomic_xadd, AtomicOrdering};
use lvs_common::{
    ConnCounts, LcLeaf, LcTree, Service, BE_F_ALIVE, LC_LEAF_ELIGIBLE, LC_LEAF_USABLE, LC_NONE,
    LC_TREE_LEAVES, SVC_F_SCHED_EXPECTED_DELAY, SVC_F_SCHED_FO, SVC_F_SCHED_IDLE_FIRST,
    SVC_F_SCHED_OVF, SVC_F_SCHED_WEIGHTED,
};

use crate::conn_counts;
use crate::maps::{BACKENDS, BACKEND_CONNS, BACKEND_CONNS_ADJ, LC_PLACE, LC_TREES, RINGS};
use crate::schedule::bpf_loop_over;

const LEAVES: u32 = LC_TREE_LEAVES as u32;
const LEAF_MASK: u32 = LEAVES - 1;
const NODE_MASK: u32 = 2 * LEAVES - 1;
/// Matches from a leaf to the root: log2(LEAVES).
const LEVELS: u32 = LEAVES.trailing_zeros();

/// What the service's tree says: `None` = the service has no tree (scan
/// instead), `Some(None)` = no server may take the connection,
/// `Some(Some(id))` = IPVS's choice.
#[inline(always)]
pub fn pick(svc: &Service, generation: u32) -> Option<Option<u32>> {
    let tree = LC_TREES.get_ptr_mut(svc.id)?;
    let len = if svc.ring_len < LEAVES {
        svc.ring_len
    } else {
        LEAVES
    };
    // SAFETY: a live map value; these header words are only stored whole
    // (a rebuild racing on another CPU stores the same values).
    let stale = unsafe {
        (*tree).generation != generation || (*tree).flags != svc.flags || (*tree).len != len
    };
    if stale {
        rebuild(svc, len);
        // SAFETY: as above.
        unsafe {
            (*tree).generation = generation;
            (*tree).flags = svc.flags;
            (*tree).len = len;
        }
    }
    // SAFETY: as above; a racing count change may move the winner under
    // us, exactly as IPVS's lockless scan races with its counters.
    let w = unsafe { (*tree).winner[1] };
    if w == LC_NONE {
        return Some(None);
    }
    // SAFETY: as above; masked in bounds.
    let id = unsafe { (*tree).leaves[(w as u32 & LEAF_MASK) as usize].backend };
    Some(Some(id))
}

/// Whether backend `id` has a leaf in some tree (cheap enough to inline
/// on every count change, unlike `counted`).
#[inline(always)]
pub fn in_tree(id: u32) -> bool {
    matches!(LC_PLACE.get(id), Some(p) if p.service_plus1 != 0)
}

/// Adds (da, di) to backend `id`'s counts (`c`) and, if it sits in a tree,
/// to its leaf, under the tree's lock. Returns false when it is in no tree
/// (the caller adds without a lock).
///
/// # Safety
/// `c` must be backend `id`'s live value in `backend_conns`.
#[inline(never)]
pub unsafe fn counted(id: u32, c: *mut ConnCounts, da: u64, di: u64) -> bool {
    let Some(place) = LC_PLACE.get_ptr(id) else {
        return false;
    };
    // SAFETY: a live array value, only stored whole by rebuild_leaf.
    let service_plus1 = unsafe { (*place).service_plus1 };
    if service_plus1 == 0 {
        return false;
    }
    let Some(tree) = LC_TREES.get_ptr_mut(service_plus1 - 1) else {
        return false;
    };
    // SAFETY: `tree` is a live value of `lc_trees`, whose BTF names its
    // first field `bpf_spin_lock`; every path below unlocks before leaving.
    unsafe { aya_ebpf::helpers::bpf_spin_lock(tree as *mut _) };
    // SAFETY: live map values; the tree is ours under its lock, the counts
    // are changed only atomically.
    unsafe {
        add_counts(c, da, di);
        // Read again under the lock: a rebuild moves a leaf before it
        // takes the lock to read its counts, so either it saw this add or
        // this add sees the new place.
        let pos = (*place).leaf & LEAF_MASK;
        let t = &mut *tree;
        if (*place).service_plus1 == service_plus1 && t.leaves[pos as usize].backend == id {
            let leaf = &mut t.leaves[pos as usize];
            leaf.active = leaf.active.wrapping_add(da as u32);
            leaf.inactive = leaf.inactive.wrapping_add(di as u32);
            let eligible = judge(leaf, &mut *c, t.flags);
            t.winner[(LEAVES + pos) as usize] = if eligible { pos as u16 } else { LC_NONE };
            let mut k = (LEAVES + pos) >> 1;
            for _ in 0..LEVELS {
                replay(t, k);
                k >>= 1;
            }
        }
        aya_ebpf::helpers::bpf_spin_unlock(tree as *mut _);
    }
    true
}

/// The plain atomic adds of `conn_counts`.
///
/// # Safety
/// `c` points at a live `backend_conns` value.
#[inline(always)]
pub unsafe fn add_counts(c: *mut ConnCounts, da: u64, di: u64) {
    // SAFETY: the caller's. The results are unused, so these are BPF's
    // plain atomic adds (`lock xadd`), which every BPF CPU version has;
    // core's `fetch_add` is not offered for this target.
    unsafe {
        if da != 0 {
            atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut (*c).active, da);
        }
        if di != 0 {
            atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut (*c).inactive, di);
        }
    }
}

/// Counts as the scheduler reads them: a transiently negative one is 0.
#[inline(always)]
fn clamp(v: u32) -> u64 {
    if (v as i32) < 0 {
        0
    } else {
        v as u64
    }
}

/// Whether the leaf may take a new connection: usable, not overloaded
/// (IPVS's `IP_VS_DEST_F_OVERLOAD` hysteresis, evaluated as the counts
/// change, as `ip_vs_bind_dest`/`ip_vs_unbind_dest` do; the flag is kept
/// in `backend_conns` beside the counts), and for `ovf` no more active
/// connections than its weight. Sets LC_LEAF_ELIGIBLE.
#[inline(always)]
fn judge(leaf: &mut LcLeaf, c: &mut ConnCounts, flags: u32) -> bool {
    let (active, inactive) = (clamp(leaf.active), clamp(leaf.inactive));
    let mut ok = leaf.flags & LC_LEAF_USABLE != 0;
    let upper = leaf.u_threshold as u64;
    if upper != 0 {
        let total = active + inactive;
        let flagged = c.overloaded != 0;
        let now = conn_counts::overload_now(flagged, total, upper, leaf.l_threshold as u64);
        if now != flagged {
            c.overloaded = now as u64;
        }
        ok &= !now;
    }
    if flags & SVC_F_SCHED_OVF != 0 && active > leaf.weight as u64 {
        ok = false;
    }
    leaf.flags = (leaf.flags & !LC_LEAF_ELIGIBLE) | if ok { LC_LEAF_ELIGIBLE } else { 0 };
    ok
}

/// Node `k`'s match: the winner of its two children. A subprogram (called
/// under the lock, which the verifier allows for static ones): its paths
/// meet again at the return, so ten levels cost ten checks, not the
/// product of every level's branches.
#[inline(never)]
fn replay(t: &mut LcTree, k: u32) {
    let a = t.winner[((2 * k) & NODE_MASK) as usize];
    let b = t.winner[((2 * k + 1) & NODE_MASK) as usize];
    let w = if a == LC_NONE {
        b
    } else if b == LC_NONE {
        a
    } else {
        let la = &t.leaves[(a as u32 & LEAF_MASK) as usize];
        let lb = &t.leaves[(b as u32 & LEAF_MASK) as usize];
        if beats(t.flags, la, lb) {
            b
        } else {
            a
        }
    };
    t.winner[(k & NODE_MASK) as usize] = w;
}

/// Whether `b`, later in the list, takes the place of `a` in IPVS's scan.
#[inline(always)]
fn beats(flags: u32, a: &LcLeaf, b: &LcLeaf) -> bool {
    // fo / ovf: the first of the highest weight.
    if flags & (SVC_F_SCHED_FO | SVC_F_SCHED_OVF) != 0 {
        return b.weight > a.weight;
    }
    let (aa, ba) = (clamp(a.active), clamp(b.active));
    // nq: the first idle server, before any comparison.
    if flags & SVC_F_SCHED_IDLE_FIRST != 0 {
        if aa == 0 {
            return false;
        }
        if ba == 0 {
            return true;
        }
    }
    let (aoh, boh) = if flags & SVC_F_SCHED_EXPECTED_DELAY != 0 {
        (aa + 1, ba + 1)
    } else {
        ((aa << 8) + clamp(a.inactive), (ba << 8) + clamp(b.inactive))
    };
    let (aw, bw) = if flags & SVC_F_SCHED_WEIGHTED != 0 {
        (a.weight as u64, b.weight as u64)
    } else {
        (1, 1)
    };
    // IPVS: `loh * w > doh * lw`, strict: a tie keeps the earlier server.
    aoh * bw > boh * aw
}

/// A rebuild's arguments, on the caller's stack.
#[repr(C)]
struct Rebuild {
    service: u32,
    ring_start: u32,
    len: u32,
    flags: u32,
}

/// Reads every leaf from the maps, then replays every match: one short
/// lock per leaf and per node, so count changes on other CPUs go on.
#[inline(always)]
fn rebuild(svc: &Service, len: u32) {
    let mut r = Rebuild {
        service: svc.id,
        ring_start: svc.ring_start,
        len,
        flags: svc.flags,
    };
    bpf_loop_over(LEAVES, rebuild_leaf, &mut r);
    bpf_loop_over(LEAVES - 1, rebuild_node, &mut r);
}

/// Leaf `i`: server `i` of the list, or nobody past its end.
#[inline(never)]
extern "C" fn rebuild_leaf(i: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer rebuild gave it.
    let r = unsafe { &*(ctx as *const Rebuild) };
    let Some(tree) = LC_TREES.get_ptr_mut(r.service) else {
        return 1;
    };
    let pos = i & LEAF_MASK;
    let mut leaf = LcLeaf {
        backend: u32::MAX,
        ..LcLeaf::default()
    };
    let mut conns: Option<*mut ConnCounts> = None;
    let (mut adj_active, mut adj_inactive) = (0u64, 0u64);
    if i < r.len {
        if let Some(&id) = RINGS.get(r.ring_start.wrapping_add(i)) {
            leaf.backend = id;
            if let Some(b) = BACKENDS.get(id) {
                leaf.weight = b.weight;
                leaf.u_threshold = b.u_threshold;
                leaf.l_threshold = b.l_threshold;
                if b.flags & BE_F_ALIVE != 0 && b.service == r.service && b.weight != 0 {
                    leaf.flags = LC_LEAF_USABLE;
                }
            }
            if let Some(adj) = BACKEND_CONNS_ADJ.get(id) {
                (adj_active, adj_inactive) = (adj.active, adj.inactive);
            }
            if let Some(place) = LC_PLACE.get_ptr_mut(id) {
                // SAFETY: a live array value, stored whole.
                unsafe {
                    *place = lvs_common::LcPlace {
                        service_plus1: r.service + 1,
                        leaf: pos,
                    }
                };
            }
            conns = BACKEND_CONNS.get_ptr_mut(id);
        }
    }
    // SAFETY: as in `counted`: the lock is the value's first field and is
    // released below on the only path.
    unsafe {
        aya_ebpf::helpers::bpf_spin_lock(tree as *mut _);
        let t = &mut *tree;
        let mut eligible = false;
        if let Some(c) = conns {
            // Under the lock: no count change is half applied.
            leaf.active = (*c).active.wrapping_sub(adj_active) as u32;
            leaf.inactive = (*c).inactive.wrapping_sub(adj_inactive) as u32;
            eligible = judge(&mut leaf, &mut *c, r.flags);
        }
        t.leaves[pos as usize] = leaf;
        t.winner[(LEAVES + pos) as usize] = if eligible { pos as u16 } else { LC_NONE };
        aya_ebpf::helpers::bpf_spin_unlock(tree as *mut _);
    }
    0
}

/// Node `LEAVES - 1 - i`: bottom-up, so both children are already done.
#[inline(never)]
extern "C" fn rebuild_node(i: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer rebuild gave it.
    let r = unsafe { &*(ctx as *const Rebuild) };
    let Some(tree) = LC_TREES.get_ptr_mut(r.service) else {
        return 1;
    };
    let k = (LEAVES - 1 - (i & LEAF_MASK)) & LEAF_MASK;
    // SAFETY: as in `counted`.
    unsafe {
        aya_ebpf::helpers::bpf_spin_lock(tree as *mut _);
        let t = &mut *tree;
        t.flags = r.flags;
        replay(t, k);
        aya_ebpf::helpers::bpf_spin_unlock(tree as *mut _);
    }
    0
}
