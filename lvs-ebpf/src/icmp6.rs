//! ICMPv6 errors about our IPv6 connections go to their real server, as
//! `icmp.rs` does for IPv4 (IPVS `ip_vs_in_icmp_v6`): "packet too big"
//! above all, without which a client behind a smaller-MTU link hangs.
//!
//! The error quotes the offending packet from its IPv6 header on:
//! VIP:vport → client:cport. Only a quoted TCP/UDP header right after the
//! fixed header is followed; quoted extension headers, unknown connections,
//! neighbour discovery and every other ICMPv6 message go to the kernel.

use aya_ebpf::programs::XdpContext;
use lvs_common::{verdict as reason, FlowKey6, IPPROTO_TCP, IPPROTO_UDP, IPV6_HDR_LEN};

use crate::{
    forward::NextHop,
    icmp::{self, ICMP_HDR_LEN},
    maps::{CONNS6, HALF_OPEN6},
    parse::{ptr_at, Ipv6},
    verdict::{Step, Verdict},
};

const DEST_UNREACH: u8 = 1;
const PACKET_TOO_BIG: u8 = 2;
const TIME_EXCEEDED: u8 = 3;
const PARAMETER_PROBLEM: u8 = 4;

/// The connection an ICMPv6 error to a VIP (at `off`, the ICMPv6 header)
/// is about, and where it goes.
#[inline(always)]
pub fn error_hop(ctx: &XdpContext, ip: &Ipv6, off: usize) -> Step<(NextHop, u32, u32)> {
    let not_ours = Verdict::pass(reason::PASS_NOT_SERVICE);
    let icmp: *const [u8; ICMP_HDR_LEN] = ptr_at(ctx, off)?;
    // SAFETY: ptr_at checked the 8-byte ICMPv6 header.
    let kind = unsafe { (*icmp)[0] };
    if !matches!(
        kind,
        DEST_UNREACH | PACKET_TOO_BIG | TIME_EXCEEDED | PARAMETER_PROBLEM
    ) {
        return Err(not_ours); // echo, neighbour discovery: the director's own
    }
    let inner_off = off + ICMP_HDR_LEN;
    let inner: *const [u8; IPV6_HDR_LEN] = ptr_at(ctx, inner_off)?;
    let ports: *const [u8; 4] = ptr_at(ctx, inner_off + IPV6_HDR_LEN)?;
    // SAFETY: ptr_at checked the quoted 40-byte header and the 4 port bytes.
    let (h, p) = unsafe { (&*inner, *ports) };
    let proto = h[6];
    if h[0] >> 4 != 6 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
        return Err(not_ours);
    }
    let w = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    // Quoted: VIP:vport → client:cport. Ours: client:cport → VIP:vport.
    let key = FlowKey6 {
        src_be: [w(24), w(28), w(32), w(36)],
        dst_be: [w(8), w(12), w(16), w(20)],
        sport_be: u16::from_ne_bytes([p[2], p[3]]),
        dport_be: u16::from_ne_bytes([p[0], p[1]]),
        proto,
        _pad: [0; 3],
    };
    // The error must be about a packet sent from the VIP it was sent to.
    let d = &key.dst_be;
    let v = &ip.dst_be;
    if (d[0] ^ v[0]) | (d[1] ^ v[1]) | (d[2] ^ v[2]) | (d[3] ^ v[3]) != 0 {
        return Err(not_ours);
    }
    let c = match CONNS6.get_ptr(key) {
        Some(c) => c,
        None => HALF_OPEN6.get_ptr(key).ok_or(not_ours)?,
    };
    // SAFETY: a live map value, copied.
    icmp::to_real_server(unsafe { *c }, not_ours)
}
