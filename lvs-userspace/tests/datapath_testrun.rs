//! The XDP program under BPF_PROG_TEST_RUN: every path, each checked by
//! verdict and output bytes, plus the IPVS wrr order against a reference
//! implementation of `ip_vs_wrr.c` written here.
//!
//! Needs root (loading BPF). Each test loads its own unpinned datapath.

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use lvs_common::{event, tcp, verdict, FlowKey, PersistKey, IPPROTO_TCP};
use lvs_userspace::{
    datapath::{
        testrun::{self, backend_mac, rewritten, tcp_frame, udp_frame, Flags, DIRECTOR_MAC},
        Datapath, DesiredBackend, DesiredService, DesiredState, Persistence, Protocol,
    },
    sched::Algorithm,
};

#[macro_use]
mod testrun_util;
use testrun_util::*;

const XDP_ABORTED: u32 = 0;
const XDP_DROP: u32 = 1;

const PVIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 101);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const WEIGHTS: [u32; 5] = [2, 3, 3, 2, 2];

fn backend(n: u8, weight: u32) -> DesiredBackend {
    testrun::backend(n, weight)
}

fn wrr(vip: Ipv4Addr, port: u16, proto: Protocol) -> DesiredService {
    service(vip, port, proto, Algorithm::Wrr, backends(&WEIGHTS))
}

/// The seed's shape: a wrr TCP service, a UDP one, a persistent one.
fn seed_state() -> DesiredState {
    let mut persistent = wrr(PVIP, 80, Protocol::Tcp);
    persistent.persistence = Some(Persistence {
        timeout_s: 120,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        prefix_len6: 128,
    });
    DesiredState {
        services: vec![
            wrr(VIP, 80, Protocol::Tcp),
            wrr(VIP, 53, Protocol::Udp),
            persistent,
        ],
    }
}

/// Which backend (1-based) a forwarded frame went to, from its MAC.
fn backend_of(out: &testrun::Outcome) -> u8 {
    assert_eq!(out.action, XDP_TX, "forwarded");
    assert_eq!(out.frame[0..5], backend_mac(0)[0..5], "a backend MAC");
    assert_eq!(out.frame[6..12], DIRECTOR_MAC, "source MAC is ours");
    out.frame[5]
}

/// `CLIENT:sport`'s connection to `vip`:80 through its handshake: the
/// backend its SYN went to, which its ACK follows.
fn handshake(dp: &mut Datapath, sport: u16, vip: Ipv4Addr) -> u8 {
    let syn = tcp_frame((CLIENT, sport), (vip, 80), Flags::SYN, b"");
    let b = backend_of(&run(dp, &syn));
    let ack = tcp_frame((CLIENT, sport), (vip, 80), Flags::ACK, b"");
    assert_eq!(backend_of(&run(dp, &ack)), b, "the ACK follows the SYN");
    b
}

fn syn(sport: u16) -> Vec<u8> {
    tcp_frame((CLIENT, sport), (VIP, 80), Flags::SYN, b"")
}

