//! Warm failback in the lab: the master crashes as a reboot would (lvsd
//! killed -9, its data path flushed, the VIP gone), the backup takes over
//! with every connection (sync), new connections open through the backup;
//! then the old master returns with empty tables and higher priority. It
//! asks the backup for its tables, holds preemption until they are in, and
//! only then takes the VIP back: every connection, opened before the crash
//! or during the outage, carries on with its real server. Then the same
//! for a graceful stop (priority 0) and return.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::time::Duration;

use anyhow::{ensure, Result};
use common::{
    ensure_same_servers, keep_alive_clients, start_vrrp_pair, vrrp_pair_spec, Director, Family,
    PairStart, Streamer,
};
use lvs_testkit::Lab;

/// With the sync daemon named in VI_1 the BACKUP is ready once its bulk
/// sync from the MASTER is done.
const IN_INSTANCE_START: PairStart = PairStart {
    instance: "VI_1",
    backup_ready: &["bulk sync done"],
    within_s: (15, 10),
    family: Family::V4,
};

/// With the global form, once it is BACKUP (10 000 connections: more time).
const GLOBAL_START: PairStart = PairStart {
    instance: "VI_1",
    backup_ready: &[],
    within_s: (15, 15),
    family: Family::V4,
};

fn config(state: &str, priority: u8) -> String {
    config_with(state, priority, " lvs_sync_daemon_interface bond0\n", "")
}

/// keepalived 2.x's global form: `lvs_sync_daemon IF INSTANCE id N`.
fn config_global(state: &str, priority: u8) -> String {
    config_with(
        state,
        priority,
        "",
        "global_defs {\n lvs_sync_daemon bond0 VI_1 id 20\n}\n",
    )
}

fn config_with(state: &str, priority: u8, in_instance: &str, global: &str) -> String {
    let mut s = global.to_string();
    s += &format!(
        "vrrp_instance VI_1 {{\n state {state}\n interface bond0\n{in_instance} virtual_router_id 20\n priority {priority}\n advert_int 1\n virtual_ipaddress {{\n  198.18.0.100/16 dev bond0 label bond0:1\n }}\n}}\nvirtual_server 198.18.0.100 80 {{\n lb_algo wrr\n lb_kind DR\n protocol TCP\n"
    );
    for n in 1..=3 {
        s += &format!(" real_server 198.18.0.{} 80 {{\n  weight 1\n }}\n", 10 + n);
    }
    s + "}\n"
}

fn crash(lab: &Lab, d: &Director, bpffs: &std::path::Path) -> Result<()> {
    d.signal(libc::SIGKILL)?;
    std::thread::sleep(Duration::from_millis(200));
    // What a reboot leaves: no data path, no VIP.
    let lvsd = common::own_bin("lvsd");
    lab.exec_ok(
        lab.director_ns(d.index),
        &[
            lvsd.to_str().unwrap(),
            "--flush",
            "--bpffs",
            bpffs.to_str().unwrap(),
            "--instance",
            &d.instance,
        ],
    )?;
    lab.exec_ok(
        lab.director_ns(d.index),
        &["ip", "addr", "del", "198.18.0.100/16", "dev", "bond0"],
    )?;
    Ok(())
}

