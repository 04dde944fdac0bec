//! The least-connection scheduler with real TCP in the namespace lab: wlc
//! where some real servers already hold long-lived connections sends the
//! new ones to the others, so active connections end in the weights'
//! proportion, as IPVS's wlc does.
//!
//! Needs root and `ip`.

mod common;

use anyhow::Result;
use common::{
    keep_alive_clients, load_every_client, program_director, seed_service, seed_spec, SEED_WEIGHTS,
};
use lvs_testkit::Lab;
use lvs_userspace::{
    datapath::{AttachMode, Datapath, DesiredState, Options},
    sched::Algorithm,
};

/// The seed lab (`clients` client addresses) with the data path on its
/// director (generic XDP) serving the seed service; and that service's
/// desired state, for the test to change and apply.
fn seed_lab(clients: usize) -> Result<(Lab, Datapath, DesiredState)> {
    let lab = Lab::create(seed_spec(clients))?;
    let (dp, attached) = program_director(&lab, AttachMode::Generic, &Options::ephemeral(), None)?;
    let state = seed_service(&lab, attached.ifindex, None);
    Ok((lab, dp, state))
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lab_wlc_sends_new_connections_to_the_servers_with_fewer_per_weight() -> Result<()> {
    let (lab, mut dp, seed) = seed_lab(60)?;
    let mut state = seed.clone();
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
    state = seed.clone();
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

/// sh and mh with real TCP: every client stays on one real server across
/// all its connections (a new connection per request), and the clients
/// spread over the pool.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lab_sh_and_mh_keep_each_client_on_one_server() -> Result<()> {
    let (lab, mut dp, seed) = seed_lab(40)?;
    for algo in [
        Algorithm::Sh {
            port: false,
            fallback: false,
        },
        Algorithm::Mh {
            port: false,
            fallback: false,
        },
    ] {
        let mut state = seed.clone();
        state.services[0].algo = algo;
        dp.apply(&state)?;
        let report = load_every_client(&lab, 25, 20)?;
        println!("{}: {}", algo.name(), report.summary());
        report.ensure_no_failures()?;
        assert_eq!(report.ok(), 40 * 25);
        assert_eq!(
            report.max_servers_per_client(),
            1,
            "{}: each client stays on one server",
            algo.name()
        );
        assert!(
            report.per_body.len() >= 4,
            "{}: clients spread over the pool: {}",
            algo.name(),
            report.summary()
        );
    }
    drop(dp);
    lab.teardown()?;
    Ok(())
}

/// uthreshold with real TCP: a real server holding `uthreshold`
/// long-lived connections gets no new one while they last.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lab_a_server_at_uthreshold_gets_no_new_connections() -> Result<()> {
    let (lab, mut dp, mut state) = seed_lab(40)?;
    state.services[0].backends[1].u_threshold = 3;
    state.services[0].backends[1].l_threshold = 2;
    dp.apply(&state)?;
    let conns = keep_alive_clients(&lab, &lab.client_addrs()[..36])?;
    let rs2 = lab.real_server_name(1);
    let on_rs2 = conns.iter().filter(|(_, s)| *s == rs2).count();
    assert_eq!(on_rs2, 3, "rs2 (weight 3, uthreshold 3) took 3 of 36");
    drop(conns);
    drop(dp);
    lab.teardown()?;
    Ok(())
}
