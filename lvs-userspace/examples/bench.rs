//! `cargo xtask bench`: the data path under BPF_PROG_TEST_RUN, next to two
//! baselines measured in the same run:
//!
//! - reflector: swap MACs, XDP_TX (the least any XDP forwarder does);
//! - floor: parse to the 5-tuple, one LRU lookup, one array lookup, MAC
//!   rewrite (the least any connection-tracking balancer does).
//!
//! Test-run repeats one buffer, so the paths that need many flows run behind
//! a harness program that rewrites the client address/port every repetition
//! and tail-calls the program under test; the harness's own cost is measured
//! in front of the reflector and subtracted.
//!
//! Frames come from `datapath::testrun`, the same builders as the unit tests.

use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::Result;
use aya::programs::Xdp;
use clap::Parser;
use lvs_common::{FlowKey, IPPROTO_TCP};
use lvs_userspace::{
    datapath::{
        testrun::{self, backend_mac, harness_key, tcp_frame, Flags, Tools, DIRECTOR_MAC},
        Datapath, DesiredBackend, DesiredService, DesiredState, NextHop, Options, Persistence,
        Protocol,
    },
    sched::Algorithm,
};

#[derive(Parser)]
struct Args {
    /// Repetitions per measurement.
    #[arg(long, default_value_t = 2_000_000)]
    repeat: u32,
    /// Flows in the many-flows case.
    #[arg(long, default_value_t = 1_000_000)]
    flows: u32,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Connection-table entries (default: enough for --flows on one CPU).
    #[arg(long)]
    table: Option<u32>,
}

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const PVIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 101);
const BIG_VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 102);
/// wlc over 1000 real servers (the choice is read from its tournament tree).
const WLC_VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 103);
/// mh over 10 real servers (one siphash and one table slot per new flow).
const MH_VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 104);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// The seed's service on an IPv6 VIP. (The harness's fixed offsets land
/// inside an IPv6 frame's source address: each repetition is still a new
/// client.)
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x100);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1);
const ROUNDS: usize = 5;

fn backends(n: usize, weight: impl Fn(usize) -> u32) -> Vec<DesiredBackend> {
    (0..n)
        .map(|i| DesiredBackend {
            addr: Ipv4Addr::new(198, 18, 100 + (i / 250) as u8, (i % 250) as u8 + 1).into(),
            port: 80,
            weight: weight(i),
            alive: true,
            u_threshold: 0,
            l_threshold: 0,
            next_hop: NextHop {
                mac: backend_mac((i % 250) as u8 + 1),
                src_mac: DIRECTOR_MAC,
                ifindex: 1, // lo: the test-run ingress, so XDP_TX
            },
        })
        .collect()
}

fn state() -> DesiredState {
    let seed = [2, 3, 3, 2, 2];
    let svc_with = |algo, vip, persistence, backends| DesiredService {
        vip,
        port: 80,
        proto: Protocol::Tcp,
        algo,
        persistence,
        sloppy: false,
        one_packet: false,
        backends,
    };
    let svc = |vip, persistence, backends| svc_with(Algorithm::Wrr, vip, persistence, backends);
    DesiredState {
        services: vec![
            svc(VIP.into(), None, backends(5, |i| seed[i])),
            // The harness varies the low 16 address bits: a /16 granularity
            // makes every generated client hit one template.
            svc(
                PVIP.into(),
                Some(Persistence {
                    timeout_s: 120,
                    netmask: Ipv4Addr::new(255, 255, 0, 0),
                    prefix_len6: 128,
                }),
                backends(5, |i| seed[i]),
            ),
            svc(BIG_VIP.into(), None, backends(1000, |i| 1 + (i % 7) as u32)),
            svc_with(
                Algorithm::Wlc,
                WLC_VIP.into(),
                None,
                backends(1000, |i| 1 + (i % 7) as u32),
            ),
            svc_with(
                Algorithm::Mh {
                    port: false,
                    fallback: false,
                },
                MH_VIP.into(),
                None,
                backends(10, |i| seed[i % 5]),
            ),
            svc(
                VIP6.into(),
                None,
                (0..5)
                    .map(|i| DesiredBackend {
                        addr: Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x11 + i as u16).into(),
                        ..backends(5, |i| seed[i]).remove(i)
                    })
                    .collect(),
            ),
        ],
    }
}

