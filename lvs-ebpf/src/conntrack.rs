//! The connection tables: a flow keeps its backend for its whole life, and
//! its TCP state is followed from the client side the way IPVS does it.
//!
//! Two tables, so that no flood evicts an established connection:
//! - `half_open`: a new flow (a SYN, a first UDP datagram) is scheduled and
//!   waits here, in a small per-CPU LRU that floods may churn freely;
//! - `conns`: the flow is promoted here by the client's second packet (the
//!   handshake's ACK, the next datagram). Spoofed SYNs never get here.
//!
//! `conns` is looked up first: an established flow needs only its entry, so
//! the common slow path costs one hash lookup; the service is read only to
//! schedule.

use lvs_common::{
    event, tcp, verdict as reason, Conn, Service, Settings, CONN_F_PERSISTENT, IPPROTO_TCP,
    IPPROTO_UDP, SET_F_EXPIRE_NODEST, SET_F_SLOPPY, SVC_F_ONEPACKET, SVC_F_PERSISTENT,
    SVC_F_SLOPPY,
};

use crate::{
    conn_counts,
    family::Family,
    flow_cache,
    forward::NextHop,
    parse::Packet,
    schedule, stats,
    verdict::{Step, Verdict},
};

const NS_PER_S: u64 = 1_000_000_000;

/// The outcome for a packet of a service.
pub struct Tracked {
    pub backend: u32,
    pub service: u32,
    pub hop: NextHop,
    /// This packet created (or re-created) the connection.
    pub new_conn: bool,
    /// The connection's state after this packet.
    pub state: u32,
    /// The flow is still half-open: never cached (its next packet must
    /// reach the slow path to be promoted).
    pub pending: bool,
}

/// What the connection tables say about a packet.
pub enum Existing {
    /// A live connection to a live backend: forward.
    Forward(Tracked),
    /// No entry.
    Missing,
    /// An entry idle past its timeout: deleted (and uncounted) as IPVS's
    /// timer would have.
    Expired,
    /// An established entry whose backend is gone (with
    /// `SET_F_EXPIRE_NODEST`, or not TCP, or a SYN), or a SYN reusing a
    /// closed port: still in `conns` (and counted) until replaced. (No
    /// payload: an enum payload left undefined in the other variants
    /// makes LLVM spill uninitialised registers, which the verifier
    /// rejects.)
    Reschedule,
    /// A mid-stream TCP segment of a connection whose backend is down:
    /// dropped, so the connection waits for its server (IPVS's default).
    DestDown,
}

/// A SYN on these states starts a new connection on a reused port (IPVS
/// `conn_reuse_mode`): the client has closed its side of the old one.
#[inline(always)]
fn reusable(state: u32) -> bool {
    matches!(
        state,
        tcp::FIN_WAIT | tcp::TIME_WAIT | tcp::CLOSE | tcp::CLOSE_WAIT | tcp::LAST_ACK
    )
}

#[inline(always)]
fn timeout_ns(settings: &Settings, state: u32) -> u64 {
    let idx = state as usize;
    let s = if idx < tcp::NUM_STATES {
        settings.timeouts_s[idx]
    } else {
        0
    };
    s as u64 * NS_PER_S
}

#[inline(always)]
fn is_syn<F: Family>(pkt: &Packet<F::Flow>) -> bool {
    F::proto(&pkt.key) == IPPROTO_TCP && pkt.tcp_flags & tcp::FLAG_SYN != 0
}

#[inline(always)]
fn next_state<F: Family>(pkt: &Packet<F::Flow>, current: u32) -> u32 {
    if F::proto(&pkt.key) == IPPROTO_TCP {
        tcp::next_state(current, pkt.tcp_flags)
    } else {
        tcp::STATE_UDP
    }
}

/// Looks the packet's flow up in `conns`, then in `half_open`, and, if it
/// may continue, advances its state (promoting a half-open flow).
#[inline(always)]
pub fn existing<F: Family>(pkt: &Packet<F::Flow>, settings: &Settings, now: u64) -> Existing {
    match established::<F>(pkt, settings, now) {
        Existing::Missing | Existing::Expired => half_open::<F>(pkt, settings, now),
        other => other,
    }
}

