//! PING_CHECK, UDP_CHECK, DNS_CHECK, SMTP_CHECK and FILE_CHECK in the lab,
//! the checkers alone (no data path), each with an up and a down case
//! against a real server in the real server's namespace:
//!
//! - PING_CHECK: ICMP echo answered, then ignored
//!   (`net.ipv4.icmp_echo_ignore_all=1` in the real server), then answered
//!   again; first through a raw socket (the namespace's default
//!   `ping_group_range` refuses ICMP datagram sockets), then through a
//!   datagram socket once the range allows it; the same over ICMPv6
//!   (IPv6 enabled on the two interfaces, addresses in 2001:2::/48);
//! - UDP_CHECK: `lvs-lab-responder --udp-echo` echoing the payload that
//!   `require_reply` wants, stopped (port unreachable), started again; a
//!   `require_reply` the echo cannot match is down from the start;
//! - DNS_CHECK: Debian's dnsmasq (foreground, its own config and pid file)
//!   answering `A www.lab.test`, stopped, started again; a name it refuses
//!   is down with its rcode;
//! - SMTP_CHECK: `lvs-lab-responder --smtp` (greeting, HELO, QUIT),
//!   stopped, started again; an HTTP server is no SMTP server (no greeting);
//! - FILE_CHECK: a track_file whose number sets the weight (configured +
//!   value × weight, never below 0) and, with weight 0, the state; the
//!   real server's `notify_up` / `notify_down` scripts run on each change;
//!   with `omega`, `notify_down` of the servers still up runs at shutdown.
//!
//! Needs root, `ip`, `ethtool`, `sysctl`, `dnsmasq`, `lvs-lab-httpd` and
//! `lvs-lab-responder` (`cargo build -p lvs-testkit --bins`).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use lvs_testkit::{responder_path, Lab, Pid, SpawnOutput};
use lvs_userspace::check::{CheckEvent, Proto, RsKey};
use tokio::sync::mpsc;

mod check_util;
use check_util::*;

// Every checker: delay_loop 1, connect_timeout 1, retry 1, delay_before_retry 1:
// down within delay_loop + 2 × connect_timeout + delay_before_retry = 4 s.
const DOWN_BOUND: Duration = Duration::from_secs(4);
// Slack for a loaded 2-core machine (builds run beside the tests).
const SLACK: Duration = Duration::from_secs(2);
const TIMING: &str = "connect_timeout 1\n   retry 1\n   delay_before_retry 1\n   warmup 0";

/// `sysctl -w SETTING` in namespace `ns`.
fn sysctl(lab: &Lab, ns: &str, setting: &str) -> Result<()> {
    lab.exec_ok(ns, &["sysctl", "-q", "-w", setting])?;
    Ok(())
}

