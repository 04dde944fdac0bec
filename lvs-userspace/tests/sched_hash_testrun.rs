//! The hashing schedulers (`sh`, `mh`, `dh`) under BPF_PROG_TEST_RUN, each
//! against a reference implementation of its kernel module written here
//! from `ip_vs_sh.c`, `ip_vs_mh.c` and `ip_vs_dh.c` (independently of the
//! agent's table builder in `sched.rs`): the same server for the same
//! client, through servers going down and coming back, quiescing, the
//! `-port` and `-fallback` flags, and two directors that share nothing.
//!
//! IPVS's destination list is the order keepalived added the real servers
//! with each new one at the head: the config reversed. The references take
//! the list in that order.
//!
//! Needs root (loading BPF). Each test loads its own unpinned datapath.

use std::net::Ipv4Addr;

use lvs_common::verdict;
use lvs_userspace::{
    datapath::{
        testrun::{tcp_frame, Flags},
        Datapath,
    },
    sched::Algorithm,
};

mod testrun_util;
use testrun_util::*;

/// The backend (1-based config index) a SYN from `client:sport` goes to,
/// or None if the data path passed it.
fn pick(dp: &mut Datapath, client: Ipv4Addr, sport: u16) -> Option<usize> {
    let f = tcp_frame((client, sport), (VIP, 80), Flags::SYN, b"");
    let out = run(dp, &f);
    match out.action {
        XDP_TX => Some(out.frame[5] as usize),
        XDP_PASS => None,
        a => panic!("unexpected action {a}"),
    }
}

/// `sh` and `mh` without flags: the address alone is hashed, no fallback.
const SH: Algorithm = Algorithm::Sh {
    port: false,
    fallback: false,
};
const MH: Algorithm = Algorithm::Mh {
    port: false,
    fallback: false,
};

fn client(i: u32) -> Ipv4Addr {
    // 198.18.0.0/15 and past the servers' /24: 198.18.4.0 .. 198.19.255.255.
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 4, 0)) + i)
}

/// A destination of a reference: config index (1-based), address, port,
/// weight, last_weight.
#[derive(Clone, Copy, Debug)]
struct Dest {
    n: usize,
    addr: u32,
    port: u16,
    weight: u32,
    last_weight: u32,
}

/// IPVS's list for the alive servers of `weights` (0 = quiescent, None =
/// removed): config reversed.
fn ipvs_list(weights: &[Option<u32>], last: &[u32]) -> Vec<Dest> {
    let mut list = Vec::new();
    for (i, w) in weights.iter().enumerate() {
        if let Some(w) = *w {
            // list_add_rcu: at the head.
            list.insert(
                0,
                Dest {
                    n: i + 1,
                    addr: u32::from(Ipv4Addr::new(198, 18, 0, 11 + i as u8)),
                    port: 80,
                    weight: w,
                    last_weight: last[i],
                },
            );
        }
    }
    list
}

// ---------------------------------------------------------------- ip_vs_sh

struct RefSh {
    buckets: Vec<Option<Dest>>,
    port: bool,
    fallback: bool,
}

impl RefSh {
    /// ip_vs_sh_reassign.
    fn new(list: &[Dest], port: bool, fallback: bool) -> Self {
        let mut buckets = vec![None; 256];
        let mut p = 0usize;
        let mut d_count = 0i64;
        for b in buckets.iter_mut() {
            if list.is_empty() {
                continue;
            }
            let dest = list[p % list.len()];
            *b = Some(dest);
            d_count += 1;
            if d_count >= dest.weight as i64 {
                p += 1;
                d_count = 0;
            }
        }
        RefSh {
            buckets,
            port,
            fallback,
        }
    }

    fn hashkey(addr: u32, port: u16, offset: u32) -> usize {
        // hash_32(val, 8) = (val * GOLDEN_RATIO_32) >> 24.
        let v = (port as u32).wrapping_add(addr);
        ((offset.wrapping_add(v.wrapping_mul(0x61C8_8647) >> 24)) & 255) as usize
    }

    fn unavailable(d: &Dest) -> bool {
        d.weight == 0
    }

