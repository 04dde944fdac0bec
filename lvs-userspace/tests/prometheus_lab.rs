//! Prometheus, for real: lvsd's exposition passes `promtool check metrics`;
//! Debian's Prometheus server (in the lab's client namespace, its own
//! config and data directory, in the foreground, stopped by the test)
//! scrapes lvsd with the shipped alert rules loaded, every rule evaluates
//! without error, and PromQL over the scraped series gives what
//! `lvsadm -L -n --stats --exact` prints.
//!
//! Needs root, `ip`, `ethtool`, `curl`, `prometheus` and `promtool`.

mod common;

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::{load_every_client, lvsadm, Bpffs, Director};
use lvs_testkit::{process, wait_until, Lab, LabSpec};

const ALERTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../packaging/prometheus/alerts.yml"
);
const METRICS: &str = "198.18.0.2:9105";

fn config() -> String {
    let mut s = String::from(
        "vrrp_instance VI_1 {\n state MASTER\n interface bond0\n virtual_router_id 20\n priority 200\n advert_int 1\n virtual_ipaddress {\n  198.18.0.100/16 dev bond0\n }\n}\nvirtual_server 198.18.0.100 80 {\n lb_algo wrr\n lb_kind DR\n protocol TCP\n quorum 2\n",
    );
    for (n, w) in [(1, 2), (2, 3), (3, 1)] {
        s += &format!(
            " real_server 198.18.0.1{n} 80 {{\n  weight {w}\n  TCP_CHECK {{\n   connect_timeout 1\n  }}\n }}\n"
        );
    }
    s + "}\n"
}

/// `lvsadm -L -n --stats --exact`: the service line's Conns, InPkts,
/// InBytes and each real server's Conns.
struct Stats {
    conns: u64,
    pkts: u64,
    bytes: u64,
    reals: Vec<(String, u64)>,
}

fn lvsadm_stats(lab: &Lab, bpffs: &std::path::Path) -> Result<Stats> {
    let out = lvsadm(lab, bpffs, &["-L", "-n", "--stats", "--exact"])?;
    let cols = |l: &str| -> Vec<u64> {
        l.split_whitespace()
            .skip(2)
            .filter_map(|c| c.parse().ok())
            .collect()
    };
    let svc = out
        .lines()
        .find(|l| l.starts_with("TCP  198.18.0.100:80"))
        .context("service line")?;
    let c = cols(svc);
    let reals = out
        .lines()
        .filter_map(|l| l.strip_prefix("  -> "))
        .filter(|l| l.starts_with("198."))
        .map(|l| {
            let addr = l.split_whitespace().next().unwrap_or("").to_owned();
            let conns = l
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(u64::MAX);
            (addr, conns)
        })
        .collect();
    Ok(Stats {
        conns: c[0],
        pkts: c[1],
        bytes: c[3],
        reals,
    })
}

