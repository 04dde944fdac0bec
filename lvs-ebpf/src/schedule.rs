//! Choosing a backend for a new connection: the persistence template if
//! the service has one for this client, else the next slot of the service's
//! precomputed schedule (IPVS wrr/rr order, computed by the agent).

use aya_ebpf::{cty::c_void, helpers::bpf_loop};
use lvs_common::{
    hash::{dh_bucket, mh_hash, sh_bucket, MH_KEY1, MH_TABLE_SIZE, SH_TABLE_SIZE},
    verdict as reason, Persist, Service, Settings, BE_F_ALIVE, SET_F_EXPIRE_QUIESCENT,
    SVC_F_PERSISTENT, SVC_F_SCHED_EXPECTED_DELAY, SVC_F_SCHED_FALLBACK, SVC_F_SCHED_FO,
    SVC_F_SCHED_HASHED, SVC_F_SCHED_IDLE_FIRST, SVC_F_SCHED_LC, SVC_F_SCHED_MH, SVC_F_SCHED_OVF,
    SVC_F_SCHED_PORT, SVC_F_SCHED_SH, SVC_F_SCHED_WEIGHTED,
};

use crate::{
    conn_counts,
    family::Family,
    forward::NextHop,
    lc_tree,
    maps::{BACKENDS, CURSORS, RINGS},
    verdict::{Step, Verdict},
};

/// How many schedule slots to try when a slot names a backend that went
/// down after the schedule was written (the agent rewrites it right away).
const MAX_SKIP: u32 = 4;
/// Real servers a least-connection scheduler compares per new connection
/// (the first this many of the service's list; the agent refuses more).
pub const LC_MAX_SERVERS: u32 = lvs_common::LC_MAX_SERVERS;
const NS_PER_S: u64 = 1_000_000_000;

/// Where backend `id` of service `service` is, if it may receive traffic.
/// The service check guards against ids re-used by another service after a
/// reconfiguration: a stale reference is treated as a dead backend.
#[inline(always)]
pub fn backend_hop(id: u32, service: u32) -> Option<NextHop> {
    let b = BACKENDS.get(id)?;
    if b.flags & BE_F_ALIVE == 0 || b.service != service {
        return None;
    }
    Some(NextHop {
        mac: b.mac,
        src_mac: b.src_mac,
        ifindex: b.ifindex,
    })
}

/// A backend for a new connection of `svc` from `client_be`. A `pending`
/// connection (half-open) may only write a pending template: a flood of
/// spoofed SYNs must not evict the templates of real clients.
#[inline(always)]
pub fn pick<F: Family>(
    svc: &Service,
    flow: &F::Flow,
    now: u64,
    settings: &Settings,
    pending: bool,
) -> Step<(u32, NextHop)> {
    if svc.flags & SVC_F_PERSISTENT == 0 {
        return choose::<F>(svc, flow, settings.lc_gen);
    }
    let key = F::template_key(svc, flow);
    let timeout = svc.persist_timeout_s as u64 * NS_PER_S;
    let quiescent_expires = settings.flags & SET_F_EXPIRE_QUIESCENT != 0;
    if let Some(found) = live_template::<F>(&key, now, timeout, svc.id, quiescent_expires) {
        return Ok(found);
    }
    // No template, an expired one, or one whose backend is down: schedule
    // and (re)write the template.
    let (id, hop) = choose::<F>(svc, flow, settings.lc_gen)?;
    let template = Persist {
        backend: id,
        flags: 0,
        last_seen_ns: now,
    };
    // A full LRU evicts its oldest template: never a reason to drop.
    if pending {
        let _ = F::persist_pending().insert(key, template, 0);
    } else {
        let _ = F::persist().insert(key, template, 0);
        F::sync_template(settings, svc.id, &key, id);
    }
    Ok((id, hop))
}

