//! The connection-table side of `cargo xtask bench`: `lvsd` serving one
//! virtual service with five real servers while the connection table holds
//! 1 M established connections and `/metrics` is scraped every second;
//! measures the agent's CPU (share of one core, from /proc/<pid>/stat) over
//! a steady window. Goal: under 5 % of a core.
//!
//! The connections are written into the pinned `conns` map by this process
//! (as connection sync would), spread over the five real servers, fresh
//! enough not to expire during the run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use aya::maps::{HashMap, Map, MapData};
use clap::Parser;
use common::{Bpffs, CpuWindow, Director};
use lvs_common::{map_names, tcp, Conn, FlowKey, IPPROTO_TCP};
use lvs_userspace::datapath::{pins::PinDir, read::monotonic_ns};

#[derive(Parser)]
struct Args {
    /// Connections in the table.
    #[arg(long, default_value_t = 1_000_000)]
    conns: u32,
    /// Seconds of scraping to measure.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let lab = common::lab_without_httpd(5)?;
    let mut cfg = String::from(
        "vrrp_instance VI_1 {\n state MASTER\n interface bond0\n virtual_router_id 20\n priority 200\n virtual_ipaddress {\n  198.18.0.100/16 dev bond0\n }\n}\nvirtual_server 198.18.0.100 80 {\n delay_loop 6\n lb_algo wrr\n lb_kind DR\n protocol TCP\n",
    );
    for i in 0..5 {
        cfg += &format!(
            " real_server {} 80 {{\n  weight 1\n }}\n",
            lab.real_server_addr(i)
        );
    }
    cfg += "}\n";
    let bpffs = Bpffs::mount(&lab)?;
    let mut d = Director::new(&lab, &bpffs.0, &cfg)?;
    // Room for the connections without LRU eviction.
    d.conn_table_size = (args.conns * 2).max(65536);
    let metrics_addr = format!("{}:9105", lab.director_addr(0));
    d.extra_args = vec!["--metrics".into(), metrics_addr.clone()];
    let pid = d.start()?;
    d.wait_log_count("Adding service", 5, Duration::from_secs(20))?;

    // The ids the maps use for the service and its real servers.
    let services = d.inspect()?.services()?;
    let service = services.first().context("no service in the maps")?;
    let (service_id, backends): (u32, Vec<u32>) = (
        service.svc.id,
        service.backends.iter().map(|b| b.id).collect(),
    );
    ensure!(backends.len() == 5, "expected 5 real servers in the maps");

    let pinned = MapData::from_pin(PinDir::new(&bpffs.0, &d.instance).map(map_names::CONNS))?;
    let mut conns: HashMap<MapData, FlowKey, Conn> = Map::LruHashMap(pinned).try_into()?;
    let filled = Instant::now();
    let now = monotonic_ns();
    let vip = u32::from_ne_bytes(lab.vip().octets());
    for i in 0..args.conns {
        // Clients 10.0.0.0/8-shaped keys; never sent on any wire.
        let key = FlowKey {
            src_be: (0x0a00_0000 + (i >> 4)).to_be(),
            dst_be: vip,
            sport_be: (10_000 + (i & 0xf) as u16).to_be(),
            dport_be: 80u16.to_be(),
            proto: IPPROTO_TCP,
            _pad: [0; 3],
        };
        let conn = Conn {
            backend: backends[i as usize % backends.len()],
            service: service_id,
            state: tcp::ESTABLISHED,
            flags: 0,
            created_ns: now,
            last_seen_ns: now,
        };
        conns.insert(key, conn, 0)?;
    }
    let fill_s = filled.elapsed().as_secs_f64();

    let scrape = || {
        lab.exec_ok(
            lab.client_ns(),
            &[
                "curl",
                "-sf",
                "--max-time",
                "10",
                &format!("http://{metrics_addr}/metrics"),
            ],
        )
    };
    let active = |body: &str| -> u64 {
        body.lines()
            .filter(|l| l.starts_with("lvs_real_server_active_connections{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    // The agent counts on a thread of its own: wait for a pass that saw them.
    let counted = Instant::now();
    while active(&scrape()?) < args.conns as u64 {
        ensure!(
            counted.elapsed() < Duration::from_secs(60),
            "/metrics never showed the connections"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let count_s = counted.elapsed().as_secs_f64();

    let window = CpuWindow::start(pid.0)?;
    let t0 = Instant::now();
    let mut scrapes = 0;
    let mut slowest = Duration::ZERO;
    while t0.elapsed() < Duration::from_secs(args.seconds) {
        let start = Instant::now();
        scrape()?;
        scrapes += 1;
        slowest = slowest.max(start.elapsed());
        std::thread::sleep(Duration::from_secs(1).saturating_sub(start.elapsed()));
    }
    let (user, system) = window.percent()?;
    let cpu = user + system;
    println!(
        "lvsd with {} connections, /metrics scraped every second ({scrapes} scrapes, slowest {:.0} ms): CPU {cpu:.1} % of one core ({user:.1} % user, {system:.1} % system); counted within {count_s:.1} s of filling the table (goal: < 5 %; filled in {fill_s:.1} s)",
        args.conns,
        slowest.as_secs_f64() * 1000.0,
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({"conns": args.conns, "scrapes": scrapes, "cpu_percent": cpu, "cpu_user_percent": user, "cpu_system_percent": system, "slowest_scrape_ms": slowest.as_secs_f64() * 1000.0, "counted_within_s": count_s})
        );
    }
    d.signal(libc::SIGTERM)?;
    d.wait_log("Stopped lvsd", Duration::from_secs(30))?;
    Ok(())
}
