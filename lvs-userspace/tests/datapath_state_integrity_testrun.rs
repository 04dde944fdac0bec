//! Nothing lost, under BPF_PROG_TEST_RUN: half-open flows wait in their own
//! table, so a SYN flood of 1000× the connection table evicts no
//! established connection (with or without persistence); `conns` holds
//! every one of N flows when all arrive on one CPU; a cached flow refreshes
//! its entry by itself when no agent bumps the tick; a SYN reusing a closed
//! 5-tuple is not caught by the old connection's cached decision.
//!
//! Needs root (loading BPF). Each test loads its own unpinned datapath.

use std::{net::Ipv4Addr, time::Duration};

use lvs_common::{event, tcp, FlowKey, PersistKey, IPPROTO_TCP};
use lvs_userspace::{
    datapath::{
        desired::service_key,
        testrun::{self, tcp_frame, Flags, Tools},
        Datapath, DesiredBackend, DesiredService, DesiredState, Options, Persistence, Protocol,
    },
    sched::Algorithm,
};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const PVIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 101);
/// Spoofed SYN sources: 198.19.0.0/16, low 16 bits varied by the harness.
const FLOOD_SRC: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);

fn state() -> DesiredState {
    let backends: Vec<DesiredBackend> = [2u32, 3, 3, 2, 2]
        .iter()
        .enumerate()
        .map(|(i, &weight)| testrun::backend(i as u8 + 1, weight))
        .collect();
    let svc = |vip, persistence| DesiredService {
        vip,
        port: 80,
        proto: Protocol::Tcp,
        algo: Algorithm::Wrr,
        persistence,
        sloppy: false,
        one_packet: false,
        backends: backends.clone(),
    };
    DesiredState {
        services: vec![
            svc(VIP.into(), None),
            svc(
                PVIP.into(),
                Some(Persistence {
                    timeout_s: 120,
                    netmask: Ipv4Addr::BROADCAST,
                    prefix_len6: 128,
                }),
            ),
        ],
    }
}

fn open(conn_table_size: u32, half_open_per_cpu: u32) -> Datapath {
    testrun::pin_to_cpu(0);
    let mut opts = Options::ephemeral();
    opts.conn_table_size = conn_table_size;
    opts.half_open_per_cpu = half_open_per_cpu;
    // No local MAC for `lo`: test-run's repetitions reuse one buffer, which
    // the first forward rewrites to the backend's MAC.
    let mut dp = Datapath::open(&opts).expect("load the XDP program (root?)");
    dp.apply(&state()).expect("apply");
    dp
}

fn run(dp: &mut Datapath, frame: &[u8]) -> testrun::Outcome {
    testrun::run(dp.program().unwrap(), frame).expect("test run")
}

fn backend_of(out: &testrun::Outcome) -> u8 {
    assert_eq!(out.action, XDP_TX, "forwarded");
    out.frame[5]
}

fn client(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1 + (i / 250) as u8, (i % 250) as u8 + 1)
}

fn key(src: Ipv4Addr, sport: u16, dst: Ipv4Addr) -> FlowKey {
    FlowKey {
        src_be: u32::from_ne_bytes(src.octets()),
        dst_be: u32::from_ne_bytes(dst.octets()),
        sport_be: sport.to_be(),
        dport_be: 80u16.to_be(),
        proto: IPPROTO_TCP,
        _pad: [0; 3],
    }
}

/// Opens `n` connections to `vip` (SYN, then the handshake's ACK); returns
/// each one's backend.
fn establish(dp: &mut Datapath, vip: Ipv4Addr, n: u32) -> Vec<u8> {
    (0..n)
        .map(|i| {
            let b = backend_of(&run(
                dp,
                &tcp_frame((client(i), 40000), (vip, 80), Flags::SYN, b""),
            ));
            let ack = tcp_frame((client(i), 40000), (vip, 80), Flags::ACK, b"");
            assert_eq!(backend_of(&run(dp, &ack)), b, "handshake ACK");
            b
        })
        .collect()
}

