//! `lvsd -f` on a lab copy of the seed's keepalived.conf: real HTTP traffic
//! through the XDP data path, persistence, SIGHUP reloads under load, and
//! kill -9 + restart without losing a connection.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::{
    net::Ipv4Addr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};
use common::{
    ensure_same_servers, keep_alive_clients, load_every_client, seed_lab_config, wait_forwarding,
    Bpffs, Director, Family,
};
use lvs_testkit::{http_get, http_load, Lab, LabSpec};

fn lab() -> Result<Lab> {
    Lab::create(LabSpec {
        second_client_net: true,
        second_client_addrs: 30,
        ..LabSpec::sized(5, 120)
    })
}

#[test]
fn lvsd_config_test_on_the_seed_reports_its_slips() -> Result<()> {
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../lvs-config/tests/configs/seed.conf.orig"
    );
    let (code, text) = common::lvsd_test_config(seed.as_ref())?;
    assert!(matches!(code, Some(0 | 4)), "exit {code:?}: {text}");
    assert!(
        text.contains("seed.conf.orig:41:"),
        "VIP slip with line:col: {text}"
    );
    assert!(text.contains("222.211.74.42"), "{text}");
    assert!(text.contains("brd"), "brd slip: {text}");

    let broken = std::env::temp_dir().join(format!("lvsd-broken-{}.conf", std::process::id()));
    std::fs::write(
        &broken,
        "virtual_server 198.18.0.100 80 {\n  lb_kind DR\n  real_server 198.18.0.300 80 {\n  }\n}\n",
    )?;
    let (code, text) = common::lvsd_test_config(&broken)?;
    std::fs::remove_file(&broken)?;
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains(":3:15:"),
        "bad IP pointed at line 3 col 15: {text}"
    );
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lvsd_forwards_the_seed_with_its_weights_and_persistence() -> Result<()> {
    let lab = lab()?;
    let bpffs = Bpffs::mount(&lab)?;
    let d = Director::forwarding(&lab, &bpffs.0, &seed_lab_config())?;

    // 120 clients × 5 connections each.
    let report = common::load_every_client(&lab, 5, 40)?;
    println!("seed via lvsd: {}", report.summary());
    report.ensure_no_failures()?;
    assert_eq!(
        report.max_servers_per_client(),
        1,
        "persistence 120: one server per client"
    );
    // Each client got one template, scheduled by wrr 2:3:3:2:2.
    let names: Vec<String> = (0..5).map(|i| lab.real_server_name(i)).collect();
    let w = [2u32, 3, 3, 2, 2];
    let weights: Vec<(&str, u32)> = names.iter().map(String::as_str).zip(w).collect();
    report.ensure_weights(&weights, 0.05)?;

    // Another client network is scheduled independently.
    let r2 = common::load_second_network_pinned(&lab, 3)?;
    assert!(
        r2.per_body.len() >= 3,
        "second network spread: {}",
        r2.summary()
    );

    // The agent's datapath is inspectable from outside, like ipvsadm -ln.
    let svcs = d.inspect()?.services()?;
    assert_eq!(svcs.len(), 1);
    assert_eq!(svcs[0].svc.persist_timeout_s, 120);
    let log = d.log();
    assert!(
        log.contains("Adding service [198.18.0.11]:tcp:80 to VS [198.18.0.100]:tcp:80"),
        "{log}"
    );

    // lvsadm, as the operator runs it: the connection counts follow the
    // weights, and -lnc lists every connection and template.
    let lvsadm_args = |extra: &[&str]| common::lvsadm(&lab, &bpffs.0, extra);
    let ln = lvsadm_args(&["-L", "-n"])?;
    println!("{ln}");
    assert!(
        ln.contains("TCP  198.18.0.100:80 wrr persistent 120\n"),
        "{ln}"
    );
    let inact: Vec<u64> = ln
        .lines()
        .filter(|l| l.starts_with("  -> 198.18.0.1"))
        .map(|l| l.split_whitespace().nth(5).unwrap().parse().unwrap())
        .collect();
    let total: u64 = inact.iter().sum();
    assert!(
        total >= 600,
        "every finished connection is listed: {inact:?}"
    );
    for (n, w) in inact.iter().zip([2.0, 3.0, 3.0, 2.0, 2.0]) {
        let share = *n as f64 / total as f64;
        assert!(
            (share - w / 12.0).abs() <= 0.06,
            "InActConn {inact:?} follow 2:3:3:2:2"
        );
    }
    let lnc = lvsadm_args(&["-L", "-n", "-c"])?;
    let conns = lnc
        .lines()
        .filter(|l| l.starts_with("TCP ") && !l.contains(" NONE "))
        .count();
    let templates = lnc.lines().filter(|l| l.contains(" NONE ")).count();
    assert!(
        conns as u64 >= total,
        "-lnc lists the connections ({conns})"
    );
    assert!(
        templates >= 150,
        "and one template per client ({templates})"
    );
    assert!(
        lnc.lines()
            .any(|l| l.contains("TIME_WAIT") || l.contains("FIN_WAIT") || l.contains("CLOSE")),
        "{lnc}"
    );

    d.stop()?;
    Ok(())
}

