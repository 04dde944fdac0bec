//! Per-CPU counters: no atomics needed, userspace sums the CPUs.

use crate::maps::{BACKEND_STATS, EVENTS, SVC_STATS, VERDICTS};

/// Counts one packet under a verdict reason.
#[inline(always)]
pub fn count_verdict(reason: u32) {
    if let Some(n) = VERDICTS.get_ptr_mut(reason) {
        // SAFETY: a per-CPU slot: only this CPU writes it while we run.
        unsafe { *n += 1 };
    }
}

/// Counts one event (`lvs_common::event`).
#[inline(always)]
pub fn count_event(event: u32) {
    if let Some(n) = EVENTS.get_ptr_mut(event) {
        // SAFETY: a per-CPU slot: only this CPU writes it while we run.
        unsafe { *n += 1 };
    }
}

/// Counts a forwarded packet for its service and backend; `new_conn` when
/// this packet created the connection.
#[inline(always)]
pub fn count_forwarded(service: u32, backend: u32, bytes: u32, new_conn: bool) {
    if let Some(s) = SVC_STATS.get_ptr_mut(service) {
        // SAFETY: per-CPU slot, see count_verdict.
        unsafe {
            (*s).packets += 1;
            (*s).bytes += bytes as u64;
            (*s).conns += new_conn as u64;
        }
    }
    if let Some(s) = BACKEND_STATS.get_ptr_mut(backend) {
        // SAFETY: per-CPU slot, see count_verdict.
        unsafe {
            (*s).packets += 1;
            (*s).bytes += bytes as u64;
            (*s).conns += new_conn as u64;
        }
    }
}
