//! The IPv6 data path under BPF_PROG_TEST_RUN: new flows, established
//! flows, the IPVS wrr order, extension headers walked, fragments and the
//! unclassified passed, truncation at every header boundary, hop limit
//! untouched, ICMPv6 errors, persistence by prefix length, a hash
//! scheduler folding the address as IPVS does, and an IPv4 and an IPv6
//! VIP side by side.
//!
//! Needs root (loading BPF). Each test loads its own unpinned datapath.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{Icmpv6Type, IpNumber, PacketBuilder};
use lvs_common::{
    event,
    hash::{ipv6_fold, ipv6_words, sh_bucket},
    tcp, verdict, FlowKey6, IPPROTO_TCP, IPPROTO_UDP,
};
use lvs_userspace::{
    datapath::{
        testrun::{
            self, backend_mac, rewritten, tcp_frame, udp_frame, with_ipv6_ext_headers, Flags,
            CLIENT_MAC, DIRECTOR_MAC, IPV6_AT, IPV6_LEN,
        },
        Datapath, DesiredBackend, DesiredService, DesiredState, Persistence, Protocol,
    },
    sched::Algorithm,
};

#[macro_use]
mod testrun_util;
use testrun_util::*;

const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x100);
const PVIP: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x101);
const SHVIP: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x102);
const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1);
const VIP4: Ipv4Addr = testrun_util::VIP;
const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const WEIGHTS: [u32; 5] = [2, 3, 3, 2, 2];

// Extension header numbers (IANA "Assigned Internet Protocol Numbers").
const NEXTHDR_HOP: u8 = IpNumber::IPV6_HEADER_HOP_BY_HOP.0;
const NEXTHDR_ROUTING: u8 = IpNumber::IPV6_ROUTE_HEADER.0;
const NEXTHDR_FRAGMENT: u8 = IpNumber::IPV6_FRAGMENTATION_HEADER.0;
const NEXTHDR_ESP: u8 = IpNumber::ENCAPSULATING_SECURITY_PAYLOAD.0;
const NEXTHDR_AH: u8 = IpNumber::AUTHENTICATION_HEADER.0;
const NEXTHDR_DEST: u8 = IpNumber::IPV6_DESTINATION_OPTIONS.0;

fn pool6() -> Vec<DesiredBackend> {
    WEIGHTS
        .iter()
        .enumerate()
        .map(|(i, &w)| testrun::backend6(i as u8 + 1, w))
        .collect()
}

fn service6(vip: Ipv6Addr, port: u16, proto: Protocol) -> DesiredService {
    service(vip, port, proto, Algorithm::Wrr, pool6())
}

/// The seed's shape on IPv6 VIPs: wrr TCP, UDP, persistent per /64, and
/// an `sh` service.
fn state6() -> DesiredState {
    let mut persistent = service6(PVIP, 80, Protocol::Tcp);
    persistent.persistence = Some(Persistence {
        timeout_s: 120,
        netmask: Ipv4Addr::BROADCAST,
        prefix_len6: 64,
    });
    let mut sh = service6(SHVIP, 80, Protocol::Tcp);
    sh.algo = Algorithm::Sh {
        port: false,
        fallback: false,
    };
    DesiredState {
        services: vec![
            service6(VIP, 80, Protocol::Tcp),
            service6(VIP, 53, Protocol::Udp),
            persistent,
            sh,
        ],
    }
}

/// Which backend (1-based) a forwarded frame went to, from its MAC; the
/// rest of the frame (hop limit included) must be what was sent.
fn forwarded_to(out: &testrun::Outcome, sent: &[u8]) -> u8 {
    assert_eq!(out.action, XDP_TX, "forwarded");
    let n = out.frame[5];
    assert_eq!(
        out.frame,
        rewritten(sent, backend_mac(n), DIRECTOR_MAC),
        "only the MACs change"
    );
    n
}

/// `client:sport`'s connection to `vip`:80 through its handshake: the
/// real server its SYN went to, which its ACK follows.
fn handshake(dp: &mut Datapath, client: Ipv6Addr, sport: u16, vip: Ipv6Addr) -> u8 {
    let s = syn(client, sport, vip);
    let n = forwarded_to(&run(dp, &s), &s);
    let ack = tcp_frame((client, sport), (vip, 80), Flags::ACK, b"");
    assert_eq!(
        forwarded_to(&run(dp, &ack), &ack),
        n,
        "the ACK follows the SYN"
    );
    n
}