/// The seed without persistence (so the split follows weights per
/// connection) and with the real servers given.
fn config_with(reals: &[(u8, u32)]) -> String {
    let mut s = String::from(
        "vrrp_instance VI_1 {\n state MASTER\n interface bond0\n virtual_router_id 20\n priority 200\n advert_int 1\n virtual_ipaddress {\n  198.18.0.100/16 dev bond0 label bond0:1\n }\n}\nvirtual_server 198.18.0.100 80 {\n delay_loop 6\n lb_algo wrr\n lb_kind DR\n protocol TCP\n",
    );
    for (n, w) in reals {
        s += &format!(
            " real_server 198.18.0.{} 80 {{\n  weight {w}\n }}\n",
            10 + n
        );
    }
    s + "}\n"
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn sighup_under_load_changes_weights_adds_and_drains_without_a_failure() -> Result<()> {
    let lab = lab()?;
    let bpffs = Bpffs::mount(&lab)?;
    let mut d = Director::new(
        &lab,
        &bpffs.0,
        &config_with(&[(1, 1), (2, 1), (3, 1), (4, 1)]),
    )?;
    d.start()?;
    wait_forwarding(&lab)?;

    // Long-lived keep-alive connections, one per client address 100..119.
    let long_clients: Vec<Ipv4Addr> = lab.client_addrs()[100..120].to_vec();
    let mut long = keep_alive_clients(&lab, &long_clients)?;
    ensure!(
        long.iter().any(|(_, s)| s == "rs4"),
        "some long connection on rs4 (to be removed)"
    );

    // A steady stream of short connections in the background.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let short_clients: Vec<Ipv4Addr> = lab.client_addrs()[..100].to_vec();
    std::thread::scope(|scope| -> Result<()> {
        let (stop2, failures2, done2) = (stop.clone(), failures.clone(), done.clone());
        let lab_ref = &lab;
        let clients = &short_clients;
        scope.spawn(move || {
            let _ = lab_ref.run_in_netns(lab_ref.client_ns(), || {
                let mut i = 0;
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match http_get(
                        clients[i % clients.len()],
                        lab_ref.service(),
                        Duration::from_secs(3),
                    ) {
                        Ok(_) => done2.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("short request failed: {e:#}");
                            failures2.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    i += 1;
                }
            });
        });

        std::thread::sleep(Duration::from_millis(500));
        // Weight change (rs1 1 → 3), add rs5, remove rs4.
        d.reload(&config_with(&[(1, 3), (2, 1), (3, 1), (5, 1)]))?;
        d.wait_log(
            "Adding service [198.18.0.15]:tcp:80",
            Duration::from_secs(10),
        )?;
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })?;
    let short_done = done.load(Ordering::Relaxed);
    println!(
        "short requests during the reload: {short_done} ok, {} failed",
        failures.load(Ordering::Relaxed)
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no failed request");
    assert!(short_done > 50);

    // Every long-lived connection still works on its server, rs4 (drained) included.
    ensure_same_servers(&lab, &mut long, "after the reload")?;

    // New connections follow the new weights 3:1:1:1 over rs1,2,3,5; none to rs4.
    let report = http_load(&lab, lab.client_ns(), &short_clients, lab.service(), 6, 40)?;
    report.ensure_no_failures()?;
    report.ensure_weights(&[("rs1", 3), ("rs2", 1), ("rs3", 1), ("rs5", 1)], 0.05)?;

    // An invalid file is refused; the old config keeps forwarding.
    d.reload("virtual_server 198.18.0.100 80 {\n real_server 198.18.0.999 80 {\n")?;
    d.wait_log("new configuration refused", Duration::from_secs(10))?;
    let r = http_load(
        &lab,
        lab.client_ns(),
        &short_clients[..30],
        lab.service(),
        2,
        10,
    )?;
    r.ensure_no_failures()?;
    assert!(
        r.count("rs5") > 0,
        "still the last good config: {}",
        r.summary()
    );
    Ok(())
}

/// A reload applies what it can (a new real server) and says what only a
/// restart changes: here connection sync, which the new file turns on; the
/// running agent keeps it off and keeps forwarding.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_reload_says_what_only_a_restart_changes() -> Result<()> {
    let lab = lab()?;
    let bpffs = Bpffs::mount(&lab)?;
    let d = Director::forwarding(&lab, &bpffs.0, &config_with(&[(1, 1), (2, 1)]))?;
    let with_sync = config_with(&[(1, 1), (2, 1), (3, 1)]).replace(
        " interface bond0\n",
        " interface bond0\n lvs_sync_daemon_interface bond0\n",
    );
    d.reload(&with_sync)?;
    d.wait_log(
        "Adding service [198.18.0.13]:tcp:80",
        Duration::from_secs(10),
    )?;
    d.wait_log(
        "reload: connection sync would change from off to bond0 syncid 20 group 224.0.0.81 port 8848 ttl 1; it changes when lvsd is restarted",
        Duration::from_secs(1),
    )?;
    assert!(
        !d.log().contains("data path would attach"),
        "the interfaces did not change: {}",
        d.log()
    );
    assert!(
        !d.log().contains("Starting connection sync"),
        "sync stays off until a restart: {}",
        d.log()
    );
    let r = load_every_client(&lab, 1, 10)?;
    r.ensure_no_failures()?;
    assert!(r.count("rs3") > 0, "{}", r.summary());
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn kill_9_and_restart_loses_no_connection() -> Result<()> {
    let lab = lab()?;
    let bpffs = Bpffs::mount(&lab)?;
    let mut d = Director::new(
        &lab,
        &bpffs.0,
        &config_with(&[(1, 2), (2, 3), (3, 3), (4, 2), (5, 2)]),
    )?;
    d.start()?;
    wait_forwarding(&lab)?;
    let clients: Vec<Ipv4Addr> = lab.client_addrs()[..20].to_vec();
    let mut conns = keep_alive_clients(&lab, &clients)?;
    let before = d.inspect()?.services()?[0].stats.packets;

    d.signal(libc::SIGKILL)?;
    std::thread::sleep(Duration::from_millis(300));
    // No agent: the pinned program keeps forwarding.
    ensure_same_servers(&lab, &mut conns, "forwarding without an agent")?;

    d.start()?;
    d.wait_log("re-adopting the running data path", Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(1500));
    ensure_same_servers(&lab, &mut conns, "after the restart")?;
    let after = d.inspect()?.services()?[0].stats.packets;
    assert!(after > before, "counters continue: {before} → {after}");
    let report = common::load_every_client(&lab, 2, 20)?;
    report.ensure_no_failures()?;
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn metrics_agree_with_lvsadm_stats() -> Result<()> {
    let lab = lab()?;
    let bpffs = Bpffs::mount(&lab)?;
    let d = Director::forwarding_with(
        &lab,
        &bpffs.0,
        &config_with(&[(1, 2), (2, 3), (3, 3)]),
        &["--metrics", "198.18.0.2:9105"],
    )?;
    d.wait_log(
        "Serving metrics on http://198.18.0.2:9105/metrics",
        Duration::from_secs(5),
    )?;
    d.wait_log("(VI_1) Entering MASTER STATE", Duration::from_secs(10))?;
    let r = http_load(
        &lab,
        lab.client_ns(),
        &lab.client_addrs()[..40],
        lab.service(),
        3,
        10,
    )?;
    r.ensure_no_failures()?;
    std::thread::sleep(Duration::from_millis(200));
    let metrics = lab.exec_ok(
        lab.client_ns(),
        &["curl", "-sf", "http://198.18.0.2:9105/metrics"],
    )?;
    let stats = common::lvsadm(&lab, &bpffs.0, &["-L", "-n", "--stats", "--exact"])?;
    // The service line: Conns InPkts OutPkts InBytes OutBytes.
    let line = stats
        .lines()
        .find(|l| l.starts_with("TCP  198.18.0.100:80"))
        .context("service line")?;
    let cols: Vec<u64> = line
        .split_whitespace()
        .skip(2)
        .map(|c| c.parse().unwrap())
        .collect();
    let metric = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{vip=\"198.18.0.100\",port=\"80\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    // Counters only grow: the scrape came first, so it may be a little behind.
    let (conns, pkts, bytes) = (
        metric("lvs_service_connections_total"),
        metric("lvs_service_packets_total"),
        metric("lvs_service_bytes_total"),
    );
    assert_eq!(
        conns, cols[0],
        "connections: metrics {conns}, lvsadm {}\n{metrics}",
        cols[0]
    );
    assert!(
        pkts <= cols[1] && pkts + 20 >= cols[1],
        "packets {pkts} vs {}",
        cols[1]
    );
    assert!(
        bytes <= cols[3] && bytes + 20 * 1500 >= cols[3],
        "bytes {bytes} vs {}",
        cols[3]
    );
    assert!(
        metrics.contains("lvs_vrrp_master{vrrp_instance=\"VI_1\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("lvs_real_server_up{vip=\"198.18.0.100\",port=\"80\",proto=\"TCP\",real_server=\"198.18.0.11:80\"} 1"));
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lvsadm_works_while_lvsd_is_stopped_with_keep_datapath() -> Result<()> {
    let lab = lab()?;
    let bpffs = Bpffs::mount(&lab)?;
    let d = Director::forwarding_with(
        &lab,
        &bpffs.0,
        &config_with(&[(1, 1), (2, 1)]),
        &["--keep-datapath"],
    )?;
    d.stop()?;
    d.wait_log(
        "--keep-datapath: leaving the data path forwarding",
        Duration::from_secs(10),
    )?;
    // Still forwarding, and lvsadm reads it.
    let out = common::ensure_forwarding_without_lvsd(&lab, &bpffs.0, Family::V4, 10)?;
    assert!(out.contains("TCP  198.18.0.100:80 wrr\n"), "{out}");
    assert!(
        out.contains("  -> 198.18.0.12:80               Route   1"),
        "{out}"
    );
    Ok(())
}
