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

use anyhow::Result;
use common::{
    ensure_persistence_kept, ensure_same_servers, keep_alive_clients, vrrp_pair_spec, Director,
    Family, PairStart, VrrpPair,
};
use lvs_common::CONN_F_SYNCED;
use lvs_testkit::Lab;

/// VI_1 carries the VIP; the BACKUP is ready once its sync has started.
const SYNC_START: PairStart = PairStart {
    instance: "VI_1",
    backup_ready: &["Starting connection sync on bond0"],
    within_s: (10, 10),
    family: Family::V4,
};

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
    let name_of = |d: &Director, id: u32| -> Result<Option<std::net::IpAddr>> {
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
    let pair = VrrpPair::start(&lab, config, &SYNC_START)?;
    let clients = lab.client_addrs()[..20].to_vec();
    let mut conns = keep_alive_clients(&lab, &clients)?;
    // The backup hears about every one of them, with the master's choice
    // of real server and its current state.
    pair.ensure_backup_synced(
        |m, b| in_step(m, b, &clients),
        |i| Ok(i.templates()?.len()),
        clients.len(),
    )?;
    let VrrpPair { master, backup, .. } = pair;

    // Takeover: the master stops (priority 0); the backup's VRRP takes the
    // VIP and its gratuitous ARPs move the client over.
    master.signal(libc::SIGTERM)?;
    backup.wait_log("(VI_1) Entering MASTER STATE", Duration::from_secs(5))?;
    ensure_same_servers(&lab, &mut conns, "after the takeover")?;
    let forwarded_by_backup = backup.inspect()?.services()?[0].stats.packets;
    assert!(forwarded_by_backup > 0, "the backup forwards now");

    // New connections of the same clients keep their persistence template.
    ensure_persistence_kept(
        &lab,
        &clients,
        lab.service().into(),
        &conns,
        2,
        "across the takeover",
    )?;
    Ok(())
}
