//! Health checks to IPv6 real servers, the checkers alone (no data path,
//! as check_tcp_lab): TCP_CHECK with `bindto` an IPv6 address of the
//! director, HTTP_GET with an IPv6 `connect_ip`/`connect_port`, SSL_GET
//! against Debian's `openssl s_server` on an IPv6 socket, and MISC_CHECK
//! with the address written in its `misc_path` (keepalived passes the
//! script nothing else), against real servers at 2001:2::11 … ::14. A server that stops is
//! reported `Down` within keepalived's bound `delay_loop + connect_timeout
//! × (retry+1) + delay_before_retry × retry`, and `Up` within one
//! `delay_loop` once it is back; the failure names the server as
//! keepalived does (`[2001:2::11]:tcp:80`).
//!
//! The lab's namespaces have IPv6 off: it is turned on (without DAD) on the
//! director's bond0 and the real servers' eth0. The real servers are small
//! HTTP/1.0 responders on IPv6 sockets opened in their namespaces by this
//! test (`lvs-lab-httpd` listens on IPv4 only).
//!
//! lvsd itself: its checkers run for an IPv6 virtual server's real
//! servers and log in keepalived's words with the addresses as keepalived
//! writes them (`TCP_CHECK on service [2001:2::11]:tcp:80 failed after 1
//! retries.`), within the same bound.
//!
//! Needs root, `ip`, `openssl`, `bash`.

mod check_util;
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use check_util::wait_event;
use lvs_testkit::{Lab, LabSpec};
use lvs_userspace::check::{CheckEvent, Checkers, RsKey};
use tokio::sync::mpsc;

const DELAY_LOOP: u64 = 1;
const CONNECT_TIMEOUT: u64 = 1;
const RETRY: u64 = 1;
const DELAY_BEFORE_RETRY: u64 = 1;
const MISC_TIMEOUT: u64 = 1;

fn config(misc: &str) -> lvs_config::Config {
    let timing = format!(
        "   connect_timeout {CONNECT_TIMEOUT}\n   retry {RETRY}\n   delay_before_retry {DELAY_BEFORE_RETRY}\n   warmup 0\n"
    );
    let s = format!(
        "virtual_server 2001:2::100 80 {{\n lb_algo wrr\n lb_kind DR\n protocol TCP\n delay_loop {DELAY_LOOP}\n\
         real_server 2001:2::11 80 {{\n  TCP_CHECK {{\n{timing}   bindto 2001:2::2\n  }}\n }}\n\
         real_server 2001:2::12 80 {{\n  HTTP_GET {{\n   url {{\n    path /\n    status_code 200\n   }}\n\
         {timing}   connect_ip 2001:2::12\n   connect_port 8080\n  }}\n }}\n\
         real_server 2001:2::13 80 {{\n  SSL_GET {{\n   url {{\n    path /\n   }}\n{timing}   connect_port 443\n  }}\n }}\n\
         real_server 2001:2::14 80 {{\n  MISC_CHECK {{\n   misc_path \"{misc} 2001:2::14 80\"\n   misc_timeout {MISC_TIMEOUT}\n\
            retry {RETRY}\n   delay_before_retry {DELAY_BEFORE_RETRY}\n   warmup 0\n  }}\n }}\n}}\n"
    );
    let parsed = lvs_config::parse_str("check_ipv6.conf", &s, &Default::default());
    assert!(!parsed.diagnostics.has_errors(), "{:?}", parsed.diagnostics);
    parsed.config
}

fn rs(n: u8) -> RsKey {
    RsKey {
        vs_addr: "2001:2::100".parse().unwrap(),
        vs_port: 80,
        proto: lvs_userspace::check::Protocol::Tcp,
        rs_addr: format!("2001:2::{}", 10 + n).parse().unwrap(),
        rs_port: 80,
    }
}

fn enable_ipv6(lab: &Lab, ns: &str, ifname: &str, addr: &str) -> Result<()> {
    let name = ifname.to_string();
    lab.run_in_netns(ns, move || -> Result<()> {
        for (k, v) in [
            ("net.ipv6.conf.all.accept_dad".to_string(), "0"),
            (format!("net.ipv6.conf.{name}.accept_dad"), "0"),
            ("net.ipv6.conf.all.disable_ipv6".to_string(), "0"),
            (format!("net.ipv6.conf.{name}.disable_ipv6"), "0"),
        ] {
            lvs_testkit::netns::write_sysctl(&k, v)?;
        }
        Ok(())
    })??;
    lab.ip_batch(ns, &format!("addr add {addr}/64 dev {ifname} nodad\n"))
}

