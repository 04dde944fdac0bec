//! HTTP_GET and SSL_GET in the lab, the checkers alone: the checkers run in
//! the director's namespace; real server 1 runs `lvs-lab-httpd` (body
//! `rs1\n`), real server 2 a TLS server this test runs in its namespace
//! (tokio-rustls, a self-signed certificate made here with rcgen).
//!
//! - the right digest (from `genhash`, equal to MD5 of the body) → Up;
//! - a status code range the server does not answer → Down;
//! - a digest mismatch → Down; a regex matching the body → Up, not → Down;
//! - SSL_GET with SNI and the TLS body's digest → Up, the server saw the SNI;
//! - a reload that breaks the good digest → Down (the changed checker
//!   restarts, presumed up, and fails).
//!
//! Needs root, `ip`, `ethtool` and `lvs-lab-httpd`.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use lvs_userspace::check::{genhash, CheckEvent, Checkers, GenhashOptions, Proto, RsKey};

mod check_util;
use check_util::*;
use md5::{Digest, Md5};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};

const TLS_BODY: &str = "tls-ok\n";
const SNI: &str = "rs2.lab.example";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn tcp_key(vs_port: u16, rs_last: u8, rs_port: u16) -> RsKey {
    key(Proto::Tcp, vs_port, rs_last, rs_port)
}

fn vs(port: u16, rs: &str, rs_port: u16, checker: &str) -> String {
    format!(
        "virtual_server 198.18.0.100 {port} {{\n delay_loop 1\n lb_kind DR\n protocol TCP\n real_server {rs} {rs_port} {{\n  {checker}\n }}\n}}\n"
    )
}

fn config(good_digest: &str, tls_digest: &str) -> lvs_config::Config {
    let http = |url: &str| {
        format!("HTTP_GET {{\n   url {{\n    {url}\n   }}\n   connect_timeout 1\n   retry 0\n   warmup 0\n  }}")
    };
    // rs1's HTTP server, one virtual server per check.
    let mut s: String = [
        (80, format!("path /\n    digest {good_digest}")),
        (81, "path /\n    status_code 404".into()),
        (
            82,
            "path /\n    digest 00000000000000000000000000000000".into(),
        ),
        (83, "path /\n    regex \"^rs[0-9]\"".into()),
        (84, "path /\n    regex \"^nomatch\"".into()),
    ]
    .iter()
    .map(|(port, url)| vs(*port, "198.18.0.11", 80, &http(url)))
    .collect();
    s += &vs(
        443,
        "198.18.0.12",
        443,
        &format!(
            "SSL_GET {{\n   url {{\n    path /health\n    digest {tls_digest}\n    status_code 200-299\n   }}\n   enable_sni\n   sni_name {SNI}\n   connect_timeout 1\n   retry 0\n   warmup 0\n  }}"
        ),
    );
    parse(&s)
}

