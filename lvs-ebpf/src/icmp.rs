//! ICMP errors about our connections go to their real server, as IPVS's
//! `ip_vs_in_icmp` does: a router on the path between a real server and
//! its client sends "fragmentation needed" (or port unreachable, time
//! exceeded…) to the source of the packet it could not forward — the VIP —
//! and only the real server, which sent it, can act on it. Without this a
//! client behind a smaller-MTU link hangs (a PMTU black hole).
//!
//! The error quotes the offending packet's IP header and first 8 bytes:
//! VIP:vport → client:cport. Its connection is the client-side 5-tuple
//! read back the other way. Unknown connections and anything else are
//! passed to the kernel.

use aya_ebpf::programs::XdpContext;
use lvs_common::{event, verdict as reason, Conn, FlowKey, IPPROTO_TCP, IPPROTO_UDP};
use network_types::eth::EthHdr;

use crate::{
    forward::NextHop,
    maps::{CONNS, HALF_OPEN},
    parse::{ptr_at, Ipv4},
    schedule, stats,
    verdict::{Step, Verdict},
};

const DEST_UNREACH: u8 = 3;
const SOURCE_QUENCH: u8 = 4;
const TIME_EXCEEDED: u8 = 11;
const PARAMETER_PROBLEM: u8 = 12;
/// The ICMP header, the same 8 bytes in ICMPv6.
pub const ICMP_HDR_LEN: usize = 8;

/// The connection an ICMP error to a VIP is about, and where it goes.
#[inline(always)]
pub fn error_hop(ctx: &XdpContext, ip: &Ipv4) -> Step<(NextHop, u32, u32)> {
    let not_ours = Verdict::pass(reason::PASS_NOT_SERVICE);
    if ip.frags & 0x3FFF != 0 {
        return Err(not_ours);
    }
    let first: *const u8 = ptr_at(ctx, EthHdr::LEN)?;
    // SAFETY: ipv4() already checked this byte is inside the frame.
    let ihl = ((unsafe { *first } & 0x0F) as usize) * 4;
    let icmp_off = EthHdr::LEN + ihl;
    let icmp: *const [u8; ICMP_HDR_LEN] = ptr_at(ctx, icmp_off)?;
    // SAFETY: ptr_at checked the 8-byte ICMP header.
    let kind = unsafe { (*icmp)[0] };
    if !matches!(
        kind,
        DEST_UNREACH | SOURCE_QUENCH | TIME_EXCEEDED | PARAMETER_PROBLEM
    ) {
        return Err(not_ours); // echo and the rest are the director's own
    }
    // The quoted header: at least 20 bytes, then 8 bytes of its payload.
    let inner_off = icmp_off + ICMP_HDR_LEN;
    let inner: *const [u8; 20] = ptr_at(ctx, inner_off)?;
    // SAFETY: ptr_at checked the quoted 20-byte IPv4 header.
    let h = unsafe { *inner };
    let inner_ihl = ((h[0] & 0x0F) as usize) * 4;
    let proto = h[9];
    if h[0] >> 4 != 4 || inner_ihl < 20 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
        return Err(not_ours);
    }
    let ports: *const [u8; 4] = ptr_at(ctx, inner_off + inner_ihl)?;
    // SAFETY: ptr_at checked the quoted ports.
    let p = unsafe { *ports };
    // Quoted: VIP:vport → client:cport. Ours: client:cport → VIP:vport.
    let key = FlowKey {
        src_be: u32::from_ne_bytes([h[16], h[17], h[18], h[19]]),
        dst_be: u32::from_ne_bytes([h[12], h[13], h[14], h[15]]),
        sport_be: u16::from_ne_bytes([p[2], p[3]]),
        dport_be: u16::from_ne_bytes([p[0], p[1]]),
        proto,
        _pad: [0; 3],
    };
    // The error must be about a packet sent from the VIP it was sent to.
    if key.dst_be != ip.dst_be {
        return Err(not_ours);
    }
    let c = match CONNS.get_ptr(key) {
        Some(c) => c,
        None => HALF_OPEN.get_ptr(key).ok_or(not_ours)?,
    };
    // SAFETY: a live map value, copied.
    to_real_server(unsafe { *c }, not_ours)
}

/// Where an ICMP or ICMPv6 error about connection `c` goes: its real
/// server (counted), or the kernel (`not_ours`) when that is gone.
#[inline(always)]
pub fn to_real_server(c: Conn, not_ours: Verdict) -> Step<(NextHop, u32, u32)> {
    let hop = schedule::backend_hop(c.backend, c.service).ok_or(not_ours)?;
    stats::count_event(event::ICMP_ERROR_FORWARDED);
    Ok((hop, c.service, c.backend))
}
