//! The least-connection schedulers (`lc`, `wlc`, `sed`, `nq`) under
//! BPF_PROG_TEST_RUN, against reference implementations of `ip_vs_lc.c`,
//! `ip_vs_wlc.c`, `ip_vs_sed.c` and `ip_vs_nq.c` written here: connections
//! are opened, established and reset one by one, a model keeps IPVS's
//! counts (active = ESTABLISHED, inactive = the rest), and every new
//! connection must go where IPVS would send it for those counts. The data
//! path's own counts are checked against the model as it goes, and the
//! agent's expiry pass must bring them back to the tables' truth.
//!
//! IPVS's destination list is the config reversed (keepalived adds each
//! real server at the head); the references walk it in that order.
//!
//! Needs root (loading BPF). Each test loads its own unpinned datapath.

use std::net::Ipv4Addr;

use lvs_userspace::{
    datapath::{
        testrun::{self, tcp_frame, Flags},
        Datapath, DesiredState, Protocol,
    },
    sched::Algorithm,
};

mod testrun_util;
use testrun_util::*;

fn client(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 4, 0)) + i)
}

/// Sends one segment of connection `i`; the backend (1-based) it went to,
/// from the last two bytes of its MAC (see `big_backend`).
fn send(dp: &mut Datapath, i: u32, flags: Flags) -> usize {
    let f = tcp_frame((client(i), 40000), (VIP, 80), flags, b"");
    let out = run(dp, &f);
    assert_eq!(out.action, XDP_TX, "connection {i} forwarded");
    ((out.frame[4] as usize) << 8) | out.frame[5] as usize
}

/// A real server as the references see it (IPVS `struct ip_vs_dest`).
#[derive(Clone, Copy, Debug, Default)]
struct Dest {
    n: usize,
    weight: u32,
    active: u64,
    inactive: u64,
}

/// `ip_vs_dest_conn_overhead`.
fn conn_overhead(d: &Dest) -> u64 {
    (d.active << 8) + d.inactive
}

/// ip_vs_lc_schedule.
fn ipvs_lc(list: &[Dest]) -> Option<usize> {
    let mut least: Option<(usize, u64)> = None;
    for d in list.iter().filter(|d| d.weight > 0) {
        let doh = conn_overhead(d);
        if least.is_none_or(|(_, loh)| doh < loh) {
            least = Some((d.n, doh));
        }
    }
    least.map(|(n, _)| n)
}

/// ip_vs_wlc_schedule (and ip_vs_sed_schedule with `sed_overhead`): the
/// first server with a weight, then any whose overhead per weight is
/// strictly lower, compared as cross products.
fn ipvs_wlc_like(list: &[Dest], overhead: fn(&Dest) -> u64) -> Option<usize> {
    let start = list.iter().position(|d| d.weight > 0)?;
    let mut least = list[start];
    let mut loh = overhead(&least);
    for d in &list[start + 1..] {
        let doh = overhead(d);
        if loh * d.weight as u64 > doh * least.weight as u64 {
            least = *d;
            loh = doh;
        }
    }
    Some(least.n)
}

/// `ip_vs_sed_dest_overhead` / `ip_vs_nq_dest_overhead`.
fn sed_overhead(d: &Dest) -> u64 {
    d.active + 1
}

/// ip_vs_nq_schedule.
fn ipvs_nq(list: &[Dest]) -> Option<usize> {
    let mut least: Option<(Dest, u64)> = None;
    for d in list.iter().filter(|d| d.weight > 0) {
        let doh = sed_overhead(d);
        if d.active == 0 {
            return Some(d.n);
        }
        if least.is_none_or(|(l, loh)| loh * d.weight as u64 > doh * l.weight as u64) {
            least = Some((*d, doh));
        }
    }
    least.map(|(d, _)| d.n)
}

/// ip_vs_fo_schedule: the first server of the highest weight.
fn ipvs_fo(list: &[Dest]) -> Option<usize> {
    let mut hw = 0;
    let mut h = None;
    for d in list {
        if d.weight > hw {
            h = Some(d.n);
            hw = d.weight;
        }
    }
    h
}

/// ip_vs_ovf_schedule: as fo among servers with active <= weight.
fn ipvs_ovf(list: &[Dest]) -> Option<usize> {
    let mut h: Option<Dest> = None;
    for d in list {
        if d.active > d.weight as u64 || d.weight == 0 {
            continue;
        }
        if h.is_none_or(|h| d.weight > h.weight) {
            h = Some(*d);
        }
    }
    h.map(|d| d.n)
}