    fn schedule(&self, addr: Ipv4Addr, sport: u16) -> Option<usize> {
        let addr = u32::from(addr);
        let port = if self.port { sport } else { 0 };
        let ihash = Self::hashkey(addr, port, 0);
        let d = self.buckets[ihash]?;
        if !Self::unavailable(&d) {
            return Some(d.n);
        }
        if !self.fallback {
            return None;
        }
        for offset in 0..256u32 {
            let roffset = (offset + ihash as u32) % 256;
            let d = self.buckets[Self::hashkey(addr, port, roffset)]?;
            if !Self::unavailable(&d) {
                return Some(d.n);
            }
        }
        None
    }
}

// ---------------------------------------------------------------- ip_vs_mh

/// SipHash-1-3 of a little-endian message with key (k0, k1): the kernel's
/// hsiphash on 64-bit.
fn siphash13(k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut v0 = 0x736f6d6570736575u64 ^ k0;
    let mut v1 = 0x646f72616e646f6du64 ^ k1;
    let mut v2 = 0x6c7967656e657261u64 ^ k0;
    let mut v3 = 0x7465646279746573u64 ^ k1;
    macro_rules! round {
        () => {
            v0 = v0.wrapping_add(v1);
            v1 = v1.rotate_left(13);
            v1 ^= v0;
            v0 = v0.rotate_left(32);
            v2 = v2.wrapping_add(v3);
            v3 = v3.rotate_left(16);
            v3 ^= v2;
            v0 = v0.wrapping_add(v3);
            v3 = v3.rotate_left(21);
            v3 ^= v0;
            v2 = v2.wrapping_add(v1);
            v1 = v1.rotate_left(17);
            v1 ^= v2;
            v2 = v2.rotate_left(32);
        };
    }
    let chunks = msg.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        let m = u64::from_le_bytes(c.try_into().unwrap());
        v3 ^= m;
        round!();
        v0 ^= m;
    }
    let mut b = (msg.len() as u64) << 56;
    for (i, &byte) in rest.iter().enumerate() {
        b |= (byte as u64) << (8 * i);
    }
    v3 ^= b;
    round!();
    v0 ^= b;
    v2 ^= 0xff;
    round!();
    round!();
    round!();
    (v0 ^ v1) ^ (v2 ^ v3)
}

/// The kernel's own test vectors (lib/tests/siphash_kunit.c, 64-bit
/// hsiphash): key 00..0f, input bytes 0..len. Checks this reference and
/// the data path's `hsiphash_u32` (len 4).
#[test]
fn hsiphash_matches_the_kernel_test_vectors() {
    let (k0, k1) = (0x0706050403020100u64, 0x0f0e0d0c0b0a0908u64);
    let vectors: [u32; 9] = [
        0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7,
        0x9bb11140, 0x8d299a8e,
    ];
    let input: Vec<u8> = (0..9).collect();
    for (len, &want) in vectors.iter().enumerate() {
        assert_eq!(siphash13(k0, k1, &input[..len]) as u32, want, "len {len}");
    }
    let x = u32::from_le_bytes([0, 1, 2, 3]);
    assert_eq!(lvs_common::hash::hsiphash_u32(x, k0, k1), 0x88d38328);
}

const MH_SIZE: u32 = 4093; // primes[CONFIG_IP_VS_MH_TAB_INDEX(12) - 8]

fn mh_hashkey(addr: u32, port: u16, key: u64, offset: u32) -> u32 {
    let v = offset.wrapping_add(port as u32).wrapping_add(addr);
    siphash13(key, key, &v.to_le_bytes()) as u32
}

struct RefMh {
    lookup: Vec<Option<Dest>>,
    port: bool,
    fallback: bool,
}

impl RefMh {
    const K1: u64 = 2654435761;
    const K2: u64 = 2654446892;

