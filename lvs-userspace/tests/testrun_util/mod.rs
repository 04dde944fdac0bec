//! Shared set-up of the tests under BPF_PROG_TEST_RUN (data path and
//! schedulers): services over the test-run real servers, an unpinned data
//! path loaded on CPU 0, one frame run through it.

#![allow(dead_code)]

/// The frame an etherparse `PacketBuilder` chain writes around `payload`
/// (each chain ends in a type of its own, hence a macro).
#[allow(unused_macros)]
macro_rules! built {
    ($builder:expr, $payload:expr) => {{
        let mut v = Vec::new();
        $builder.write(&mut v, $payload).unwrap();
        v
    }};
}

use std::net::{IpAddr, Ipv4Addr};

use lvs_common::verdict;
use lvs_userspace::{
    datapath::{
        desired::{service_key, service_key6, SvcKey},
        testrun::{self, DIRECTOR_MAC},
        Datapath, DesiredBackend, DesiredService, DesiredState, Options, Protocol,
    },
    sched::Algorithm,
};

pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// The frames' ingress interface (lo): backends "on" it are XDP_TX.
pub const LO: u32 = 1;

/// IPv4 real servers 1.. of these weights ([`testrun::backend`]), in
/// config order.
pub fn backends(weights: &[u32]) -> Vec<DesiredBackend> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| testrun::backend(i as u8 + 1, w))
        .collect()
}

/// `vip`:`port`/`proto` scheduled by `algo` over `backends`: not
/// persistent, not sloppy, not one-packet.
pub fn service(
    vip: impl Into<IpAddr>,
    port: u16,
    proto: Protocol,
    algo: Algorithm,
    backends: Vec<DesiredBackend>,
) -> DesiredService {
    DesiredService {
        vip: vip.into(),
        port,
        proto,
        algo,
        persistence: None,
        sloppy: false,
        one_packet: false,
        backends,
    }
}

/// VIP:80/TCP with `algo` and real servers 1.. of these weights, in config
/// order.
pub fn state(algo: Algorithm, weights: &[u32]) -> DesiredState {
    DesiredState {
        services: vec![service(VIP, 80, Protocol::Tcp, algo, backends(weights))],
    }
}

/// An unpinned data path with `state` applied; the test runs on CPU 0 (the
/// per-CPU maps it reads are that CPU's).
pub fn open(state: &DesiredState) -> Datapath {
    testrun::pin_to_cpu(0);
    let mut dp = Datapath::open(&Options::ephemeral()).expect("load the XDP program (root?)");
    dp.set_local_mac(LO, DIRECTOR_MAC).expect("local MAC");
    dp.apply(state).expect("apply");
    dp
}

/// The id the data path gave service `vip`:`port`/`proto`.
pub fn service_id(dp: &Datapath, vip: impl Into<IpAddr>, port: u16, proto: Protocol) -> u32 {
    let key: SvcKey = match vip.into() {
        IpAddr::V4(a) => service_key(a, port, proto).into(),
        IpAddr::V6(a) => service_key6(a, port, proto).into(),
    };
    dp.service_id(key).expect("the service is loaded")
}

/// One frame through the program.
pub fn run(dp: &mut Datapath, frame: &[u8]) -> testrun::Outcome {
    testrun::run(dp.program().unwrap(), frame).expect("test run")
}

/// How many frames were given this verdict reason so far (this CPU).
pub fn verdict_count(dp: &Datapath, reason: u32) -> u64 {
    dp.verdicts().unwrap()[reason as usize]
}

/// Runs `frame` and checks it passes untouched, counted under `reason`.
pub fn assert_passes(dp: &mut Datapath, name: &str, frame: &[u8], reason: u32) {
    let before = verdict_count(dp, reason);
    let out = run(dp, frame);
    assert_eq!(out.action, XDP_PASS, "{name}: passed");
    assert_eq!(out.frame, frame, "{name}: untouched");
    assert_eq!(
        verdict_count(dp, reason),
        before + 1,
        "{name}: counted as {}",
        verdict::NAMES[reason as usize]
    );
}

/// `frame` with `bytes` written at `at`: one field spoiled.
pub fn patched(frame: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[at..at + bytes.len()].copy_from_slice(bytes);
    f
}
