//! SSL_GET's reach against real TLS servers: Debian's `openssl s_server`
//! in a real server's namespace, TLS 1.2 only and TLS 1.3 only, each with
//! an RSA-2048, ECDSA P-256, P-384 and P-521 key made here by `openssl
//! req`: lvsd's SSL_GET (rustls with ring, plus RustCrypto's `p521` for
//! the P-521 handshake signature ring lacks) must pass every one. A TLS 1.2
//! server that offers only a CBC suite (OpenSSL's defaults allow it,
//! rustls has none) is where the two still differ: lvsd's SSL_GET is down
//! with a reason that says why.
//!
//! keepalived's side: its checker process needs IPVS, which this kernel
//! lacks, so keepalived 2.2.7's `genhash -S` (the same package, the same
//! OpenSSL client setup as SSL_GET) runs against the same servers; the
//! table of both is printed.
//!
//! Needs root, `ip`, `ethtool`, `openssl`; `genhash` (keepalived) for the
//! comparison column.

use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Result};
use lvs_userspace::check::{CheckEvent, Checkers};
use tokio::sync::mpsc;

mod check_util;
use check_util::*;

const KEYS: [(&str, &[&str]); 4] = [
    ("RSA-2048", &["-newkey", "rsa:2048"]),
    (
        "ECDSA P-256",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ),
    (
        "ECDSA P-384",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
    ),
    (
        "ECDSA P-521",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
    ),
];
const VERSIONS: [&str; 2] = ["-tls1_2", "-tls1_3"];
const BASE_PORT: u16 = 9000;

