//! Connection sync events: what the backup director must know to take over
//! established flows. Emitted only when the agent turned sync on.

use lvs_common::{
    event, FlowKey, FlowKey6, Ipv6Words, Settings, SyncEvent, SyncEvent6, SET_F_SYNC, SYNC_CONN,
    SYNC_CONN6, SYNC_TEMPLATE, SYNC_TEMPLATE6,
};

use crate::{maps::SYNC_EVENTS, stats};

#[inline(always)]
fn emit(event: &SyncEvent) {
    // A full ring loses the event (counted): the flow itself is unaffected,
    // and the agent's periodic re-sync sends long-lived connections again.
    if SYNC_EVENTS.output(event, 0).is_err() {
        stats::count_event(event::SYNC_LOST);
    }
}

/// A connection was created or changed state.
#[inline(always)]
pub fn conn(settings: &Settings, key: &FlowKey, state: u32, backend: u32, service: u32) {
    if settings.flags & SET_F_SYNC == 0 {
        return;
    }
    emit(&SyncEvent {
        kind: SYNC_CONN,
        state,
        backend,
        service,
        key: *key,
        client_be: 0,
        _pad: 0,
    });
}

/// A persistence template was written.
#[inline(always)]
pub fn template(settings: &Settings, service: u32, client_be: u32, backend: u32) {
    if settings.flags & SET_F_SYNC == 0 {
        return;
    }
    emit(&SyncEvent {
        kind: SYNC_TEMPLATE,
        state: 0,
        backend,
        service,
        key: FlowKey::default(),
        client_be,
        _pad: 0,
    });
}

/// An IPv6 record, written in place in the ring: built on the stack, its
/// 72 bytes would push the IPv6 path past BPF's 512-byte stack.
#[inline(always)]
fn emit6(
    kind: u32,
    state: u32,
    backend: u32,
    service: u32,
    key: Option<&FlowKey6>,
    client_be: &Ipv6Words,
) {
    let Some(mut entry) = SYNC_EVENTS.reserve_untyped::<SyncEvent6>(0) else {
        stats::count_event(event::SYNC_LOST);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points at the reserved, 8-byte aligned record of
    // size_of::<SyncEvent6>() bytes; every field is written before submit.
    unsafe {
        (*ev).kind = kind;
        (*ev).state = state;
        (*ev).backend = backend;
        (*ev).service = service;
        match key {
            Some(k) => (*ev).key = *k,
            None => (*ev).key = FlowKey6::default(),
        }
        (*ev).client_be = *client_be;
    }
    entry.submit(0);
}

/// An IPv6 connection was created or changed state.
#[inline(always)]
pub fn conn6(settings: &Settings, key: &FlowKey6, state: u32, backend: u32, service: u32) {
    if settings.flags & SET_F_SYNC == 0 {
        return;
    }
    emit6(SYNC_CONN6, state, backend, service, Some(key), &[0; 4]);
}

/// An IPv6 persistence template was written.
#[inline(always)]
pub fn template6(settings: &Settings, service: u32, client_be: &Ipv6Words, backend: u32) {
    if settings.flags & SET_F_SYNC == 0 {
        return;
    }
    emit6(SYNC_TEMPLATE6, 0, backend, service, None, client_be);
}
