//! Connection sync events: what the backup director must know to take over
//! established flows. Emitted only when the agent turned sync on.

use lvs_common::{event, FlowKey, Settings, SyncEvent, SET_F_SYNC, SYNC_CONN, SYNC_TEMPLATE};

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