/// The backend a live template (established, else pending) names, if that
/// backend may receive traffic; refreshes the template.
#[inline(always)]
fn live_template<F: Family>(
    key: &F::TmplKey,
    now: u64,
    timeout: u64,
    service: u32,
    quiescent_expires: bool,
) -> Option<(u32, NextHop)> {
    if let Some(found) = use_template(
        F::persist().get_ptr_mut(key),
        now,
        timeout,
        service,
        quiescent_expires,
    ) {
        return Some(found);
    }
    use_template(
        F::persist_pending().get_ptr_mut(key),
        now,
        timeout,
        service,
        quiescent_expires,
    )
}

#[inline(always)]
fn use_template(
    t: Option<*mut Persist>,
    now: u64,
    timeout: u64,
    service: u32,
    quiescent_expires: bool,
) -> Option<(u32, NextHop)> {
    // SAFETY: the pointer is to a live map value; a concurrent writer can
    // only store another whole template, as good as this one.
    let t = unsafe { &mut *t? };
    if now.saturating_sub(t.last_seen_ns) > timeout {
        return None;
    }
    if quiescent_expires && BACKENDS.get(t.backend).is_some_and(|b| b.weight == 0) {
        return None;
    }
    let hop = backend_hop(t.backend, service)?;
    t.last_seen_ns = now;
    Some((t.backend, hop))
}

/// A persistent connection was promoted: its client's template becomes an
/// established one (written to `persist` and synced) unless a live one
/// already is.
#[inline(always)]
pub fn promote_template<F: Family>(
    svc: &Service,
    flow: &F::Flow,
    backend: u32,
    now: u64,
    settings: &Settings,
) {
    if svc.flags & SVC_F_PERSISTENT == 0 {
        return;
    }
    let key = F::template_key(svc, flow);
    let timeout = svc.persist_timeout_s as u64 * NS_PER_S;
    if let Some(t) = F::persist().get_ptr_mut(key) {
        // SAFETY: see live_template.
        let t = unsafe { &mut *t };
        if now.saturating_sub(t.last_seen_ns) <= timeout && backend_hop(t.backend, svc.id).is_some()
        {
            t.last_seen_ns = now;
            return;
        }
    }
    let template = Persist {
        backend,
        flags: 0,
        last_seen_ns: now,
    };
    let _ = F::persist().insert(key, template, 0);
    let _ = F::persist_pending().remove(key);
    F::sync_template(settings, svc.id, &key, backend);
}

/// Refreshes the persistence template a connection of `svc` depends on, as
/// IPVS keeps a template alive while it controls connections.
#[inline(always)]
pub fn touch_template<F: Family>(svc: &Service, flow: &F::Flow, now: u64) {
    if svc.flags & SVC_F_PERSISTENT == 0 {
        return;
    }
    let key = F::template_key(svc, flow);
    if let Some(t) = F::persist().get_ptr_mut(key) {
        // SAFETY: see live_template; a timestamp store.
        unsafe { (*t).last_seen_ns = now };
    }
}

/// The next backend of the service's schedule, walked with this CPU's cursor.
#[inline(always)]
fn next_in_ring(svc: &Service) -> Step<(u32, NextHop)> {
    let len = svc.ring_len;
    if len == 0 {
        return Err(Verdict::pass(reason::PASS_NO_BACKEND));
    }
    let cursor = CURSORS
        .get_ptr_mut(svc.id)
        .ok_or(Verdict::pass(reason::PASS_NO_BACKEND))?;
    // SAFETY: per-CPU slot: only this CPU touches it while we run.
    let mut pos = unsafe { *cursor };
    for _ in 0..MAX_SKIP {
        if pos >= len {
            pos = 0;
        }
        let slot = svc.ring_start.wrapping_add(pos);
        pos += 1;
        if let Some(id) = RINGS.get(slot) {
            // An overloaded server's slot is skipped, as ip_vs_wrr skips it.
            let overloaded = BACKENDS
                .get(*id)
                .is_some_and(|b| conn_counts::overloaded(*id, b));
            if let Some(hop) = backend_hop(*id, svc.id).filter(|_| !overloaded) {
                // SAFETY: as above.
                unsafe { *cursor = pos };
                return Ok((*id, hop));
            }
        }
    }
    Err(Verdict::pass(reason::PASS_NO_BACKEND))
}

