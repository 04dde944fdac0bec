//! Connection sync events: what the backup director must know to take over
//! established flows. Emitted only when the agent turned sync on.

use lvs_common::{
    event, FlowKey, FlowKey6, Ipv6Words, Settings, SyncEvent, SyncEvent6, SET_F_SYNC, SYNC_CONN,
    SYNC_CONN6, SYNC_TEMPLATE, SYNC_TEMPLATE6,
};

use crate::{maps::SYNC_EVENTS, stats};

#[inline(always)]
fn emit<T>(event: &T) {
    // A full ring loses the event (counted): the flow itself is unaffected,
    // and the agent's periodic re-sync sends long-lived connections again.
    if SYNC_EVENTS.output_untyped::<T>(event, 0).is_err() {
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

/// An IPv6 connection was created or changed state.
#[inline(always)]
pub fn conn6(settings: &Settings, key: &FlowKey6, state: u32, backend: u32, service: u32) {
    if settings.flags & SET_F_SYNC == 0 {
        return;
    }
    emit(&SyncEvent6 {
        kind: SYNC_CONN6,
        state,
        backend,
        service,
        key: *key,
        client_be: [0; 4],
    });
}

/// An IPv6 persistence template was written.
#[inline(always)]
pub fn template6(settings: &Settings, service: u32, client_be: &Ipv6Words, backend: u32) {
    if settings.flags & SET_F_SYNC == 0 {
        return;
    }
    emit(&SyncEvent6 {
        kind: SYNC_TEMPLATE6,
        state: 0,
        backend,
        service,
        key: FlowKey6::default(),
        client_be: *client_be,
    });
}