/// The old MASTER returns (empty tables, higher priority): it finishes its
/// bulk sync from the BACKUP before it preempts (each within `within_s`
/// seconds), and the BACKUP steps down (its `backup_states`-th BACKUP
/// state).
fn return_warm(
    master: &mut Director,
    backup: &Director,
    within_s: u64,
    backup_states: usize,
    what: &str,
) -> Result<()> {
    let within = Duration::from_secs(within_s);
    let t0 = std::time::Instant::now();
    master.start()?;
    master.wait_log("bulk sync done", within)?;
    let synced_at = t0.elapsed();
    // (A new process: its log starts anew.)
    master.wait_log("(VI_1) Entering MASTER STATE", within)?;
    let master_at = t0.elapsed();
    backup.wait_log_count(
        "(VI_1) Entering BACKUP STATE",
        backup_states,
        Duration::from_secs(5),
    )?;
    let log = master.log();
    let bulk_line = log
        .lines()
        .find(|l| l.contains("bulk sync done"))
        .unwrap_or_default();
    eprintln!(
        "{what}: bulk sync done {:.2} s after start, MASTER at {:.2} s; {bulk_line}",
        synced_at.as_secs_f64(),
        master_at.as_secs_f64()
    );
    ensure!(
        synced_at <= master_at,
        "{what}: preemption waited for the bulk sync"
    );
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_returning_master_takes_over_warm_after_crash_and_after_graceful_stop() -> Result<()> {
    let lab = Lab::create(vrrp_pair_spec(3, 80))?;
    let (mut master, backup, bpffs) = start_vrrp_pair(&lab, config, &IN_INSTANCE_START)?;

    // 40 connections through the master.
    let addrs = lab.client_addrs().to_vec();
    let before = keep_alive_clients(&lab, &addrs[..40])?;
    std::thread::sleep(Duration::from_secs(1)); // synced to the backup

    // The master crashes; the backup takes over with every connection.
    crash(&lab, &master, &bpffs.0)?;
    backup.wait_log("(VI_1) Entering MASTER STATE", Duration::from_secs(6))?;
    let mut all = before;
    ensure_same_servers(&lab, &mut all, "after the crash")?;
    // 40 more connections open through the backup during the outage.
    all.extend(keep_alive_clients(&lab, &addrs[40..80])?);
    std::thread::sleep(Duration::from_secs(1));

    // The master returns with empty tables and the higher priority, while
    // every connection keeps streaming.
    let streamer = Streamer::start(all);
    return_warm(&mut master, &backup, 15, 2, "failback after crash")?;
    std::thread::sleep(Duration::from_secs(2));
    let (broken, done, mut all) = streamer.finish();
    eprintln!("failback after crash: {done} requests on 80 connections, {broken} failed or moved");
    ensure!(
        broken == 0,
        "{broken} of {done} requests broke during the failback"
    );
    ensure_same_servers(&lab, &mut all, "after the failback")?;
    ensure!(
        master.inspect()?.services()?[0].stats.packets > 0,
        "the returning master forwards"
    );

    // Sync works both ways after the roles swapped: connections opened
    // through the returned master now are known to the backup too.
    let lab_addrs = lab.client_addrs().to_vec();
    all.extend(keep_alive_clients(&lab, &lab_addrs[..20])?);
    std::thread::sleep(Duration::from_secs(1));

    // Graceful: the master stops (priority 0), the backup takes over;
    // the master returns and takes over warm again.
    let streamer = Streamer::start(all);
    master.signal(libc::SIGTERM)?;
    backup.wait_log_count("(VI_1) Entering MASTER STATE", 2, Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_secs(1));
    return_warm(&mut master, &backup, 15, 3, "graceful stop and return")?;
    std::thread::sleep(Duration::from_secs(2));
    let (broken, done, mut all) = streamer.finish();
    eprintln!(
        "graceful stop and return (100 connections, 20 of them opened after the failback): {done} requests, {broken} failed or moved"
    );
    ensure!(
        broken == 0,
        "{broken} of {done} requests broke across the graceful handover"
    );
    ensure_same_servers(&lab, &mut all, "after the graceful failback")?;
    Ok(())
}

/// Lets this test (and the servers the lab spawns) hold 10 000 sockets.
fn raise_fd_limit() -> Result<()> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit on a struct we own.
    unsafe {
        ensure!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0,
            "getrlimit"
        );
        l.rlim_cur = l.rlim_max;
        ensure!(libc::setrlimit(libc::RLIMIT_NOFILE, &l) == 0, "setrlimit");
    }
    ensure!(
        l.rlim_cur >= 12_000,
        "RLIMIT_NOFILE hard limit {} < 12 000",
        l.rlim_max
    );
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ten_thousand_connections_fail_back_warm() -> Result<()> {
    raise_fd_limit()?;
    let lab = Lab::create(vrrp_pair_spec(3, 100))?;
    // keepalived 2.x's global lvs_sync_daemon here.
    let (mut master, backup, bpffs) = start_vrrp_pair(&lab, config_global, &GLOBAL_START)?;

    // 10 000 connections, 100 per client address.
    let addrs = lab.client_addrs().to_vec();
    let mut all = Vec::with_capacity(10_000);
    for _ in 0..100 {
        all.extend(keep_alive_clients(&lab, &addrs)?);
    }
    std::thread::sleep(Duration::from_secs(2)); // synced to the backup
    crash(&lab, &master, &bpffs.0)?;
    backup.wait_log("(VI_1) Entering MASTER STATE", Duration::from_secs(6))?;

    return_warm(&mut master, &backup, 30, 2, "10 000 connections")?;
    // Every one of them carries on with its server through the new master.
    ensure_same_servers(&lab, &mut all, "after failing back with 10 000 connections")?;
    let established = master
        .inspect()?
        .conns()?
        .iter()
        .filter(|c| !c.half_open && c.conn.state == lvs_common::tcp::ESTABLISHED)
        .count();
    ensure!(
        established >= 10_000,
        "the returning master holds them all ({established})"
    );
    Ok(())
}
