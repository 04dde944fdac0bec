//! The pipeline: parse IPv4 → VIP pre-filter → parse L4 → flow cache →
//! connection → (service → persistence → schedule) → rewrite → XDP_TX or
//! redirect.

use aya_ebpf::{helpers::bpf_ktime_get_coarse_ns, programs::XdpContext};
use lvs_common::{
    event, hash::vip_filter_bit, tcp, verdict as reason, FLOW_CACHE_EPOCH_SHIFT, IPPROTO_ICMP,
};

use crate::{
    conntrack::{self, Existing, Tracked},
    flow_cache, forward, frag, icmp,
    maps::{LOCAL_MACS, SERVICES, SETTINGS, VIP_FILTER},
    parse::{self, Packet},
    stats,
    verdict::{Step, Verdict},
};

/// The program's body: every frame gets exactly one counted verdict.
#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    let verdict = match process(ctx) {
        Ok(v) | Err(v) => v,
    };
    stats::count_verdict(verdict.reason);
    verdict.action
}

/// Clear bit in the pre-filter: certainly not a VIP, pass before parsing L4.
#[inline(always)]
fn vip_prefilter(dst_be: u32) -> Step<()> {
    let (word, bit) = vip_filter_bit(dst_be);
    match VIP_FILTER.get(word) {
        Some(w) if *w & (1u64 << bit) != 0 => Ok(()),
        _ => Err(Verdict::pass(reason::PASS_NOT_SERVICE)),
    }
}

/// Only frames addressed to this interface are ours: a switch flooding a
/// client's frames to every port must not make a backup director forward
/// copies (IPVS never sees them either: the stack drops OTHERHOST frames).
#[inline(always)]
fn addressed_to_us(ctx: &XdpContext) -> Step<()> {
    // SAFETY: reading the context's ingress ifindex field.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    let Some(local) = LOCAL_MACS.get(ifindex) else {
        return Ok(());
    };
    if local.mac == [0; 6] {
        return Ok(()); // not attached here through the agent (test-run)
    }
    let start = ctx.data();
    if start + 6 > ctx.data_end() {
        return Err(Verdict::pass(reason::PASS_MALFORMED));
    }
    // SAFETY: the 6 bytes of the destination MAC are inside the frame.
    let dst = unsafe { *(start as *const [u8; 6]) };
    if dst != local.mac {
        return Err(Verdict::pass(reason::PASS_OTHER_HOST));
    }
    Ok(())
}

#[inline(always)]
fn process(ctx: &XdpContext) -> Step<Verdict> {
    let ip = parse::ipv4(ctx)?;
    vip_prefilter(ip.dst_be)?;
    addressed_to_us(ctx)?;
    if ip.proto == IPPROTO_ICMP {
        let (hop, service, backend) = icmp::error_hop(ctx, &ip)?;
        let len = (ctx.data_end() - ctx.data()) as u32;
        stats::count_forwarded(service, backend, len, false);
        return forward::send(ctx, &hop);
    }
    if ip.is_later_fragment() {
        // SAFETY: a helper without arguments.
        let now = unsafe { bpf_ktime_get_coarse_ns() };
        let (hop, service, backend) = frag::later(&ip, now)?;
        let len = (ctx.data_end() - ctx.data()) as u32;
        stats::count_forwarded(service, backend, len, false);
        return forward::send(ctx, &hop);
    }
    let pkt = parse::l4(ctx, &ip)?;
    let settings = SETTINGS
        .get(0)
        .ok_or(Verdict::pass(reason::PASS_NOT_SERVICE))?;
    // Read once: the agent may bump it while this packet is in flight.
    let tick = settings.tick;
    // CLOCK_MONOTONIC at jiffy resolution: timeouts are in seconds, and the
    // coarse clock is a plain load where the precise one reads the TSC.
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let epoch = (now >> FLOW_CACHE_EPOCH_SHIFT) as u32;

    if let Some((hop, service, backend)) = flow_cache::lookup(&pkt, tick, epoch) {
        if ip.is_first_fragment() {
            frag::remember(&ip, backend, service, now);
        }
        stats::count_event(event::FLOW_CACHE_HIT);
        stats::count_forwarded(service, backend, pkt.len, false);
        return forward::send(ctx, &hop);
    }

    let found = conntrack::existing(&pkt, settings, now);
    let t = match found {
        Existing::Forward(t) => t,
        Existing::DestDown => return Err(Verdict::drop(reason::DROP_DEST_DOWN)),
        ref other => schedule(&pkt, other, settings, now)?,
    };
    if ip.is_first_fragment() {
        frag::remember(&ip, t.backend, t.service, now);
    }
    if !t.pending && (t.state == tcp::ESTABLISHED || t.state == tcp::STATE_UDP) {
        flow_cache::store(&pkt, &t.hop, t.service, t.backend, tick, epoch);
    }
    stats::count_forwarded(t.service, t.backend, pkt.len, t.new_conn);
    forward::send(ctx, &t.hop)
}

/// The service's part: only packets without a usable connection get here.
#[inline(always)]
fn schedule(
    pkt: &Packet,
    found: &Existing,
    settings: &lvs_common::Settings,
    now: u64,
) -> Step<Tracked> {
    let svc = SERVICES
        .get_ptr(conntrack::service_key(pkt))
        .ok_or(Verdict::pass(reason::PASS_NOT_SERVICE))?;
    // SAFETY: a live map value, copied out before anything else runs.
    let svc = unsafe { *svc };
    conntrack::create(pkt, &svc, found, settings, now)
}
