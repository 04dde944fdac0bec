//! Choosing a backend for a new connection: the persistence template if
//! the service has one for this client, else the next slot of the service's
//! precomputed schedule (IPVS wrr/rr order, computed by the agent).

use lvs_common::{
    hash::{dh_bucket, mh_hash, sh_bucket, MH_KEY1, MH_TABLE_SIZE, SH_TABLE_SIZE},
    verdict as reason, FlowKey, Persist, PersistKey, Service, Settings, BE_F_ALIVE,
    SET_F_EXPIRE_QUIESCENT, SVC_F_PERSISTENT, SVC_F_SCHED_FALLBACK, SVC_F_SCHED_HASHED,
    SVC_F_SCHED_MH, SVC_F_SCHED_PORT, SVC_F_SCHED_SH,
};

use crate::{
    forward::NextHop,
    maps::{BACKENDS, CURSORS, PERSIST, PERSIST_PENDING, RINGS},
    sync,
    verdict::{Step, Verdict},
};

/// How many schedule slots to try when a slot names a backend that went
/// down after the schedule was written (the agent rewrites it right away).
const MAX_SKIP: u32 = 4;
/// `mh-fallback` probes at most this many further table slots (IPVS walks
/// up to the whole table). A client is passed instead of scheduled only if
/// every probe lands on an unavailable server: with a share `f` of the
/// table unavailable, `f^128` (f = 0.9: 1e-6).
const MH_FALLBACK_PROBES: u32 = 128;
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
pub fn pick(
    svc: &Service,
    flow: &FlowKey,
    now: u64,
    settings: &Settings,
    pending: bool,
) -> Step<(u32, NextHop)> {
    if svc.flags & SVC_F_PERSISTENT == 0 {
        return choose(svc, flow);
    }
    let key = template_key(svc, flow.src_be);
    let timeout = svc.persist_timeout_s as u64 * NS_PER_S;
    let quiescent_expires = settings.flags & SET_F_EXPIRE_QUIESCENT != 0;
    if let Some(found) = live_template(&key, now, timeout, svc.id, quiescent_expires) {
        return Ok(found);
    }
    // No template, an expired one, or one whose backend is down: schedule
    // and (re)write the template.
    let (id, hop) = choose(svc, flow)?;
    let template = Persist {
        backend: id,
        flags: 0,
        last_seen_ns: now,
    };
    // A full LRU evicts its oldest template: never a reason to drop.
    if pending {
        let _ = PERSIST_PENDING.insert(key, template, 0);
    } else {
        let _ = PERSIST.insert(key, template, 0);
        sync::template(settings, svc.id, key.client_be, id);
    }
    Ok((id, hop))
}

#[inline(always)]
fn template_key(svc: &Service, client_be: u32) -> PersistKey {
    PersistKey {
        service: svc.id,
        client_be: client_be & svc.persist_mask_be,
    }
}

/// The backend a live template (established, else pending) names, if that
/// backend may receive traffic; refreshes the template.
#[inline(always)]
fn live_template(
    key: &PersistKey,
    now: u64,
    timeout: u64,
    service: u32,
    quiescent_expires: bool,
) -> Option<(u32, NextHop)> {
    if let Some(found) = use_template(
        PERSIST.get_ptr_mut(key),
        now,
        timeout,
        service,
        quiescent_expires,
    ) {
        return Some(found);
    }
    use_template(
        PERSIST_PENDING.get_ptr_mut(key),
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
pub fn promote_template(
    svc: &Service,
    client_be: u32,
    backend: u32,
    now: u64,
    settings: &Settings,
) {
    if svc.flags & SVC_F_PERSISTENT == 0 {
        return;
    }
    let key = template_key(svc, client_be);
    let timeout = svc.persist_timeout_s as u64 * NS_PER_S;
    if let Some(t) = PERSIST.get_ptr_mut(key) {
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
    let _ = PERSIST.insert(key, template, 0);
    let _ = PERSIST_PENDING.remove(key);
    sync::template(settings, svc.id, key.client_be, backend);
}

/// Refreshes the persistence template a connection of `svc` depends on, as
/// IPVS keeps a template alive while it controls connections.
#[inline(always)]
pub fn touch_template(svc: &Service, client_be: u32, now: u64) {
    if svc.flags & SVC_F_PERSISTENT == 0 {
        return;
    }
    let key = template_key(svc, client_be);
    if let Some(t) = PERSIST.get_ptr_mut(key) {
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
            if let Some(hop) = backend_hop(*id, svc.id) {
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
fn choose(svc: &Service, flow: &FlowKey) -> Step<(u32, NextHop)> {
    if svc.flags & SVC_F_SCHED_HASHED == 0 {
        return next_in_ring(svc);
    }
    // IPVS hashes host-order values: ntohl(addr) + ntohs(port).
    let addr = u32::from_be(flow.src_be);
    let port = if svc.flags & SVC_F_SCHED_PORT != 0 {
        u16::from_be(flow.sport_be)
    } else {
        0
    };
    let fallback = svc.flags & SVC_F_SCHED_FALLBACK != 0;
    if svc.flags & SVC_F_SCHED_MH != 0 {
        maglev(svc, addr, port, fallback)
    } else if svc.flags & SVC_F_SCHED_SH != 0 {
        source_hash(svc, addr, port, fallback)
    } else {
        let id = table_entry(svc, dh_bucket(u32::from_be(flow.dst_be))).ok_or(NO_BACKEND)?;
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
    if b.weight == 0 {
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
    let id = table_entry(svc, ihash).ok_or(NO_BACKEND)?;
    if let Some(hop) = available_hop(id, svc.id) {
        return Ok((id, hop));
    }
    if !fallback {
        return Err(NO_BACKEND);
    }
    for offset in 0..SH_TABLE_SIZE {
        let roffset = (offset + ihash) % SH_TABLE_SIZE;
        let Some(id) = table_entry(svc, sh_bucket(addr, port, roffset)) else {
            break;
        };
        if let Some(hop) = available_hop(id, svc.id) {
            return Ok((id, hop));
        }
    }
    Err(NO_BACKEND)
}

/// IPVS `mh`: entry `hsiphash(port + addr) % size` of the Maglev table;
/// with `mh-fallback` the probes of `ip_vs_mh_get_fallback` (bounded, see
/// MH_FALLBACK_PROBES).
#[inline(always)]
fn maglev(svc: &Service, addr: u32, port: u16, fallback: bool) -> Step<(u32, NextHop)> {
    let ihash = mh_hash(addr, port, MH_KEY1, 0) % MH_TABLE_SIZE;
    let id = table_entry(svc, ihash).ok_or(NO_BACKEND)?;
    if let Some(hop) = available_hop(id, svc.id) {
        return Ok((id, hop));
    }
    if !fallback {
        return Err(NO_BACKEND);
    }
    for offset in 0..MH_FALLBACK_PROBES {
        let roffset = (offset + ihash) % MH_TABLE_SIZE;
        let slot = mh_hash(addr, port, MH_KEY1, roffset) % MH_TABLE_SIZE;
        let Some(id) = table_entry(svc, slot) else {
            break;
        };
        if let Some(hop) = available_hop(id, svc.id) {
            return Ok((id, hop));
        }
    }
    Err(NO_BACKEND)
}
