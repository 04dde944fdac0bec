//! The connection table: a flow keeps its backend for its whole life, and
//! its TCP state is followed from the client side the way IPVS does it.
//!
//! Looked up before the service: an established flow needs only its entry,
//! so the common slow path costs one hash lookup, like the cheapest
//! connection-tracking balancer; the service is read only to schedule.

use lvs_common::{
    tcp, verdict as reason, Conn, Service, ServiceKey, Settings, CONN_F_PERSISTENT, IPPROTO_TCP,
    SET_F_SLOPPY, SVC_F_PERSISTENT, SVC_F_SLOPPY,
};

use crate::{
    forward::NextHop,
    maps::{CONNS, SERVICES},
    parse::Packet,
    schedule, sync,
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
}

/// What the connection table says about a packet.
pub enum Existing {
    /// A live connection to a live backend: forward.
    Forward(Tracked),
    /// No entry.
    Missing,
    /// An entry idle past its timeout (IPVS would have deleted it).
    Expired,
    /// An entry whose backend is gone, or a SYN reusing a closed port.
    Reschedule,
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
fn is_syn(pkt: &Packet) -> bool {
    pkt.key.proto == IPPROTO_TCP && pkt.tcp_flags & tcp::FLAG_SYN != 0
}

/// Looks the packet's connection up and, if it may continue, advances its
/// state.
#[inline(always)]
pub fn existing(pkt: &Packet, settings: &Settings, now: u64) -> Existing {
    let Some(c) = CONNS.get_ptr_mut(pkt.key) else {
        return Existing::Missing;
    };
    // SAFETY: a live map value; concurrent packets of one flow may race on
    // the state word exactly as IPVS's lockless readers would.
    let c = unsafe { &mut *c };
    if now.saturating_sub(c.last_seen_ns) > timeout_ns(settings, c.state) {
        return Existing::Expired;
    }
    if is_syn(pkt) && reusable(c.state) {
        return Existing::Reschedule;
    }
    let Some(hop) = schedule::backend_hop(c.backend, c.service) else {
        // Its backend is gone: reschedule on this packet, SYN or not, so a
        // dead real server never keeps receiving traffic.
        return Existing::Reschedule;
    };
    let state = if pkt.key.proto == IPPROTO_TCP {
        tcp::next_state(c.state, pkt.tcp_flags)
    } else {
        tcp::STATE_UDP
    };
    if state != c.state {
        sync::conn(settings, &pkt.key, state, c.backend, c.service);
    }
    c.state = state;
    c.last_seen_ns = now;
    if c.flags & CONN_F_PERSISTENT != 0 {
        touch_template(pkt, now);
    }
    Existing::Forward(Tracked {
        backend: c.backend,
        service: c.service,
        hop,
        new_conn: false,
        state,
    })
}

/// Keeps the persistence template of a persistent connection alive.
#[inline(always)]
fn touch_template(pkt: &Packet, now: u64) {
    if let Some(svc) = SERVICES.get_ptr(service_key(pkt)) {
        // SAFETY: a live map value, copied.
        let svc = unsafe { *svc };
        schedule::touch_template(&svc, pkt.key.src_be, now);
    }
}

/// The service key of a packet.
#[inline(always)]
pub fn service_key(pkt: &Packet) -> ServiceKey {
    ServiceKey {
        addr_be: pkt.key.dst_be,
        port_be: pkt.key.dport_be,
        proto: pkt.key.proto,
        _pad: 0,
    }
}

/// Schedules a new connection of `svc` (or re-schedules one whose entry
/// was `found`), if this packet may start one.
#[inline(always)]
pub fn create(
    pkt: &Packet,
    svc: &Service,
    found: &Existing,
    settings: &Settings,
    now: u64,
) -> Step<Tracked> {
    let sloppy = (svc.flags & SVC_F_SLOPPY) | (settings.flags & SET_F_SLOPPY) != 0;
    let may_start = match found {
        // IPVS schedules TCP only on SYN; a stray segment goes to the kernel.
        Existing::Missing | Existing::Expired => {
            pkt.key.proto != IPPROTO_TCP || is_syn(pkt) || sloppy
        }
        Existing::Reschedule | Existing::Forward(_) => true,
    };
    if !may_start {
        return Err(Verdict::pass(reason::PASS_NO_CONN));
    }
    let (backend, hop) = schedule::pick(svc, pkt.key.src_be, now, settings)?;
    let state = if pkt.key.proto == IPPROTO_TCP {
        tcp::next_state(tcp::NONE, pkt.tcp_flags)
    } else {
        tcp::STATE_UDP
    };
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
    // A full LRU evicts its least recently used entry; insert cannot fail
    // for lack of room, and if it fails anyway the packet still goes out.
    let _ = CONNS.insert(pkt.key, conn, 0);
    sync::conn(settings, &pkt.key, state, backend, svc.id);
    Ok(Tracked {
        backend,
        service: svc.id,
        hop,
        new_conn: true,
        state,
    })
}