/// The service's scheduler: a walk of its sequence (rr, wrr) or a lookup
/// in its hash table (sh, mh, dh).
#[inline(always)]
fn choose<F: Family>(svc: &Service, flow: &F::Flow, lc_gen: u32) -> Step<(u32, NextHop)> {
    if svc.flags & SVC_F_SCHED_LC != 0 {
        return least_connections(svc, lc_gen);
    }
    if svc.flags & SVC_F_SCHED_HASHED == 0 {
        return next_in_ring(svc);
    }
    // IPVS hashes host-order values: ntohl(addr) + ntohs(port), an IPv6
    // address folded to 32 bits first.
    let addr = u32::from_be(F::src_fold_be(flow));
    let port = if svc.flags & SVC_F_SCHED_PORT != 0 {
        u16::from_be(F::sport_be(flow))
    } else {
        0
    };
    let fallback = svc.flags & SVC_F_SCHED_FALLBACK != 0;
    if svc.flags & SVC_F_SCHED_MH != 0 {
        maglev(svc, addr, port, fallback)
    } else if svc.flags & SVC_F_SCHED_SH != 0 {
        source_hash(svc, addr, port, fallback)
    } else {
        let id =
            table_entry(svc, dh_bucket(u32::from_be(F::dst_fold_be(flow)))).ok_or(NO_BACKEND)?;
        Ok((id, available_hop(id, svc.id).ok_or(NO_BACKEND)?))
    }
}

const NO_BACKEND: Verdict = Verdict::pass(reason::PASS_NO_BACKEND);

/// Where backend `id` is, if it may take a new connection from a hashed
/// schedule: alive and with a weight (IPVS `is_unavailable`: weight 0 is
/// quiescent, its table slots stay but pick nobody).
#[inline(always)]
fn available_hop(id: u32, service: u32) -> Option<NextHop> {
    let b = BACKENDS.get(id)?;
    if b.weight == 0 || conn_counts::overloaded(id, b) {
        return None;
    }
    backend_hop(id, service)
}

/// Slot `slot` of the service's table.
#[inline(always)]
fn table_entry(svc: &Service, slot: u32) -> Option<u32> {
    if slot >= svc.ring_len {
        return None;
    }
    RINGS.get(svc.ring_start.wrapping_add(slot)).copied()
}

/// IPVS `sh`: bucket `hash_32(port + addr)`; with `sh-fallback` the walk
/// `ip_vs_sh_get_fallback` does over the whole 256-bucket table.
#[inline(always)]
fn source_hash(svc: &Service, addr: u32, port: u16, fallback: bool) -> Step<(u32, NextHop)> {
    let ihash = sh_bucket(addr, port, 0);
    let walk = (SH_TABLE_SIZE, sh_probe as LoopStep);
    hashed_pick(svc, addr, port, ihash, fallback, walk)
}

/// One step of `ip_vs_sh_get_fallback`'s walk: 0 to go on, 1 to stop.
#[inline(never)]
extern "C" fn sh_probe(offset: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer fallback_walk gave it.
    let w = unsafe { &mut *(ctx as *mut Walk) };
    let roffset = (offset + w.ihash) % SH_TABLE_SIZE;
    w.probe(sh_bucket(w.addr, w.port as u16, roffset))
}

/// IPVS `mh`: entry `hsiphash(port + addr) % size` of the Maglev table;
/// with `mh-fallback` the probes of `ip_vs_mh_get_fallback` (up to one per
/// table entry, as IPVS).
#[inline(always)]
fn maglev(svc: &Service, addr: u32, port: u16, fallback: bool) -> Step<(u32, NextHop)> {
    let ihash = mh_hash(addr, port, MH_KEY1, 0) % MH_TABLE_SIZE;
    let walk = (MH_TABLE_SIZE, mh_probe as LoopStep);
    hashed_pick(svc, addr, port, ihash, fallback, walk)
}