/// Every one of the connections still forwards to its backend from an
/// ESTABLISHED entry in `conns`.
fn assert_all_kept(dp: &mut Datapath, vip: Ipv4Addr, backends: &[u8], what: &str) {
    for (i, &b) in backends.iter().enumerate() {
        let k = key(client(i as u32), 40000, vip);
        assert!(dp.is_established(&k), "{what}: connection {i} evicted");
        assert_eq!(dp.conn(&k).unwrap().state, tcp::ESTABLISHED);
        let data = tcp_frame(
            (client(i as u32), 40000),
            (vip, 80),
            Flags {
                psh: true,
                ..Flags::ACK
            },
            b"more",
        );
        assert_eq!(backend_of(&run(dp, &data)), b, "{what}: connection {i}");
    }
}

/// `count` SYNs from distinct spoofed sources in 198.19.0.0/16, made in
/// the kernel by the bench's harness (one test-run call).
fn syn_flood(dp: &mut Datapath, tools: &mut Tools, vip: Ipv4Addr, count: u32) {
    tools.harness_to(dp.program().unwrap(), 0).unwrap();
    let syn = tcp_frame((FLOOD_SRC, 40000), (vip, 80), Flags::SYN, b"");
    let mut left = count;
    while left > 0 {
        // The harness's sequence makes every repetition a new 5-tuple.
        let n = left.min(1 << 20);
        let (action, _) =
            testrun::time(tools.prog("bench_harness").unwrap(), &syn, n).expect("flood");
        assert_eq!(action, XDP_TX, "flood SYNs are scheduled like any SYN");
        left -= n;
    }
}

