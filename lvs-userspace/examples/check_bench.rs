//! Health-check cost: 1000 real servers (one `lvs-lab-httpd` listening on
//! 1000 addresses in a lab namespace) checked every second with TCP_CHECK by
//! [`Checkers`] running in the director's namespace; prints the process's
//! CPU use (% of one core, from /proc/self/stat utime+stime) and RSS
//! (VmRSS) over the measuring window. Targets: CPU < 10 %, RSS < 50 MB.
//!
//! ```sh
//! cargo build -p lvs-testkit --bins
//! cargo run --release -p lvs-userspace --example check_bench -- [SECONDS] [SERVERS] [--json]
//! ```
//!
//! Needs root, `ip`, `ethtool`.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use lvs_testkit::{Lab, LabSpec};
use lvs_userspace::check::{CheckEvent, Checkers};
use tokio::sync::mpsc;

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let rest = stat.rsplit_once(") ").map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split(' ').collect();
    // After "pid (comm) ": state is field 3, utime 14, stime 15 (1-based).
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

fn rss_kb() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            return Ok(v.trim().trim_end_matches("kB").trim().parse()?);
        }
    }
    bail!("no VmRSS")
}

fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn config(addrs: &[Ipv4Addr]) -> lvs_config::Config {
    let mut s = String::from(
        "virtual_server 198.18.0.100 80 {\n delay_loop 1\n lb_algo wrr\n lb_kind DR\n protocol TCP\n",
    );
    for a in addrs {
        s += &format!(
            " real_server {a} 80 {{\n  TCP_CHECK {{\n   connect_timeout 2\n   retry 1\n   delay_before_retry 1\n  }}\n }}\n"
        );
    }
    s += "}\n";
    let parsed = lvs_config::parse_str("check_bench.conf", &s, &Default::default());
    assert!(!parsed.diagnostics.has_errors(), "{:?}", parsed.diagnostics);
    parsed.config
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let mut nums = args.iter().filter_map(|a| a.parse::<u64>().ok());
    let seconds = nums.next().unwrap_or(20);
    let servers = nums.next().unwrap_or(1000) as u32;

    let lab = Lab::create(LabSpec {
        directors: 1,
        httpd: false,
        ..LabSpec::sized(1, 1)
    })?;
    let ns = lab.real_server_ns(0).to_string();
    let first = Ipv4Addr::new(198, 18, 40, 1);
    let addrs: Vec<Ipv4Addr> = (0..servers)
        .map(|k| Ipv4Addr::from(u32::from(first) + k))
        .collect();
    lab.add_addrs(&ns, "eth0", &addrs, 16)?;
    let last = addrs[addrs.len() - 1];
    lab.spawn_httpd(&ns, "many", &[&format!("{first}-{last}:80")])?;
    // The director resolves 1000 neighbours: give its table room.
    lab.exec_ok(
        lab.director_ns(0),
        &["sysctl", "-qw", "net.ipv4.neigh.default.gc_thresh3=8192"],
    )
    .ok();
    let cfg = config(&addrs);

    let report = lab.run_in_netns(lab.director_ns(0), move || -> Result<String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let (tx, mut rx) = mpsc::channel(4096);
            let mut checkers = Checkers::new(tx);
            let t0 = Instant::now();
            checkers.reconcile(&cfg);
            // Every server up once (the first checks spread over warmup = 1 s).
            let mut up = 0;
            let mut down = 0;
            while up < servers {
                match tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
                    Ok(Some(CheckEvent::Up { .. })) => up += 1,
                    Ok(Some(CheckEvent::Down { rs, reason })) => {
                        down += 1;
                        eprintln!("down: {} {reason}", rs.rs_name());
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => bail!("only {up}/{servers} up after {:?}", t0.elapsed()),
                }
            }
            let ramp = t0.elapsed();
            let (c0, w0) = (cpu_ticks()?, Instant::now());
            let mut changes = 0;
            let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
            while let Ok(ev) = tokio::time::timeout_at(end, rx.recv()).await {
                if ev.is_none() {
                    break;
                }
                changes += 1;
            }
            let cpu_s = (cpu_ticks()? - c0) as f64 / clock_ticks_per_s();
            let wall = w0.elapsed().as_secs_f64();
            let rss = rss_kb()?;
            let cpu_pct = 100.0 * cpu_s / wall;
            checkers.shutdown().await;
            let ok = cpu_pct < 10.0 && rss < 50 * 1024 && changes == 0 && down == 0;
            Ok(if json {
                format!(
                    "{{\"bench\":\"check\",\"servers\":{servers},\"delay_loop_s\":1,\"seconds\":{wall:.1},\"all_up_s\":{:.2},\"cpu_pct_one_core\":{cpu_pct:.2},\"rss_mb\":{:.1},\"state_changes\":{changes},\"ok\":{ok}}}",
                    ramp.as_secs_f64(),
                    rss as f64 / 1024.0
                )
            } else {
                format!(
                    "check bench: {servers} real servers, TCP_CHECK every 1 s, all up after {:.2} s\n\
                     over {wall:.1} s: CPU {cpu_pct:.2} % of one core (target < 10 %), RSS {:.1} MB (target < 50 MB), \
                     state changes {changes}\n{}",
                    ramp.as_secs_f64(),
                    rss as f64 / 1024.0,
                    if ok { "PASS" } else { "FAIL" }
                )
            })
        })
    })??;
    println!("{report}");
    Ok(())
}
