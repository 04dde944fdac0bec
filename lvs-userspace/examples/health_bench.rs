//! The health-check side of `cargo xtask bench`: `lvsd` checking 1000 real
//! servers every second (TCP_CHECK, delay_loop 1) in the lab, measuring the
//! agent's CPU (share of one core, from /proc/<pid>/stat) and RSS over a
//! steady window. Targets: CPU < 10 % of a core, RSS < 50 MB.
//!
//! The 1000 real servers are one real-server namespace answering on 1000
//! ports (one lvs-lab-httpd), so the director's neighbour table holds one
//! entry, not a thousand: the bench measures the checkers, not ARP.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use common::{Bpffs, CpuWindow, Director};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    servers: u16,
    /// Seconds of steady checking to measure.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long)]
    json: bool,
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let lab = common::lab_without_httpd(1)?;
    let ports: Vec<String> = (0..args.servers)
        .map(|i| format!("0.0.0.0:{}", 10000 + i))
        .collect();
    let listen: Vec<&str> = ports.iter().map(String::as_str).collect();
    lab.spawn_httpd(lab.real_server_ns(0), "rs1", &listen)?;

    let mut cfg = String::from(
        "vrrp_instance VI_1 {\n state MASTER\n interface bond0\n virtual_router_id 20\n priority 200\n virtual_ipaddress {\n  198.18.0.100/16 dev bond0\n }\n}\nvirtual_server 198.18.0.100 80 {\n delay_loop 1\n lb_algo wrr\n lb_kind DR\n protocol TCP\n",
    );
    for i in 0..args.servers {
        cfg += &format!(
            " real_server 198.18.0.11 {} {{\n  weight 1\n  TCP_CHECK {{\n   connect_timeout 2\n  }}\n }}\n",
            10000 + i
        );
    }
    cfg += "}\n";
    let bpffs = Bpffs::mount(&lab)?;
    let mut d = Director::new(&lab, &bpffs.0, &cfg)?;
    let pid = d.start()?;
    d.wait_log("Adding service", Duration::from_secs(20))?;
    // Let every checker start and settle.
    std::thread::sleep(Duration::from_secs(3));
    let window = CpuWindow::start(pid.0)?;
    std::thread::sleep(Duration::from_secs(args.seconds));
    let (user, system) = window.percent()?;
    let cpu = user + system;
    let rss_mb = rss_kib(pid.0)? as f64 / 1024.0;
    let log = d.log();
    let checks_ok = !log.contains("Removing service");
    println!(
        "lvsd checking {} real servers every second (TCP_CHECK): CPU {cpu:.1} % of one core ({user:.1} % user, {system:.1} % system), RSS {rss_mb:.1} MB (targets: < 10 %, < 50 MB){}",
        args.servers,
        if checks_ok { "" } else { "; some checks failed!" }
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({"servers": args.servers, "cpu_percent": cpu, "cpu_user_percent": user, "cpu_system_percent": system, "rss_mb": rss_mb, "all_up": checks_ok})
        );
    }
    d.signal(libc::SIGTERM)?;
    d.wait_log("Stopped lvsd", Duration::from_secs(10))?;
    Ok(())
}
