//! lvsd as the packaged unit starts it (`ExecStart` of
//! packaging/lvsd.service with the options of packaging/lvsd.default), with
//! `NOTIFY_SOCKET` pointing at a datagram socket this test reads, as
//! systemd's would be: READY=1 once forwarding, RELOADING=1 with
//! MONOTONIC_USEC on SIGHUP then READY=1, STOPPING=1 on SIGTERM.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::{os::unix::net::UnixDatagram, time::Duration};

use anyhow::{bail, Context, Result};
use common::{own_bin, wait_forwarding, Bpffs};
use lvs_testkit::{Lab, LabSpec};

const UNIT: &str = include_str!("../../packaging/lvsd.service");
const DEFAULTS: &str = include_str!("../../packaging/lvsd.default");

fn config() -> String {
    "vrrp_instance VI_1 {\n state MASTER\n interface bond0\n virtual_router_id 20\n priority 200\n advert_int 1\n virtual_ipaddress {\n  198.18.0.100/16 dev bond0\n }\n}\nvirtual_server 198.18.0.100 80 {\n lb_algo wrr\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  weight 1\n }\n}\n".into()
}

/// The unit's ExecStart, words split as systemd does for this simple line,
/// `$LVSD_OPTIONS` expanded from the defaults file.
fn exec_start() -> Result<Vec<String>> {
    let line = UNIT
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .context("ExecStart in the unit")?;
    let options = DEFAULTS
        .lines()
        .find_map(|l| l.strip_prefix("LVSD_OPTIONS="))
        .context("LVSD_OPTIONS in the defaults")?
        .trim_matches('"');
    let mut argv = Vec::new();
    for w in line.split_whitespace() {
        match w {
            "$LVSD_OPTIONS" => argv.extend(options.split_whitespace().map(str::to_owned)),
            w => argv.push(w.to_owned()),
        }
    }
    Ok(argv)
}

/// The next notification, with a bound.
fn next(sock: &UnixDatagram, timeout: Duration) -> Result<String> {
    sock.set_read_timeout(Some(timeout))?;
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .context("no sd_notify message in time")?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Reads notifications until one has `KEY=…` lines matching `want`.
fn wait_for(sock: &UnixDatagram, want: &str, seen: &mut Vec<String>) -> Result<String> {
    for _ in 0..20 {
        let m = next(sock, Duration::from_secs(20))?;
        seen.push(m.clone());
        if m.lines().any(|l| l == want) {
            return Ok(m);
        }
    }
    bail!("no {want} among {seen:?}")
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lvsd_as_the_unit_starts_it_speaks_sd_notify() -> Result<()> {
    let argv = exec_start()?;
    assert_eq!(argv[0], "/usr/sbin/lvsd");
    assert!(argv.contains(&"--keep-datapath".to_owned()), "{argv:?}");

    let lab = Lab::create(LabSpec::sized(1, 4))?;
    let bpffs = Bpffs::mount(&lab)?;
    let conf = lab.log_dir().join("keepalived.conf");
    std::fs::write(&conf, config())?;
    let sock_path = lab.log_dir().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path)?;

    let lvsd = own_bin("lvsd");
    let notify_env = format!("NOTIFY_SOCKET={}", sock_path.display());
    let mut full: Vec<String> = vec!["env".into(), notify_env, lvsd.display().to_string()];
    full.extend(argv[1..].iter().cloned());
    // The lab's own paths in place of the package's.
    full.extend(["-f", conf.to_str().context("path")?].map(String::from));
    full.extend(bpffs.lab_instance_args()?.map(String::from));
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    let pid = lab.spawn(lab.director_ns(0), &full)?;
    let log = || {
        lab.log_path(pid)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    let mut seen = Vec::new();

    let ready = wait_for(&sock, "READY=1", &mut seen).with_context(log)?;
    assert!(
        ready.contains("STATUS=forwarding 1 virtual servers"),
        "{ready}"
    );
    // READY means forwarding.
    wait_forwarding(&lab)?;

    // SIGHUP: RELOADING=1 with the monotonic clock, then READY=1.
    // SAFETY: a signal to the process this test started.
    assert_eq!(unsafe { libc::kill(pid.0 as i32, libc::SIGHUP) }, 0);
    let reloading = wait_for(&sock, "RELOADING=1", &mut seen).with_context(log)?;
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .context("MONOTONIC_USEC with RELOADING=1")?
        .parse()?;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let now = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    assert!(
        usec <= now && now - usec < 20_000_000,
        "MONOTONIC_USEC {usec} is CLOCK_MONOTONIC ({now})"
    );
    let reloaded = wait_for(&sock, "READY=1", &mut seen).with_context(log)?;
    assert!(reloaded.contains("STATUS=reloaded"), "{reloaded}");

    // SIGTERM: STOPPING=1, and (with --keep-datapath) forwarding goes on.
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid.0 as i32, libc::SIGTERM) }, 0);
    wait_for(&sock, "STOPPING=1", &mut seen).with_context(log)?;
    lvs_testkit::wait_until(
        "lvsd stopped",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || log().contains("Stopped lvsd"),
    )?;
    wait_forwarding(&lab)?;
    println!("sd_notify messages: {seen:?}");
    Ok(())
}