fn reference(algo: Algorithm, list: &[Dest]) -> Option<usize> {
    match algo {
        Algorithm::Fo => ipvs_fo(list),
        Algorithm::Ovf => ipvs_ovf(list),
        Algorithm::Lc => ipvs_lc(list),
        Algorithm::Wlc => ipvs_wlc_like(list, conn_overhead),
        Algorithm::Sed => ipvs_wlc_like(list, sed_overhead),
        Algorithm::Nq => ipvs_nq(list),
        other => panic!("{other:?} is not a least-connection scheduler"),
    }
}

/// IPVS's counts as the test drives connections, by config index.
struct Model {
    dests: Vec<Dest>,
    /// Per connection: its backend and whether it is established.
    conns: Vec<(usize, bool)>,
}

impl Model {
    fn new(weights: &[u32]) -> Self {
        Model {
            dests: weights
                .iter()
                .enumerate()
                .map(|(i, &w)| Dest {
                    n: i + 1,
                    weight: w,
                    ..Default::default()
                })
                .collect(),
            conns: Vec::new(),
        }
    }

    /// IPVS's list: the config reversed.
    fn list(&self) -> Vec<Dest> {
        self.dests.iter().rev().copied().collect()
    }

    fn dest(&mut self, n: usize) -> &mut Dest {
        &mut self.dests[n - 1]
    }

    /// A new connection to `n`: inactive until its handshake completes.
    fn opened(&mut self, n: usize) {
        self.dest(n).inactive += 1;
        self.conns.push((n, false));
    }

    /// Connection `i` turns ESTABLISHED (`true`, its handshake's ACK) or
    /// leaves it (`false`, a reset): its server's count moves over.
    fn set_established(&mut self, i: u32, established: bool) {
        let n = self.conns[i as usize].0;
        let d = self.dest(n);
        let (from, to) = match established {
            true => (&mut d.inactive, &mut d.active),
            false => (&mut d.active, &mut d.inactive),
        };
        *from -= 1;
        *to += 1;
        self.conns[i as usize].1 = established;
    }
}

/// After connection `i` was opened: four in five are established by the
/// handshake's ACK, and now and then an earlier established one is reset;
/// each segment must reach the connection's server.
fn establish_and_reset(dp: &mut Datapath, model: &mut Model, i: u32) {
    if i % 5 != 4 {
        assert_eq!(send(dp, i, Flags::ACK), model.conns[i as usize].0);
        model.set_established(i, true);
    }
    if i % 7 == 6 {
        let j = i - 3;
        if let (b @ 1.., true) = model.conns[j as usize] {
            assert_eq!(send(dp, j, Flags::RST), b);
            model.set_established(j, false);
        }
    }
}

