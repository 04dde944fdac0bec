//! A health-check flap breaks no connection: a real server's check fails
//! for one interval and recovers. While it is down its established
//! connections' segments are dropped (IPVS's default
//! `expire_nodest_conn = 0`), not moved to another server that would reset
//! them; when it is back the same connections carry on. With
//! `--expire-nodest-conn` they would be rescheduled and broken.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::time::Duration;

use anyhow::{ensure, Result};
use common::{ensure_same_servers, keep_alive_clients, Bpffs, Director, Streamer};
use lvs_testkit::{Lab, LabSpec};

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_one_interval_check_flap_breaks_no_connection() -> Result<()> {
    let lab = Lab::create(LabSpec::sized(2, 40))?;
    // rs1's check is whatever this file says (0 up, 1 down).
    let (knob, cfg) = common::rs1_misc_checked(&lab, "", "")?;
    let bpffs = Bpffs::mount(&lab)?;
    let d = Director::forwarding(&lab, &bpffs.0, &cfg)?;
    let conns = keep_alive_clients(&lab, lab.client_addrs())?;
    let on_rs1 = conns.iter().filter(|(_, s)| s == "rs1").count();
    ensure!(on_rs1 > 0, "some connections on rs1");
    let streamer = Streamer::start(conns);
    std::thread::sleep(Duration::from_secs(1));

    // One check interval down, then up again.
    std::fs::write(&knob, "1")?;
    d.wait_log(
        "Removing service [198.18.0.11]:tcp:80",
        Duration::from_secs(5),
    )?;
    std::fs::write(&knob, "0")?;
    d.wait_log(
        "Adding service [198.18.0.11]:tcp:80",
        Duration::from_secs(5),
    )?;
    std::thread::sleep(Duration::from_secs(3));
    let (broken, done, mut conns) = streamer.finish();
    let dropped = d.inspect()?.verdicts()?[lvs_common::verdict::DROP_DEST_DOWN as usize];
    eprintln!(
        "check flap: {on_rs1} of 40 connections on rs1; {done} requests, {broken} failed or moved; {dropped} segments held back while rs1 was down"
    );
    ensure!(
        broken == 0,
        "{broken} of {done} requests broke across the flap"
    );
    ensure_same_servers(&lab, &mut conns, "after the flap")?;
    Ok(())
}
