//! `cargo xtask demo`: the seed deployment, rebuilt in the lab.
//!
//! One director (`bond0`) running `lvsd -f` on a lab copy of the seed's
//! keepalived.conf (its U+00A0 spaces and Chinese comments included), five
//! real servers weighted 2:3:3:2:2 with `persistence_timeout 120`, the VIP
//! on the director; 200 client addresses send real HTTP requests. The same
//! service also runs on an IPv6 VIP (2001:2::100, real servers
//! 2001:2::11–15) from the same config, and the clients load it over IPv6
//! too. Prints lvsd's log, what each real server answered next to its
//! weight share (per family), and the `ipvsadm -ln`-style listing.
//! Everything is torn down at the end.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{
    load_every_client_of, lvsadm, own_bin, seed_lab_config, seed_spec, wait_forwarding,
    wait_forwarding6, Bpffs, Director, Family, SEED_WEIGHTS,
};
use lvs_common::verdict;
use lvs_testkit::{process::SpawnOutput, Lab, LabSpec, LoadReport, DEFAULT_VIP6};

/// The seed's virtual server once more, on the lab's IPv6 VIP.
fn ipv6_virtual_server(lab: &Lab) -> String {
    let mut s = format!(
        "\nvirtual_server {} {} {{\n    delay_loop 6\n    lb_algo wrr\n    lb_kind DR\n    persistence_timeout 120\n    protocol TCP\n",
        lab.vip6(),
        lab.spec().service_port
    );
    for (i, w) in SEED_WEIGHTS.iter().enumerate() {
        s += &format!(
            "    real_server {} {} {{\n        weight {w}\n        TCP_CHECK {{\n            connect_timeout 3\n        }}\n    }}\n",
            lab.real_server_addr6(i),
            lab.spec().service_port
        );
    }
    s + "}\n"
}

/// `requests_per_client` HTTP requests (a new TCP connection each) from
/// every client address of `family` to its VIP; prints what each real
/// server answered next to its weight share.
fn load_and_show(lab: &Lab, family: Family, requests_per_client: usize) -> Result<LoadReport> {
    let clients = family.client_addrs(lab);
    println!(
        "\n--- {family:?}: {} clients × {requests_per_client} HTTP requests (a new TCP connection each) to http://{}/ ---",
        clients.len(),
        family.service(lab)
    );
    let report = load_every_client_of(lab, family, requests_per_client, 100)?;
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
            family.real_server_addr(lab, i).to_string(),
            w,
            100.0 * *w as f64 / total_weight as f64,
            pinned,
            report.count(&name),
            100.0 * report.share(&name)
        );
    }
    println!(
        "requests: {} ok, {} failed, in {:.2?}; persistence 120 s: at most {} server(s) per client (1: every client stayed on one)",
        report.ok(),
        report.failures,
        report.elapsed,
        report.max_servers_per_client()
    );
    Ok(report)
}

fn main() -> Result<()> {
    let requests_per_client = 10;
    let lab = Lab::create(LabSpec {
        vips6: vec![DEFAULT_VIP6],
        ..seed_spec(200)
    })?;
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
    let config = seed_lab_config() + &ipv6_virtual_server(&lab);
    let mut director = Director::new(&lab, &bpffs.0, &config)?;
    director.xdp_mode = "auto";
    director.start()?;
    wait_forwarding(&lab)?;
    wait_forwarding6(&lab, Duration::from_secs(30))?;
    println!("\n--- lvsd -f keepalived.conf (lab copy of the seed) ---");
    print!("{}", director.log());

    let report = load_and_show(&lab, Family::V4, requests_per_client)?;
    let report6 = load_and_show(&lab, Family::V6, requests_per_client)?;

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

    director.stop()?;
    drop(inspector);
    drop(bpffs);
    lab.teardown()?;
    report.ensure_no_failures()?;
    report6.ensure_no_failures()?;
    Ok(())
}