/// The `conns` step.
#[inline(always)]
fn established<F: Family>(pkt: &Packet<F::Flow>, settings: &Settings, now: u64) -> Existing {
    let Some(c) = F::conns().get_ptr_mut(pkt.key) else {
        return Existing::Missing;
    };
    // SAFETY: a live map value; concurrent packets of one flow may race on
    // the state word exactly as IPVS's lockless readers would.
    let c = unsafe { &mut *c };
    if now.saturating_sub(c.last_seen_ns) > timeout_ns(settings, c.state) {
        let (backend, state) = (c.backend, c.state);
        if F::conns().remove(pkt.key).is_ok() {
            conn_counts::closed(backend, state);
        }
        return Existing::Expired;
    }
    if is_syn::<F>(pkt) && reusable(c.state) {
        return Existing::Reschedule;
    }
    let Some(hop) = schedule::backend_hop(c.backend, c.service) else {
        // Its backend is down. A dead real server never receives traffic;
        // a mid-stream TCP segment is dropped (IPVS `expire_nodest_conn=0`:
        // a server back within the client's retransmissions keeps its
        // connections) unless the operator asked for rescheduling; a SYN
        // or a datagram is scheduled anew.
        let tcp_mid_stream = F::proto(&pkt.key) == IPPROTO_TCP && !is_syn::<F>(pkt);
        if tcp_mid_stream && settings.flags & SET_F_EXPIRE_NODEST == 0 {
            return Existing::DestDown;
        }
        return Existing::Reschedule;
    };
    let state = next_state::<F>(pkt, c.state);
    if state != c.state {
        F::sync_conn(settings, &pkt.key, state, c.backend, c.service);
        conn_counts::changed(c.backend, c.state, state);
    }
    c.state = state;
    c.last_seen_ns = now;
    if c.flags & CONN_F_PERSISTENT != 0 {
        touch_template::<F>(pkt, now);
    }
    Existing::Forward(Tracked {
        backend: c.backend,
        service: c.service,
        hop,
        new_conn: false,
        state,
        pending: false,
    })
}

/// The `half_open` step: a repeated first packet goes where the first one
/// went; any other packet promotes the flow into `conns`.
#[inline(always)]
fn half_open<F: Family>(pkt: &Packet<F::Flow>, settings: &Settings, now: u64) -> Existing {
    let Some(c) = F::half_open().get_ptr(pkt.key) else {
        return Existing::Missing;
    };
    // SAFETY: a live map value, copied out before the entry is touched.
    let mut c = unsafe { *c };
    let live = now.saturating_sub(c.last_seen_ns) <= timeout_ns(settings, c.state);
    let hop = match schedule::backend_hop(c.backend, c.service) {
        Some(hop) if live => hop,
        _ => {
            // Only the CPU whose removal took the entry uncounts it.
            if F::half_open().remove(pkt.key).is_ok() {
                conn_counts::closed(c.backend, c.state);
            }
            return Existing::Missing;
        }
    };
    let repeat =
        F::proto(&pkt.key) == IPPROTO_TCP && pkt.tcp_flags & (tcp::FLAG_SYN | tcp::FLAG_RST) != 0;
    if repeat {
        // A retransmitted SYN (or the client's RST): the client has not
        // completed the handshake; nothing to promote.
        c.last_seen_ns = now;
        let _ = F::half_open().insert(pkt.key, c, 0);
        stats::count_event(event::HALF_OPEN_REPEAT);
        return Existing::Forward(Tracked {
            backend: c.backend,
            service: c.service,
            hop,
            new_conn: false,
            state: c.state,
            pending: true,
        });
    }
    let was = c.state;
    c.state = next_state::<F>(pkt, c.state);
    c.last_seen_ns = now;
    // Into `conns` first, then out of `half_open`: a concurrent packet of
    // the flow finds it in one table or the other.
    let _ = F::conns().insert(pkt.key, c, 0);
    if F::half_open().remove(pkt.key).is_ok() {
        conn_counts::changed(c.backend, was, c.state);
    }
    stats::count_event(event::PROMOTED);
    F::sync_conn(settings, &pkt.key, c.state, c.backend, c.service);
    if c.flags & CONN_F_PERSISTENT != 0 {
        if let Some(svc) = F::services().get_ptr(F::service_key(&pkt.key)) {
            // SAFETY: a live map value, copied.
            let svc = unsafe { *svc };
            schedule::promote_template::<F>(&svc, &pkt.key, c.backend, now, settings);
        }
    }
    Existing::Forward(Tracked {
        backend: c.backend,
        service: c.service,
        hop,
        new_conn: false,
        state: c.state,
        pending: false,
    })
}