fn syn(client: Ipv6Addr, sport: u16, vip: Ipv6Addr) -> Vec<u8> {
    tcp_frame((client, sport), (vip, 80), Flags::SYN, b"")
}

fn key6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, proto: u8) -> FlowKey6 {
    FlowKey6 {
        src_be: ipv6_words(src.octets()),
        dst_be: ipv6_words(dst.octets()),
        sport_be: sport.to_be(),
        dport_be: dport.to_be(),
        proto,
        _pad: [0; 3],
    }
}

fn event_count(dp: &Datapath, e: u32) -> u64 {
    dp.events().unwrap()[e as usize]
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_new_flow_is_rewritten_and_established_flow_sticks() {
    let mut dp = open(&state6());
    let s = syn(CLIENT, 40000, VIP);
    let out = run(&mut dp, &s);
    let n = forwarded_to(&out, &s);
    // Hop limit, addresses, ports, checksums: byte for byte (checked by
    // forwarded_to); say the hop limit out loud.
    assert_eq!(out.frame[IPV6_AT + 7], 64, "hop limit untouched");
    let key = key6(CLIENT, 40000, VIP, 80, IPPROTO_TCP);
    let c = dp.conn(&key).expect("a half-open entry");
    assert_eq!(c.state, tcp::SYN_RECV);
    assert!(!dp.is_established(&key));

    // The handshake's ACK promotes it; data follows it to the same server.
    let ack = tcp_frame((CLIENT, 40000), (VIP, 80), Flags::ACK, b"");
    assert_eq!(forwarded_to(&run(&mut dp, &ack), &ack), n);
    assert!(dp.is_established(&key));
    assert_eq!(dp.conn(&key).unwrap().state, tcp::ESTABLISHED);
    let hits = event_count(&dp, event::FLOW_CACHE_HIT);
    for i in 0..5 {
        let data = tcp_frame((CLIENT, 40000), (VIP, 80), Flags::ACK, &[i; 100]);
        assert_eq!(forwarded_to(&run(&mut dp, &data), &data), n);
    }
    assert!(
        event_count(&dp, event::FLOW_CACHE_HIT) >= hits + 4,
        "established IPv6 segments take the flow cache"
    );
    // FIN moves the state on.
    let fin = tcp_frame((CLIENT, 40000), (VIP, 80), Flags::FIN_ACK, b"");
    assert_eq!(forwarded_to(&run(&mut dp, &fin), &fin), n);
    assert_eq!(dp.conn(&key).unwrap().state, tcp::FIN_WAIT);

    // The listing reads the IPv6 tables.
    let conns = dp.conns6().unwrap();
    assert_eq!(conns.len(), 1);
    let svc = dp
        .services()
        .unwrap()
        .into_iter()
        .find(|s| s.vip == std::net::IpAddr::V6(VIP) && s.port == 80)
        .unwrap();
    assert_eq!(svc.stats.conns, 1, "one new connection counted");
    assert_eq!(svc.stats.packets, 8);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_udp_flows_are_forwarded_and_remembered() {
    let mut dp = open(&state6());
    let q = udp_frame((CLIENT, 5353), (VIP, 53), b"query");
    let n = forwarded_to(&run(&mut dp, &q), &q);
    for _ in 0..3 {
        assert_eq!(forwarded_to(&run(&mut dp, &q), &q), n);
    }
    let key = key6(CLIENT, 5353, VIP, 53, IPPROTO_UDP);
    assert!(dp.is_established(&key), "the second datagram promotes it");
}

/// IPVS's wrr order over the seed weights, walked by one CPU: the same
/// sequence as the IPv4 service (backend ids and rings are shared code).
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_wrr_split_follows_the_weights_exactly() {
    let mut dp = open(&state6());
    let mut counts = [0u32; 5];
    for i in 0..1200u16 {
        let s = syn(CLIENT, 10000 + i, VIP);
        counts[forwarded_to(&run(&mut dp, &s), &s) as usize - 1] += 1;
    }
    assert_eq!(counts, [200, 300, 300, 200, 200], "2:3:3:2:2 of 1200");
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_extension_headers_are_walked_and_left_alone() {
    let mut dp = open(&state6());
    let s = syn(CLIENT, 41000, VIP);
    let n = forwarded_to(&run(&mut dp, &s), &s);
    let ack = tcp_frame((CLIENT, 41000), (VIP, 80), Flags::ACK, b"GET /");
    let routing = vec![0, 0, 4, 0, 0, 0, 0, 0]; // segments left 0
    for (name, headers) in [
        ("hop-by-hop", vec![(NEXTHDR_HOP, vec![0; 6])]),
        ("destination options", vec![(NEXTHDR_DEST, vec![0; 14])]),
        ("routing", vec![(NEXTHDR_ROUTING, routing.clone())]),
        (
            "hop-by-hop, routing, destination options, destination options",
            vec![
                (NEXTHDR_HOP, vec![0; 6]),
                (NEXTHDR_ROUTING, routing.clone()),
                (NEXTHDR_DEST, vec![0; 22]),
                (NEXTHDR_DEST, vec![0; 6]),
            ],
        ),
    ] {
        let f = with_ipv6_ext_headers(&ack, &headers);
        let out = run(&mut dp, &f);
        assert_eq!(forwarded_to(&out, &f), n, "{name}: same real server");
        assert_eq!(out.frame[IPV6_AT + 7], 64, "{name}: hop limit untouched");
    }
    // A new flow behind extension headers is scheduled too.
    let f = with_ipv6_ext_headers(&syn(CLIENT, 41001, VIP), &[(NEXTHDR_HOP, vec![0; 6])]);
    forwarded_to(&run(&mut dp, &f), &f);
    assert!(dp
        .conn(&key6(CLIENT, 41001, VIP, 80, IPPROTO_TCP))
        .is_some());

    // More than the bound: not classified, passed.
    let five = vec![(NEXTHDR_DEST, vec![0; 6]); 5];
    assert_passes(
        &mut dp,
        "five extension headers",
        &with_ipv6_ext_headers(&ack, &five),
        verdict::PASS_NOT_SERVICE,
    );
    for (name, kind) in [
        ("ESP", NEXTHDR_ESP),
        ("AH", NEXTHDR_AH),
        ("unknown 253", 253),
    ] {
        assert_passes(
            &mut dp,
            name,
            &with_ipv6_ext_headers(&ack, &[(kind, vec![0; 14])]),
            verdict::PASS_NOT_SERVICE,
        );
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_fragments_pass() {
    let mut dp = open(&state6());
    let s = syn(CLIENT, 42000, VIP);
    // Fragment header: next header, reserved, offset/flags (M set), id.
    let first = with_ipv6_ext_headers(&s, &[(NEXTHDR_FRAGMENT, vec![0, 0, 0, 1, 0, 0, 0, 7])]);
    assert_passes(&mut dp, "first fragment", &first, verdict::PASS_FRAGMENT);
    let later = with_ipv6_ext_headers(
        &s,
        &[(NEXTHDR_FRAGMENT, vec![0, 0, 0x05, 0x00, 0, 0, 0, 7])],
    );
    assert_passes(&mut dp, "later fragment", &later, verdict::PASS_FRAGMENT);
    let behind = with_ipv6_ext_headers(
        &s,
        &[
            (NEXTHDR_HOP, vec![0; 6]),
            (NEXTHDR_FRAGMENT, vec![0, 0, 0, 1, 0, 0, 0, 7]),
        ],
    );
    assert_passes(
        &mut dp,
        "fragment behind hop-by-hop",
        &behind,
        verdict::PASS_FRAGMENT,
    );
    assert!(dp.conns6().unwrap().is_empty(), "no connection created");
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_truncated_at_every_header_boundary_passes() {
    let mut dp = open(&state6());
    let s = syn(CLIENT, 43000, VIP);
    let with_hop = with_ipv6_ext_headers(&s, &[(NEXTHDR_HOP, vec![0; 14])]);
    let l4 = IPV6_AT + IPV6_LEN;
    // Ethernet only, inside the IPv6 header, the fixed header without L4,
    // inside the TCP header; and with an extension header: inside it, and
    // right after it.
    for len in [14, 20, l4 - 1, l4, l4 + 1, l4 + 19] {
        assert_passes(
            &mut dp,
            &format!("TCP SYN cut at {len}"),
            &s[..len],
            verdict::PASS_MALFORMED,
        );
    }
    for len in [l4 + 1, l4 + 15, l4 + 16, l4 + 16 + 19] {
        assert_passes(
            &mut dp,
            &format!("SYN behind hop-by-hop cut at {len}"),
            &with_hop[..len],
            verdict::PASS_MALFORMED,
        );
    }
    let u = udp_frame((CLIENT, 5353), (VIP, 53), b"");
    assert_passes(
        &mut dp,
        "UDP cut at 7 bytes of header",
        &u[..l4 + 7],
        verdict::PASS_MALFORMED,
    );
    // Version 4 in an IPv6 ethertype.
    let bad = patched(&s, IPV6_AT, &[0x40]);
    assert_passes(&mut dp, "version 4 in IPv6", &bad, verdict::PASS_MALFORMED);
    assert!(dp.conns6().unwrap().is_empty(), "no connection created");
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_other_traffic_passes() {
    let mut dp = open(&state6());
    let other = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x999);
    assert_passes(
        &mut dp,
        "TCP to an address that is no VIP",
        &syn(CLIENT, 44000, other),
        verdict::PASS_NOT_SERVICE,
    );
    assert_passes(
        &mut dp,
        "TCP to the VIP on another port",
        &tcp_frame((CLIENT, 44001), (VIP, 8080), Flags::SYN, b""),
        verdict::PASS_NOT_SERVICE,
    );
    assert_passes(
        &mut dp,
        "ACK without a connection",
        &tcp_frame((CLIENT, 44002), (VIP, 80), Flags::ACK, b"x"),
        verdict::PASS_NO_CONN,
    );
    // Neighbour solicitation for the VIP (unicast, as NUD sends it).
    let ns = built!(
        PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
            .ipv6(CLIENT.octets(), VIP.octets(), 255)
            .icmpv6_raw(135, 0, [0; 4]),
        &VIP.octets()
    );
    assert_passes(
        &mut dp,
        "neighbour solicitation",
        &ns,
        verdict::PASS_NOT_SERVICE,
    );
    let ping = built!(
        PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
            .ipv6(CLIENT.octets(), VIP.octets(), 64)
            .icmpv6_echo_request(1, 1),
        b"ping"
    );
    assert_passes(&mut dp, "echo request", &ping, verdict::PASS_NOT_SERVICE);
    let flooded = patched(&syn(CLIENT, 44003, VIP), 0, &[0x02, 0xd2, 0, 0, 0, 0x02]);
    assert_passes(
        &mut dp,
        "SYN for another host's MAC",
        &flooded,
        verdict::PASS_OTHER_HOST,
    );
}

/// An ICMPv6 error sent to the VIP by a router, quoting the packet the
/// real server sent from VIP:80 to the client.
fn icmp6_error(kind: Icmpv6Type, client_port: u16) -> Vec<u8> {
    let mut quoted = built!(
        PacketBuilder::ipv6(VIP.octets(), CLIENT.octets(), 63).tcp(80, client_port, 1, 65535),
        &[0u8; 1300]
    );
    quoted.truncate(1232);
    let router = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 0xfe);
    built!(
        PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
            .ipv6(router.octets(), VIP.octets(), 64)
            .icmpv6(kind),
        &quoted
    )
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_icmp_errors_about_a_connection_go_to_its_real_server() {
    let mut dp = open(&state6());
    let n = handshake(&mut dp, CLIENT, 45000, VIP);
    let before = event_count(&dp, event::ICMP_ERROR_FORWARDED);
    for kind in [
        Icmpv6Type::PacketTooBig { mtu: 1280 },
        Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Address),
        Icmpv6Type::TimeExceeded(etherparse::icmpv6::TimeExceededCode::HopLimitExceeded),
    ] {
        let e = icmp6_error(kind, 45000);
        assert_eq!(
            forwarded_to(&run(&mut dp, &e), &e),
            n,
            "{kind:?} goes to the connection's real server"
        );
    }
    assert_eq!(event_count(&dp, event::ICMP_ERROR_FORWARDED), before + 3);
    // About a connection the director does not know: the kernel's.
    assert_passes(
        &mut dp,
        "packet too big about an unknown connection",
        &icmp6_error(Icmpv6Type::PacketTooBig { mtu: 1280 }, 45999),
        verdict::PASS_NOT_SERVICE,
    );
    // Cut inside the quoted header: passed as malformed.
    let e = icmp6_error(Icmpv6Type::PacketTooBig { mtu: 1280 }, 45000);
    let cut = IPV6_AT + IPV6_LEN + 8 + 20;
    assert_passes(
        &mut dp,
        "quoted header cut",
        &e[..cut],
        verdict::PASS_MALFORMED,
    );
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_persistence_by_prefix_length() {
    let mut dp = open(&state6());
    // Two clients in one /64 share a template; the first decides.
    let a = Ipv6Addr::new(0x2001, 2, 0, 7, 0, 0, 0, 1);
    let b = Ipv6Addr::new(0x2001, 2, 0, 7, 0xffff, 0, 0, 2);
    let s = syn(a, 46000, PVIP);
    let n = forwarded_to(&run(&mut dp, &s), &s);
    for (i, client) in [a, b, a, b].into_iter().enumerate() {
        let s = syn(client, 46001 + i as u16, PVIP);
        assert_eq!(
            forwarded_to(&run(&mut dp, &s), &s),
            n,
            "same /64, same server"
        );
    }
    // Established, the template moves into persist6 under the /64.
    let ack = tcp_frame((a, 46000), (PVIP, 80), Flags::ACK, b"");
    run(&mut dp, &ack);
    let svc = service_id(&dp, PVIP, 80, Protocol::Tcp);
    let t = dp
        .template(&lvs_common::PersistKey6 {
            service: svc,
            client_be: ipv6_words(Ipv6Addr::new(0x2001, 2, 0, 7, 0, 0, 0, 0).octets()),
        })
        .expect("template for the /64");
    let listed = dp.services().unwrap();
    let backend = listed
        .iter()
        .find(|s| s.svc.id == svc)
        .unwrap()
        .backends
        .iter()
        .find(|x| x.id == t.backend)
        .unwrap();
    assert_eq!(backend.mac, backend_mac(n));
    // Another /64: scheduled on its own (wrr moves on).
    let other = Ipv6Addr::new(0x2001, 2, 0, 8, 0, 0, 0, 1);
    let s = syn(other, 46100, PVIP);
    forwarded_to(&run(&mut dp, &s), &s);
}

/// `sh` hashes IPVS's fold of the client address: the bucket the kernel
/// computes, in the 256-bucket table the agent wrote.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_source_hash_folds_the_address_as_ipvs() {
    let mut dp = open(&state6());
    // sh over 2:3:3:2:2 in IPVS's list order (config reversed): the table
    // fills buckets round the list by weight.
    let dests: Vec<u8> = (1..=5).rev().collect();
    let weights: Vec<u32> = dests.iter().map(|d| WEIGHTS[*d as usize - 1]).collect();
    let mut table = Vec::new();
    let (mut d, mut count) = (0usize, 0u32);
    while table.len() < 256 {
        table.push(dests[d]);
        count += 1;
        if count >= weights[d] {
            d = (d + 1) % dests.len();
            count = 0;
        }
    }
    for i in 0..64u16 {
        let client = Ipv6Addr::new(0x2001, 2, 0, 9, i, 0x1234, i * 7, 1 + i);
        let fold = u32::from_be(ipv6_fold(&ipv6_words(client.octets())));
        let want = table[sh_bucket(fold, 0, 0) as usize];
        let s = syn(client, 47000 + i, SHVIP);
        assert_eq!(
            forwarded_to(&run(&mut dp, &s), &s),
            want,
            "{client}: the kernel's bucket"
        );
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn one_service_on_an_ipv4_and_an_ipv6_vip() {
    let v4 = service(VIP4, 80, Protocol::Tcp, Algorithm::Wrr, backends(&WEIGHTS));
    let state = DesiredState {
        services: vec![service6(VIP, 80, Protocol::Tcp), v4],
    };
    let mut dp = open(&state);
    let mut c4 = [0u32; 5];
    let mut c6 = [0u32; 5];
    for i in 0..120u16 {
        let s = syn(CLIENT, 48000 + i, VIP);
        c6[forwarded_to(&run(&mut dp, &s), &s) as usize - 1] += 1;
        let s = tcp_frame((CLIENT4, 48000 + i), (VIP4, 80), Flags::SYN, b"");
        c4[forwarded_to(&run(&mut dp, &s), &s) as usize - 1] += 1;
    }
    assert_eq!(c6, [20, 30, 30, 20, 20]);
    assert_eq!(c4, [20, 30, 30, 20, 20]);
    let services = dp.services().unwrap();
    assert_eq!(services.len(), 2);
    let ids: std::collections::BTreeSet<u32> = services.iter().map(|s| s.svc.id).collect();
    assert_eq!(ids.len(), 2, "one id space across families");
    assert_eq!(dp.conns().unwrap().len(), 120);
    assert_eq!(dp.conns6().unwrap().len(), 120);
    // Taking the IPv6 one away leaves the IPv4 one as it was.
    let mut only4 = state.clone();
    only4.services.remove(0);
    let report = dp.apply(&only4).unwrap();
    assert_eq!(report.services_removed, 1);
    let s = tcp_frame((CLIENT4, 49000), (VIP4, 80), Flags::SYN, b"");
    forwarded_to(&run(&mut dp, &s), &s);
    assert_passes(
        &mut dp,
        "SYN to the removed IPv6 VIP",
        &syn(CLIENT, 49000, VIP),
        verdict::PASS_NOT_SERVICE,
    );
}

/// `lvsadm` prints IPv6 services, real servers, connections and templates
/// in ipvsadm's formats: `[addr]:port`, `persistent T mask PLEN`.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lvsadm_prints_ipv6_as_ipvsadm() {
    use lvs_userspace::adm::{self, json, Format, Select, Snapshot};
    let mut dp = open(&state6());
    run(&mut dp, &syn(CLIENT, 50000, VIP));
    let a = Ipv6Addr::new(0x2001, 2, 0, 7, 0, 0, 0, 1);
    run(&mut dp, &syn(a, 50001, PVIP));
    run(&mut dp, &tcp_frame((a, 50001), (PVIP, 80), Flags::ACK, b""));
    let snap = Snapshot::take(&dp).unwrap();

    let ln = adm::list(&snap, Format::default(), None, None).unwrap();
    assert!(ln.contains("TCP  [2001:2::100]:80 wrr\n"), "{ln}");
    assert!(
        ln.contains("TCP  [2001:2::101]:80 wrr persistent 120 mask 64\n"),
        "{ln}"
    );
    assert!(ln.contains("UDP  [2001:2::100]:53 wrr\n"), "{ln}");
    assert!(ln.contains("  -> [2001:2::11]:80"), "{ln}");
    assert!(ln.contains("  -> [2001:2::15]:80"), "{ln}");
    let stats = adm::list(
        &snap,
        Format {
            stats: true,
            ..Format::default()
        },
        None,
        None,
    )
    .unwrap();
    assert!(stats.contains("TCP  [2001:2::100]:80"), "{stats}");

    let save = adm::save(&snap);
    assert!(save.contains("-A -t [2001:2::100]:80 -s wrr\n"), "{save}");
    assert!(
        save.contains("-A -t [2001:2::101]:80 -s wrr -p 120 -M 64\n"),
        "{save}"
    );
    assert!(
        save.contains("-a -t [2001:2::100]:80 -r [2001:2::12]:80 -g -w 3\n"),
        "{save}"
    );

    let lnc = adm::conns(&snap, Format::default(), None);
    assert!(
        lnc.lines().any(|l| l.starts_with("TCP")
            && l.contains("SYN_RECV")
            && l.contains("[2001:2:0:1::1]:50000 [2001:2::100]:80")),
        "{lnc}"
    );
    assert!(
        lnc.lines()
            .any(|l| l.contains("NONE") && l.contains("[2001:2:0:7::]:0   [2001:2::101]:80")),
        "the /64 template: {lnc}"
    );

    let j = json::services(&snap, None, None);
    let text = j.to_string();
    assert!(text.contains("\"2001:2::100\""), "{text}");
    assert!(text.contains("\"2001:2::11\""), "{text}");
    let one = Select {
        proto: Protocol::Tcp,
        vip: VIP.into(),
        port: 80,
    };
    assert_eq!(one.to_string(), "-t [2001:2::100]:80");
    let only = adm::list(&snap, Format::default(), Some(one), None).unwrap();
    assert!(!only.contains("2001:2::101"), "{only}");
}
