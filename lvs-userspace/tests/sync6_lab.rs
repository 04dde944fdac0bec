//! Connection sync of IPv6 entries in the lab: two lvsd directors with an
//! IPv6 VRRP instance (VIP 2001:2::100) and `lvs_sync_daemon_interface`;
//! long-lived IPv6 keep-alive connections go through the MASTER, the
//! BACKUP learns them by sync (`lvsadm -lnc` there lists them with the
//! MASTER's real server), the MASTER is stopped, and every connection
//! carries on with the same real server on the new MASTER; new connections
//! of the same clients follow their synced persistence templates.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use anyhow::{Context, Result};
use common::{
    ensure_backup_synced, ensure_persistence_kept, ensure_same_servers, in_step,
    keep_alive_clients_to, own_bin, real_of, start_vrrp_pair, sync_pair_config, vrrp_pair_spec,
    Director, Family, PairStart,
};
use lvs_common::{tcp, FlowKey6};
use lvs_testkit::{wait_until, Lab, LabSpec, DEFAULT_VIP6};
use lvs_userspace::{
    datapath::{desired::addr6_of, State},
    netlink::{self, IfAddr6},
};

const CLIENTS: usize = 20;

/// The master's established IPv6 connections of `clients`: (client,
/// client port, real server).
fn master_conns(master: &Director, clients: &[Ipv6Addr]) -> Result<Vec<(Ipv6Addr, u16, IpAddr)>> {
    let mut out = Vec::new();
    for m in master.inspect()?.conns6()? {
        let src = addr6_of(&m.key.src_be);
        if clients.contains(&src) && m.conn.state == tcp::ESTABLISHED {
            let rs = real_of(master, m.conn.backend)?.context("master's backend")?;
            out.push((src, u16::from_be(m.key.sport_be), rs));
        }
    }
    Ok(out)
}

fn has_link_local(lab: &Lab, dir: usize) -> bool {
    lab.run_in_netns(lab.director_ns(dir), || {
        netlink::link_by_name("bond0")
            .and_then(|l| netlink::addrs6(l.index))
            .map(|a| a.iter().any(IfAddr6::is_link_local))
            .unwrap_or(false)
    })
    .unwrap_or(false)
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_takeover_keeps_established_connections_and_persistence() -> Result<()> {
    let lab = Lab::create(LabSpec {
        vips6: vec![DEFAULT_VIP6],
        ..vrrp_pair_spec(5, CLIENTS)
    })?;
    wait_until(
        "link-local addresses (VRRP v3 over IPv6 sends from them)",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || has_link_local(&lab, 0) && has_link_local(&lab, 1),
    )?;
    let (master, backup, bpffs) = start_vrrp_pair(
        &lab,
        |state, priority| sync_pair_config(Family::V6, state, priority),
        &PairStart::synced(Family::V6),
    )?;
    let vip: SocketAddr = lab.service6().into();
    let clients: Vec<Ipv6Addr> = lab.client_addrs6()[..CLIENTS].to_vec();
    let mut conns = keep_alive_clients_to(&lab, &clients, vip)?;
    // The backup hears about every connection, with the master's real
    // server and state, and about the persistence templates.
    let of_client = |k: &FlowKey6| clients.contains(&addr6_of(&k.src_be));
    ensure_backup_synced(
        &backup,
        || in_step(&master, &backup, State::conns6, of_client, CLIENTS),
        |i| Ok(i.templates6()?.len()),
        CLIENTS,
    )?;
    // What an operator checks on the backup: `lvsadm -lnc`.
    let lvsadm = own_bin("lvsadm");
    let listing = lab.exec_ok(
        lab.director_ns(1),
        &[
            lvsadm.to_str().context("path")?,
            "-lnc",
            "--bpffs",
            bpffs.0.to_str().context("path")?,
            "--instance",
            "lab2",
        ],
    )?;
    let on_master = master_conns(&master, &clients)?;
    assert!(on_master.len() >= CLIENTS, "{on_master:?}");
    for (client, port, rs) in &on_master {
        let (c, r) = (format!("[{client}]:{port} "), format!("[{rs}]:80"));
        assert!(
            listing
                .lines()
                .any(|l| l.contains("ESTABLISHED") && l.contains(&c) && l.contains(&r)),
            "backup's lvsadm -lnc lists {c} → {r}:\n{listing}"
        );
    }
    println!(
        "backup's lvsadm -lnc: {} IPv6 connections with the master's real servers",
        on_master.len()
    );

    // Takeover: the master stops (priority 0); the backup takes the VIP
    // and its unsolicited neighbour advertisements move the client over.
    master.signal(libc::SIGTERM)?;
    backup.wait_log("(VI_6) Entering MASTER STATE", Duration::from_secs(5))?;
    ensure_same_servers(&lab, &mut conns, "after the IPv6 takeover")?;
    let forwarded_by_backup: u64 = backup
        .inspect()?
        .services()?
        .iter()
        .map(|s| s.stats.packets)
        .sum();
    assert!(forwarded_by_backup > 0, "the backup forwards now");

    // New connections of the same clients follow their synced templates.
    ensure_persistence_kept(&lab, &clients, vip, &conns, 2, "across the takeover")?;
    backup.signal(libc::SIGTERM)?;
    Ok(())
}