fn flood_keeps_established(vip: Ipv4Addr) {
    const TABLE: u32 = 4096;
    let mut dp = open(TABLE, 1024);
    let mut tools = Tools::load(1024).unwrap();
    let backends = establish(&mut dp, vip, 100);
    let before = dp.events().unwrap();
    syn_flood(&mut dp, &mut tools, vip, 1000 * TABLE);
    let after = dp.events().unwrap();
    let new = after[event::HALF_OPEN_NEW as usize] - before[event::HALF_OPEN_NEW as usize];
    assert!(
        new >= 1000 * TABLE as u64,
        "every spoofed SYN was scheduled into half_open: {new}"
    );
    assert_eq!(
        after[event::PROMOTED as usize],
        before[event::PROMOTED as usize],
        "no spoofed SYN became a connection"
    );
    assert_all_kept(&mut dp, vip, &backends, "after 1000x the table in SYNs");
    if vip == PVIP {
        // Their clients' templates survived too.
        let svc = dp.service_id(service_key(vip, 80, Protocol::Tcp)).unwrap();
        for i in 0..100 {
            let k = PersistKey {
                service: svc,
                client_be: u32::from_ne_bytes(client(i).octets()),
            };
            assert!(dp.template(&k).is_some(), "template of client {i} kept");
        }
        // And a new connection of an established client keeps its server.
        let f = tcp_frame((client(7), 41000), (vip, 80), Flags::SYN, b"");
        assert_eq!(backend_of(&run(&mut dp, &f)), backends[7]);
    }
    // A legitimate handshake after the flood still completes.
    let c = Ipv4Addr::new(198, 18, 9, 9);
    let b = backend_of(&run(
        &mut dp,
        &tcp_frame((c, 42000), (vip, 80), Flags::SYN, b""),
    ));
    let ack = tcp_frame((c, 42000), (vip, 80), Flags::ACK, b"");
    assert_eq!(backend_of(&run(&mut dp, &ack)), b);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn syn_flood_of_1000x_the_table_evicts_no_established_connection() {
    flood_keeps_established(VIP);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn syn_flood_with_persistence_evicts_no_connection_and_no_template() {
    flood_keeps_established(PVIP);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn half_open_flows_wait_for_the_clients_second_packet() {
    let mut dp = open(4096, 1024);
    let k = key(client(1), 40000, VIP);
    let syn = tcp_frame((client(1), 40000), (VIP, 80), Flags::SYN, b"");
    let b = backend_of(&run(&mut dp, &syn));
    assert!(!dp.is_established(&k), "a SYN alone is half-open");
    assert_eq!(dp.conn(&k).unwrap().state, tcp::SYN_RECV);
    // A retransmitted SYN goes where the first went, still half-open.
    assert_eq!(backend_of(&run(&mut dp, &syn)), b);
    assert!(!dp.is_established(&k));
    assert_eq!(dp.events().unwrap()[event::HALF_OPEN_REPEAT as usize], 1);
    // The handshake's ACK promotes it.
    let ack = tcp_frame((client(1), 40000), (VIP, 80), Flags::ACK, b"");
    assert_eq!(backend_of(&run(&mut dp, &ack)), b);
    assert!(dp.is_established(&k));
    assert_eq!(dp.conn(&k).unwrap().state, tcp::ESTABLISHED);
    assert_eq!(dp.events().unwrap()[event::PROMOTED as usize], 1);
    // A handshake ACK whose SYN was never seen (or was evicted by a flood)
    // is passed to the kernel, as IPVS does.
    let stray = tcp_frame((client(2), 40000), (VIP, 80), Flags::ACK, b"");
    assert_eq!(run(&mut dp, &stray).action, XDP_PASS);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn parallel_syns_of_a_persistent_client_go_to_one_server() {
    let mut dp = open(4096, 1024);
    let picks: Vec<u8> = (0..6)
        .map(|p| {
            let f = tcp_frame((client(3), 43000 + p), (PVIP, 80), Flags::SYN, b"");
            backend_of(&run(&mut dp, &f))
        })
        .collect();
    assert!(
        picks.iter().all(|&b| b == picks[0]),
        "six SYNs before any ACK share the pending template: {picks:?}"
    );
    let svc = dp.service_id(service_key(PVIP, 80, Protocol::Tcp)).unwrap();
    let tk = PersistKey {
        service: svc,
        client_be: u32::from_ne_bytes(client(3).octets()),
    };
    assert!(dp.template(&tk).is_none(), "no established template yet");
    let ack = tcp_frame((client(3), 43000), (PVIP, 80), Flags::ACK, b"");
    assert_eq!(backend_of(&run(&mut dp, &ack)), picks[0]);
    assert!(dp.template(&tk).is_some(), "written on promotion");
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn every_one_of_n_flows_fits_a_table_of_n_on_one_cpu() {
    const N: u32 = 4096;
    let mut dp = open(N, 1024);
    assert_eq!(
        dp.conn_table_size().unwrap(),
        N,
        "size= reports what was asked"
    );
    // More than the half-open share too: flows are promoted one by one.
    let backends = establish(&mut dp, VIP, N);
    let established = dp.conns().unwrap().iter().filter(|c| !c.half_open).count();
    assert_eq!(established, N as usize, "all {N} flows in a table of {N}");
    assert_all_kept(&mut dp, VIP, &backends, "a full table");
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_cached_flow_refreshes_its_entry_without_the_agent() {
    let mut dp = open(4096, 1024);
    let k = key(client(4), 40000, VIP);
    let b = backend_of(&run(
        &mut dp,
        &tcp_frame((client(4), 40000), (VIP, 80), Flags::SYN, b""),
    ));
    let ack = tcp_frame((client(4), 40000), (VIP, 80), Flags::ACK, b"");
    run(&mut dp, &ack); // promoted
    run(&mut dp, &ack); // cached
                        // Age the entry to ten seconds short of ESTABLISHED's 900 s (the sleep
                        // below must not expire it), as if the flow had been served from the
                        // cache that long with no agent bumping the tick. (Nothing in this test
                        // bumps it; a machine up for less than that ages it half its clock.)
    let mut c = dp.conn(&k).unwrap();
    let seen = c.last_seen_ns;
    c.last_seen_ns = seen - (890 * 1_000_000_000).min(seen / 2);
    dp.insert_conn(k, c).unwrap();
    // Within one clock epoch (about 1.07 s) the cache entry goes stale by
    // itself and the next packet refreshes the connection.
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(backend_of(&run(&mut dp, &ack)), b);
    let now = dp.conn(&k).unwrap();
    assert!(
        now.last_seen_ns >= seen + 2_000_000_000,
        "the slow path refreshed the entry after the sleep ({} ms after the last refresh)",
        now.last_seen_ns.saturating_sub(seen) / 1_000_000
    );
    assert_eq!(now.state, tcp::ESTABLISHED);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_syn_reusing_a_closed_port_is_not_caught_by_the_cache() {
    let mut dp = open(4096, 1024);
    let f = |flags| tcp_frame((client(5), 40000), (VIP, 80), flags, b"");
    let first = backend_of(&run(&mut dp, &f(Flags::SYN)));
    run(&mut dp, &f(Flags::ACK));
    run(&mut dp, &f(Flags::ACK)); // now in this CPU's flow cache
    run(&mut dp, &f(Flags::FIN_ACK));
    // The client reuses the port: wrr moves on to another backend.
    let second = backend_of(&run(&mut dp, &f(Flags::SYN)));
    assert_ne!(first, second, "rescheduled");
    for _ in 0..3 {
        assert_eq!(
            backend_of(&run(&mut dp, &f(Flags::ACK))),
            second,
            "the new handshake's ACK follows the new connection"
        );
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_template_lives_while_its_connection_does() {
    // IPVS re-arms a template while it controls connections: an idle
    // keep-alive connection keeps its client's server for new connections.
    let mut dp = open(4096, 1024);
    let c = client(9);
    let b = backend_of(&run(
        &mut dp,
        &tcp_frame((c, 40000), (PVIP, 80), Flags::SYN, b""),
    ));
    run(&mut dp, &tcp_frame((c, 40000), (PVIP, 80), Flags::ACK, b""));
    let svc = dp.service_id(service_key(PVIP, 80, Protocol::Tcp)).unwrap();
    let tk = PersistKey {
        service: svc,
        client_be: u32::from_ne_bytes(c.octets()),
    };
    // The template went unused for longer than persistence_timeout (120 s)
    // while its connection stayed open (idle, within ESTABLISHED's 900 s).
    let mut t = dp.template(&tk).unwrap();
    let seen = t.last_seen_ns;
    t.last_seen_ns = seen - (121 * 1_000_000_000u64).min(seen / 2);
    dp.insert_template(tk, t).unwrap();
    let (_, templates_gone) = dp.expire().unwrap();
    assert_eq!(templates_gone, 0, "kept for its live connection");
    assert!(dp.template(&tk).unwrap().last_seen_ns >= seen, "re-armed");
    // A new connection of that client goes to the same server.
    let f = tcp_frame((c, 40001), (PVIP, 80), Flags::SYN, b"");
    assert_eq!(backend_of(&run(&mut dp, &f)), b);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lvs_timeouts_change_how_long_an_idle_connection_lives() {
    // keepalived `lvs_timeouts tcp 3600`: a connection idle for 20 minutes
    // is still established (IPVS's default 900 s would have expired it).
    let mut dp = open(4096, 1024);
    dp.set_timeouts(Some(3600), None, None).unwrap();
    assert_eq!(
        dp.settings().unwrap().timeouts_s[tcp::ESTABLISHED as usize],
        3600
    );
    let c = client(11);
    let k = key(c, 40000, VIP);
    let b = backend_of(&run(
        &mut dp,
        &tcp_frame((c, 40000), (VIP, 80), Flags::SYN, b""),
    ));
    run(&mut dp, &tcp_frame((c, 40000), (VIP, 80), Flags::ACK, b""));
    let mut e = dp.conn(&k).unwrap();
    let seen = e.last_seen_ns;
    e.last_seen_ns = seen - (1200 * 1_000_000_000u64).min(seen / 2);
    dp.insert_conn(k, e).unwrap();
    let data = tcp_frame(
        (c, 40000),
        (VIP, 80),
        Flags {
            psh: true,
            ..Flags::ACK
        },
        b"x",
    );
    assert_eq!(backend_of(&run(&mut dp, &data)), b, "still its connection");
    // Back to the default: the same idleness expires it.
    dp.set_timeouts(None, None, None).unwrap();
    assert_eq!(
        dp.settings().unwrap().timeouts_s[tcp::ESTABLISHED as usize],
        900
    );
}
