//! IPv6 end to end in the network-namespace lab: the seed's shape (5 real
//! servers 2:3:3:2:2, 200 client addresses) on an IPv6 VIP in 2001:2::/48
//! and the same service on an IPv4 VIP, served by one data path; real HTTP
//! clients and servers, replies straight from the real servers. Native and
//! generic XDP.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{
    load_every_client_of, program_director_with, seed_spec, seed_virtual_server, Family,
    SEED_WEIGHTS,
};
use lvs_common::verdict;
use lvs_testkit::{Lab, LabSpec, LoadReport, DEFAULT_VIP6};
use lvs_userspace::datapath::{AttachMode, Datapath, DesiredState, Options};

const CLIENTS: usize = 200;

fn spec() -> LabSpec {
    LabSpec {
        vips6: vec![DEFAULT_VIP6],
        ..seed_spec(CLIENTS)
    }
}

/// Director 0 with the data path attached, serving the seed service on
/// the IPv4 VIP and on the IPv6 VIP.
fn program_director(lab: &Lab, mode: AttachMode) -> Result<Datapath> {
    let (dp, attached) =
        program_director_with(lab, mode, &Options::ephemeral(), |ifindex| DesiredState {
            services: [Family::V4, Family::V6]
                .map(|family| seed_virtual_server(lab, family, ifindex, None))
                .into(),
        })?;
    if mode == AttachMode::Native {
        assert_eq!(
            attached.mode,
            Some(aya::programs::XdpMode::Driver),
            "native on veth"
        );
    }
    Ok(dp)
}

/// `per_client` HTTP requests (a new connection each) from every client
/// address of `family` to its VIP, all answered, split by the weights.
fn load_split_by_weight(
    lab: &Lab,
    family: Family,
    per_client: usize,
    label: &str,
) -> Result<LoadReport> {
    let w = weights(lab);
    let w: Vec<(&str, u32)> = w.iter().map(|(n, w)| (n.as_str(), *w)).collect();
    let r = load_every_client_of(lab, family, per_client, 40)?;
    println!("{label} {}: {}", family.service(lab).ip(), r.summary());
    r.ensure_no_failures()?;
    r.ensure_weights(&w, 0.02)?;
    Ok(r)
}

fn weights(lab: &Lab) -> Vec<(String, u32)> {
    (0..SEED_WEIGHTS.len())
        .map(|i| (lab.real_server_name(i), SEED_WEIGHTS[i]))
        .collect()
}

fn both_families_split_by_weight(mode: AttachMode) -> Result<()> {
    let lab = Lab::create(spec())?;
    let dp = program_director(&lab, mode)?;

    // 10 requests from each of 200 IPv6 client addresses, a new
    // connection each.
    let r6 = load_split_by_weight(&lab, Family::V6, 10, &format!("{mode:?} IPv6"))?;
    assert_eq!(r6.ok(), (CLIENTS * 10) as u64);
    let after6 = dp.verdicts()?;

    // The same service on the IPv4 VIP, from the same data path.
    let r4 = load_split_by_weight(&lab, Family::V4, 10, &format!("{mode:?} IPv4"))?;
    assert_eq!(r4.ok(), (CLIENTS * 10) as u64);

    // Replies went straight from the real servers to the clients: the
    // director forwarded client → VIP traffic and passed only a little
    // neighbour discovery (replies through it would be thousands).
    let forwarded = after6[verdict::TX as usize];
    assert!(
        forwarded >= (CLIENTS * 10 * 5) as u64,
        "every IPv6 request's packets went through XDP ({forwarded})"
    );
    assert!(
        after6[verdict::PASS_NOT_SERVICE as usize] <= 100,
        "no reply traffic reached the director: {after6:?}"
    );
    assert_eq!(after6[verdict::PASS_MALFORMED as usize], 0);

    // The per-backend counters of each family agree with its clients.
    let services = dp.services()?;
    for s in &services {
        let report = if s.vip.is_ipv6() { &r6 } else { &r4 };
        for (i, b) in s.backends.iter().enumerate() {
            assert_eq!(
                b.stats.conns,
                report.count(&lab.real_server_name(i)),
                "new conns of rs{} on {}",
                i + 1,
                s.vip
            );
        }
    }
    assert_eq!(services.len(), 2);
    assert!(
        !dp.conns6()?.is_empty(),
        "IPv6 connections in conns6 ({} IPv4 in conns)",
        dp.conns()?.len()
    );
    drop(dp);
    lab.teardown()?;
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lab_ipv6_native_xdp_splits_by_weight_beside_ipv4_and_replies_bypass_the_director() -> Result<()>
{
    both_families_split_by_weight(AttachMode::Native)
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lab_ipv6_generic_xdp_splits_by_weight_beside_ipv4_and_replies_bypass_the_director() -> Result<()>
{
    both_families_split_by_weight(AttachMode::Generic)
}

/// One keepalived.conf with the seed's service on 198.18.0.100 and on
/// 2001:2::100, run by `lvsd`: the IPv6 real servers' MACs come from the
/// director's IPv6 neighbour table, both families split by weight, and the
/// listing shows both.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lvsd_serves_one_config_with_an_ipv4_and_an_ipv6_vip() -> Result<()> {
    lvsd_both_families(spec(), 10)
}

/// The same without static neighbour entries: lvsd solicits the IPv6 real
/// servers itself (neighbour solicitation) and adds each once resolved.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lvsd_resolves_ipv6_real_servers_by_neighbour_discovery() -> Result<()> {
    lvsd_both_families(
        LabSpec {
            static_neighbors: false,
            client_addrs: 20,
            second_client_net: false,
            ..spec()
        },
        50,
    )
}

