//! The pipeline: parse IPv4 (or IPv6) → VIP pre-filter → parse L4 → flow
//! cache → connection → (service → persistence → schedule) → rewrite →
//! XDP_TX or redirect. The steps after L4 parsing are generic over the
//! address family (`family::Family`), monomorphised for each.

use aya_ebpf::{helpers::bpf_ktime_get_coarse_ns, programs::XdpContext};
use lvs_common::{
    event,
    hash::{ipv6_fold, vip_filter_bit},
    tcp, verdict as reason, FLOW_CACHE_EPOCH_SHIFT, IPPROTO_ICMP, IPPROTO_ICMPV6,
};

use crate::{
    conntrack::{self, Existing, Tracked},
    family::{Family, V4, V6},
    flow_cache, forward, frag, icmp, icmp6,
    maps::{IPV6_PATH, LOCAL_MACS, SETTINGS, VIP_FILTER},
    parse::{self, Packet},
    stats,
    verdict::{Step, Verdict},
};

/// The program's body: every frame gets exactly one counted verdict.
#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    counted(process(ctx))
}

/// The IPv6 program's body (`lvs_xdp6`, tail-called by `run` for frames
/// that are not IPv4): its verdict is counted here.
#[inline(always)]
pub fn run6(ctx: &XdpContext) -> u32 {
    counted(process6(ctx))
}

/// Counts a program's one verdict (the pipeline's end or the step that
/// stopped it) and returns its XDP action.
#[inline(always)]
fn counted(result: Step<Verdict>) -> u32 {
    let verdict = match result {
        Ok(v) | Err(v) => v,
    };
    stats::count_verdict(verdict.reason);
    verdict.action
}

const ETH_P_IPV6: [u8; 2] = [0x86, 0xDD];

/// Hands an IPv6 frame to the IPv6 program; returns only if it cannot
/// (no program in `ipv6_path`), and the frame then passes uncounted here.
#[inline(always)]
fn tail_call_ipv6(ctx: &XdpContext) {
    let start = ctx.data();
    if start + 14 > ctx.data_end() {
        return;
    }
    // SAFETY: the 14-byte Ethernet header is inside the frame.
    let ether_type = unsafe { *((start + 12) as *const [u8; 2]) };
    if ether_type == ETH_P_IPV6 {
        // SAFETY: a tail call with this program's own context.
        unsafe { IPV6_PATH.tail_call(ctx, 0) };
    }
}

/// Clear bit in the pre-filter: certainly not a VIP, pass before parsing L4.
/// (IPv6 VIPs set the bit of their folded address in the same bitmap.)
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
    let ip = match parse::ipv4(ctx) {
        Ok(ip) => ip,
        // Only frames that are not IPv4 pay for the IPv6 branch: a tail
        // call into the IPv6 program, which counts its own verdict.
        Err(v) if v.reason == reason::PASS_NOT_IPV4 => {
            tail_call_ipv6(ctx);
            return Err(v);
        }
        Err(v) => return Err(v),
    };
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
    let first_fragment = ip.is_first_fragment().then_some(&ip);
    track::<V4>(ctx, &pkt, first_fragment)
}

/// The IPv6 path: the same steps with IPv6 keys and tables.
#[inline(always)]
fn process6(ctx: &XdpContext) -> Step<Verdict> {
    let ip = parse::ipv6(ctx)?;
    vip_prefilter(ipv6_fold(&ip.dst_be))?;
    addressed_to_us(ctx)?;
    let (proto, off) = parse::ipv6_transport(ctx)?;
    if proto == IPPROTO_ICMPV6 {
        let (hop, service, backend) = icmp6::error_hop(ctx, &ip, off)?;
        let len = (ctx.data_end() - ctx.data()) as u32;
        stats::count_forwarded(service, backend, len, false);
        return forward::send(ctx, &hop);
    }
    let pkt = parse::l4_v6(ctx, &ip, proto, off)?;
    track::<V6>(ctx, &pkt, None)
}

/// From a parsed TCP/UDP packet to its verdict: flow cache, connection
/// tables, scheduling, rewrite. `first_fragment`: an IPv4 first fragment,
/// whose destination its later fragments will follow (see `frag`).
#[inline(always)]
fn track<F: Family>(
    ctx: &XdpContext,
    pkt: &Packet<F::Flow>,
    first_fragment: Option<&parse::Ipv4>,
) -> Step<Verdict> {
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

    if let Some((hop, service, backend)) = flow_cache::lookup::<F>(pkt, tick, epoch) {
        if let Some(ip) = first_fragment {
            frag::remember(ip, backend, service, now);
        }
        stats::count_event(event::FLOW_CACHE_HIT);
        stats::count_forwarded(service, backend, pkt.len, false);
        return forward::send(ctx, &hop);
    }

    let found = conntrack::existing::<F>(pkt, settings, now);
    let t = match found {
        Existing::Forward(t) => t,
        Existing::DestDown => return Err(Verdict::drop(reason::DROP_DEST_DOWN)),
        ref other => schedule::<F>(pkt, other, settings, now)?,
    };
    if let Some(ip) = first_fragment {
        frag::remember(ip, t.backend, t.service, now);
    }
    if !t.pending && (t.state == tcp::ESTABLISHED || t.state == tcp::STATE_UDP) {
        flow_cache::store::<F>(pkt, &t.hop, t.service, t.backend, tick, epoch);
    }
    stats::count_forwarded(t.service, t.backend, pkt.len, t.new_conn);
    forward::send(ctx, &t.hop)
}

/// The service's part: only packets without a usable connection get here.
#[inline(always)]
fn schedule<F: Family>(
    pkt: &Packet<F::Flow>,
    found: &Existing,
    settings: &lvs_common::Settings,
    now: u64,
) -> Step<Tracked> {
    let svc = F::services()
        .get_ptr(F::service_key(&pkt.key))
        .ok_or(Verdict::pass(reason::PASS_NOT_SERVICE))?;
    // SAFETY: a live map value, copied out before anything else runs.
    let svc = unsafe { *svc };
    conntrack::create::<F>(pkt, &svc, found, settings, now)
}
