//! The pipeline: parse → VIP pre-filter → flow cache → service →
//! connection (→ persistence → schedule) → rewrite → XDP_TX / redirect.

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::XdpContext};
use lvs_common::{hash::vip_filter_bit, tcp, verdict as reason, ServiceKey};

use crate::{
    conntrack, flow_cache, forward,
    maps::{SERVICES, SETTINGS, VIP_FILTER},
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

/// Clear bit in the pre-filter: certainly not a service, pass cheaply.
#[inline(always)]
fn vip_prefilter(pkt: &Packet) -> Step<()> {
    let (word, bit) = vip_filter_bit(pkt.key.dst_be, pkt.key.dport_be, pkt.key.proto);
    match VIP_FILTER.get(word) {
        Some(w) if *w & (1u64 << bit) != 0 => Ok(()),
        _ => Err(Verdict::pass(reason::PASS_NOT_SERVICE)),
    }
}

#[inline(always)]
fn process(ctx: &XdpContext) -> Step<Verdict> {
    let pkt = parse::parse(ctx)?;
    vip_prefilter(&pkt)?;
    let settings = SETTINGS
        .get(0)
        .ok_or(Verdict::pass(reason::PASS_NOT_SERVICE))?;

    if let Some((hop, service, backend)) = flow_cache::lookup(&pkt, settings.tick) {
        stats::count_verdict(reason::FLOW_CACHE_HIT);
        stats::count_forwarded(service, backend, pkt.len, false);
        return forward::send(ctx, &hop);
    }

    let key = ServiceKey {
        addr_be: pkt.key.dst_be,
        port_be: pkt.key.dport_be,
        proto: pkt.key.proto,
        _pad: 0,
    };
    let svc = SERVICES
        .get_ptr(&key)
        .ok_or(Verdict::pass(reason::PASS_NOT_SERVICE))?;
    // SAFETY: a live map value, copied out before anything else runs.
    let svc = unsafe { *svc };

    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    let t = conntrack::track(&pkt, &svc, settings, now)?;
    if t.state == tcp::ESTABLISHED || t.state == tcp::STATE_UDP {
        flow_cache::store(&pkt, &t.hop, svc.id, t.backend, settings.tick);
    }
    stats::count_forwarded(svc.id, t.backend, pkt.len, t.new_conn);
    forward::send(ctx, &t.hop)
}
