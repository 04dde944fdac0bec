//! The XDP program lvsd attaches.
#![no_std]
#![no_main]

use aya_ebpf::{macros::xdp, programs::XdpContext};

// Inlined into the section's entry point: left to LLVM, the body became a
// BPF subprogram called from it, and new flows and promotions (the paths
// with map updates) cost ~25 % more in the bench.
#[xdp]
#[inline(always)]
pub fn lvs_xdp(ctx: XdpContext) -> u32 {
    lvs_ebpf::datapath::run(&ctx)
}

/// The IPv6 path, tail-called by `lvs_xdp` (through `ipv6_path`).
#[xdp]
#[inline(always)]
pub fn lvs_xdp6(ctx: XdpContext) -> u32 {
    lvs_ebpf::datapath::run6(&ctx)
}