fn key(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> FlowKey {
    FlowKey {
        src_be: u32::from_ne_bytes(src.octets()),
        dst_be: u32::from_ne_bytes(dst.octets()),
        sport_be: sport.to_be(),
        dport_be: dport.to_be(),
        proto: IPPROTO_TCP,
        _pad: [0; 3],
    }
}

/// One row of the table: a frame and the verdict reason it must pass
/// under.
struct Case {
    name: &'static str,
    frame: Vec<u8>,
    reason: u32,
}

/// Frames that must come back untouched with XDP_PASS.
fn pass_cases() -> Vec<Case> {
    let syn_to_vip = syn(40000);
    let mut cases = vec![
        Case {
            name: "TCP to the director itself (ssh)",
            frame: tcp_frame(
                (CLIENT, 40001),
                (Ipv4Addr::new(198, 18, 0, 2), 22),
                Flags::SYN,
                b"",
            ),
            reason: verdict::PASS_NOT_SERVICE,
        },
        Case {
            name: "VIP, other port",
            frame: tcp_frame((CLIENT, 40002), (VIP, 443), Flags::SYN, b""),
            reason: verdict::PASS_NOT_SERVICE,
        },
        Case {
            name: "UDP to a TCP-only port",
            frame: udp_frame((CLIENT, 40003), (VIP, 80), b"x"),
            reason: verdict::PASS_NOT_SERVICE,
        },
        Case {
            name: "ICMP echo to the VIP",
            frame: built!(
                PacketBuilder::ethernet2(testrun::CLIENT_MAC, DIRECTOR_MAC)
                    .ipv4(CLIENT.octets(), VIP.octets(), 64)
                    .icmpv4_echo_request(1, 1),
                b"ping"
            ),
            reason: verdict::PASS_NOT_SERVICE,
        },
        Case {
            name: "ARP",
            frame: {
                let mut f = vec![0xff; 6];
                f.extend_from_slice(&testrun::CLIENT_MAC);
                f.extend_from_slice(&[0x08, 0x06]);
                f.extend_from_slice(&[0u8; 28]);
                f
            },
            reason: verdict::PASS_NOT_IPV4,
        },
        Case {
            // IPv6 is parsed now: an address that is no VIP is not ours
            // (datapath_ipv6_testrun.rs has the IPv6 table).
            name: "IPv6 to an address that is no VIP",
            frame: built!(
                PacketBuilder::ethernet2(testrun::CLIENT_MAC, DIRECTOR_MAC)
                    .ipv6([0xfd; 16], [0xfe; 16], 64)
                    .tcp(1, 80, 1, 1),
                b""
            ),
            reason: verdict::PASS_NOT_SERVICE,
        },
        Case {
            name: "802.1Q-tagged SYN to the VIP",
            frame: {
                let mut f = syn_to_vip[..12].to_vec();
                f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
                f.extend_from_slice(&syn_to_vip[12..]);
                f
            },
            reason: verdict::PASS_VLAN,
        },
        Case {
            name: "IPv4 header with version 5",
            frame: patched(&syn_to_vip, 14, &[0x55]),
            reason: verdict::PASS_MALFORMED,
        },
        Case {
            name: "IHL below 5",
            frame: patched(&syn_to_vip, 14, &[0x44]),
            reason: verdict::PASS_MALFORMED,
        },
        Case {
            // Its first fragment was never seen (see
            // fragments_of_a_datagram_follow_its_first_fragment).
            name: "later fragment (offset) to the VIP",
            frame: patched(&syn_to_vip, 21, &[0x10]),
            reason: verdict::PASS_FRAGMENT,
        },
        Case {
            name: "SYN to the VIP for another host's MAC (flooded by a switch)",
            frame: patched(&syn_to_vip, 0, &[0x02, 0xd2, 0, 0, 0, 0x02]),
            reason: verdict::PASS_OTHER_HOST,
        },
        Case {
            name: "ACK without a connection",
            frame: tcp_frame((CLIENT, 40004), (VIP, 80), Flags::ACK, b"GET /"),
            reason: verdict::PASS_NO_CONN,
        },
    ];
    // Truncated at every header boundary and inside each header. (The
    // kernel refuses test frames shorter than an Ethernet header.)
    for len in [14, 20, 33, 34, 40, 53] {
        cases.push(Case {
            name: "truncated SYN to the VIP",
            frame: syn_to_vip[..len].to_vec(),
            reason: verdict::PASS_MALFORMED,
        });
    }
    cases
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn frames_that_are_not_for_a_service_pass_untouched() {
    let mut dp = open(&seed_state());
    for case in pass_cases() {
        assert_passes(&mut dp, case.name, &case.frame, case.reason);
    }
    assert!(dp.conns().unwrap().is_empty(), "no connection created");
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn new_tcp_flow_is_rewritten_to_a_backend_and_nothing_else_changes() {
    let mut dp = open(&seed_state());
    let frame = syn(41000);
    let out = run(&mut dp, &frame);
    let b = backend_of(&out);
    assert_eq!(out.frame, rewritten(&frame, backend_mac(b), DIRECTOR_MAC));
    let conn = dp
        .conn(&key(CLIENT, 41000, VIP, 80))
        .expect("connection entry");
    assert_eq!(conn.state, tcp::SYN_RECV);
    assert_eq!(verdict_count(&dp, verdict::TX), 1);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn established_flow_sticks_to_its_backend_and_follows_tcp_states() {
    let mut dp = open(&seed_state());
    let k = key(CLIENT, 42000, VIP, 80);
    let b = backend_of(&run(&mut dp, &syn(42000)));
    // Handshake ACK: SYN_RECV → ESTABLISHED (slow path, then cached).
    let ack = tcp_frame((CLIENT, 42000), (VIP, 80), Flags::ACK, b"");
    for _ in 0..3 {
        let out = run(&mut dp, &ack);
        assert_eq!(backend_of(&out), b);
        assert_eq!(out.frame, rewritten(&ack, backend_mac(b), DIRECTOR_MAC));
    }
    assert_eq!(dp.conn(&k).unwrap().state, tcp::ESTABLISHED);
    assert!(
        dp.events().unwrap()[event::FLOW_CACHE_HIT as usize] >= 2,
        "fast path used"
    );
    // Data with PSH goes the same way; a retransmitted SYN too.
    let data = tcp_frame(
        (CLIENT, 42000),
        (VIP, 80),
        Flags {
            psh: true,
            ..Flags::ACK
        },
        b"GET / HTTP/1.1\r\n\r\n",
    );
    assert_eq!(backend_of(&run(&mut dp, &data)), b);
    assert_eq!(backend_of(&run(&mut dp, &syn(42000))), b, "SYN retransmit");
    // FIN: ESTABLISHED → FIN_WAIT, still forwarded to the same backend.
    let fin = tcp_frame((CLIENT, 42000), (VIP, 80), Flags::FIN_ACK, b"");
    assert_eq!(backend_of(&run(&mut dp, &fin)), b);
    assert_eq!(dp.conn(&k).unwrap().state, tcp::FIN_WAIT);
    // RST: → CLOSE.
    let rst = tcp_frame((CLIENT, 42000), (VIP, 80), Flags::RST, b"");
    assert_eq!(backend_of(&run(&mut dp, &rst)), b);
    assert_eq!(dp.conn(&k).unwrap().state, tcp::CLOSE);
    // A new SYN on the closed port is a new connection: scheduled afresh.
    run(&mut dp, &syn(42000));
    assert_eq!(dp.conn(&k).unwrap().state, tcp::SYN_RECV);
    let listed = dp.services().unwrap();
    let s = listed
        .iter()
        .find(|s| s.vip == VIP && s.port == 80)
        .unwrap();
    assert_eq!(s.backends.iter().map(|b| b.inactive).sum::<u64>(), 1);
    assert_eq!(s.backends.iter().map(|b| b.active).sum::<u64>(), 0);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ip_options_ttl_and_checksums_are_left_alone() {
    let mut dp = open(&seed_state());
    // A SYN with 4 bytes of IP options (NOP NOP NOP EOL), IHL 6.
    let base = syn(43000);
    let mut f = base[..34].to_vec();
    f.extend_from_slice(&[1, 1, 1, 0]);
    f.extend_from_slice(&base[34..]);
    f[14] = 0x46;
    let tot = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&tot.to_be_bytes());
    f[22] = 1; // TTL 1: DR forwards without decrementing, like IPVS DR
    let out = run(&mut dp, &f);
    let b = backend_of(&out);
    assert_eq!(
        out.frame,
        rewritten(&f, backend_mac(b), DIRECTOR_MAC),
        "only MACs change"
    );
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn udp_flows_are_forwarded_and_remembered() {
    let mut dp = open(&seed_state());
    let q = udp_frame((CLIENT, 5353), (VIP, 53), b"query");
    let b = backend_of(&run(&mut dp, &q));
    for _ in 0..3 {
        let out = run(&mut dp, &q);
        assert_eq!(out.frame, rewritten(&q, backend_mac(b), DIRECTOR_MAC));
    }
    let mut k = key(CLIENT, 5353, VIP, 53);
    k.proto = lvs_common::IPPROTO_UDP;
    assert_eq!(dp.conn(&k).unwrap().state, tcp::STATE_UDP);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn sloppy_service_schedules_mid_stream_segments() {
    let mut state = seed_state();
    state.services[0].sloppy = true;
    let mut dp = open(&state);
    let ack = tcp_frame((CLIENT, 44000), (VIP, 80), Flags::ACK, b"data");
    let b = backend_of(&run(&mut dp, &ack));
    assert_eq!(backend_of(&run(&mut dp, &ack)), b);
}

/// Linux `ip_vs_wrr_schedule`, as a stateful reference: mark->cl/cw/mw/di.
struct IpvsWrr {
    weights: Vec<u32>,
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

impl IpvsWrr {
    fn new(weights: &[u32]) -> Self {
        fn gcd(a: i64, b: i64) -> i64 {
            if b == 0 {
                a
            } else {
                gcd(b, a % b)
            }
        }
        let di = weights
            .iter()
            .filter(|&&w| w > 0)
            .fold(0, |g, &w| gcd(w as i64, g));
        let max = *weights.iter().max().unwrap() as i64;
        // ip_vs_wrr_init_svc: mw = max - (di - 1); cw = mw.
        let mw = max - (di - 1);
        IpvsWrr {
            weights: weights.to_vec(),
            cl: None,
            cw: mw,
            mw,
            di,
        }
    }

    fn schedule(&mut self) -> usize {
        let n = self.weights.len();
        let mut pos = self.cl;
        loop {
            // list_for_each_entry_continue from the last pick (or the head).
            let start = pos.map(|p| p + 1).unwrap_or(0);
            for i in start..n {
                if self.weights[i] as i64 >= self.cw {
                    self.cl = Some(i);
                    return i;
                }
            }
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
            }
        }
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn wrr_1200_new_flows_follow_ipvs_order_exactly() {
    let mut dp = open(&seed_state());
    // IPVS's list: keepalived adds the real servers in config order and
    // IPVS puts each at the head (`list_add_rcu` in __ip_vs_update_dest),
    // so ip_vs_wrr walks the config reversed.
    let list: Vec<u32> = WEIGHTS.iter().rev().copied().collect();
    let mut reference = IpvsWrr::new(&list);
    let mut counts = [0u32; 5];
    for i in 0..1200u32 {
        let src = Ipv4Addr::new(198, 18, 1 + (i / 250) as u8, (i % 250) as u8 + 1);
        let out = run(
            &mut dp,
            &tcp_frame((src, 50000), (VIP, 80), Flags::SYN, b""),
        );
        let got = backend_of(&out) as usize - 1;
        let want = WEIGHTS.len() - 1 - reference.schedule();
        assert_eq!(
            got, want,
            "flow {i}: data path picked backend {got}, IPVS would pick {want}"
        );
        counts[got] += 1;
    }
    assert_eq!(counts, [200, 300, 300, 200, 200]);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn persistence_hit_granularity_and_expiry() {
    let mut dp = open(&seed_state());
    // The handshake completes: the template becomes an established one.
    let b = handshake(&mut dp, 45000, PVIP);
    // Same client, other connections: same backend (WRR would move on).
    for sport in 45001..45010 {
        let f = tcp_frame((CLIENT, sport), (PVIP, 80), Flags::SYN, b"");
        assert_eq!(backend_of(&run(&mut dp, &f)), b, "persistent");
    }
    // Same /24 (granularity 255.255.255.0): same template.
    let neighbour = Ipv4Addr::new(198, 18, 1, 77);
    let f = tcp_frame((neighbour, 45100), (PVIP, 80), Flags::SYN, b"");
    assert_eq!(backend_of(&run(&mut dp, &f)), b, "same network");
    // Another network gets the next backend in the wrr order.
    let other = Ipv4Addr::new(198, 18, 2, 1);
    let f = tcp_frame((other, 45200), (PVIP, 80), Flags::SYN, b"");
    assert_ne!(backend_of(&run(&mut dp, &f)), b, "independent network");

    // Age the template past its 120 s: the next connection is rescheduled.
    let svc = service_id(&dp, PVIP, 80, Protocol::Tcp);
    let tkey = PersistKey {
        service: svc,
        client_be: u32::from_ne_bytes([198, 18, 1, 0]),
    };
    let mac_of = |dp: &Datapath, id: u32| {
        let svcs = dp.services().unwrap();
        let s = svcs.iter().find(|s| s.vip == PVIP).unwrap();
        s.backends.iter().find(|b| b.id == id).unwrap().mac[5]
    };
    let mut t = dp.template(&tkey).expect("template");
    assert_eq!(mac_of(&dp, t.backend), b, "template names the backend");
    t.last_seen_ns = t.last_seen_ns.saturating_sub(121_000_000_000);
    dp.insert_template(tkey, t).unwrap();
    let f = tcp_frame((CLIENT, 45300), (PVIP, 80), Flags::SYN, b"");
    let after = backend_of(&run(&mut dp, &f));
    assert_ne!(after, b, "expired template: rescheduled by wrr");
    let ack = tcp_frame((CLIENT, 45300), (PVIP, 80), Flags::ACK, b"");
    assert_eq!(backend_of(&run(&mut dp, &ack)), after, "promoted");
    assert_eq!(
        mac_of(&dp, dp.template(&tkey).unwrap().backend),
        after,
        "template rewritten"
    );
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn weight_zero_is_quiescent() {
    let mut dp = open(&seed_state());
    let b = backend_of(&run(&mut dp, &syn(46000)));
    let mut state = seed_state();
    state.services[0].backends[b as usize - 1].weight = 0;
    dp.apply(&state).unwrap();
    let ack = tcp_frame((CLIENT, 46000), (VIP, 80), Flags::ACK, b"");
    assert_eq!(backend_of(&run(&mut dp, &ack)), b, "existing flow stays");
    for sport in 46001..46101 {
        assert_ne!(backend_of(&run(&mut dp, &syn(sport))), b, "no new flow");
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn backend_down_holds_its_tcp_flows_and_moves_templates() {
    let mut dp = open(&seed_state());
    let ack = tcp_frame((CLIENT, 47000), (VIP, 80), Flags::ACK, b"");
    let b = backend_of(&run(&mut dp, &syn(47000)));
    run(&mut dp, &ack); // established and cached
    let pf = tcp_frame((CLIENT, 47001), (PVIP, 80), Flags::SYN, b"");
    let pb = backend_of(&run(&mut dp, &pf));

    let mut state = seed_state();
    state.services[0].backends[b as usize - 1].alive = false;
    state.services[2].backends[pb as usize - 1].alive = false;
    dp.apply(&state).unwrap();
    // IPVS's default (expire_nodest_conn=0): the segment is dropped, the
    // connection waits for its server, never sent elsewhere.
    let out = run(&mut dp, &ack);
    assert_eq!(out.action, XDP_DROP, "mid-stream segment of a dead server");
    assert_eq!(verdict_count(&dp, verdict::DROP_DEST_DOWN), 1);
    for sport in 47100..47200 {
        assert_ne!(backend_of(&run(&mut dp, &syn(sport))), b, "no new flow");
    }
    let pf2 = tcp_frame((CLIENT, 47002), (PVIP, 80), Flags::SYN, b"");
    assert_ne!(backend_of(&run(&mut dp, &pf2)), pb, "template re-pointed");
    // The server comes back within the client's retransmissions: the same
    // connection carries on with it.
    dp.apply(&seed_state()).unwrap();
    assert_eq!(backend_of(&run(&mut dp, &ack)), b, "a flap only stalled it");
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn expire_nodest_conn_moves_flows_of_a_dead_backend() {
    let mut dp = open(&seed_state());
    dp.set_expire_nodest(true).unwrap();
    let ack = tcp_frame((CLIENT, 47500), (VIP, 80), Flags::ACK, b"");
    let b = backend_of(&run(&mut dp, &syn(47500)));
    run(&mut dp, &ack);
    let mut state = seed_state();
    state.services[0].backends[b as usize - 1].alive = false;
    dp.apply(&state).unwrap();
    let moved = backend_of(&run(&mut dp, &ack));
    assert_ne!(moved, b, "flow of a dead backend rescheduled");
    assert_eq!(backend_of(&run(&mut dp, &ack)), moved, "and stays there");
}

/// An ICMP error from a router on the path real server → client: about a
/// packet VIP:80 → client:port, sent to the VIP.
fn icmp_error(kind: u8, code: u8, client: Ipv4Addr, cport: u16, vip: Ipv4Addr) -> Vec<u8> {
    // The quoted packet: the real server's reply, VIP:80 → client:cport.
    let mut quoted = Vec::new();
    etherparse::PacketBuilder::ipv4(vip.octets(), client.octets(), 63)
        .tcp(80, cport, 7, 65535)
        .ack(1)
        .write(&mut quoted, &[0u8; 1400])
        .unwrap();
    quoted.truncate(20 + 8);
    let router = Ipv4Addr::new(198, 18, 3, 1);
    let mut icmp = vec![kind, code, 0, 0, 0, 0, 0x05, 0x78]; // next-hop MTU 1400
    icmp.extend_from_slice(&quoted);
    let sum = !icmp
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .fold(0u32, |a, b| {
            let s = a + b;
            (s & 0xffff) + (s >> 16)
        }) as u16;
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(testrun::CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(router.octets(), vip.octets(), 64)
        .write(&mut out, etherparse::IpNumber::ICMP, &icmp)
        .unwrap();
    out
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn icmp_errors_about_a_connection_go_to_its_real_server() {
    let mut dp = open(&seed_state());
    let b = handshake(&mut dp, 48500, VIP);
    // Fragmentation needed: forwarded, only the MACs rewritten.
    let frag_needed = icmp_error(3, 4, CLIENT, 48500, VIP);
    let out = run(&mut dp, &frag_needed);
    assert_eq!(backend_of(&out), b, "to the connection's real server");
    assert_eq!(
        out.frame,
        rewritten(&frag_needed, backend_mac(b), DIRECTOR_MAC),
        "payload untouched"
    );
    assert_eq!(
        dp.events().unwrap()[event::ICMP_ERROR_FORWARDED as usize],
        1
    );
    // Time exceeded too; and a half-open connection's errors as well.
    let hb = backend_of(&run(&mut dp, &syn(48501)));
    assert_eq!(
        backend_of(&run(&mut dp, &icmp_error(11, 0, CLIENT, 48501, VIP))),
        hb
    );
    // Errors about no known connection, and echo requests, are the
    // director's own: passed untouched.
    for (name, f) in [
        ("unknown connection", icmp_error(3, 4, CLIENT, 1, VIP)),
        (
            "another VIP than quoted",
            // Quoted source 198.18.0.101: not the VIP the error went to.
            patched(
                &icmp_error(3, 4, CLIENT, 48500, VIP),
                14 + 20 + 8 + 15,
                &[101],
            ),
        ),
        (
            "truncated quote",
            icmp_error(3, 4, CLIENT, 48500, VIP)[..14 + 20 + 8 + 20 + 2].to_vec(),
        ),
    ] {
        let out = run(&mut dp, &f);
        assert_eq!((out.action, &out.frame), (XDP_PASS, &f), "{name}: passed");
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn no_alive_backend_passes_to_the_kernel() {
    let mut state = seed_state();
    for b in &mut state.services[0].backends {
        b.alive = false;
    }
    let mut dp = open(&state);
    let f = syn(48000);
    let out = run(&mut dp, &f);
    assert_eq!((out.action, out.frame), (XDP_PASS, f));
    assert_eq!(verdict_count(&dp, verdict::PASS_NO_BACKEND), 1);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn backend_on_another_interface_is_redirected() {
    let mut state = seed_state();
    for b in &mut state.services[0].backends {
        b.next_hop.ifindex = 999_999; // not the ingress, not in tx_ports
    }
    let mut dp = open(&state);
    let out = run(&mut dp, &syn(49000));
    // No such port in the devmap: dropped, never sent out of the wrong port.
    assert_eq!(out.action, XDP_ABORTED);
    assert_eq!(verdict_count(&dp, verdict::DROP_NO_TX_PORT), 1);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn counters_follow_services_and_backends() {
    let mut dp = open(&seed_state());
    let b = backend_of(&run(&mut dp, &syn(51000)));
    let ack = tcp_frame((CLIENT, 51000), (VIP, 80), Flags::ACK, b"");
    for _ in 0..4 {
        run(&mut dp, &ack);
    }
    let svcs = dp.services().unwrap();
    let s = svcs.iter().find(|s| s.vip == VIP && s.port == 80).unwrap();
    assert_eq!((s.stats.packets, s.stats.conns), (5, 1));
    let be = &s.backends[b as usize - 1];
    assert_eq!((be.stats.packets, be.stats.conns, be.active), (5, 1, 1));
    assert_eq!(be.stats.bytes, 5 * ack.len() as u64);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn an_unschedulable_service_does_not_hold_up_the_others() {
    // 700 servers of weight 100 and one of 99: IPVS's wrr cycle would be
    // 70 099 slots long, over the per-service limit.
    let big: Vec<DesiredBackend> = (0..701u32)
        .map(|i| {
            let mut b = backend((i % 200) as u8 + 1, if i == 700 { 99 } else { 100 });
            b.addr = Ipv4Addr::new(198, 18, 100 + (i / 250) as u8, (i % 250) as u8 + 1).into();
            b
        })
        .collect();
    let mut state = seed_state();
    let mut huge = wrr(Ipv4Addr::new(198, 18, 0, 110), 80, Protocol::Tcp);
    huge.backends = big;
    state.services.insert(0, huge);
    let mut dp = open(&seed_state());
    let report = dp.apply(&state).unwrap();
    assert_eq!(report.problems.len(), 1, "reported: {:?}", report.problems);
    assert!(report.problems[0].contains("scheduled as rr"));
    // It is still served (round robin over its live servers)…
    let f = tcp_frame(
        (CLIENT, 52000),
        (Ipv4Addr::new(198, 18, 0, 110), 80),
        Flags::SYN,
        b"",
    );
    assert_eq!(run(&mut dp, &f).action, XDP_TX);
    // …and a server going down in a service after it leaves that ring.
    state.services[1].backends[0].alive = false;
    dp.apply(&state).unwrap();
    for sport in 52100..52200 {
        assert_ne!(
            backend_of(&run(&mut dp, &syn(sport))),
            1,
            "dead server unscheduled"
        );
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn expire_quiescent_template_sends_persistent_clients_elsewhere() {
    let mut dp = open(&seed_state());
    let b = handshake(&mut dp, 53000, PVIP);
    // Its server goes to weight 0 (inhibit_on_failure, or a drain).
    let mut state = seed_state();
    state.services[2].backends[b as usize - 1].weight = 0;
    dp.apply(&state).unwrap();
    let next = tcp_frame((CLIENT, 53001), (PVIP, 80), Flags::SYN, b"");
    assert_eq!(
        backend_of(&run(&mut dp, &next)),
        b,
        "IPVS default: the template holds"
    );
    dp.set_expire_quiescent(true).unwrap();
    let again = tcp_frame((CLIENT, 53002), (PVIP, 80), Flags::SYN, b"");
    assert_ne!(
        backend_of(&run(&mut dp, &again)),
        b,
        "expire_quiescent_template"
    );
}

/// keepalived's `ops` (IPVS one-packet scheduling, UDP only): every
/// datagram of one client address and port is scheduled on its own — the
/// wrr sequence moves on with each — and no connection entry is kept, so
/// nothing is cached either. The same service without `ops` keeps the
/// client's server.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ops_schedules_each_udp_datagram_on_its_own_and_keeps_no_entry() {
    let mut ops = wrr(VIP, 53, Protocol::Udp);
    ops.one_packet = true;
    let mut dp = open(&DesiredState {
        services: vec![ops, wrr(VIP, 54, Protocol::Udp)],
    });
    let q = udp_frame((CLIENT, 5353), (VIP, 53), b"query");
    let picks: Vec<u8> = (0..12).map(|_| backend_of(&run(&mut dp, &q))).collect();
    // IPVS's wrr over the seed pool (list E D C B A): one full cycle.
    assert_eq!(picks, [3, 2, 5, 4, 3, 2, 1, 5, 4, 3, 2, 1], "{picks:?}");
    assert!(dp.conns().unwrap().is_empty(), "no connection entry kept");
    assert_eq!(
        dp.events().unwrap()[lvs_common::event::FLOW_CACHE_HIT as usize],
        0,
        "never cached"
    );
    // Without ops: the datagrams of one client port keep one server.
    let q = udp_frame((CLIENT, 5353), (VIP, 54), b"query");
    let first = backend_of(&run(&mut dp, &q));
    for _ in 0..5 {
        assert_eq!(backend_of(&run(&mut dp, &q)), first);
    }
    assert_eq!(dp.conns().unwrap().len(), 1);
}

/// IPv4 fragments of a UDP datagram to a VIP: the first (MF set, offset 0)
/// carries the ports and is scheduled as the flow's packets are; the later
/// ones (no ports) go where it went, untouched, as IPVS delivers the
/// reassembled datagram to one real server. A later fragment whose first
/// was never seen is passed, as is one whose server went down.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn fragments_of_a_datagram_follow_their_first_fragment() {
    let mut st = seed_state();
    let mut dp = open(&st);
    // IP id at bytes 18-19, flags/offset at 20-21 (MF = 0x20 in byte 20).
    let fragment = |src_port: u16, id: u16, first: bool| {
        let mut f = udp_frame((CLIENT, src_port), (VIP, 53), &[0xab; 64]);
        f[18..20].copy_from_slice(&id.to_be_bytes());
        if first {
            f[20] = 0x20; // MF, offset 0
        } else {
            f[20] = 0x00;
            f[21] = 0x09; // offset 72 bytes, last fragment
        }
        f
    };
    for (port, id) in [(6000u16, 0x1234u16), (6001, 0x1235), (6002, 0x1236)] {
        let out = run(&mut dp, &fragment(port, id, true));
        let b = backend_of(&out);
        let later = fragment(port, id, false);
        let out = run(&mut dp, &later);
        assert_eq!(backend_of(&out), b, "datagram {id:#x}: later fragment");
        assert_eq!(out.frame[12..], later[12..], "L3 and payload untouched");
    }
    // Never seen the first: passed.
    let before = verdict_count(&dp, verdict::PASS_FRAGMENT);
    let out = run(&mut dp, &fragment(6003, 0x4321, false));
    assert_eq!(out.action, XDP_PASS);
    assert_eq!(verdict_count(&dp, verdict::PASS_FRAGMENT), before + 1);
    // The first went to a server that is down now: its later fragments
    // are passed, never sent elsewhere.
    let b = backend_of(&run(&mut dp, &fragment(6004, 0x5555, true)));
    let udp = st
        .services
        .iter_mut()
        .find(|s| s.port == 53)
        .expect("the UDP service");
    udp.backends[b as usize - 1].alive = false;
    dp.apply(&st).unwrap();
    let out = run(&mut dp, &fragment(6004, 0x5555, false));
    assert_eq!(out.action, XDP_PASS, "not to another server");
}
