//! `cargo xtask demo`: the seed deployment, rebuilt in the lab.
//!
//! One director (`bond0`) running `lvsd -f` on a lab copy of the seed's
//! keepalived.conf (its U+00A0 spaces and Chinese comments included), five
//! real servers weighted 2:3:3:2:2 with `persistence_timeout 120`, the VIP
//! on the director; 200 client addresses send real HTTP requests. Prints
//! lvsd's log, what each real server answered next to its weight share, and
//! the `ipvsadm -ln`-style listing. Everything is torn down at the end.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{
    lvsadm, own_bin, seed_lab_config, seed_spec, wait_forwarding, Bpffs, Director, SEED_WEIGHTS,
};
use lvs_common::verdict;
use lvs_testkit::{http_load, process::SpawnOutput, Lab};

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
    // Native XDP_TX on a veth needs an XDP program on the receiving peer.
    let (sw, peer) = lab.director_peer(0);
    let pass = own_bin("lvs-xdp-pass");
    lab.spawn_with(
        sw,
        &[pass.to_str().context("path")?, peer],
        SpawnOutput::Log,
        Some(("attached", Duration::from_secs(10))),
    )?;

    let bpffs = Bpffs::mount(&lab)?;
    let mut director = Director::new(&lab, &bpffs.0, &seed_lab_config())?;
    director.xdp_mode = "auto";
    director.start()?;
    wait_forwarding(&lab)?;
    println!("\n--- lvsd -f keepalived.conf (lab copy of the seed) ---");
    print!("{}", director.log());

    let clients = lab.client_addrs();
    println!(
        "\n--- {} clients × {requests_per_client} HTTP requests (a new TCP connection each) to http://{}/ ---",
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
    println!(
        "{:<6} {:>15} {:>6} {:>13} {:>8} {:>9} {:>7}",
        "server", "address", "weight", "weight share", "clients", "answered", "share"
    );
    for (i, w) in SEED_WEIGHTS.iter().enumerate() {
        let name = lab.real_server_name(i);
        let pinned = report
            .per_client
            .values()
            .filter(|m| m.contains_key(&name))
            .count();
        println!(
            "{:<6} {:>15} {:>6} {:>12.1}% {:>8} {:>9} {:>6.1}%",
            name,
            lab.real_server_addr(i).to_string(),
            w,
            100.0 * *w as f64 / total_weight as f64,
            pinned,
            report.count(&name),
            100.0 * report.share(&name)
        );
    }
    println!(
        "requests: {} ok, {} failed, in {:.2?}; persistence 120 s: every client stayed on one server (max servers per client: {})",
        report.ok(),
        report.failures,
        report.elapsed,
        report.max_servers_per_client()
    );

    let inspector = director.inspect()?;
    let v = inspector.verdicts()?;
    println!("\n--- data path verdicts (director) ---");
    for (i, n) in v.iter().enumerate() {
        if *n > 0 {
            println!("  {:<18} {n}", verdict::NAMES[i]);
        }
    }
    println!("  (replies go straight from the real servers to the clients: no reply traffic is counted here)");

    println!("\n--- lvsadm -ln ---");
    match lvsadm(&lab, &bpffs.0, &["-L", "-n"]) {
        Ok(listing) => print!("{listing}"),
        Err(_) => {
            // Before lvsadm exists: the same numbers from the maps.
            for s in inspector.services()? {
                println!(
                    "TCP  {}:{} wrr persistent {}",
                    s.vip, s.port, s.svc.persist_timeout_s
                );
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
        }
    }

    director.signal(libc::SIGTERM)?;
    director.wait_log("Stopped lvsd", Duration::from_secs(10))?;
    drop(inspector);
    drop(bpffs);
    lab.teardown()?;
    report.ensure_no_failures()?;
    Ok(())
}
