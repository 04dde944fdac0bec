//! IPv4 fragments to a VIP. IPVS reassembles a fragmented datagram
//! (nf_defrag) and forwards it whole; XDP sees the fragments one by one.
//! The first fragment carries the ports: it is scheduled as any packet of
//! its flow, and where it went is remembered under (source, destination,
//! IP id, protocol), which every fragment of the datagram shares; the
//! later fragments follow it. The real server reassembles. A later
//! fragment that arrives before its first is passed to the kernel (which
//! cannot deliver it: the datagram is lost, as before).

use lvs_common::verdict as reason;

use crate::{
    forward::NextHop,
    maps::FRAGS,
    parse::Ipv4,
    schedule,
    verdict::{Step, Verdict},
};

/// How long the fragments of a datagram follow their first: the kernel's
/// default reassembly timeout (`ipfrag_time`, 30 s).
const FRAG_TIMEOUT_NS: u64 = 30_000_000_000;

/// `frags` key: what the fragments of one datagram have in common.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FragKey {
    pub src_be: u32,
    pub dst_be: u32,
    pub id: [u8; 2],
    pub proto: u8,
    pub _pad: u8,
}

/// `frags` value: where the first fragment went.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FragDest {
    pub backend: u32,
    pub service: u32,
    pub first_ns: u64,
}

#[inline(always)]
fn key(ip: &Ipv4) -> FragKey {
    FragKey {
        src_be: ip.src_be,
        dst_be: ip.dst_be,
        id: ip.id,
        proto: ip.proto,
        _pad: 0,
    }
}

/// The first fragment of a datagram went to `backend`: its later
/// fragments will too.
#[inline(always)]
pub fn remember(ip: &Ipv4, backend: u32, service: u32, now: u64) {
    let dest = FragDest {
        backend,
        service,
        first_ns: now,
    };
    // A full LRU forgets its oldest datagram: never a reason to drop.
    let _ = FRAGS.insert(key(ip), dest, 0);
}

/// Where a later fragment goes: where its first went, if that is known,
/// recent and still alive.
#[inline(always)]
pub fn later(ip: &Ipv4, now: u64) -> Step<(NextHop, u32, u32)> {
    let miss = Verdict::pass(reason::PASS_FRAGMENT);
    let d = FRAGS.get_ptr(key(ip)).ok_or(miss)?;
    // SAFETY: a live map value, copied out.
    let d = unsafe { *d };
    if now.saturating_sub(d.first_ns) > FRAG_TIMEOUT_NS {
        return Err(miss);
    }
    let hop = schedule::backend_hop(d.backend, d.service).ok_or(miss)?;
    Ok((hop, d.service, d.backend))
}
