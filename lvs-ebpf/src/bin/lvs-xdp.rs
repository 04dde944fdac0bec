//! The XDP program lvsd attaches.
#![no_std]
#![no_main]

use aya_ebpf::{macros::xdp, programs::XdpContext};

#[xdp]
pub fn lvs_xdp(ctx: XdpContext) -> u32 {
    lvs_ebpf::datapath::run(&ctx)
}

/// The IPv6 path, tail-called by `lvs_xdp` (through `ipv6_path`).
#[xdp]
pub fn lvs_xdp6(ctx: XdpContext) -> u32 {
    lvs_ebpf::datapath::run6(&ctx)
}