fn make_key(dir: &Path, i: usize, args: &[&str]) -> Result<()> {
    let key = dir.join(format!("k{i}.pem"));
    let cert = dir.join(format!("c{i}.pem"));
    let mut argv = vec!["openssl", "req", "-x509", "-nodes", "-days", "1"];
    argv.extend_from_slice(args);
    let (k, c) = (key.to_string_lossy(), cert.to_string_lossy());
    argv.extend_from_slice(&["-keyout", &k, "-out", &c, "-subj", "/CN=rs1.lab.test"]);
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()?;
    ensure!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ssl_get_against_openssl_tls12_tls13_rsa_and_ecdsa_keys() -> Result<()> {
    let lab = small_lab(1)?;
    let dir = lab_dir(&lab, "tls")?;
    for (i, (_, args)) in KEYS.iter().enumerate() {
        make_key(&dir, i, args)?;
    }
    // One s_server per (version, key).
    let mut cases = Vec::new();
    let mut conf = String::new();
    for (v, version) in VERSIONS.iter().enumerate() {
        for (i, (name, _)) in KEYS.iter().enumerate() {
            let port = BASE_PORT + (v * KEYS.len() + i) as u16;
            let accept = format!("198.18.0.11:{port}");
            let (c, k) = (dir.join(format!("c{i}.pem")), dir.join(format!("k{i}.pem")));
            let (c, k) = (c.to_string_lossy(), k.to_string_lossy());
            lab.spawn(
                lab.real_server_ns(0),
                &[
                    "openssl", "s_server", "-accept", &accept, "-cert", &c, "-key", &k, version,
                    "-www", "-quiet",
                ],
            )?;
            conf += &format!(
                "virtual_server 198.18.0.100 {port} {{\n delay_loop 2\n lb_kind DR\n protocol TCP\n\
                 real_server 198.18.0.11 {port} {{\n  SSL_GET {{\n   url {{\n    path /\n   }}\n   connect_timeout 2\n   retry 0\n   warmup 0\n  }}\n }}\n}}\n"
            );
            cases.push((port, if v == 0 { "TLS 1.2" } else { "TLS 1.3" }, *name));
        }
    }
    // TLS 1.2 with only a CBC suite, RSA-2048.
    let cbc_port = BASE_PORT + cases.len() as u16;
    {
        let accept = format!("198.18.0.11:{cbc_port}");
        let (c, k) = (dir.join("c0.pem"), dir.join("k0.pem"));
        let (c, k) = (c.to_string_lossy(), k.to_string_lossy());
        lab.spawn(
            lab.real_server_ns(0),
            &[
                "openssl",
                "s_server",
                "-accept",
                &accept,
                "-cert",
                &c,
                "-key",
                &k,
                "-tls1_2",
                "-cipher",
                "ECDHE-RSA-AES128-SHA",
                "-www",
                "-quiet",
            ],
        )?;
        conf += &format!(
            "virtual_server 198.18.0.100 {cbc_port} {{\n delay_loop 2\n lb_kind DR\n protocol TCP\n\
             real_server 198.18.0.11 {cbc_port} {{\n  SSL_GET {{\n   url {{\n    path /\n   }}\n   connect_timeout 2\n   retry 0\n   warmup 0\n  }}\n }}\n}}\n"
        );
        cases.push((cbc_port, "TLS 1.2", "RSA-2048 CBC"));
    }
    let parsed = lvs_config::parse_str("check_tls.conf", &conf, &Default::default());
    assert!(!parsed.diagnostics.has_errors(), "{:?}", parsed.diagnostics);
    let cfg = parsed.config;
    let have_genhash = std::process::Command::new("genhash")
        .arg("-h")
        .output()
        .is_ok();
    let results = lab.run_in_netns(
        lab.director_ns(0),
        || -> Result<BTreeMap<u16, (bool, String)>> {
            // Every server listens before the checkers start.
            for (port, ..) in &cases {
                let a: SocketAddr = format!("198.18.0.11:{port}").parse()?;
                let deadline = Instant::now() + Duration::from_secs(10);
                while TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_err() {
                    if Instant::now() > deadline {
                        bail!("openssl s_server on {a} did not start");
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            runtime()?.block_on(async {
                let (tx, mut rx) = mpsc::channel(64);
                let mut checkers = Checkers::new(tx);
                checkers.reconcile(&cfg);
                let mut got = BTreeMap::new();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                while got.len() < cases.len() {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(CheckEvent::Up { rs })) => {
                            got.insert(rs.vs_port, (true, String::new()));
                        }
                        Ok(Some(CheckEvent::Down { rs, reason })) => {
                            got.insert(rs.vs_port, (false, reason));
                        }
                        Ok(Some(_)) => {}
                        _ => bail!("timed out; results so far: {got:?}"),
                    }
                }
                checkers.shutdown().await;
                Ok(got)
            })
        },
    )??;
    let mut genhash = BTreeMap::new();
    if have_genhash {
        for (port, ..) in &cases {
            let p = port.to_string();
            let out = lab.exec(
                lab.director_ns(0),
                &[
                    "genhash",
                    "-S",
                    "-s",
                    "198.18.0.11",
                    "-p",
                    &p,
                    "-u",
                    "/",
                    "-t",
                    "3",
                ],
            )?;
            // genhash prints the page's MD5 digest, and exits 0, on success.
            let text = String::from_utf8_lossy(&out.stdout);
            let digest = text.trim();
            let ok = out.status.success()
                && digest.len() == 32
                && digest.bytes().all(|b| b.is_ascii_hexdigit());
            genhash.insert(*port, ok);
        }
    }
    println!(
        "{:<8} {:<12} {:<6} {:<8} lvsd reason",
        "TLS", "key", "lvsd", "genhash"
    );
    for (port, version, key) in &cases {
        let (up, reason) = &results[port];
        let g = match genhash.get(port) {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "-",
        };
        println!(
            "{version:<8} {key:<12} {:<6} {g:<8} {reason}",
            if *up { "pass" } else { "FAIL" }
        );
    }
    // keepalived (OpenSSL, Debian's policy) passes every one.
    for (port, version, key) in &cases {
        if let Some(ok) = genhash.get(port) {
            assert!(ok, "genhash {version} {key} failed");
        }
    }
    for (port, version, key) in &cases {
        let (up, reason) = &results[port];
        if key.ends_with("CBC") {
            assert!(!up, "{version} {key}: rustls has no CBC suite; it passed?");
            assert!(
                reason.contains("TLS handshake") && reason.contains("not TLS <= 1.1, DHE or CBC"),
                "{reason}"
            );
        } else {
            assert!(up, "{version} {key}: {reason}");
        }
    }
    Ok(())
}