/// One instant-vector query; the single result's value.
fn query(lab: &Lab, api: &str, q: &str) -> Result<Option<u64>> {
    let url = format!("http://{api}/api/v1/query");
    let out = lab.exec_ok(
        lab.client_ns(),
        &[
            "curl",
            "-sf",
            "-G",
            &url,
            "--data-urlencode",
            &format!("query={q}"),
        ],
    )?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(v["status"] == "success", "{q}: {out}");
    let result = v["data"]["result"].as_array().context("result")?;
    Ok(match result.as_slice() {
        [one] => one["value"][1].as_str().and_then(|s| s.parse().ok()),
        _ => None,
    })
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn prometheus_scrapes_lvsd_and_promql_matches_lvsadm() -> Result<()> {
    let lab = Lab::create(LabSpec::sized(3, 40))?;
    let bpffs = Bpffs::mount(&lab)?;
    let d = Director::forwarding_with(&lab, &bpffs.0, &config(), &["--metrics", METRICS])?;
    d.wait_log("(VI_1) Entering MASTER STATE", Duration::from_secs(10))?;

    // The exposition, as promtool sees it.
    let url = format!("http://{METRICS}/metrics");
    let body = lab.exec_ok(lab.client_ns(), &["curl", "-sf", &url])?;
    let out = process::run(
        &["promtool", "check", "metrics"],
        Some(body.as_bytes()),
        Duration::from_secs(20),
    )?;
    ensure!(
        out.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        body.contains("lvs_service_quorum_up{vip=\"198.18.0.100\",port=\"80\",proto=\"TCP\"} 1"),
        "{body}"
    );

    // A Prometheus server of the test's own, in the client namespace.
    let dir = lab.log_dir().join("prometheus");
    std::fs::create_dir_all(dir.join("data"))?;
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {ALERTS}\nscrape_configs:\n  - job_name: lvs\n    static_configs:\n      - targets: ['{METRICS}']\n"
        ),
    )?;
    let api = format!("{}:9090", lab.client_addrs()[0]);
    let prom = lab.spawn(
        lab.client_ns(),
        &[
            "prometheus",
            &format!("--config.file={}", cfg.display()),
            &format!("--storage.tsdb.path={}", dir.join("data").display()),
            &format!("--web.listen-address={api}"),
            "--log.level=warn",
        ],
    )?;
    let prom_log = || {
        lab.log_path(prom)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };

    // Traffic, then a pause so every counter has settled.
    let r = load_every_client(&lab, 3, 10)?;
    r.ensure_no_failures()?;
    std::thread::sleep(Duration::from_millis(500));
    let want = lvsadm_stats(&lab, &bpffs.0)?;
    ensure!(want.conns >= 120, "{} connections", want.conns);

    let sel = "vip=\"198.18.0.100\",port=\"80\",proto=\"TCP\"";
    let checks: Vec<(String, u64)> = [
        (
            format!("lvs_service_connections_total{{{sel}}}"),
            want.conns,
        ),
        (format!("lvs_service_packets_total{{{sel}}}"), want.pkts),
        (format!("lvs_service_bytes_total{{{sel}}}"), want.bytes),
        (
            format!("sum(lvs_real_server_connections_total{{{sel}}})"),
            want.conns,
        ),
    ]
    .into_iter()
    .chain(want.reals.iter().map(|(rs, n)| {
        (
            format!("lvs_real_server_connections_total{{{sel},real_server=\"{rs}\"}}"),
            *n,
        )
    }))
    .collect();
    let mut last = Vec::new();
    let matched = wait_until(
        "PromQL over the scraped series = lvsadm --stats --exact",
        Duration::from_secs(30),
        Duration::from_millis(500),
        || {
            last = checks
                .iter()
                .map(|(q, w)| (q.clone(), *w, query(&lab, &api, q).ok().flatten()))
                .collect();
            last.iter().all(|(_, w, got)| *got == Some(*w))
        },
    );
    matched.with_context(|| format!("{last:#?}\nprometheus log:\n{}", prom_log()))?;
    println!("PromQL = lvsadm: {last:?}");

    // Quorum and VRRP, as the alert rules read them.
    assert_eq!(
        query(&lab, &api, &format!("lvs_service_quorum_up{{{sel}}}"))?,
        Some(1)
    );
    assert_eq!(
        query(&lab, &api, "lvs_vrrp_master{vrrp_instance=\"VI_1\"}")?,
        Some(1)
    );

    // The shipped rules are loaded and every one evaluates cleanly over
    // the real series.
    let rules = lab.exec_ok(
        lab.client_ns(),
        &["curl", "-sf", &format!("http://{api}/api/v1/rules")],
    )?;
    let v: serde_json::Value = serde_json::from_str(&rules)?;
    let list = v["data"]["groups"][0]["rules"]
        .as_array()
        .context("rules")?;
    assert!(list.len() >= 7, "{rules}");
    for r in list {
        assert_eq!(r["health"], "ok", "rule {} health: {r}", r["name"]);
    }
    let firing: Vec<&str> = list
        .iter()
        .filter(|r| r["state"] == "firing")
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(firing.is_empty(), "nothing is wrong, yet {firing:?} fire");

    lab.kill(prom)?;
    Ok(())
}