/// A hashed scheduler's (sh, mh) pick: the server in table slot `ihash`
/// if available, else with `-fallback` the first available one that
/// `walk` (its probe count and probe) finds.
#[inline(always)]
fn hashed_pick(
    svc: &Service,
    addr: u32,
    port: u16,
    ihash: u32,
    fallback: bool,
    (n, probe): (u32, LoopStep),
) -> Step<(u32, NextHop)> {
    let id = table_entry(svc, ihash).ok_or(NO_BACKEND)?;
    if let Some(hop) = available_hop(id, svc.id) {
        return Ok((id, hop));
    }
    if !fallback {
        return Err(NO_BACKEND);
    }
    fallback_walk(svc, addr, port, ihash, n, probe)
}

/// One probe of `ip_vs_mh_get_fallback`: 0 to go on, 1 to stop.
#[inline(never)]
extern "C" fn mh_probe(offset: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer fallback_walk gave it.
    let w = unsafe { &mut *(ctx as *mut Walk) };
    let roffset = (offset + w.ihash) % MH_TABLE_SIZE;
    w.probe(mh_hash(w.addr, w.port as u16, MH_KEY1, roffset) % MH_TABLE_SIZE)
}

/// A fallback walk's state, on the caller's stack.
#[repr(C)]
struct Walk {
    service: u32,
    ring_start: u32,
    ring_len: u32,
    addr: u32,
    port: u32,
    ihash: u32,
    /// The backend found, u32::MAX = none (yet).
    found: u32,
    _pad: u32,
}

impl Walk {
    /// Looks at table slot `slot`: 1 (stop) when it names an available
    /// server (kept in `found`) or is past the table, else 0.
    #[inline(always)]
    fn probe(&mut self, slot: u32) -> i64 {
        if slot >= self.ring_len {
            return 1;
        }
        let Some(&id) = RINGS.get(self.ring_start.wrapping_add(slot)) else {
            return 1;
        };
        if available_hop(id, self.service).is_some() {
            self.found = id;
            return 1;
        }
        0
    }
}

/// The walk IPVS's `-fallback` lookups do when the hashed server is
/// unavailable: `n` probes of `probe`, under `bpf_loop` so the verifier
/// checks one probe rather than `n`.
#[inline(always)]
fn fallback_walk(
    svc: &Service,
    addr: u32,
    port: u16,
    ihash: u32,
    n: u32,
    probe: LoopStep,
) -> Step<(u32, NextHop)> {
    let mut walk = Walk {
        service: svc.id,
        ring_start: svc.ring_start,
        ring_len: svc.ring_len,
        addr,
        port: port as u32,
        ihash,
        found: u32::MAX,
        _pad: 0,
    };
    bpf_loop_over(n, probe, &mut walk);
    chosen(walk.found, svc.id)
}

/// A `bpf_loop` callback: one step at `index`, 0 to go on, 1 to stop.
pub type LoopStep = extern "C" fn(u32, *mut c_void) -> i64;

/// `step(i, ctx)` for `i` in `0..n` under `bpf_loop`, so the verifier
/// checks one step rather than `n`; `step` reads its context as a `T`.
#[inline(always)]
pub fn bpf_loop_over<T>(n: u32, step: LoopStep, ctx: &mut T) {
    // SAFETY: `step` is a BPF subprogram taking (index, ctx) as bpf_loop
    // calls it; ctx points at a live `T` on the caller's stack for the call.
    unsafe {
        bpf_loop(n, step as *mut c_void, ctx as *mut T as *mut c_void, 0);
    }
}

