//! The least-connection scheduler with real TCP in the namespace lab: wlc
//! where some real servers already hold long-lived connections sends the
//! new ones to the others, so active connections end in the weights'
//! proportion, as IPVS's wlc does.
//!
//! Needs root and `ip`.

mod common;

use anyhow::Result;
use common::{keep_alive_clients, program_director, seed_service, seed_spec, SEED_WEIGHTS};
use lvs_testkit::Lab;
use lvs_userspace::{
    datapath::{self, AttachMode, Options},
    sched::Algorithm,
};

#[test]
fn lab_wlc_sends_new_connections_to_the_servers_with_fewer_per_weight() -> Result<()> {
    let lab = Lab::create(seed_spec(60))?;
    let (mut dp, _) = program_director(&lab, AttachMode::Generic, &Options::ephemeral(), None)?;
    let ifname = lab.director_if().to_owned();
    let ifindex = lab.run_in_netns(lab.director_ns(0), || datapath::ifindex(&ifname))??;
    let mut state = seed_service(&lab, ifindex, None);
    state.services[0].algo = Algorithm::Wlc;
    // First only rs1 and rs2 take connections (the others quiescent).
    for b in &mut state.services[0].backends[2..] {
        b.weight = 0;
    }
    dp.apply(&state)?;
    let addrs = lab.client_addrs().to_vec();
    let mut old = keep_alive_clients(&lab, &addrs[..20])?;
    let count = |conns: &[(lvs_testkit::http::KeepAliveClient, String)], i: usize| {
        let name = lab.real_server_name(i);
        conns.iter().filter(|(_, s)| *s == name).count()
    };
    // wlc 2:3 over 20 connections: 8 and 12.
    assert_eq!((count(&old, 0), count(&old, 1)), (8, 12));

    // All five at the seed's weights 2:3:3:2:2: 40 more long-lived
    // connections go where active / weight is least, so the 60 end at
    // 5 per unit of weight: 10 15 15 10 10, the new ones 2 3 15 10 10.
    state = seed_service(&lab, ifindex, None);
    state.services[0].algo = Algorithm::Wlc;
    dp.apply(&state)?;
    let new = keep_alive_clients(&lab, &addrs[20..60])?;
    let got: Vec<usize> = (0..5).map(|i| count(&new, i)).collect();
    let total: Vec<usize> = (0..5).map(|i| count(&new, i) + count(&old, i)).collect();
    println!("new connections per server: {got:?}, all: {total:?}");
    for (i, &w) in SEED_WEIGHTS.iter().enumerate() {
        let want = 5 * w as usize;
        assert!(
            total[i].abs_diff(want) <= 1,
            "rs{}: {} active, {want} by weight (new ones {got:?})",
            i + 1,
            total[i]
        );
    }
    // Every connection still answers from its server.
    common::ensure_same_servers(&lab, &mut old, "old")?;
    drop(dp);
    lab.teardown()?;
    Ok(())
}
