//! The connection table: a flow keeps its backend for its whole life, and
//! its TCP state is followed from the client side the way IPVS does it.

use lvs_common::{
    tcp, Conn, Service, Settings, IPPROTO_TCP, SET_F_SLOPPY, SVC_F_SLOPPY,
};

use crate::{
    forward::NextHop,
    maps::CONNS,
    parse::Packet,
    schedule,
    verdict::{Step, Verdict},
};

const NS_PER_S: u64 = 1_000_000_000;

/// The outcome for a packet of a service.
pub struct Tracked {
    pub backend: u32,
    pub hop: NextHop,
    /// This packet created (or re-created) the connection.
    pub new_conn: bool,
    /// The connection's state after this packet.
    pub state: u32,
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

/// Finds the packet's connection or creates one.
#[inline(always)]
pub fn track(pkt: &Packet, svc: &Service, settings: &Settings, now: u64) -> Step<Tracked> {
    let is_tcp = pkt.key.proto == IPPROTO_TCP;
    let syn = is_tcp && pkt.tcp_flags & tcp::FLAG_SYN != 0;
    let sloppy = (svc.flags & SVC_F_SLOPPY) | (settings.flags & SET_F_SLOPPY) != 0;

    if let Some(c) = CONNS.get_ptr_mut(&pkt.key) {
        // SAFETY: a live map value; concurrent packets of the same flow may
        // race on the state byte exactly as IPVS's lockless readers would.
        let c = unsafe { &mut *c };
        let expired = now.saturating_sub(c.last_seen_ns) > timeout_ns(settings, c.state);
        let reuse = syn && reusable(c.state);
        if !expired && !reuse {
            if let Some(hop) = schedule::backend_hop(c.backend, svc.id) {
                let state = if is_tcp {
                    tcp::next_state(c.state, pkt.tcp_flags)
                } else {
                    tcp::STATE_UDP
                };
                c.state = state;
                c.last_seen_ns = now;
                schedule::touch_template(svc, pkt.key.src_be, now);
                return Ok(Tracked {
                    backend: c.backend,
                    hop,
                    new_conn: false,
                    state,
                });
            }
            // Its backend is gone: reschedule on this packet, SYN or not,
            // so a dead real server never keeps receiving traffic.
        } else if is_tcp && !syn && !sloppy {
            return Err(Verdict::pass(lvs_common::verdict::PASS_NO_CONN));
        }
    } else if is_tcp && !syn && !sloppy {
        // IPVS schedules TCP only on SYN; a stray segment goes to the kernel.
        return Err(Verdict::pass(lvs_common::verdict::PASS_NO_CONN));
    }

    let (backend, hop) = schedule::pick(svc, pkt.key.src_be, now)?;
    let state = if is_tcp {
        tcp::next_state(tcp::NONE, pkt.tcp_flags)
    } else {
        tcp::STATE_UDP
    };
    let conn = Conn {
        backend,
        service: svc.id,
        state,
        flags: 0,
        created_ns: now,
        last_seen_ns: now,
    };
    // A full LRU evicts its least recently used entry; insert cannot fail
    // for lack of room, and if it fails anyway the packet still goes out.
    let _ = CONNS.insert(&pkt.key, &conn, 0);
    Ok(Tracked {
        backend,
        hop,
        new_conn: true,
        state,
    })
}