/// PING_CHECK of `k` through a raw socket, then through a datagram socket
/// (ping_group_range, in the director's namespace, governs ICMPv6 datagram
/// sockets too): each time up, then down within the bound once `icmp("1")`
/// makes the real server ignore echo requests (printed), then `icmp("0")`;
/// up again at the end. The down events.
async fn ping_raw_then_datagram(
    rx: &mut mpsc::Receiver<CheckEvent>,
    k: &RsKey,
    (what, label): (&str, &str),
    icmp: impl Fn(&str) -> Result<()>,
) -> Result<Vec<CheckEvent>> {
    let mut downs = Vec::new();
    for socket in ["raw", "datagram"] {
        if socket == "datagram" {
            // Allow ICMP datagram sockets in the director's namespace.
            std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647")?;
        }
        wait_event(rx, Duration::from_secs(4), &format!("{what} up"), is_up(k)).await?;
        icmp("1")?;
        let (ev, took) =
            wait_event(rx, DOWN_BOUND + SLACK, &format!("{what} down"), is_down(k)).await?;
        println!(
            "{label} ({socket} socket): down {:.2} s after echo was ignored: {}",
            took.as_secs_f64(),
            down_reason(&ev)
        );
        downs.push(ev);
        icmp("0")?;
    }
    wait_event(
        rx,
        Duration::from_secs(4),
        &format!("{what} up again"),
        is_up(k),
    )
    .await?;
    Ok(downs)
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ping_check_answered_ignored_answered() -> Result<()> {
    let lab = small_lab(1)?;
    let rs_ns = lab.real_server_ns(0).to_string();
    let cfg = parse(&format!(
        "virtual_server 198.18.0.100 80 {{\n delay_loop 1\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {{\n  PING_CHECK {{\n   {TIMING}\n  }}\n }}\n}}\n"
    ));
    let k = key(Proto::Tcp, 80, 11, 80);
    let icmp = |ignore: &str| {
        sysctl(
            &lab,
            &rs_ns,
            &format!("net.ipv4.icmp_echo_ignore_all={ignore}"),
        )
    };
    with_checkers(&lab, lab.director_ns(0), &cfg, async |_, rx| {
        for ev in ping_raw_then_datagram(rx, &k, ("PING", "PING_CHECK"), icmp).await? {
            assert!(down_reason(&ev).contains("PING_CHECK"), "{ev:?}");
        }
        Ok(())
    })
}

/// PING_CHECK over ICMPv6: the lab is IPv4-only, so this test enables
/// IPv6 on the director's and real server's interfaces, gives them
/// addresses in 2001:2::/48 and static neighbour entries (no NDP needed).
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn ping_check_icmpv6_answered_ignored_answered() -> Result<()> {
    let lab = small_lab(1)?;
    let (dir_ns, rs_ns) = (
        lab.director_ns(0).to_string(),
        lab.real_server_ns(0).to_string(),
    );
    let mac = |m: [u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let dif = lab.director_if().to_string();
    sysctl(
        &lab,
        &dir_ns,
        &format!("net.ipv6.conf.{dif}.disable_ipv6=0"),
    )?;
    sysctl(&lab, &rs_ns, "net.ipv6.conf.eth0.disable_ipv6=0")?;
    lab.ip_batch(
        &dir_ns,
        &format!(
            "addr add 2001:2::1/64 dev {dif} nodad\nneigh replace 2001:2::11 lladdr {} dev {dif} nud permanent\n",
            mac(lab.real_server_mac(0))
        ),
    )?;
    lab.ip_batch(
        &rs_ns,
        &format!(
            "addr add 2001:2::11/64 dev eth0 nodad\nneigh replace 2001:2::1 lladdr {} dev eth0 nud permanent\n",
            mac(lab.director_mac(0))
        ),
    )?;
    let cfg = parse(&format!(
        "virtual_server 2001:2::100 80 {{\n delay_loop 1\n lb_kind DR\n protocol TCP\n real_server 2001:2::11 80 {{\n  PING_CHECK {{\n   {TIMING}\n  }}\n }}\n}}\n"
    ));
    let k = RsKey {
        vs_addr: "2001:2::100".parse()?,
        vs_port: 80,
        proto: Proto::Tcp,
        rs_addr: "2001:2::11".parse()?,
        rs_port: 80,
    };
    let icmp = |ignore: &str| {
        sysctl(
            &lab,
            &rs_ns,
            &format!("net.ipv6.icmp.echo_ignore_all={ignore}"),
        )
    };
    with_checkers(&lab, &dir_ns, &cfg, async |_, rx| {
        ping_raw_then_datagram(rx, &k, ("PING6", "PING_CHECK ICMPv6"), icmp).await?;
        Ok(())
    })
}

fn spawn_responder(lab: &Lab, ns: &str, args: &[&str]) -> Result<Pid> {
    let bin = responder_path()?;
    let bin = bin.to_string_lossy().into_owned();
    let mut argv = vec![bin.as_str()];
    argv.extend_from_slice(args);
    lab.spawn_with(
        ns,
        &argv,
        SpawnOutput::Log,
        Some(("READY", Duration::from_secs(5))),
    )
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn udp_check_echo_up_stopped_down_mismatch_down() -> Result<()> {
    let lab = small_lab(2)?;
    // "lvs-xdp" in hex: the echo sends it back, require_reply wants "lvs-".
    let payload = "6c 76 73 2d 78 64 70";
    let cfg = parse(&format!(
        "virtual_server 198.18.0.100 7 {{\n delay_loop 1\n lb_kind DR\n protocol UDP\n\
         real_server 198.18.0.11 7 {{\n  UDP_CHECK {{\n   payload {payload}\n   require_reply 6c 76 73 2d\n   {TIMING}\n  }}\n }}\n\
         real_server 198.18.0.12 7 {{\n  UDP_CHECK {{\n   payload {payload}\n   require_reply ff xx\n   {TIMING}\n  }}\n }}\n}}\n"
    ));
    let (k1, k2) = (key(Proto::Udp, 7, 11, 7), key(Proto::Udp, 7, 12, 7));
    let echo = |i: usize| {
        spawn_responder(
            &lab,
            lab.real_server_ns(i),
            &["--name", "echo", "--udp-echo", "0.0.0.0:7"],
        )
    };
    let pid = echo(0)?;
    echo(1)?;
    with_checkers(&lab, lab.director_ns(0), &cfg, async |_, rx| {
        // rs1 up; rs2's echo never starts with 0xff: down at its first
        // check. In either order.
        let ev = up_and_down(rx, Duration::from_secs(4), "rs1 up, rs2 mismatch", &k1, &k2).await?;
        assert!(down_reason(&ev).contains("reply data mismatch"), "{ev:?}");
        down_and_back(
            rx,
            &k1,
            ("UDP_CHECK", "the echo stopped"),
            (DOWN_BOUND + SLACK, Duration::from_secs(4)),
            || lab.kill(pid),
            || echo(0),
        )
        .await?;
        Ok(())
    })
}

fn spawn_dnsmasq(lab: &Lab, ns: &str, dir: &Path) -> Result<Pid> {
    let conf = dir.join("dnsmasq.conf");
    std::fs::write(
        &conf,
        "no-resolv\nno-hosts\nbind-interfaces\nlisten-address=198.18.0.11\nport=53\n\
         address=/www.lab.test/198.18.0.11\nuser=root\ngroup=root\n",
    )?;
    let pid_file = dir.join("dnsmasq.pid");
    let argv = [
        "dnsmasq".to_string(),
        "--keep-in-foreground".into(),
        format!("--conf-file={}", conf.display()),
        format!("--pid-file={}", pid_file.display()),
        "--log-facility=-".into(),
    ];
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let pid = lab.spawn(ns, &argv)?;
    // dnsmasq logs "started" once its sockets are bound.
    let log = lab.log_path(pid).context("dnsmasq log")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("started, version")
    {
        if Instant::now() > deadline || !lab.is_running(pid) {
            bail!(
                "dnsmasq did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(pid)
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn dns_check_dnsmasq_answering_stopped_refusing() -> Result<()> {
    let lab = small_lab(1)?;
    let dir = lab_dir(&lab, "dns")?;
    let cfg = parse(&format!(
        "virtual_server 198.18.0.100 53 {{\n delay_loop 1\n lb_kind DR\n protocol UDP\n\
         real_server 198.18.0.11 53 {{\n  DNS_CHECK {{\n   type A\n   name www.lab.test\n   {TIMING}\n  }}\n }}\n}}\n\
         virtual_server 198.18.0.100 54 {{\n delay_loop 1\n lb_kind DR\n protocol UDP\n\
         real_server 198.18.0.11 53 {{\n  DNS_CHECK {{\n   type SOA\n   name example.invalid\n   {TIMING}\n  }}\n }}\n}}\n"
    ));
    let (k, refused) = (key(Proto::Udp, 53, 11, 53), key(Proto::Udp, 54, 11, 53));
    let rs_ns = lab.real_server_ns(0).to_string();
    let pid = spawn_dnsmasq(&lab, &rs_ns, &dir)?;
    with_checkers(&lab, lab.director_ns(0), &cfg, async |_, rx| {
        // Up; a name dnsmasq has no answer and no upstream for: an error
        // rcode. In either order.
        let ev = up_and_down(
            rx,
            Duration::from_secs(6),
            "DNS up, rcode down",
            &k,
            &refused,
        )
        .await?;
        println!("DNS_CHECK, a name dnsmasq refuses: {}", down_reason(&ev));
        assert!(down_reason(&ev).contains("rcode"), "{ev:?}");
        down_and_back(
            rx,
            &k,
            ("DNS_CHECK", "dnsmasq stopped"),
            (DOWN_BOUND + SLACK, Duration::from_secs(6)),
            || lab.kill(pid),
            || spawn_dnsmasq(&lab, &rs_ns, &dir),
        )
        .await?;
        Ok(())
    })
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn smtp_check_helo_up_stopped_down_http_is_not_smtp() -> Result<()> {
    let lab = small_lab(2)?;
    let cfg = parse(&format!(
        "virtual_server 198.18.0.100 25 {{\n delay_loop 1\n lb_kind DR\n protocol TCP\n\
         real_server 198.18.0.11 25 {{\n  SMTP_CHECK {{\n   helo_name lvs.lab.test\n   {TIMING}\n  }}\n }}\n\
         real_server 198.18.0.12 25 {{\n  SMTP_CHECK {{\n   connect_port 80\n   {TIMING}\n  }}\n }}\n}}\n"
    ));
    let (k1, k2) = (key(Proto::Tcp, 25, 11, 25), key(Proto::Tcp, 25, 12, 25));
    let smtpd = || {
        spawn_responder(
            &lab,
            lab.real_server_ns(0),
            &["--name", "mx1", "--smtp", "0.0.0.0:25"],
        )
    };
    let pid = smtpd()?;
    with_checkers(&lab, lab.director_ns(0), &cfg, async |_, rx| {
        wait_event(rx, Duration::from_secs(4), "SMTP up", is_up(&k1)).await?;
        // rs2's port 80 is lvs-lab-httpd: it waits for a request, no greeting.
        let (ev, _) = wait_event(rx, Duration::from_secs(6), "rs2 SMTP down", is_down(&k2)).await?;
        assert!(
            down_reason(&ev).contains("Read timeout from server [198.18.0.12]:80"),
            "{ev:?}"
        );
        let ev = down_and_back(
            rx,
            &k1,
            ("SMTP_CHECK", "the server stopped"),
            (DOWN_BOUND + SLACK, Duration::from_secs(4)),
            || lab.kill(pid),
            smtpd,
        )
        .await?;
        assert!(
            down_reason(&ev).contains("Error connecting to server [198.18.0.11]:25"),
            "{ev:?}"
        );
        Ok(())
    })
}

/// FILE_CHECK needs no network: the checkers read a file the test writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_check_value_sets_weight_and_state_with_notify_scripts() -> Result<()> {
    let dir = TempDir::new("file-check")?;
    let (weights, switch) = (dir.join("weights"), dir.join("switch"));
    let (notify, log) = notify_logger(&dir)?;
    std::fs::write(&weights, "0\n")?;
    let cfg = parse(&format!(
        "track_file weights {{\n file {w}\n weight 1\n}}\n\
         track_file switch {{\n file {s}\n weight 0\n init_file 0 overwrite\n}}\n\
         virtual_server 198.18.0.100 80 {{\n delay_loop 1\n lb_kind DR\n protocol TCP\n\
         real_server 198.18.0.11 80 {{\n  weight 5\n  FILE_CHECK {{\n   track_file weights\n   weight 2\n  }}\n }}\n\
         real_server 198.18.0.12 80 {{\n  notify_up \"{n} up rs2\"\n  notify_down \"{n} down rs2\"\n  FILE_CHECK {{\n   track_file switch\n  }}\n }}\n}}\n",
        w = weights.display(),
        s = switch.display(),
        n = notify.display(),
    ));
    let (k1, k2) = (key(Proto::Tcp, 80, 11, 80), key(Proto::Tcp, 80, 12, 80));
    let (checkers, mut rx) = start_checkers(&cfg);
    wait_event(&mut rx, Duration::from_secs(2), "rs1 up", is_up(&k1)).await?;
    wait_event(&mut rx, Duration::from_secs(2), "rs2 up", is_up(&k2)).await?;
    assert_eq!(std::fs::read_to_string(&switch)?.trim(), "0", "init_file");
    // configured 5 + value × 2, never below 0.
    for (value, want) in [("3", 11u32), ("-2", 1), ("-10", 0), ("0x4", 13), ("0", 5)] {
        std::fs::write(&weights, format!("{value}\n"))?;
        let (ev, took) = wait_event(
            &mut rx,
            Duration::from_secs(2),
            "rs1 weight",
            |e| matches!(e, CheckEvent::Weight { rs, .. } if *rs == k1),
        )
        .await?;
        println!(
            "FILE_CHECK: value {value} → {ev:?} after {:.2} s",
            took.as_secs_f64()
        );
        assert!(
            matches!(ev, CheckEvent::Weight { weight, .. } if weight == want),
            "{ev:?}"
        );
    }
    // weight 0: a non-zero value is FAULT, zero is up; notify scripts follow.
    std::fs::write(&switch, "1\n")?;
    let (ev, _) = wait_event(&mut rx, Duration::from_secs(2), "rs2 down", is_down(&k2)).await?;
    assert!(down_reason(&ev).contains("FILE_CHECK"), "{ev:?}");
    std::fs::write(&switch, "0\n")?;
    wait_event(&mut rx, Duration::from_secs(2), "rs2 up again", is_up(&k2)).await?;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text == "down rs2\nup rs2\n" {
            break;
        }
        if Instant::now() > deadline {
            bail!("notify scripts wrote {text:?}, wanted down then up");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h = checkers
        .states()
        .into_iter()
        .find(|h| h.rs == k1)
        .context("rs1 health")?;
    assert!(h.up && h.checkers == ["FILE_CHECK"], "{h:?}");
    checkers.shutdown().await;
    Ok(())
}

/// `omega`: when the checkers stop, `notify_down` runs for the real servers
/// still up (and only for virtual servers with `omega`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omega_runs_notify_down_of_servers_still_up_at_shutdown() -> Result<()> {
    let dir = TempDir::new("omega")?;
    let (up, down) = (dir.join("up"), dir.join("down"));
    std::fs::write(&up, "0\n")?;
    std::fs::write(&down, "1\n")?;
    let (notify, log) = notify_logger(&dir)?;
    let n = notify.display();
    let vs = |port: u16, omega: &str| {
        format!(
            "virtual_server 198.18.0.100 {port} {{\n lb_kind DR\n protocol TCP\n{omega}\
             real_server 198.18.0.11 80 {{\n  notify_down \"{n} down rs1-{port}\"\n  FILE_CHECK {{\n   track_file up\n  }}\n }}\n\
             real_server 198.18.0.12 80 {{\n  notify_down \"{n} down rs2-{port}\"\n  FILE_CHECK {{\n   track_file down\n  }}\n }}\n}}\n"
        )
    };
    let cfg = parse(&format!(
        "track_file up {{\n file {}\n weight 0\n}}\ntrack_file down {{\n file {}\n weight 0\n}}\n{}{}",
        up.display(),
        down.display(),
        vs(80, " omega\n"),
        vs(81, ""),
    ));
    let (checkers, mut rx) = start_checkers(&cfg);
    for port in [80, 81] {
        let k = key(Proto::Tcp, port, 12, 80);
        wait_event(&mut rx, Duration::from_secs(2), "rs2 down", is_down(&k)).await?;
    }
    let read = || sorted_lines(&log);
    let deadline = Instant::now() + Duration::from_secs(3);
    while read() != ["down rs2-80", "down rs2-81"] {
        if Instant::now() > deadline {
            bail!("notify_down of rs2: {:?}", read());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    checkers.shutdown().await;
    // rs1 of the omega virtual server only; shutdown waited for it.
    assert_eq!(read(), ["down rs1-80", "down rs2-80", "down rs2-81"]);
    Ok(())
}