/// Median over rounds of the kernel's mean ns per repetition.
fn measure(prog: &Xdp, frame: &[u8], repeat: u32) -> Result<f64> {
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let (_, d) = testrun::time(prog, frame, repeat)?;
        samples.push(d.as_nanos() as f64);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[ROUNDS / 2])
}

/// Runs `prog` once and insists on a verdict, so a broken setup cannot
/// produce a fast-looking number.
fn expect_action(prog: &Xdp, frame: &[u8], want: u32, what: &str) -> Result<()> {
    let out = testrun::run(prog, frame)?;
    anyhow::ensure!(
        out.action == want,
        "{what}: verdict {} instead of {want}",
        out.action
    );
    Ok(())
}

struct Row {
    name: &'static str,
    ns: f64,
    vs_reflector: f64,
    vs_floor: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    testrun::pin_to_cpu(0);
    let repeat = args.repeat;
    // conns is one common LRU: twice the flows leaves it half full. The
    // many-flows case first opens every flow with a SYN, so this CPU's
    // half-open share must hold them all.
    let table = args
        .table
        .unwrap_or(args.flows.next_power_of_two().max(1 << 20) * 2);

    let mut opts = Options::ephemeral();
    opts.conn_table_size = table;
    opts.half_open_per_cpu = args.flows.next_power_of_two();
    let mut dp = Datapath::open(&opts)?;
    dp.apply(&state())?;
    let mut tools = Tools::load(table)?;

    const TX: u32 = 3;
    const PASS: u32 = 2;
    let ack = |dst| tcp_frame((CLIENT, 40000), (dst, 80), Flags::ACK, b"");
    let syn = |dst| tcp_frame((CLIENT, 40000), (dst, 80), Flags::SYN, b"");
    let pass_frame = tcp_frame(
        (CLIENT, 40000),
        (Ipv4Addr::new(198, 18, 0, 2), 22),
        Flags::ACK,
        b"",
    );

    // Baselines, one hot flow.
    tools.floor_insert(std::iter::once(harness_key_plain(VIP)))?;
    let reflector = measure(tools.prog("bench_reflector")?, &ack(VIP), repeat)?;
    expect_action(tools.prog("bench_floor")?, &ack(VIP), TX, "floor")?;
    let floor = measure(tools.prog("bench_floor")?, &ack(VIP), repeat)?;

    // Ours, one hot established flow.
    {
        let prog = dp.program()?;
        expect_action(prog, &syn(VIP), TX, "SYN")?;
        expect_action(prog, &ack(VIP), TX, "ACK")?;
    }
    let established = measure(dp.program()?, &ack(VIP), repeat)?;
    expect_action(dp.program()?, &pass_frame, PASS, "pass")?;
    let pass = measure(dp.program()?, &pass_frame, repeat)?;

    // The harness's own cost, in front of the reflector.
    {
        let refl: *const Xdp = tools.prog("bench_reflector")?;
        // SAFETY: `refl` points into `tools.ebpf`, which outlives this block
        // and whose programs are not moved by the map update in harness_to.
        tools.harness_to(unsafe { &*refl }, 0)?;
    }
    let harnessed_reflector = measure(tools.prog("bench_harness")?, &ack(VIP), repeat)?;
    let harness = (harnessed_reflector - reflector).max(0.0);