/// The server a walk settled on (`u32::MAX`: none) and its next hop.
#[inline(always)]
fn chosen(id: u32, service: u32) -> Step<(u32, NextHop)> {
    if id == u32::MAX {
        return Err(NO_BACKEND);
    }
    Ok((id, backend_hop(id, service).ok_or(NO_BACKEND)?))
}

/// IPVS `lc`, `wlc`, `sed`, `nq` over the service's list (the ring, in
/// IPVS's order): the first server with the least overhead (per weight),
/// `nq` taking the first idle one at once. Overhead is `ip_vs_dest_conn_
/// overhead` ((active << 8) + inactive) or, for sed/nq, active + 1; the
/// comparison is IPVS's cross product `loh * w > doh * lw`, strict, so the
/// earlier server wins a tie. The service's tournament tree (`lc_tree`)
/// has the answer at its root; a service without one (more than
/// MAX_LC_TREES of them) is scanned under `bpf_loop`, so the verifier
/// checks one step, not LC_MAX_SERVERS of them. `lc_gen` tells the tree
/// when to re-read what the agent changed.
#[inline(always)]
fn least_connections(svc: &Service, lc_gen: u32) -> Step<(u32, NextHop)> {
    if let Some(choice) = lc_tree::pick(svc, lc_gen) {
        let id = choice.ok_or(NO_BACKEND)?;
        return Ok((id, backend_hop(id, svc.id).ok_or(NO_BACKEND)?));
    }
    let mut scan = LcScan {
        service: svc.id,
        ring_start: svc.ring_start,
        flags: svc.flags,
        least: u32::MAX,
        loh: 0,
        lw: 0,
    };
    let n = if svc.ring_len < LC_MAX_SERVERS {
        svc.ring_len
    } else {
        LC_MAX_SERVERS
    };
    bpf_loop_over(n, lc_step, &mut scan);
    chosen(scan.least, svc.id)
}

/// The walk's state, on the caller's stack.
#[repr(C)]
struct LcScan {
    service: u32,
    ring_start: u32,
    flags: u32,
    /// Backend id chosen so far, u32::MAX = none.
    least: u32,
    loh: u64,
    lw: u64,
}

/// One server of the walk: 0 to go on, 1 to stop.
#[inline(never)]
extern "C" fn lc_step(i: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the pointer least_connections gave it.
    let s = unsafe { &mut *(ctx as *mut LcScan) };
    let Some(&id) = RINGS.get(s.ring_start.wrapping_add(i)) else {
        return 1;
    };
    let Some(b) = BACKENDS.get(id) else {
        return 0;
    };
    if b.flags & BE_F_ALIVE == 0 || b.service != s.service || b.weight == 0 {
        return 0;
    }
    if conn_counts::overloaded(id, b) {
        return 0;
    }
    let (active, inactive) = conn_counts::load(id);
    // fo / ovf (ip_vs_fo.c, ip_vs_ovf.c): the first of the highest weight;
    // ovf passes over servers with more active connections than weight.
    if s.flags & (SVC_F_SCHED_FO | SVC_F_SCHED_OVF) != 0 {
        let w = b.weight as u64;
        if s.flags & SVC_F_SCHED_OVF != 0 && active > w {
            return 0;
        }
        if s.least == u32::MAX || w > s.lw {
            s.least = id;
            s.lw = w;
        }
        return 0;
    }
    if s.flags & SVC_F_SCHED_IDLE_FIRST != 0 && active == 0 {
        s.least = id;
        return 1;
    }
    let doh = if s.flags & SVC_F_SCHED_EXPECTED_DELAY != 0 {
        active + 1
    } else {
        (active << 8) + inactive
    };
    let w = if s.flags & SVC_F_SCHED_WEIGHTED != 0 {
        b.weight as u64
    } else {
        1
    };
    if s.least == u32::MAX || s.loh * w > doh * s.lw {
        s.least = id;
        s.loh = doh;
        s.lw = w;
    }
    0
}