    /// ip_vs_mh_gcd_weight, ip_vs_mh_shift_weight, permutate, populate.
    fn new(list: &[Dest], port: bool, fallback: bool) -> Self {
        let mut lookup = vec![None; MH_SIZE as usize];
        let mut g = 0u32;
        for d in list {
            if d.last_weight > 0 {
                g = if g > 0 {
                    num_gcd(d.last_weight, g)
                } else {
                    d.last_weight
                };
            }
        }
        if g >= 1 {
            let mw = list.iter().map(|d| d.last_weight).max().unwrap() / g;
            let fls = 32 - mw.leading_zeros() as i32;
            let rshift = (fls - 6).max(0); // IP_VS_MH_TAB_BITS = 12 / 2
            let mut offset = Vec::new();
            let mut skip = Vec::new();
            let mut perm = Vec::new();
            let mut turns = Vec::new();
            for d in list {
                let o = mh_hashkey(d.addr, d.port, Self::K1, 0) % MH_SIZE;
                offset.push(o);
                skip.push(mh_hashkey(d.addr, d.port, Self::K2, 0) % (MH_SIZE - 1) + 1);
                perm.push(o);
                let t = (d.last_weight / g) >> rshift;
                turns.push(if t != 0 {
                    t
                } else {
                    (d.last_weight != 0) as u32
                });
            }
            let mut taken = vec![false; MH_SIZE as usize];
            let mut n = 0;
            let mut dt_count = 0;
            'out: while n < MH_SIZE {
                let mut i = 0;
                while i < list.len() {
                    if turns[i] < 1 {
                        i += 1;
                        continue;
                    }
                    let mut c = perm[i];
                    while taken[c as usize] {
                        perm[i] += skip[i];
                        if perm[i] >= MH_SIZE {
                            perm[i] -= MH_SIZE;
                        }
                        c = perm[i];
                    }
                    taken[c as usize] = true;
                    lookup[c as usize] = Some(list[i]);
                    n += 1;
                    if n == MH_SIZE {
                        break 'out;
                    }
                    dt_count += 1;
                    if dt_count >= turns[i] {
                        dt_count = 0;
                        i += 1;
                    }
                }
            }
        }
        RefMh {
            lookup,
            port,
            fallback,
        }
    }

    fn schedule(&self, addr: Ipv4Addr, sport: u16) -> Option<usize> {
        let addr = u32::from(addr);
        let port = if self.port { sport } else { 0 };
        let ihash = mh_hashkey(addr, port, Self::K1, 0) % MH_SIZE;
        let d = self.lookup[ihash as usize]?;
        if d.weight > 0 {
            return Some(d.n);
        }
        if !self.fallback {
            return None;
        }
        for offset in 0..MH_SIZE {
            let roffset = (offset + ihash) % MH_SIZE;
            let h = mh_hashkey(addr, port, Self::K1, roffset) % MH_SIZE;
            let d = self.lookup[h as usize]?;
            if d.weight > 0 {
                return Some(d.n);
            }
        }
        None
    }
}

fn num_gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        num_gcd(b, a % b)
    }
}

// ---------------------------------------------------------------- tests

