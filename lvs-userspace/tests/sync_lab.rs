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
    ensure_backup_synced, ensure_persistence_kept, ensure_same_servers, in_step,
    keep_alive_clients, start_vrrp_pair, sync_pair_config, vrrp_pair_spec, Family, PairStart,
};
use lvs_common::FlowKey;
use lvs_testkit::Lab;
use lvs_userspace::datapath::{desired::addr_of, State};

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn takeover_keeps_established_connections_and_persistence() -> Result<()> {
    let lab = Lab::create(vrrp_pair_spec(5, 40))?;
    let (master, backup, _bpffs) = start_vrrp_pair(
        &lab,
        |state, priority| sync_pair_config(Family::V4, state, priority),
        &PairStart::synced(Family::V4),
    )?;
    let clients = lab.client_addrs()[..20].to_vec();
    let mut conns = keep_alive_clients(&lab, &clients)?;
    // The backup hears about every one of them, with the master's choice
    // of real server and its current state.
    let of_client = |k: &FlowKey| clients.contains(&addr_of(k.src_be));
    ensure_backup_synced(
        &backup,
        || in_step(&master, &backup, State::conns, of_client, clients.len()),
        |i| Ok(i.templates()?.len()),
        clients.len(),
    )?;

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