/// A TLS server answering every request with `TLS_BODY`, until `stop`.
/// Records the SNI it was given.
async fn tls_server(
    listen: SocketAddr,
    stop: Arc<AtomicBool>,
    sni_seen: Arc<Mutex<Vec<String>>>,
) -> Result<()> {
    let ck = rcgen::generate_simple_self_signed(vec![SNI.to_string()])?;
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok((tcp, _))) =
            tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
        else {
            continue;
        };
        let acceptor = acceptor.clone();
        let sni_seen = sni_seen.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            if let Some(n) = tls.get_ref().1.server_name() {
                sni_seen.lock().unwrap().push(n.to_string());
            }
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let resp = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{TLS_BODY}",
                TLS_BODY.len()
            );
            let _ = tls.write_all(resp.as_bytes()).await;
            let _ = tls.shutdown().await;
        });
    }
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn http_get_and_ssl_get() -> Result<()> {
    let lab = small_lab(2)?;
    let stop = Arc::new(AtomicBool::new(false));
    let sni_seen = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let (stop, sni_seen) = (stop.clone(), sni_seen.clone());
        lvs_testkit::netns::spawn_thread(lab.real_server_ns(1), move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(tls_server("0.0.0.0:443".parse()?, stop, sni_seen))
        })?
    };
    let result = lab.run_in_netns(lab.director_ns(0), || -> Result<()> {
        runtime()?.block_on(async {
            // genhash = MD5 of the body, as keepalived's genhash prints it.
            let rs1: SocketAddr = "198.18.0.11:80".parse()?;
            let digest = genhash(rs1, "/", &GenhashOptions::default()).await?;
            assert_eq!(digest.digest, hex(&Md5::digest(b"rs1\n")));
            assert_eq!(digest.status, 200);
            let tls_opts = GenhashOptions {
                tls: true,
                sni: true,
                virtualhost: Some(SNI.into()),
                ..GenhashOptions::default()
            };
            let t = Instant::now();
            let tls_digest = loop {
                match genhash("198.18.0.12:443".parse()?, "/health", &tls_opts).await {
                    Ok(d) => break d.digest,
                    Err(e) if t.elapsed() < Duration::from_secs(5) => {
                        eprintln!("  (TLS server not ready: {e})");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            assert_eq!(tls_digest, hex(&Md5::digest(TLS_BODY.as_bytes())));
            println!(
                "genhash rs1 / = {}, rs2 https /health = {tls_digest}",
                digest.digest
            );

            let (tx, mut rx) = mpsc::channel(64);
            let mut checkers = Checkers::new(tx);
            checkers.reconcile(&config(&digest.digest, &tls_digest));
            let mut pending = vec![
                ("HTTP_GET right digest Up", tcp_key(80, 11, 80), true),
                ("HTTP_GET wrong status Down", tcp_key(81, 11, 80), false),
                ("HTTP_GET digest mismatch Down", tcp_key(82, 11, 80), false),
                ("SSL_GET Up", tcp_key(443, 12, 443), true),
                ("HTTP_GET regex match Up", tcp_key(83, 11, 80), true),
                ("HTTP_GET regex mismatch Down", tcp_key(84, 11, 80), false),
            ];
            let deadline = Instant::now() + Duration::from_secs(5);
            while !pending.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                let (ev, _) = wait_event(&mut rx, left, "HTTP verdicts", |_| true).await?;
                let (k, up, reason) = match &ev {
                    CheckEvent::Up { rs } => (rs.clone(), true, String::new()),
                    CheckEvent::Down { rs, reason } => (rs.clone(), false, reason.clone()),
                    CheckEvent::Weight { .. } => continue,
                };
                let Some(i) = pending.iter().position(|p| p.1 == k) else {
                    bail!("unexpected {ev:?}");
                };
                let (what, _, want_up) = pending.remove(i);
                assert_eq!(up, want_up, "{what}: {ev:?}");
                println!("{what}: ok {reason}");
                if !up {
                    assert!(reason.contains("HTTP_GET"), "{reason}");
                }
            }
            assert!(
                sni_seen.lock().unwrap().iter().any(|s| s == SNI),
                "the TLS server saw no SNI {SNI}"
            );

            // Reload with a wrong digest for VS :80: that checker restarts
            // and fails; and back.
            let vs80 = tcp_key(80, 11, 80);
            for (digest80, up) in [
                ("ffffffffffffffffffffffffffffffff", false),
                (digest.digest.as_str(), true),
            ] {
                checkers.reconcile(&config(digest80, &tls_digest));
                let what = format!("VS :80 {}", if up { "Up" } else { "Down" });
                let (is_up, is_down) = (is_up(&vs80), is_down(&vs80));
                let verdict = |e: &CheckEvent| if up { is_up(e) } else { is_down(e) };
                wait_event(&mut rx, Duration::from_secs(3), &what, verdict).await?;
            }
            checkers.shutdown().await;
            Ok(())
        })
    });
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    result?
}