/// Every client of `clients` goes where the reference says.
fn assert_matches(
    dp: &mut Datapath,
    what: &str,
    clients: impl Iterator<Item = (Ipv4Addr, u16)>,
    reference: impl Fn(Ipv4Addr, u16) -> Option<usize>,
) -> Vec<Option<usize>> {
    let mut picks = Vec::new();
    for (c, sport) in clients {
        let got = pick(dp, c, sport);
        let want = reference(c, sport);
        assert_eq!(got, want, "{what}: client {c}:{sport}");
        picks.push(got);
    }
    picks
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn sh_picks_as_ip_vs_sh_through_down_back_and_quiesce() {
    let weights = [2, 3, 1, 4, 2];
    let algo = SH;
    let mut st = state(algo, &weights);
    let mut dp = open(&st);
    // Without sh-port the source port is not hashed: each phase uses new
    // ports so no half-open entry of an earlier phase answers for it.
    let clients = |phase: u16| (0..2000).map(move |i| (client(i * 7), 40000 + phase));

    let all: Vec<Option<u32>> = weights.iter().map(|&w| Some(w)).collect();
    let r = RefSh::new(&ipvs_list(&all, &weights), false, false);
    let before = assert_matches(&mut dp, "sh", clients(0), |c, p| r.schedule(c, p));
    // Weights decide the share of buckets: every server gets clients.
    for n in 1..=5 {
        assert!(before.contains(&Some(n)), "server {n} has clients");
    }

    // Server 2 down: keepalived deletes it, the table is reassigned.
    st.services[0].backends[1].alive = false;
    dp.apply(&st).unwrap();
    let mut down = all.clone();
    down[1] = None;
    let r = RefSh::new(&ipvs_list(&down, &weights), false, false);
    assert_matches(&mut dp, "sh, 2 down", clients(1), |c, p| r.schedule(c, p));

    // Back: the table is the one a fresh start builds (see sched.rs).
    st.services[0].backends[1].alive = true;
    dp.apply(&st).unwrap();
    let again = assert_matches(&mut dp, "sh, 2 back", clients(2), |c, p| {
        RefSh::new(&ipvs_list(&all, &weights), false, false).schedule(c, p)
    });
    assert_eq!(again, before);

    // Weight 0: its buckets stay but pick nobody (no sh-fallback).
    st.services[0].backends[3].weight = 0;
    dp.apply(&st).unwrap();
    let mut quiet = all.clone();
    quiet[3] = Some(0);
    let r = RefSh::new(&ipvs_list(&quiet, &weights), false, false);
    let picks = assert_matches(&mut dp, "sh, 4 quiescent", clients(3), |c, p| {
        r.schedule(c, p)
    });
    assert!(picks.contains(&None), "its clients get no server");
    assert!(!picks.contains(&Some(4)));
    let passed_before = dp.verdicts().unwrap()[verdict::PASS_NO_BACKEND as usize];
    assert!(passed_before > 0);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn sh_port_and_fallback_as_ip_vs_sh() {
    let weights = [1, 1, 1, 1];
    let algo = Algorithm::Sh {
        port: true,
        fallback: true,
    };
    let mut st = state(algo, &weights);
    let mut dp = open(&st);
    let all: Vec<Option<u32>> = weights.iter().map(|&w| Some(w)).collect();
    let r = RefSh::new(&ipvs_list(&all, &weights), true, true);
    // One client, many source ports: the port spreads it.
    let one = Ipv4Addr::new(198, 18, 9, 9);
    let picks = assert_matches(
        &mut dp,
        "sh-port",
        (0..400).map(|i| (one, 30000 + i)),
        |c, p| r.schedule(c, p),
    );
    for n in 1..=4 {
        assert!(picks.contains(&Some(n)), "sh-port spreads one client");
    }
    // Quiesce two: sh-fallback finds another for every client.
    st.services[0].backends[0].weight = 0;
    st.services[0].backends[2].weight = 0;
    dp.apply(&st).unwrap();
    let mut quiet = all.clone();
    quiet[0] = Some(0);
    quiet[2] = Some(0);
    let r = RefSh::new(&ipvs_list(&quiet, &weights), true, true);
    let picks = assert_matches(
        &mut dp,
        "sh-fallback",
        (0..1000).map(|i| (client(i), 30000 + (i % 7) as u16)),
        |c, p| r.schedule(c, p),
    );
    assert!(picks.iter().all(|p| matches!(p, Some(2) | Some(4))));
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn mh_picks_as_ip_vs_mh_for_10000_clients_with_weights() {
    let weights = [3, 1, 2, 5, 1, 1, 4];
    let algo = MH;
    let st = state(algo, &weights);
    let mut dp = open(&st);
    let all: Vec<Option<u32>> = weights.iter().map(|&w| Some(w)).collect();
    let r = RefMh::new(&ipvs_list(&all, &weights), false, false);
    let picks = assert_matches(
        &mut dp,
        "mh",
        (0..10_000).map(|i| (client(i), 1)),
        |c, p| r.schedule(c, p),
    );
    // Shares follow the weights (3:1:2:5:1:1:4 of 17) within a few percent.
    for (i, &w) in weights.iter().enumerate() {
        let got = picks.iter().filter(|&&p| p == Some(i + 1)).count() as f64 / 10_000.0;
        let want = w as f64 / 17.0;
        assert!(
            (got - want).abs() < 0.03,
            "server {}: {got} vs {want}",
            i + 1
        );
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn mh_removing_one_of_ten_moves_only_its_clients() {
    let weights = [1; 10];
    let algo = MH;
    let mut st = state(algo, &weights);
    let mut dp = open(&st);
    let clients = |phase: u16| (0..10_000).map(move |i| (client(i * 3), 1 + phase));
    let before: Vec<Option<usize>> = clients(0).map(|(c, p)| pick(&mut dp, c, p)).collect();
    st.services[0].backends[6].alive = false;
    dp.apply(&st).unwrap();
    let mut down = vec![Some(1); 10];
    down[6] = None;
    let r = RefMh::new(&ipvs_list(&down, &weights), false, false);
    let after = assert_matches(&mut dp, "mh, 7 down", clients(1), |c, p| r.schedule(c, p));
    let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    let moved_others = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a != b && **a != Some(7))
        .count();
    let on_7 = before.iter().filter(|&&p| p == Some(7)).count();
    eprintln!(
        "mh 1 of 10 removed: {moved} of 10000 clients moved ({on_7} were on it, {moved_others} others)"
    );
    assert!(moved <= 1_100, "at most 1/10 + 1 %: {moved}");
    assert!(moved_others <= 100, "others barely move: {moved_others}");
    assert!(after.iter().all(|p| p.is_some() && *p != Some(7)));
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn mh_two_directors_agree_and_fallback_skips_a_quiescent_server() {
    let weights = [2, 2, 1, 1, 3];
    let algo = Algorithm::Mh {
        port: true,
        fallback: true,
    };
    let st = state(algo, &weights);
    let mut a = open(&st);
    // The second director has another service first, so its backend ids
    // differ: agreement must come from the addresses alone.
    let mut other = state(Algorithm::Wrr, &[1, 1, 1]);
    other.services[0].port = 8080;
    other.services.extend(st.services.clone());
    let mut b = open(&other);
    let clients: Vec<(Ipv4Addr, u16)> = (0..10_000)
        .map(|i| (client(i), 20000 + (i % 1000) as u16))
        .collect();
    let mut agree = 0;
    for &(c, p) in &clients {
        agree += (pick(&mut a, c, p) == pick(&mut b, c, p)) as u32;
    }
    assert_eq!(agree, 10_000, "two directors pick the same server");

    // Quiesce server 5 on both: mh-fallback sends its clients on, as
    // ip_vs_mh_get_fallback does; the others stay (last_weight keeps the
    // table as it was).
    let mut q = st.clone();
    q.services[0].backends[4].weight = 0;
    a.apply(&q).unwrap();
    let last = weights;
    let mut quiet: Vec<Option<u32>> = weights.iter().map(|&w| Some(w)).collect();
    quiet[4] = Some(0);
    let r = RefMh::new(&ipvs_list(&quiet, &last), true, true);
    // New clients: a half-open SYN of before would stay where it went.
    let fresh = (0..5_000).map(|i| (client(20_000 + i), 20000 + (i % 1000) as u16));
    let picks = assert_matches(&mut a, "mh-fallback", fresh, |c, p| r.schedule(c, p));
    assert!(picks.iter().all(|p| p.is_some() && *p != Some(5)));
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn mh_is_sloppy_a_mid_stream_segment_goes_where_the_hash_says() {
    let algo = MH;
    let mut dp = open(&state(algo, &[1, 1, 1, 1]));
    let all = vec![Some(1); 4];
    let r = RefMh::new(&ipvs_list(&all, &[1, 1, 1, 1]), false, false);
    for i in 0..200 {
        let c = client(i);
        // An ACK of a connection another director set up.
        let f = tcp_frame((c, 5555), (VIP, 80), Flags::ACK, b"data");
        let out = run(&mut dp, &f);
        assert_eq!(out.action, XDP_TX, "scheduled, not passed");
        assert_eq!(Some(out.frame[5] as usize), r.schedule(c, 5555));
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn dh_sends_a_vip_to_the_server_ip_vs_dh_picks() {
    let weights = [1, 1, 1];
    let mut st = state(Algorithm::Dh, &weights);
    let mut dp = open(&st);
    // ip_vs_dh_assign: bucket i → list[i % n]; bucket of the VIP.
    let list = ipvs_list(&[Some(1), Some(1), Some(1)], &weights);
    let bucket = (u32::from(VIP).wrapping_mul(2654435761) & 255) as usize;
    let want = list[bucket % list.len()].n;
    for i in 0..300 {
        assert_eq!(pick(&mut dp, client(i), 1000 + i as u16), Some(want));
    }
    // That server quiescent: dh has no fallback, the VIP gets nobody.
    st.services[0].backends[want - 1].weight = 0;
    dp.apply(&st).unwrap();
    assert_eq!(pick(&mut dp, client(1), 999), None);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn sh_keeps_each_client_on_one_server_across_100_connections_on_two_directors() {
    let algo = SH;
    let st = state(algo, &[1, 2, 1, 3]);
    let mut a = open(&st);
    let mut b = open(&st);
    for i in 0..50 {
        let c = client(i * 13);
        let first = pick(&mut a, c, 10000).expect("scheduled");
        for sport in 10001..10100 {
            assert_eq!(pick(&mut a, c, sport), Some(first), "{c}:{sport} on a");
            assert_eq!(pick(&mut b, c, sport), Some(first), "{c}:{sport} on b");
        }
    }
}