    // New flows: every repetition a SYN from a new client address/port.
    tools.harness_to(dp.program()?, 0)?;
    expect_action(tools.prog("bench_harness")?, &syn(VIP), TX, "harness SYN")?;
    let new_flow = measure(tools.prog("bench_harness")?, &syn(VIP), repeat)? - harness;
    let new_flow_1000 = measure(tools.prog("bench_harness")?, &syn(BIG_VIP), repeat)? - harness;
    // The schedulers that read more than a cursor, in the same run.
    expect_action(tools.prog("bench_harness")?, &syn(WLC_VIP), TX, "wlc SYN")?;
    let new_flow_wlc = measure(tools.prog("bench_harness")?, &syn(WLC_VIP), repeat)? - harness;
    // The first least-connection new flow after the agent changed what
    // the trees read (`settings.lc_gen`) rebuilds the service's tree from
    // the maps: one run after each of 11 bumps, the median.
    let mut rebuilds = Vec::new();
    for _ in 0..11 {
        dp.update_settings(|s| s.lc_gen = s.lc_gen.wrapping_add(1))?;
        let (_, d) = testrun::time(tools.prog("bench_harness")?, &syn(WLC_VIP), 1)?;
        rebuilds.push(d.as_nanos() as f64);
    }
    rebuilds.sort_by(f64::total_cmp);
    let wlc_rebuild = rebuilds[rebuilds.len() / 2];
    expect_action(tools.prog("bench_harness")?, &syn(MH_VIP), TX, "mh SYN")?;
    let new_flow_mh = measure(tools.prog("bench_harness")?, &syn(MH_VIP), repeat)? - harness;
    // Persistence hit: new connection, existing template.
    let persist_hit = measure(tools.prog("bench_harness")?, &syn(PVIP), repeat)? - harness;
    // IPv6: a new client every repetition.
    let syn6 = tcp_frame((CLIENT6, 40000), (VIP6, 80), Flags::SYN, b"");
    let ack6 = tcp_frame((CLIENT6, 40000), (VIP6, 80), Flags::ACK, b"");
    expect_action(tools.prog("bench_harness")?, &syn6, TX, "harness IPv6 SYN")?;
    let new_flow6 = measure(tools.prog("bench_harness")?, &syn6, repeat)? - harness;
    // IPv6, one hot established flow.
    {
        let prog = dp.program()?;
        expect_action(prog, &syn6, TX, "IPv6 SYN")?;
        expect_action(prog, &ack6, TX, "IPv6 ACK")?;
    }
    let established6 = measure(dp.program()?, &ack6, repeat)?;

    // Many flows: establish `flows` connections, then cycle ACKs over them.
    let flows = args.flows;
    tools.harness_to(dp.program()?, flows)?;
    testrun::time(tools.prog("bench_harness")?, &syn(VIP), flows)?;
    // The handshake's ACK of each: half-open → conns (the promotion).
    let (_, promote) = testrun::time(tools.prog("bench_harness")?, &ack(VIP), flows)?;
    let promotion = (promote.as_nanos() as f64 - harness).max(0.0);
    let established_many = measure(tools.prog("bench_harness")?, &ack(VIP), repeat)? - harness;
    // 1000 backends, one hot flow.
    {
        let prog = dp.program()?;
        expect_action(prog, &syn(BIG_VIP), TX, "SYN")?;
        expect_action(prog, &ack(BIG_VIP), TX, "ACK")?;
    }
    let established_1000 = measure(dp.program()?, &ack(BIG_VIP), repeat)?;

    // The floor with the same number of flows.
    tools.floor_insert((0..flows).map(|i| harness_key(CLIENT, i, VIP)))?;
    {
        let floor_prog: *const Xdp = tools.prog("bench_floor")?;
        // SAFETY: as above.
        tools.harness_to(unsafe { &*floor_prog }, flows)?;
    }
    let floor_many = measure(tools.prog("bench_harness")?, &ack(VIP), repeat)? - harness;

