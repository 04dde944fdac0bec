//! Programs that are not the data path: the bench's two baselines and its
//! flow-varying harness, and an XDP_PASS program for lab veth peers (native
//! XDP_TX on a veth needs an XDP program on the receiving peer).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{Array, LruHashMap, PerCpuArray, ProgramArray},
    macros::{btf_map, xdp},
    programs::XdpContext,
};
use lvs_common::{bench, Backend, FlowKey};
use network_types::eth::EthHdr;

#[xdp]
pub fn xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// Baseline 1, the reflector: swap the MACs and send the frame back.
#[xdp]
pub fn bench_reflector(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + EthHdr::LEN > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    let eth = start as *mut EthHdr;
    // SAFETY: bounds-checked above.
    unsafe {
        core::mem::swap(&mut (*eth).dst_addr, &mut (*eth).src_addr);
    }
    xdp_action::XDP_TX
}

/// Flow → backend id for the floor; sized by the bench at load time.
#[btf_map(name = "floor_flows")]
static FLOOR_FLOWS: LruHashMap<FlowKey, u32, 1024> = LruHashMap::new();
#[btf_map(name = "floor_backends")]
static FLOOR_BACKENDS: Array<Backend, 1024> = Array::new();

/// Baseline 2, the floor: what any connection-tracking balancer must do —
/// parse to the 5-tuple, one LRU lookup, one array lookup, MAC rewrite.
#[xdp]
pub fn bench_floor(ctx: XdpContext) -> u32 {
    let Ok(pkt) = lvs_ebpf::parse::parse(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    let Some(id) = FLOOR_FLOWS.get_ptr(pkt.key) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: a live map value.
    let Some(b) = FLOOR_BACKENDS.get(unsafe { *id }) else {
        return xdp_action::XDP_PASS;
    };
    let start = ctx.data();
    if start + EthHdr::LEN > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    let eth = start as *mut EthHdr;
    // SAFETY: bounds-checked above.
    unsafe {
        (*eth).dst_addr = b.mac;
        (*eth).src_addr = b.src_mac;
    }
    xdp_action::XDP_TX
}

#[btf_map(name = "harness_target")]
static HARNESS_TARGET: ProgramArray<1> = ProgramArray::new();
#[btf_map(name = "harness_cfg")]
static HARNESS_CFG: Array<bench::HarnessCfg, 1> = Array::new();
#[btf_map(name = "harness_seq")]
static HARNESS_SEQ: PerCpuArray<u32, 1> = PerCpuArray::new();

/// Makes each test-run repetition a different flow, then tail-calls the
/// program under test (slot 0 of `harness_target`).
#[xdp]
pub fn bench_harness(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + bench::MIN_FRAME > ctx.data_end() {
        return xdp_action::XDP_ABORTED;
    }
    let (Some(seq), Some(cfg)) = (HARNESS_SEQ.get_ptr_mut(0), HARNESS_CFG.get(0)) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: per-CPU slot, only this CPU touches it.
    let i = unsafe {
        let i = *seq;
        *seq = i.wrapping_add(1);
        i
    };
    let idx = if cfg.flows > 0 { i % cfg.flows } else { i };
    let (addr_low, sport) = bench::flow_variation(idx);
    // SAFETY: MIN_FRAME covers both offsets plus their two bytes.
    unsafe {
        *((start + bench::SRC_ADDR_LOW_OFFSET) as *mut [u8; 2]) = addr_low.to_be_bytes();
        *((start + bench::SPORT_OFFSET) as *mut [u8; 2]) = sport.to_be_bytes();
        HARNESS_TARGET.tail_call(&ctx, 0);
    }
    xdp_action::XDP_ABORTED
}
