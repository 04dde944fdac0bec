//! TCP_CHECK in the lab: stop a real server's HTTP process under steady
//! client load; lvsd takes it out within keepalived's bound, after which no
//! request fails; start it again and it is back within a delay_loop, the
//! split following the weights again.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use common::{wait_forwarding, Bpffs, Director};
use lvs_testkit::{http_get, Lab, LabSpec};

const DELAY_LOOP: u64 = 1;
const CONNECT_TIMEOUT: u64 = 1;
const RETRY: u64 = 1;
const DELAY_BEFORE_RETRY: u64 = 1;

fn config() -> String {
    let mut s = String::from(
        "vrrp_instance VI_1 {\n interface bond0\n virtual_router_id 20\n priority 100\n virtual_ipaddress {\n  198.18.0.100/16 dev bond0\n }\n}\nvirtual_server 198.18.0.100 80 {\n lb_algo wrr\n lb_kind DR\n protocol TCP\n",
    );
    s += &format!(" delay_loop {DELAY_LOOP}\n");
    for (n, w) in [(1, 1), (2, 1), (3, 1)] {
        s += &format!(
            " real_server 198.18.0.{} 80 {{\n  weight {w}\n  TCP_CHECK {{\n   connect_timeout {CONNECT_TIMEOUT}\n   retry {RETRY}\n   delay_before_retry {DELAY_BEFORE_RETRY}\n  }}\n }}\n",
            10 + n
        );
    }
    s + "}\n"
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_dead_real_server_is_removed_in_time_and_no_request_fails_after() -> Result<()> {
    let lab = Lab::create(LabSpec::sized(3, 60))?;
    let bpffs = Bpffs::mount(&lab)?;
    let status_file = lab.log_dir().join("status.json");
    let d = Director::forwarding_with(
        &lab,
        &bpffs.0,
        &config(),
        &["--status-file", status_file.to_str().context("path")?],
    )?;
    d.wait_log(
        "Activating healthchecker for service [198.18.0.13]:tcp:80",
        Duration::from_secs(5),
    )?;

    let bound = Duration::from_secs(
        DELAY_LOOP + CONNECT_TIMEOUT * (RETRY + 1) + DELAY_BEFORE_RETRY * RETRY,
    );
    let stopped_at = Instant::now();
    lab.stop_real_server_httpd(2)?;
    // Steady load meanwhile: requests that land on rs3 before its removal
    // fail (connection refused); none may fail after.
    let removed = Arc::new(AtomicBool::new(false));
    let failures_after = Arc::new(AtomicU64::new(0));
    let ok_after = Arc::new(AtomicU64::new(0));
    let clients = lab.client_addrs().to_vec();
    let removal_time = std::thread::scope(|scope| -> Result<Duration> {
        let (removed2, failures2, ok2) =
            (removed.clone(), failures_after.clone(), ok_after.clone());
        let lab_ref = &lab;
        let clients = &clients;
        let load = scope.spawn(move || {
            let _ = lab_ref.run_in_netns(lab_ref.client_ns(), || {
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut i = 0;
                let mut after_removal = 0;
                while Instant::now() < deadline && after_removal < 300 {
                    let was_removed = removed2.load(Ordering::SeqCst);
                    let r = http_get(
                        clients[i % clients.len()],
                        lab_ref.service(),
                        Duration::from_secs(2),
                    );
                    if was_removed {
                        after_removal += 1;
                        match r {
                            Ok(_) => ok2.fetch_add(1, Ordering::SeqCst),
                            Err(e) => {
                                eprintln!("request after removal failed: {e:#}");
                                failures2.fetch_add(1, Ordering::SeqCst)
                            }
                        };
                    }
                    i += 1;
                }
            });
        });
        d.wait_log(
            "Removing service [198.18.0.13]:tcp:80 from VS [198.18.0.100]:tcp:80",
            bound + Duration::from_secs(5),
        )?;
        let t = stopped_at.elapsed();
        // Give in-flight requests that were already scheduled a moment.
        std::thread::sleep(Duration::from_millis(200));
        removed.store(true, Ordering::SeqCst);
        load.join().expect("load thread");
        Ok(t)
    })?;
    println!(
        "rs3 removed {:.2} s after its HTTP server stopped (bound: delay_loop + connect_timeout × (retry+1) + delay_before_retry × retry = {} s)",
        removal_time.as_secs_f64(),
        bound.as_secs()
    );
    assert!(
        removal_time <= bound + Duration::from_millis(1500),
        "removed within the bound"
    );
    assert_eq!(
        failures_after.load(Ordering::SeqCst),
        0,
        "no request failed after the removal"
    );
    assert!(ok_after.load(Ordering::SeqCst) >= 300);

    // What the operator sees: lvsadm --health and --vrrp from lvsd's status.
    std::thread::sleep(Duration::from_millis(1200));
    let lvsadm = common::own_bin("lvsadm");
    let st = status_file.to_string_lossy().into_owned();
    let run = |flag: &str| -> Result<String> {
        let out = std::process::Command::new(&lvsadm)
            .args([flag, "--status-file", &st])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let health = run("--health")?;
    println!("{health}");
    let line = health
        .lines()
        .find(|l| l.contains("198.18.0.13:80"))
        .unwrap_or_default();
    assert!(
        line.contains("DOWN") && line.contains("TCP_CHECK") && line.contains("refused"),
        "{health}"
    );
    assert!(
        health
            .lines()
            .any(|l| l.contains("198.18.0.11:80") && l.contains("UP")),
        "{health}"
    );
    let vrrp = run("--vrrp")?;
    assert!(vrrp.contains("VI_1") && vrrp.contains("bond0"), "{vrrp}");

    // Back: within one delay_loop (plus the probe itself), split even again.
    let started = Instant::now();
    lab.start_real_server_httpd(2)?;
    // (Its first "Adding service" was at start-up.)
    d.wait_log_count(
        "Adding service [198.18.0.13]:tcp:80 to VS [198.18.0.100]:tcp:80",
        2,
        Duration::from_secs(DELAY_LOOP + 3),
    )?;
    println!(
        "rs3 back {:.2} s after its HTTP server started",
        started.elapsed().as_secs_f64()
    );
    let r = common::load_every_client(&lab, 6, 20)?;
    r.ensure_no_failures()?;
    r.ensure_weights(&[("rs1", 1), ("rs2", 1), ("rs3", 1)], 0.05)?;
    Ok(())
}

/// A real server config with the given checker block (config text inside
/// the real_server braces).
fn config_checked(checkers: &[(u8, u32, String)]) -> String {
    let mut s = String::from(
        "vrrp_instance VI_1 {\n state MASTER\n interface bond0\n virtual_router_id 20\n priority 200\n virtual_ipaddress {\n  198.18.0.100/16 dev bond0\n }\n}\nvirtual_server 198.18.0.100 80 {\n delay_loop 1\n lb_algo wrr\n lb_kind DR\n protocol TCP\n",
    );
    for (n, w, check) in checkers {
        s += &format!(
            " real_server 198.18.0.{} 80 {{\n  weight {w}\n{check} }}\n",
            10 + n
        );
    }
    s + "}\n"
}

fn http_get_block(digest: &str, status: &str) -> String {
    format!(
        "  HTTP_GET {{\n   url {{\n    path /\n    digest {digest}\n    status_code {status}\n   }}\n   connect_timeout 1\n   retry 0\n  }}\n"
    )
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn http_get_status_and_digest_and_ssl_get() -> Result<()> {
    let lab = Lab::create(LabSpec::sized(3, 30))?;
    // lvs-lab-httpd answers "<name>\n".
    let md5 = |s: &str| {
        use md5::{Digest, Md5};
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    // rs3 gets a TLS server on 443 (self-signed, made here).
    let cert = rcgen::generate_simple_self_signed(vec!["rs3".into()])?;
    let (cert_der, key_der) = (cert.cert.der().to_vec(), cert.key_pair.serialize_der());
    let tls_ns = lab.real_server_ns(2).to_owned();
    let _tls = lvs_testkit::netns::spawn_thread(&tls_ns, move || tls_server(cert_der, key_der))?;
    let ssl_block = format!(
        "  SSL_GET {{\n   url {{\n    path /\n    digest {}\n   }}\n   connect_port 443\n   connect_timeout 1\n   retry 0\n  }}\n",
        md5("tls-rs3\n")
    );
    let bpffs = Bpffs::mount(&lab)?;
    let mut d = Director::new(
        &lab,
        &bpffs.0,
        &config_checked(&[
            (1, 1, http_get_block(&md5("rs1\n"), "200")),
            (2, 1, http_get_block(&md5("not rs2\n"), "200")),
            (3, 1, ssl_block),
        ]),
    )?;
    d.start()?;
    wait_forwarding(&lab)?;
    // rs2's digest is wrong: it goes down; rs1 and rs3 (over TLS) stay up.
    d.wait_log(
        "Removing service [198.18.0.12]:tcp:80 from VS [198.18.0.100]:tcp:80",
        Duration::from_secs(6),
    )?;
    std::thread::sleep(Duration::from_secs(2));
    let log = d.log();
    assert!(
        log.contains("MD5 digest error to server [198.18.0.12]:tcp:80"),
        "{log}"
    );
    assert!(!log.contains("Removing service [198.18.0.11]"), "{log}");
    assert!(
        !log.contains("Removing service [198.18.0.13]"),
        "SSL_GET up:\n{log}"
    );
    let r = common::load_every_client(&lab, 4, 10)?;
    r.ensure_no_failures()?;
    r.ensure_weights(&[("rs1", 1), ("rs3", 1)], 0.05)?;

    // A wrong status code takes rs1 down too.
    d.reload(&config_checked(&[
        (1, 1, http_get_block(&md5("rs1\n"), "201-299")),
        (2, 1, String::new()),
        (3, 1, String::new()),
    ]))?;
    for line in [
        "HTTP status code error to server [198.18.0.11]:tcp:80",
        "Removing service [198.18.0.11]:tcp:80 from VS [198.18.0.100]:tcp:80",
    ] {
        d.wait_log(line, Duration::from_secs(6))?;
    }
    Ok(())
}

/// A tiny HTTPS server answering "tls-rs3\n" (runs in rs3's namespace).
fn tls_server(cert: Vec<u8>, key: Vec<u8>) {
    use std::sync::Arc;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(cert)],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let l = tokio::net::TcpListener::bind("0.0.0.0:443").await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while let Ok(Ok((s, _))) = tokio::time::timeout_at(deadline, l.accept()).await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                if let Ok(mut t) = acceptor.accept(s).await {
                    let mut buf = [0u8; 1024];
                    let _ = t.read(&mut buf).await;
                    let _ = t
                        .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\ntls-rs3\n")
                        .await;
                    let _ = t.shutdown().await;
                }
            });
        }
    });
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn misc_dynamic_sets_the_weight_and_the_split_follows() -> Result<()> {
    let lab = Lab::create(LabSpec::sized(2, 60))?;
    // The script exits with whatever the file says: 2 + weight.
    let (knob, script) = common::misc_exit_knob(&lab, "rs2-exit", "3")?; // weight 1
    let block = format!(
        "  MISC_CHECK {{\n   misc_path \"{script}\"\n   misc_timeout 2\n   misc_dynamic\n  }}\n"
    );
    let bpffs = Bpffs::mount(&lab)?;
    let mut d = Director::new(
        &lab,
        &bpffs.0,
        &config_checked(&[(1, 1, String::new()), (2, 1, block)]),
    )?;
    d.start()?;
    wait_forwarding(&lab)?;
    std::thread::sleep(Duration::from_secs(2));
    let r = common::load_every_client(&lab, 4, 10)?;
    r.ensure_no_failures()?;
    r.ensure_weights(&[("rs1", 1), ("rs2", 1)], 0.05)?;
    std::fs::write(&knob, "5")?; // weight 3
    std::thread::sleep(Duration::from_secs(3));
    let r = common::load_every_client(&lab, 4, 10)?;
    r.ensure_no_failures()?;
    println!("misc_dynamic weight 3: {}", r.summary());
    r.ensure_weights(&[("rs1", 1), ("rs2", 3)], 0.05)?;
    std::fs::write(&knob, "1")?; // down
    d.wait_log(
        "Removing service [198.18.0.12]:tcp:80",
        Duration::from_secs(5),
    )?;
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn sorry_server_takes_over_when_quorum_is_lost_and_scripts_run() -> Result<()> {
    let lab = Lab::create(LabSpec::sized(3, 30))?;
    let events = lab.log_dir().join("quorum-events");
    let tcp = "  TCP_CHECK {\n   connect_timeout 1\n   retry 0\n  }\n".to_string();
    let cfg = config_checked(&[(1, 1, tcp.clone()), (2, 1, tcp)]).replace(
        " delay_loop 1\n",
        &format!(
            " delay_loop 1\n quorum 2\n hysteresis 0\n sorry_server 198.18.0.13 80\n quorum_up \"/bin/sh -c 'echo up >> {e}'\"\n quorum_down \"/bin/sh -c 'echo down >> {e}'\"\n",
            e = events.display()
        ),
    );
    let bpffs = Bpffs::mount(&lab)?;
    let d = Director::forwarding(&lab, &bpffs.0, &cfg)?;
    // One down: weight 1 < quorum 2 — the sorry server answers everything.
    lab.stop_real_server_httpd(0)?;
    sorry_server_takes_all(&lab, &d)?;
    script_ran(&events, "down")?;
    // Back: quorum gained, the real servers again, quorum_up ran.
    lab.start_real_server_httpd(0)?;
    d.wait_log("Gained quorum", Duration::from_secs(6))?;
    let r = common::load_every_client(&lab, 2, 10)?;
    r.ensure_no_failures()?;
    r.ensure_weights(&[("rs1", 1), ("rs2", 1)], 0.1)?;
    script_ran(&events, "up")?;
    Ok(())
}

/// Waits (3 s at most) until the quorum scripts have written `word` to
/// `events`.
fn script_ran(events: &std::path::Path, word: &str) -> Result<()> {
    lvs_testkit::wait_until(
        &format!("quorum_{word} ran"),
        Duration::from_secs(3),
        Duration::from_millis(50),
        || std::fs::read_to_string(events).is_ok_and(|s| s.contains(word)),
    )
}

/// Quorum lost: lvsd says so and puts the sorry server (rs3) in; every
/// new connection goes to it.
fn sorry_server_takes_all(lab: &Lab, d: &Director) -> Result<()> {
    d.wait_log("Lost quorum", Duration::from_secs(6))?;
    d.wait_log("using its sorry server", Duration::from_secs(3))?;
    let r = common::load_every_client(lab, 2, 10)?;
    r.ensure_no_failures()?;
    anyhow::ensure!(
        r.count("rs3") == r.total(),
        "new connections all to the sorry server: {}",
        r.summary()
    );
    Ok(())
}

/// keepalived on quorum loss with a sorry server deletes the alive real
/// servers, except that an `inhibit_on_failure` one is set to weight 0
/// instead (ipvs_cmd turns DELDEST into EDITDEST): its established
/// connections go on while the sorry server takes every new one.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn quorum_loss_keeps_inhibit_on_failure_connections_working() -> Result<()> {
    let lab = Lab::create(LabSpec::sized(3, 40))?;
    // rs1's check is whatever this file says (0 up, 1 down).
    let (knob, cfg) = common::rs1_misc_checked(
        &lab,
        " quorum 2\n hysteresis 0\n sorry_server 198.18.0.13 80\n",
        "  inhibit_on_failure\n",
    )?;
    let bpffs = Bpffs::mount(&lab)?;
    let mut d = Director::new(&lab, &bpffs.0, &cfg)?;
    d.start()?;
    wait_forwarding(&lab)?;
    let conns = common::keep_alive_clients(&lab, lab.client_addrs())?;
    let on_rs2: Vec<_> = conns.into_iter().filter(|(_, s)| s == "rs2").collect();
    let kept = on_rs2.len();
    anyhow::ensure!(kept > 0, "some connections on rs2");
    let streamer = common::Streamer::start(on_rs2);
    std::thread::sleep(Duration::from_secs(1));

    // rs1 fails: weight 1 < quorum 2. The sorry server comes in; rs2
    // (up, inhibit_on_failure) stays at weight 0.
    std::fs::write(&knob, "1")?;
    sorry_server_takes_all(&lab, &d)?;
    std::thread::sleep(Duration::from_secs(2));
    let (broken, done, mut on_rs2) = streamer.finish();
    eprintln!("quorum lost: {kept} connections kept on rs2, {done} requests, {broken} failed");
    anyhow::ensure!(
        broken == 0,
        "{broken} of {done} requests on rs2's connections broke with quorum lost"
    );
    common::ensure_same_servers(&lab, &mut on_rs2, "with quorum lost")?;
    Ok(())
}