    let verdicts = dp.verdicts()?;
    let events = dp.events()?;
    let rows = [
        ("reflector (baseline)", reflector),
        ("floor, 1 flow (baseline)", floor),
        ("harness overhead (subtracted)", harness),
        ("established, 1 hot flow", established),
        ("established, 1000 backends", established_1000),
        ("non-service pass", pass),
        ("new TCP flow (SYN, never completes)", new_flow),
        ("handshake ACK (promotion)", promotion),
        ("new connection (SYN + ACK)", new_flow + promotion),
        ("new TCP flow, 1000 backends", new_flow_1000),
        ("new TCP flow, wlc 1000 backends", new_flow_wlc),
        ("wlc 1000, tree rebuilt", wlc_rebuild),
        ("new TCP flow, mh 10 backends", new_flow_mh),
        ("persistence hit (new conn)", persist_hit),
        ("IPv6 established, 1 hot flow", established6),
        ("IPv6 new TCP flow (SYN)", new_flow6),
    ]
    .into_iter()
    .map(|(name, ns)| Row {
        name,
        ns,
        vs_reflector: ns / reflector,
        vs_floor: ns / floor,
    })
    .chain([
        Row {
            name: "floor, many flows (baseline)",
            ns: floor_many,
            vs_reflector: floor_many / reflector,
            vs_floor: 1.0,
        },
        Row {
            name: "established, many flows",
            ns: established_many,
            vs_reflector: established_many / reflector,
            vs_floor: established_many / floor_many,
        },
    ])
    .collect::<Vec<_>>();

    println!(
        "BPF_PROG_TEST_RUN, {repeat} repetitions, median of {ROUNDS}; many flows = {flows} (floor ratio against the floor at the same flow count)"
    );
    println!(
        "{:<32} {:>10} {:>12} {:>10}",
        "path", "ns/packet", "x reflector", "x floor"
    );
    for r in &rows {
        println!(
            "{:<32} {:>10.1} {:>12.2} {:>10.2}",
            r.name, r.ns, r.vs_reflector, r.vs_floor
        );
    }
    println!(
        "new flow vs wrr: wlc over 1000 servers {:.2}x, mh {:.2}x",
        new_flow_wlc / new_flow,
        new_flow_mh / new_flow
    );
    println!(
        "flow-cache hits during the run: {} of {} forwarded",
        events[lvs_common::event::FLOW_CACHE_HIT as usize],
        verdicts[lvs_common::verdict::TX as usize]
    );
    let json = serde_json::json!({
        "reflector_ns": reflector,
        "floor_ns": floor,
        "floor_many_ns": floor_many,
        "harness_ns": harness,
        "established_ns": established,
        "established_ratio": established / reflector,
        "established_1m_ns": established_many,
        "established_1m_floor_ratio": established_many / floor_many,
        "new_flow_ns": new_flow,
        "new_flow_ratio": new_flow / reflector,
        "promotion_ns": promotion,
        "new_connection_ratio": (new_flow + promotion) / reflector,
        "new_flow_1000_backends_ratio": new_flow_1000 / reflector,
        "new_flow_wlc_1000_ns": new_flow_wlc,
        "new_flow_wlc_1000_vs_wrr": new_flow_wlc / new_flow,
        "wlc_1000_tree_rebuild_ns": wlc_rebuild,
        "new_flow_mh_ns": new_flow_mh,
        "new_flow_mh_vs_wrr": new_flow_mh / new_flow,
        "established_1000_backends_ratio": established_1000 / reflector,
        "persistence_hit_ratio": persist_hit / reflector,
        "ipv6_established_ns": established6,
        "ipv6_established_ratio": established6 / reflector,
        "ipv6_new_flow_ns": new_flow6,
        "ipv6_new_flow_ratio": new_flow6 / reflector,
        "pass_ns": pass,
        "pass_ratio": pass / reflector,
        "flows": flows,
        "repeat": repeat,
    });
    if args.json {
        println!("{json}");
    }
    Ok(())
}

/// The 5-tuple of the plain (non-harness) frames: CLIENT:40000 → dst:80.
fn harness_key_plain(dst: Ipv4Addr) -> FlowKey {
    FlowKey {
        src_be: u32::from_ne_bytes(CLIENT.octets()),
        dst_be: u32::from_ne_bytes(dst.octets()),
        sport_be: 40000u16.to_be(),
        dport_be: 80u16.to_be(),
        proto: IPPROTO_TCP,
        _pad: [0; 3],
    }
}
