//! `cargo xtask demo`: the seed deployment, rebuilt in the lab.
//!
//! One director with interface `bond0` and the XDP data path, five real
//! servers weighted 2:3:3:2:2 (the seed's .36–.40), the VIP on the
//! director; 200 client addresses send real HTTP requests; prints what each
//! real server answered next to its weight share, the data path's counters,
//! and an `ipvsadm -ln`-style table. Everything is torn down at the end.

#[path = "../tests/common/mod.rs"]
mod common;

use anyhow::Result;
use common::{program_director, seed_spec, SEED_WEIGHTS};
use lvs_common::verdict;
use lvs_testkit::{http_load, Lab};
use lvs_userspace::datapath::{AttachMode, Options};

fn main() -> Result<()> {
    let requests_per_client = 10;
    let lab = Lab::create(seed_spec(200))?;
    println!(
        "lab {}: director {} ({}), VIP {}, real servers {}",
        lab.prefix(),
        lab.director_addr(0),
        lab.director_if(),
        lab.service(),
        (0..SEED_WEIGHTS.len())
            .map(|i| format!(
                "{}={} w{}",
                lab.real_server_name(i),
                lab.real_server_addr(i),
                SEED_WEIGHTS[i]
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (dp, attached) = program_director(&lab, AttachMode::Auto, &Options::ephemeral(), None)?;
    println!(
        "XDP attached to {} (ifindex {}) in {} mode",
        attached.ifname,
        attached.ifindex,
        match attached.mode {
            Some(aya::programs::XdpMode::Driver) => "native",
            Some(aya::programs::XdpMode::Skb) => "generic",
            _ => "existing",
        }
    );

    let clients = lab.client_addrs();
    println!(
        "{} clients × {requests_per_client} HTTP requests (new TCP connection each) to http://{}/ …",
        clients.len(),
        lab.service()
    );
    let report = http_load(
        &lab,
        lab.client_ns(),
        clients,
        lab.service(),
        requests_per_client,
        100,
    )?;
    let total_weight: u32 = SEED_WEIGHTS.iter().sum();
    println!();
    println!(
        "{:<6} {:>15} {:>6} {:>9} {:>9} {:>9}",
        "server", "address", "weight", "expected", "answered", "share"
    );
    for (i, w) in SEED_WEIGHTS.iter().enumerate() {
        let name = lab.real_server_name(i);
        let expected = report.total() as f64 * *w as f64 / total_weight as f64;
        println!(
            "{:<6} {:>15} {:>6} {:>9.0} {:>9} {:>8.1}%",
            name,
            lab.real_server_addr(i).to_string(),
            w,
            expected,
            report.count(&name),
            100.0 * report.share(&name)
        );
    }
    println!(
        "requests: {} ok, {} failed, in {:.2?}",
        report.ok(),
        report.failures,
        report.elapsed
    );

    let v = dp.verdicts()?;
    println!();
    println!("data path verdicts (director):");
    for (i, n) in v.iter().enumerate() {
        if *n > 0 {
            println!("  {:<18} {n}", verdict::NAMES[i]);
        }
    }
    println!(
        "  (replies went straight from the real servers to the clients: pass_not_service stays ~0)"
    );

    println!();
    println!("IP Virtual Server (lvs-xdp) — as `ipvsadm -ln` would show it");
    println!("Prot LocalAddress:Port Scheduler Flags");
    println!("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn");
    for s in dp.services()? {
        println!("TCP  {}:{} wrr", s.vip, s.port);
        for b in &s.backends {
            println!(
                "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                format!("{}:{}", b.addr, b.port),
                "Route",
                b.weight,
                b.active,
                b.inactive
            );
        }
    }
    drop(dp);
    lab.teardown()?;
    report.ensure_no_failures()?;
    Ok(())
}