/// With `--keep-datapath` a stopped lvsd leaves IPv6 forwarding too (the
/// pinned `ipv6_path` keeps the IPv6 program in its slot), and `lvsadm`
/// lists the IPv6 service from the pins.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_keeps_forwarding_while_lvsd_is_stopped_with_keep_datapath() -> Result<()> {
    lvsd_both_families_then(spec(), 2, true)
}

fn lvsd_both_families(spec: LabSpec, requests_per_client: usize) -> Result<()> {
    lvsd_both_families_then(spec, requests_per_client, false)
}

fn lvsd_both_families_then(
    spec: LabSpec,
    requests_per_client: usize,
    stop_keeping_datapath: bool,
) -> Result<()> {
    let lab = Lab::create(spec)?;
    let bpffs = common::Bpffs::mount(&lab)?;
    let mut conf = String::new();
    let reals4: Vec<String> = (0..5)
        .map(|i| lab.real_server_addr(i).to_string())
        .collect();
    let reals6: Vec<String> = (0..5)
        .map(|i| lab.real_server_addr6(i).to_string())
        .collect();
    for (vip, reals) in [("198.18.0.100", &reals4), ("2001:2::100", &reals6)] {
        conf += &format!(
            "virtual_server {vip} 80 {{\n  delay_loop 1\n  lb_algo wrr\n  lb_kind DR\n  protocol TCP\n"
        );
        for (i, w) in SEED_WEIGHTS.iter().enumerate() {
            conf += &format!("  real_server {} 80 {{\n    weight {w}\n  }}\n", reals[i]);
        }
        conf += "}\n";
    }
    let mut d = common::Director::new(&lab, &bpffs.0, &conf)?;
    if stop_keeping_datapath {
        d.extra_args = vec!["--keep-datapath".into()];
    }
    d.start()?;
    common::wait_forwarding(&lab)?;
    common::wait_forwarding6(&lab, Duration::from_secs(20))
        .with_context(|| format!("lvsd log:\n{}", d.log()))?;

    load_split_by_weight(&lab, Family::V6, requests_per_client, "lvsd IPv6")?;
    load_split_by_weight(&lab, Family::V4, requests_per_client, "lvsd IPv4")?;

    if stop_keeping_datapath {
        d.stop()?;
        let out = common::ensure_forwarding_without_lvsd(&lab, &bpffs.0, Family::V6, 20)?;
        assert!(out.contains("TCP  [2001:2::100]:80 wrr\n"), "{out}");
        assert!(out.contains("  -> [2001:2::11]:80"), "{out}");
    }
    let services = d.inspect()?.services()?;
    let vips: Vec<String> = services.iter().map(|s| s.vip.to_string()).collect();
    assert_eq!(
        vips,
        ["198.18.0.100", "2001:2::100"],
        "both families applied"
    );
    let six = &services[1];
    for (i, b) in six.backends.iter().enumerate() {
        assert_eq!(b.addr, std::net::IpAddr::V6(lab.real_server_addr6(i)));
        assert_eq!(
            b.mac,
            lab.real_server_mac(i),
            "MAC from the neighbour table"
        );
    }
    Ok(())
}