/// Keeps the persistence template of a persistent connection alive.
#[inline(always)]
fn touch_template<F: Family>(pkt: &Packet<F::Flow>, now: u64) {
    if let Some(svc) = F::services().get_ptr(F::service_key(&pkt.key)) {
        // SAFETY: a live map value, copied.
        let svc = unsafe { *svc };
        schedule::touch_template::<F>(&svc, &pkt.key, now);
    }
}

/// Schedules a new connection of `svc` (or re-schedules one whose entry
/// was `found`), if this packet may start one.
#[inline(always)]
pub fn create<F: Family>(
    pkt: &Packet<F::Flow>,
    svc: &Service,
    found: &Existing,
    settings: &Settings,
    now: u64,
) -> Step<Tracked> {
    let sloppy = (svc.flags & SVC_F_SLOPPY) | (settings.flags & SET_F_SLOPPY) != 0;
    let fresh = matches!(found, Existing::Missing | Existing::Expired);
    let may_start = match found {
        // IPVS schedules TCP only on SYN; a stray segment goes to the kernel.
        Existing::Missing | Existing::Expired => {
            F::proto(&pkt.key) != IPPROTO_TCP || is_syn::<F>(pkt) || sloppy
        }
        Existing::Reschedule | Existing::Forward(_) | Existing::DestDown => true,
    };
    if !may_start {
        return Err(Verdict::pass(reason::PASS_NO_CONN));
    }
    // IPVS one-packet scheduling (`ops`): a UDP datagram is a connection
    // of its own that ends with it. Scheduled every time (persistence
    // templates still apply), nothing kept, nothing counted, never cached.
    if svc.flags & SVC_F_ONEPACKET != 0 && F::proto(&pkt.key) == IPPROTO_UDP {
        let (backend, hop) = schedule::pick::<F>(svc, &pkt.key, now, settings, false)?;
        return Ok(Tracked {
            backend,
            service: svc.id,
            hop,
            new_conn: true,
            state: tcp::STATE_UDP,
            pending: true,
        });
    }
    // A SYN or a first datagram waits in `half_open` for its second packet;
    // a mid-stream segment (sloppy, or moved off a dead backend) is already
    // a connection.
    let pending = is_syn::<F>(pkt) || (F::proto(&pkt.key) != IPPROTO_TCP && fresh);
    let (backend, hop) = schedule::pick::<F>(svc, &pkt.key, now, settings, pending)?;
    let state = next_state::<F>(pkt, tcp::NONE);
    let conn = Conn {
        backend,
        service: svc.id,
        state,
        flags: if svc.flags & SVC_F_PERSISTENT != 0 {
            CONN_F_PERSISTENT
        } else {
            0
        },
        created_ns: now,
        last_seen_ns: now,
    };
    if pending {
        // A full LRU evicts its least recently used entry; insert cannot
        // fail for lack of room, and if it fails anyway the packet still
        // goes out (its ACK will then be passed to the kernel).
        let _ = F::half_open().insert(pkt.key, conn, 0);
        conn_counts::opened(backend, state);
        if !fresh {
            // A SYN reusing a closed connection's 5-tuple: the old entry
            // and any cached decision for it must not catch the new
            // handshake's ACK.
            let old = replaced::<F>(pkt);
            if F::conns().remove(pkt.key).is_ok() {
                uncount(old);
            }
            flow_cache::forget::<F>(pkt);
        }
        stats::count_event(event::HALF_OPEN_NEW);
    } else {
        let old = if fresh { None } else { replaced::<F>(pkt) };
        let _ = F::conns().insert(pkt.key, conn, 0);
        conn_counts::opened(backend, state);
        uncount(old); // overwritten
        flow_cache::forget::<F>(pkt);
        F::sync_conn(settings, &pkt.key, state, backend, svc.id);
    }
    Ok(Tracked {
        backend,
        service: svc.id,
        hop,
        // A connection moved off a dead server is not a new one.
        new_conn: pending || fresh,
        state,
        pending,
    })
}

/// The (backend, state) of the `conns` entry a rescheduled packet replaces.
#[inline(always)]
fn replaced<F: Family>(pkt: &Packet<F::Flow>) -> Option<(u32, u32)> {
    let c = F::conns().get_ptr(pkt.key)?;
    // SAFETY: a live map value, read once.
    let c = unsafe { *c };
    Some((c.backend, c.state))
}

#[inline(always)]
fn uncount(old: Option<(u32, u32)>) {
    if let Some((backend, state)) = old {
        conn_counts::closed(backend, state);
    }
}