/// Opens `count` connections one at a time, establishing most and
/// resetting some established ones, checking each pick against IPVS and
/// the data path's counts against the model.
fn drive(algo: Algorithm, weights: &[u32], count: u32) -> (Datapath, Model) {
    let st = state(algo, weights);
    let mut dp = open(&st);
    let mut model = Model::new(weights);
    let key = st.services[0].key();
    for i in 0..count {
        let want = reference(algo, &model.list());
        if want.is_none() {
            // IPVS has no server for it ("no destination available"): passed.
            let f = tcp_frame((client(i), 40000), (VIP, 80), Flags::SYN, b"");
            let out = run(&mut dp, &f);
            assert_eq!(out.action, 2, "{}: connection {i} passed", algo.name());
            model.conns.push((0, false));
            continue;
        }
        let got = send(&mut dp, i, Flags::SYN);
        assert_eq!(
            Some(got),
            want,
            "{}: connection {i} went to {got}, IPVS picks {want:?} for {:?}",
            algo.name(),
            model.list()
        );
        model.opened(got);
        establish_and_reset(&mut dp, &mut model, i);
        if i % 25 == 0 || i + 1 == count {
            for d in &model.dests {
                let id = dp
                    .backend_id(key, Ipv4Addr::new(198, 18, 0, 10 + d.n as u8), 80)
                    .unwrap();
                assert_eq!(
                    dp.conn_counts(id).unwrap(),
                    (d.active, d.inactive),
                    "server {} counts after connection {i}",
                    d.n
                );
            }
        }
    }
    (dp, model)
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn wlc_picks_as_ip_vs_wlc() {
    let (_, model) = drive(Algorithm::Wlc, &[1, 3, 2, 1, 5], 600);
    // Active connections in the weights' proportion (within one each).
    let total: u64 = model.dests.iter().map(|d| d.active).sum();
    for d in &model.dests {
        let share = total as f64 * d.weight as f64 / 12.0;
        assert!(
            (d.active as f64 - share).abs() <= 6.0,
            "server {}: {} active, {share:.1} by weight",
            d.n,
            d.active
        );
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lc_picks_as_ip_vs_lc() {
    drive(Algorithm::Lc, &[1, 3, 2, 1], 400);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn sed_picks_as_ip_vs_sed() {
    drive(Algorithm::Sed, &[1, 3, 2, 1], 400);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn nq_picks_as_ip_vs_nq() {
    drive(Algorithm::Nq, &[2, 1, 4], 300);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn fo_picks_as_ip_vs_fo() {
    // Two of the highest weight: IPVS's list is the config reversed, so
    // the later one in the config wins.
    let (_, model) = drive(Algorithm::Fo, &[2, 5, 1, 5], 100);
    assert_eq!(model.dests[3].active + model.dests[3].inactive, 100);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ovf_picks_as_ip_vs_ovf() {
    // Small weights: servers overflow to the next weight as their active
    // connections pass it.
    // Past 18 connections every server has more active connections than
    // weight: IPVS (and the data path) have none for the next ones.
    drive(Algorithm::Ovf, &[3, 5, 2, 4], 40);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn quiescent_and_down_servers_get_no_new_connections() {
    let mut st = state(Algorithm::Wlc, &[1, 1, 1]);
    let mut dp = open(&st);
    st.services[0].backends[0].weight = 0;
    st.services[0].backends[2].alive = false;
    dp.apply(&st).unwrap();
    for i in 0..50 {
        assert_eq!(send(&mut dp, i, Flags::SYN), 2);
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn expiry_pass_brings_counts_back_to_the_tables() {
    let (mut dp, model) = drive(Algorithm::Wlc, &[1, 2], 60);
    let key = state(Algorithm::Wlc, &[1, 2]).services[0].key();
    let ids: Vec<u32> = (1..=2u8)
        .map(|n| {
            dp.backend_id(key, Ipv4Addr::new(198, 18, 0, 10 + n), 80)
                .unwrap()
        })
        .collect();
    // A pass over tables that match the counts changes nothing.
    dp.expire().unwrap();
    for (d, &id) in model.dests.iter().zip(&ids) {
        assert_eq!(dp.conn_counts(id).unwrap(), (d.active, d.inactive));
    }
    // Every entry idle past a 1 s timeout: the pass deletes them all and
    // the counts follow.
    dp.update_settings(|s| {
        for t in s.timeouts_s.iter_mut() {
            *t = 1;
        }
    })
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (gone, _) = dp.expire().unwrap();
    assert_eq!(gone, 60);
    for &id in &ids {
        assert_eq!(dp.conn_counts(id).unwrap(), (0, 0));
    }
    // The data path's own expiry (a packet finds its entry idle past its
    // timeout) uncounts too: a new SYN on an old 5-tuple.
    let b = send(&mut dp, 1000, Flags::SYN);
    send(&mut dp, 1000, Flags::ACK);
    let id = ids[b - 1];
    assert_eq!(dp.conn_counts(id).unwrap(), (1, 0));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let b2 = send(&mut dp, 1000, Flags::SYN);
    let (a, i) = (
        dp.conn_counts(ids[0]).unwrap(),
        dp.conn_counts(ids[1]).unwrap(),
    );
    assert_eq!(a.0 + a.1 + i.0 + i.1, 1, "only the new half-open one");
    assert_eq!(dp.conn_counts(ids[b2 - 1]).unwrap(), (0, 1));
}

/// IPVS's `uthreshold`/`lthreshold` (IP_VS_DEST_F_OVERLOAD): a server at
/// its upper threshold of connections (active + inactive) gets no new ones
/// until it is below the lower one, for the sequence schedulers as for the
/// least-connection ones.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_server_at_uthreshold_gets_no_new_connections_until_below_lthreshold() {
    for algo in [Algorithm::Wrr, Algorithm::Wlc] {
        let mut st = state(algo, &[1, 1]);
        st.services[0].backends[0].u_threshold = 3;
        st.services[0].backends[0].l_threshold = 1;
        let mut dp = open(&st);
        let picks: Vec<usize> = (0..20).map(|i| send(&mut dp, i, Flags::SYN)).collect();
        assert_eq!(
            picks.iter().filter(|&&b| b == 1).count(),
            3,
            "{}: server 1 takes 3 connections, then none: {picks:?}",
            algo.name()
        );
        // Every connection idle past a 1 s timeout and expired: server 1
        // is below its lower threshold and takes connections again.
        dp.update_settings(|s| {
            for t in s.timeouts_s.iter_mut() {
                *t = 1;
            }
        })
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2100));
        dp.expire().unwrap();
        let again: Vec<usize> = (100..104).map(|i| send(&mut dp, i, Flags::SYN)).collect();
        assert!(again.contains(&1), "{}: {again:?}", algo.name());
    }
}

/// A real server of the large tables: n (1-based) in the MAC's last two
/// bytes, 198.18.(1 + n / 250).(n % 250):80.
fn big_backend(n: usize, weight: u32) -> lvs_userspace::datapath::DesiredBackend {
    let mut b = testrun::backend(1, weight);
    b.addr = Ipv4Addr::new(198, 18, 1 + (n / 250) as u8, (n % 250) as u8).into();
    b.next_hop.mac = [0x02, 0xbe, 0, 0, (n >> 8) as u8, n as u8];
    b
}

/// The data path keeps the least-connection choice in a tournament tree
/// (`lc_trees`) instead of comparing every server per connection: over
/// 1000 servers of mixed weights (some quiescent, one down), with
/// connections opened, established and reset, and the weights changed
/// midway, every pick is still IPVS's `ip_vs_wlc` scan's.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn wlc_over_1000_servers_picks_as_ip_vs_wlc() {
    const N: usize = 1000;
    let weight = |n: usize, round: usize| -> u32 {
        if n.is_multiple_of(97) {
            0
        } else {
            ((n * 7 + round * 3) % 5) as u32 + 1
        }
    };
    let desired = |round: usize| DesiredState {
        services: vec![service(
            VIP,
            80,
            Protocol::Tcp,
            Algorithm::Wlc,
            (1..=N)
                .map(|n| {
                    let mut b = big_backend(n, weight(n, round));
                    b.alive = n != 500;
                    b
                })
                .collect(),
        )],
    };
    let mut dp = open(&desired(0));
    let mut model = Model::new(&(1..=N).map(|n| weight(n, 0)).collect::<Vec<_>>());
    // IPVS's list: alive servers, config reversed.
    let list = |m: &Model| -> Vec<Dest> { m.list().into_iter().filter(|d| d.n != 500).collect() };
    for i in 0..3000u32 {
        if i == 1500 {
            dp.apply(&desired(1)).unwrap();
            for n in 1..=N {
                model.dest(n).weight = weight(n, 1);
            }
        }
        let want = ipvs_wlc_like(&list(&model), conn_overhead);
        let got = send(&mut dp, i, Flags::SYN);
        assert_eq!(Some(got), want, "connection {i}");
        model.opened(got);
        establish_and_reset(&mut dp, &mut model, i);
    }
}

/// Past MAX_LC_TREES least-connection services the rest are scanned per
/// connection: the same choices either way.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn services_past_the_tree_limit_are_scanned_with_the_same_picks() {
    let services = lvs_common::MAX_LC_TREES as u16 + 3;
    let weights = [1u32, 3, 2];
    let st = DesiredState {
        services: (0..services)
            .map(|s| {
                service(
                    VIP,
                    1000 + s,
                    Protocol::Tcp,
                    Algorithm::Wlc,
                    backends(&weights),
                )
            })
            .collect(),
    };
    let mut dp = open(&st);
    for s in 0..services {
        let mut model = Model::new(&weights);
        for i in 0..12u32 {
            let want = ipvs_wlc_like(&model.list(), conn_overhead);
            let f = tcp_frame((client(i), 40000), (VIP, 1000 + s), Flags::SYN, b"");
            let out = run(&mut dp, &f);
            let got = out.frame[5] as usize;
            assert_eq!(Some(got), want, "service {s}, connection {i}");
            model.dest(got).inactive += 1;
        }
    }
}
