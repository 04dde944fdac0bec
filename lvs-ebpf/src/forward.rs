//! The one rewrite Direct Routing makes: the Ethernet addresses.

use aya_ebpf::programs::XdpContext;
use network_types::eth::EthHdr;

use crate::{
    maps::TX_PORTS,
    verdict::{Step, Verdict},
};

/// Where a forwarded frame goes.
pub struct NextHop {
    pub mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ifindex: u32,
}

/// Rewrites destination MAC (the real server) and source MAC (our egress
/// interface), then sends the frame back out (XDP_TX) or to another
/// interface through `tx_ports`. L3 and L4 are untouched: no checksum, TTL
/// or option changes, exactly like IPVS DR.
#[inline(always)]
pub fn send(ctx: &XdpContext, hop: &NextHop) -> Step<Verdict> {
    let start = ctx.data();
    if start + EthHdr::LEN > ctx.data_end() {
        return Err(Verdict::pass(lvs_common::verdict::PASS_MALFORMED));
    }
    let eth = start as *mut EthHdr;
    // SAFETY: the bounds check above covers the Ethernet header.
    unsafe {
        (*eth).dst_addr = hop.mac;
        (*eth).src_addr = hop.src_mac;
    }
    // SAFETY: reading the context's ingress ifindex field.
    let ingress = unsafe { (*ctx.ctx).ingress_ifindex };
    if hop.ifindex == ingress {
        return Ok(Verdict::TX);
    }
    match TX_PORTS.redirect(hop.ifindex, 0) {
        Ok(_) => Ok(Verdict::REDIRECT),
        Err(_) => Ok(Verdict::NO_TX_PORT),
    }
}
