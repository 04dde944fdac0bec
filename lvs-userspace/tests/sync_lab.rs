//! Connection sync in the lab: two directors run `lvsd` with
//! `lvs_sync_daemon_interface`; the VIP moves from the first to the second
//! while keep-alive connections are open, and every one of them carries on
//! with the same real server (the backup learned them by sync). Without
//! sync the backup would pass their segments to its own stack, which
//! resets them.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{
    ensure_same_servers, keep_alive_clients, vrrp_pair_spec, wait_forwarding, Bpffs, Director,
};
use lvs_common::{verdict, CONN_F_SYNCED};
use lvs_testkit::{http_load, wait_until, Lab};

fn config(state: &str, priority: u8) -> String {
    let mut s = format!(
        "vrrp_instance VI_1 {{\n state {state}\n interface bond0\n lvs_sync_daemon_interface bond0\n virtual_router_id 20\n priority {priority}\n advert_int 1\n virtual_ipaddress {{\n  198.18.0.100/16 dev bond0 label bond0:1\n }}\n}}\nvirtual_server 198.18.0.100 80 {{\n lb_algo wrr\n lb_kind DR\n persistence_timeout 120\n protocol TCP\n"
    );
    for (n, w) in [(1, 2), (2, 3), (3, 3), (4, 2), (5, 2)] {
        s += &format!(
            " real_server 198.18.0.{} 80 {{\n  weight {w}\n }}\n",
            10 + n
        );
    }
    s + "}\n"
}

/// Whether the backup's entries for the clients' connections match the
/// master's (same real server, same state, marked as synced).
fn in_step(master: &Director, backup: &Director, clients: &[std::net::Ipv4Addr]) -> Result<bool> {
    let name_of = |d: &Director, id: u32| -> Result<Option<std::net::Ipv4Addr>> {
        Ok(d.inspect()?.services()?[0]
            .backends
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.addr))
    };
    let theirs = backup.inspect()?.conns()?;
    let mut matched = 0;
    for m in master.inspect()?.conns()? {
        let src = lvs_userspace::datapath::desired::addr_of(m.key.src_be);
        if !clients.contains(&src) {
            continue;
        }
        if m.conn.state != lvs_common::tcp::ESTABLISHED {
            continue;
        }
        let Some(b) = theirs.iter().find(|b| b.key == m.key) else {
            return Ok(false);
        };
        if b.conn.flags & CONN_F_SYNCED == 0
            || b.conn.state != m.conn.state
            || name_of(backup, b.conn.backend)? != name_of(master, m.conn.backend)?
        {
            return Ok(false);
        }
        matched += 1;
    }
    Ok(matched >= clients.len())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn takeover_keeps_established_connections_and_persistence() -> Result<()> {
    let lab = Lab::create(vrrp_pair_spec(5, 40))?;
    let bpffs = Bpffs::mount(&lab)?;
    let mut master = Director::new(&lab, &bpffs.0, &config("MASTER", 200))?;
    let mut backup = Director::second(&lab, &bpffs.0, &config("BACKUP", 100))?;
    master.start()?;
    backup.start()?;
    master.wait_log("(VI_1) Entering MASTER STATE", Duration::from_secs(10))?;
    backup.wait_log("Starting connection sync on bond0", Duration::from_secs(10))?;
    backup.wait_log("(VI_1) Entering BACKUP STATE", Duration::from_secs(10))?;
    wait_forwarding(&lab)?;

    let clients = lab.client_addrs()[..20].to_vec();
    let mut conns = keep_alive_clients(&lab, &clients)?;
    // Frames a switch floods to the backup are not its to forward.
    let before = backup.inspect()?.verdicts()?;
    assert_eq!(
        before[verdict::TX as usize],
        0,
        "the backup forwarded nothing: {before:?}"
    );

    // The backup hears about every one of them, with the master's choice
    // of real server and its current state.
    wait_until(
        "connections synced to the backup",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || in_step(&master, &backup, &clients).unwrap_or(false),
    )?;
    let templates = backup.inspect()?.templates()?;
    assert!(
        templates.len() >= clients.len(),
        "persistence templates synced too: {}",
        templates.len()
    );

    // Takeover: the master stops (priority 0); the backup's VRRP takes the
    // VIP and its gratuitous ARPs move the client over.
    master.signal(libc::SIGTERM)?;
    backup.wait_log("(VI_1) Entering MASTER STATE", Duration::from_secs(5))?;
    ensure_same_servers(&lab, &mut conns, "after the takeover")?;
    let forwarded_by_backup = backup.inspect()?.services()?[0].stats.packets;
    assert!(forwarded_by_backup > 0, "the backup forwards now");

    // New connections of the same clients keep their persistence template.
    let r = http_load(&lab, lab.client_ns(), &clients, lab.service(), 2, 10)?;
    r.ensure_no_failures()?;
    for (addr, per_server) in &r.per_client {
        let i = clients.iter().position(|c| c == addr).context("client")?;
        assert_eq!(per_server.len(), 1);
        assert!(
            per_server.contains_key(&conns[i].1),
            "{addr} kept its real server across the takeover"
        );
    }
    Ok(())
}