/// A minimal HTTP/1.0 server on an IPv6 socket of a lab namespace; stops
/// (closing the listener: connections are refused) on drop.
struct Server6 {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server6 {
    fn start(lab: &Lab, ns: &str, addr: SocketAddr) -> Result<Server6> {
        // The socket belongs to the namespace it is created in.
        let l = lab.run_in_netns(ns, move || TcpListener::bind(addr))??;
        l.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        let _ = c.set_nonblocking(false);
                        let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut buf = [0u8; 2048];
                        let _ = c.read(&mut buf);
                        let _ = c.write_all(
                            b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Server6 {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server6 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `openssl s_server -www` on [2001:2::13]:443 (a self-signed key made
/// here), once it accepts connections.
fn start_tls(lab: &Lab) -> Result<lvs_testkit::Pid> {
    let dir = lab.log_dir().join("tls6");
    std::fs::create_dir_all(&dir)?;
    let (k, c) = (dir.join("k.pem"), dir.join("c.pem"));
    if !k.exists() {
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "1", "-newkey", "ec"])
            .args([
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-subj",
                "/CN=rs3.lab.test",
            ])
            .arg("-keyout")
            .arg(&k)
            .arg("-out")
            .arg(&c)
            .output()?;
        anyhow::ensure!(out.status.success(), "openssl req failed");
    }
    let (k, c) = (k.to_string_lossy(), c.to_string_lossy());
    let pid = lab.spawn(
        lab.real_server_ns(2),
        &[
            "openssl",
            "s_server",
            "-accept",
            "[2001:2::13]:443",
            "-6",
            "-cert",
            &c,
            "-key",
            &k,
            "-www",
            "-quiet",
        ],
    )?;
    // Listening before it counts as started (as Server6 is at once).
    lab.run_in_netns(lab.director_ns(0), || -> Result<()> {
        let a: SocketAddr = "[2001:2::13]:443".parse()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    })??;
    Ok(pid)
}

/// The MISC_CHECK script: connects to `$1` port `$2` (bash's /dev/tcp
/// resolves an IPv6 literal).
fn misc_script(lab: &Lab) -> Result<String> {
    let p = lab.log_dir().join("tcp_up.sh");
    std::fs::write(&p, "#!/bin/bash\nexec 3<>\"/dev/tcp/$1/$2\"\n")?;
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(p.to_string_lossy().into_owned())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ipv6_real_servers_down_within_bound_and_back_up() -> Result<()> {
    let lab = Lab::create(LabSpec {
        httpd: false,
        ..LabSpec::sized(4, 1)
    })?;
    enable_ipv6(&lab, lab.director_ns(0), "bond0", "2001:2::2")?;
    for i in 0..4 {
        enable_ipv6(
            &lab,
            lab.real_server_ns(i),
            "eth0",
            &format!("2001:2::{}", 11 + i),
        )?;
    }
    let rs1_addr: SocketAddr = "[2001:2::11]:80".parse()?;
    let rs2_addr: SocketAddr = "[2001:2::12]:8080".parse()?;
    let mut rs1 = Some(Server6::start(&lab, lab.real_server_ns(0), rs1_addr)?);
    let mut rs2 = Some(Server6::start(&lab, lab.real_server_ns(1), rs2_addr)?);
    let mut rs3 = Some(start_tls(&lab)?);
    let rs4_addr: SocketAddr = "[2001:2::14]:80".parse()?;
    let mut rs4 = Some(Server6::start(&lab, lab.real_server_ns(3), rs4_addr)?);
    let cfg = config(&misc_script(&lab)?);
    let bound = DELAY_LOOP + CONNECT_TIMEOUT * (RETRY + 1) + DELAY_BEFORE_RETRY * RETRY;
    let slack = Duration::from_millis(1000); // a loaded 2-core machine

    lab.run_in_netns(lab.director_ns(0), || -> Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(async {
            let (tx, mut rx) = mpsc::channel(64);
            let mut checkers = Checkers::new(tx);
            checkers.reconcile(&cfg);
            let mut waiting = vec![rs(1), rs(2), rs(3), rs(4)];
            while !waiting.is_empty() {
                let (ev, _) = wait_event(&mut rx, Duration::from_secs(8), "all Up", |e| {
                    matches!(e, CheckEvent::Up { .. })
                })
                .await?;
                if let CheckEvent::Up { rs: r } = ev {
                    waiting.retain(|w| *w != r);
                }
            }
            let names: Vec<String> = checkers.states().iter().map(|s| s.rs.rs_name()).collect();
            assert!(
                names.contains(&"[2001:2::11]:tcp:80".to_string()),
                "{names:?}"
            );

            for (n, kind) in [
                (1u8, "TCP_CHECK"),
                (2, "HTTP_GET"),
                (3, "SSL_GET"),
                (4, "MISC_CHECK"),
            ] {
                // Stop the server: Down within keepalived's bound.
                match n {
                    1 => drop(rs1.take()),
                    2 => drop(rs2.take()),
                    3 => {
                        let _ = lab.kill(rs3.take().context("rs3")?);
                    }
                    _ => drop(rs4.take()),
                }
                // MISC_CHECK's bound has misc_timeout where the others
                // have connect_timeout.
                let bound = if n == 4 {
                    DELAY_LOOP + MISC_TIMEOUT * (RETRY + 1) + DELAY_BEFORE_RETRY * RETRY
                } else {
                    bound
                };
                let (ev, took) = wait_event(
                    &mut rx,
                    Duration::from_secs(bound + 3),
                    &format!("rs{n} Down"),
                    |e| matches!(e, CheckEvent::Down { rs: r, .. } if *r == rs(n)),
                )
                .await?;
                println!(
                    "{kind} to IPv6 rs{n}: Down {:.2} s after its server stopped (bound {bound} s): {ev:?}",
                    took.as_secs_f64()
                );
                assert!(took <= Duration::from_secs(bound) + slack);
                let h = checkers
                    .states()
                    .into_iter()
                    .find(|s| s.rs == rs(n))
                    .context("state")?;
                assert!(!h.up, "{h:?}");
                let reason = h.last_reason.clone().unwrap_or_default();
                assert!(reason.contains(kind), "{reason}");

                // Back: Up within one delay_loop.
                match n {
                    1 => rs1 = Some(Server6::start(&lab, lab.real_server_ns(0), rs1_addr)?),
                    2 => rs2 = Some(Server6::start(&lab, lab.real_server_ns(1), rs2_addr)?),
                    3 => rs3 = Some(start_tls(&lab)?),
                    _ => rs4 = Some(Server6::start(&lab, lab.real_server_ns(3), rs4_addr)?),
                }
                let (_, took) = wait_event(
                    &mut rx,
                    Duration::from_secs(DELAY_LOOP + 3),
                    &format!("rs{n} Up"),
                    |e| matches!(e, CheckEvent::Up { rs: r } if *r == rs(n)),
                )
                .await?;
                println!(
                    "{kind} to IPv6 rs{n}: Up {:.2} s after its server started (bound {DELAY_LOOP} s)",
                    took.as_secs_f64()
                );
                assert!(took <= Duration::from_secs(DELAY_LOOP) + slack);
            }
            checkers.shutdown().await;
            Ok(())
        })
    })?
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lvsd_checks_ipv6_real_servers_in_keepalived_words() -> Result<()> {
    let lab = Lab::create(LabSpec::sized(1, 1))?;
    enable_ipv6(&lab, lab.director_ns(0), "bond0", "2001:2::2")?;
    enable_ipv6(&lab, lab.real_server_ns(0), "eth0", "2001:2::11")?;
    let rs1_addr: SocketAddr = "[2001:2::11]:80".parse()?;
    let mut rs1 = Some(Server6::start(&lab, lab.real_server_ns(0), rs1_addr)?);
    // The seed's IPv4 service (the data path) and an IPv6 one beside it.
    let conf = format!(
        "virtual_server 198.18.0.100 80 {{\n lb_algo wrr\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {{\n }}\n}}\n\
         virtual_server 2001:2::100 80 {{\n lb_algo wrr\n lb_kind DR\n protocol TCP\n delay_loop {DELAY_LOOP}\n\
         real_server 2001:2::11 80 {{\n  TCP_CHECK {{\n   connect_timeout {CONNECT_TIMEOUT}\n   retry {RETRY}\n   delay_before_retry {DELAY_BEFORE_RETRY}\n   warmup 0\n  }}\n }}\n}}\n"
    );
    let bpffs = common::Bpffs::mount(&lab)?;
    let mut d = common::Director::new(&lab, &bpffs.0, &conf)?;
    d.start()?;
    d.wait_log(
        "TCP connection to [2001:2::11]:tcp:80 success.",
        Duration::from_secs(10),
    )?;
    let bound = DELAY_LOOP + CONNECT_TIMEOUT * (RETRY + 1) + DELAY_BEFORE_RETRY * RETRY;
    let t = Instant::now();
    rs1.take();
    d.wait_log(
        "TCP_CHECK on service [2001:2::11]:tcp:80 failed after 1 retries.",
        Duration::from_secs(bound + 3),
    )?;
    let took = t.elapsed();
    println!(
        "lvsd: IPv6 rs down after {:.2} s (bound {bound} s)",
        took.as_secs_f64()
    );
    assert!(took <= Duration::from_secs(bound) + Duration::from_millis(1000));
    rs1 = Some(Server6::start(&lab, lab.real_server_ns(0), rs1_addr)?);
    d.wait_log_count(
        "TCP connection to [2001:2::11]:tcp:80 success.",
        2,
        Duration::from_secs(DELAY_LOOP + 3),
    )?;
    d.signal(libc::SIGTERM)?;
    drop(rs1);
    Ok(())
}
