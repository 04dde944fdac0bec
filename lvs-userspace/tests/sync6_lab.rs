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
use common::{own_bin, vrrp_pair_spec, Bpffs, Director};
use lvs_common::{tcp, verdict, CONN_F_SYNCED};
use lvs_testkit::{http_load, wait_until, KeepAliveClient, Lab, LabSpec, DEFAULT_VIP6};
use lvs_userspace::{
    datapath::desired::addr6_of,
    netlink::{self, IfAddr6},
};

const CLIENTS: usize = 20;

fn config(state: &str, priority: u8) -> String {
    let mut s = format!(
        "vrrp_instance VI_6 {{\n state {state}\n interface bond0\n lvs_sync_daemon_interface bond0\n virtual_router_id 60\n priority {priority}\n advert_int 1\n virtual_ipaddress {{\n  2001:2::100/64 dev bond0\n }}\n}}\nvirtual_server 2001:2::100 80 {{\n lb_algo wrr\n lb_kind DR\n persistence_timeout 120\n protocol TCP\n"
    );
    for (n, w) in [(1, 2), (2, 3), (3, 3), (4, 2), (5, 2)] {
        s += &format!(
            " real_server 2001:2::{:x} 80 {{\n  weight {w}\n }}\n",
            0x10 + n
        );
    }
    s + "}\n"
}

/// The real server a director's backend id names (any service).
fn real_of(d: &Director, id: u32) -> Result<Option<IpAddr>> {
    Ok(d.inspect()?
        .services()?
        .iter()
        .flat_map(|s| s.backends.iter())
        .find(|b| b.id == id)
        .map(|b| b.addr))
}

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

/// Whether the backup's `conns6` has every client's connection with the
/// master's real server and state, marked as synced.
fn in_step(master: &Director, backup: &Director, clients: &[Ipv6Addr]) -> Result<bool> {
    let theirs = backup.inspect()?.conns6()?;
    let mut matched = 0;
    for m in master.inspect()?.conns6()? {
        if !clients.contains(&addr6_of(&m.key.src_be)) || m.conn.state != tcp::ESTABLISHED {
            continue;
        }
        let Some(b) = theirs.iter().find(|b| b.key == m.key) else {
            return Ok(false);
        };
        if b.conn.flags & CONN_F_SYNCED == 0
            || b.conn.state != m.conn.state
            || real_of(backup, b.conn.backend)? != real_of(master, m.conn.backend)?
        {
            return Ok(false);
        }
        matched += 1;
    }
    Ok(matched >= clients.len())
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
    let bpffs = Bpffs::mount(&lab)?;
    let mut master = Director::new(&lab, &bpffs.0, &config("MASTER", 200))?;
    let mut backup = Director::second(&lab, &bpffs.0, &config("BACKUP", 100))?;
    master.start()?;
    master.wait_log("(VI_6) Entering MASTER STATE", Duration::from_secs(10))?;
    backup.start()?;
    backup.wait_log("Starting connection sync on bond0", Duration::from_secs(10))?;
    backup.wait_log("(VI_6) Entering BACKUP STATE", Duration::from_secs(10))?;
    let vip: SocketAddr = lab.service6().into();
    let clients: Vec<Ipv6Addr> = lab.client_addrs6()[..CLIENTS].to_vec();
    wait_until(
        "forwarding IPv6 through lvsd",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || {
            lab.run_in_netns(lab.client_ns(), || {
                KeepAliveClient::connect_any(
                    Some(clients[0].into()),
                    vip,
                    Duration::from_millis(500),
                )
                .and_then(|mut c| c.get())
                .is_ok()
            })
            .unwrap_or(false)
        },
    )?;

    let mut conns: Vec<(KeepAliveClient, String)> = lab.run_in_netns(lab.client_ns(), || {
        clients
            .iter()
            .map(|a| {
                let mut c =
                    KeepAliveClient::connect_any(Some((*a).into()), vip, Duration::from_secs(5))?;
                let s = c.get()?;
                Ok((c, s))
            })
            .collect::<Result<_>>()
    })??;
    let before = backup.inspect()?.verdicts()?;
    assert_eq!(
        before[verdict::TX as usize],
        0,
        "the backup forwarded nothing: {before:?}"
    );

    // The backup hears about every connection, with the master's real
    // server and state, and about the persistence templates.
    wait_until(
        "IPv6 connections synced to the backup",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || in_step(&master, &backup, &clients).unwrap_or(false),
    )?;
    let templates = backup.inspect()?.templates6()?;
    assert!(
        templates.len() >= CLIENTS,
        "IPv6 persistence templates synced too: {}",
        templates.len()
    );
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
    let broken = lab.run_in_netns(lab.client_ns(), || {
        conns
            .iter_mut()
            .map(|(c, server)| (c.get().ok().as_ref() != Some(server)) as usize)
            .sum::<usize>()
    })?;
    println!("after the takeover: {broken} of {CLIENTS} IPv6 connections broken");
    assert_eq!(broken, 0, "every IPv6 connection kept its real server");
    let forwarded_by_backup: u64 = backup
        .inspect()?
        .services()?
        .iter()
        .map(|s| s.stats.packets)
        .sum();
    assert!(forwarded_by_backup > 0, "the backup forwards now");

    // New connections of the same clients follow their synced templates.
    let r = http_load(&lab, lab.client_ns(), &clients, vip, 2, 10)?;
    r.ensure_no_failures()?;
    for (addr, per_server) in &r.per_client {
        let i = clients
            .iter()
            .position(|c| IpAddr::V6(*c) == *addr)
            .context("client")?;
        assert_eq!(per_server.len(), 1);
        assert!(
            per_server.contains_key(&conns[i].1),
            "{addr} kept its real server across the takeover"
        );
    }
    backup.signal(libc::SIGTERM)?;
    Ok(())
}
