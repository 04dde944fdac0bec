//! Choosing a backend for a new connection: the persistence template if
//! the service has one for this client, else the next slot of the service's
//! precomputed schedule (IPVS wrr/rr order, computed by the agent).

use lvs_common::{
    verdict as reason, Persist, PersistKey, Service, Settings, BE_F_ALIVE, SET_F_EXPIRE_QUIESCENT,
    SVC_F_PERSISTENT,
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
    client_be: u32,
    now: u64,
    settings: &Settings,
    pending: bool,
) -> Step<(u32, NextHop)> {
    if svc.flags & SVC_F_PERSISTENT == 0 {
        return next_in_ring(svc);
    }
    let key = template_key(svc, client_be);
    let timeout = svc.persist_timeout_s as u64 * NS_PER_S;
    let quiescent_expires = settings.flags & SET_F_EXPIRE_QUIESCENT != 0;
    if let Some(found) = live_template(&key, now, timeout, svc.id, quiescent_expires) {
        return Ok(found);
    }
    // No template, an expired one, or one whose backend is down: schedule
    // and (re)write the template.
    let (id, hop) = next_in_ring(svc)?;
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
