//! Shared set-up of the scheduler tests under BPF_PROG_TEST_RUN: one
//! service on the VIP with real servers of the given weights, loaded into
//! an unpinned data path on CPU 0.

#![allow(dead_code)]

use std::net::Ipv4Addr;

use lvs_userspace::{
    datapath::{
        testrun::{self, DIRECTOR_MAC},
        Datapath, DesiredService, DesiredState, Options, Protocol,
    },
    sched::Algorithm,
};

pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// The frames' ingress interface (lo).
pub const LO: u32 = 1;

/// VIP:80/TCP with `algo` and real servers 1.. of these weights, in config
/// order.
pub fn state(algo: Algorithm, weights: &[u32]) -> DesiredState {
    DesiredState {
        services: vec![DesiredService {
            vip: VIP.into(),
            port: 80,
            proto: Protocol::Tcp,
            algo,
            persistence: None,
            sloppy: false,
            one_packet: false,
            backends: weights
                .iter()
                .enumerate()
                .map(|(i, &w)| testrun::backend(i as u8 + 1, w))
                .collect(),
        }],
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
