//! Shared helpers of the health-checker tests: a config parsed from text,
//! real-server keys in the lab's addressing, waiting for a checker event,
//! the runtime the checkers run on, a small lab.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use lvs_testkit::{Lab, LabSpec};
use lvs_userspace::check::{CheckEvent, Checkers, Proto, RsKey};
use tokio::sync::mpsc;

/// `text` parsed as keepalived.conf; any error fails the test.
pub fn parse(text: &str) -> lvs_config::Config {
    let parsed = lvs_config::parse_str("check-test.conf", text, &Default::default());
    assert!(!parsed.diagnostics.has_errors(), "{:?}", parsed.diagnostics);
    parsed.config
}

/// Real server 198.18.0.`rs_last`:`rs_port` of the VIP 198.18.0.100:`vs_port`.
pub fn key(proto: Proto, vs_port: u16, rs_last: u8, rs_port: u16) -> RsKey {
    RsKey {
        vs_addr: "198.18.0.100".parse().unwrap(),
        vs_port,
        proto,
        rs_addr: format!("198.18.0.{rs_last}").parse().unwrap(),
        rs_port,
    }
}

/// Waits for an event matching `f`, returning it and the time it took;
/// the events passed over are printed.
pub async fn wait_event(
    rx: &mut mpsc::Receiver<CheckEvent>,
    timeout: Duration,
    what: &str,
    f: impl Fn(&CheckEvent) -> bool,
) -> Result<(CheckEvent, Duration)> {
    let t = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) if f(&ev) => return Ok((ev, t.elapsed())),
            Ok(Some(ev)) => eprintln!("  (event {ev:?})"),
            Ok(None) => bail!("event channel closed waiting for {what}"),
            Err(_) => bail!("timed out after {timeout:?} waiting for {what}"),
        }
    }
}

/// Waits for `up` to come up and `down` to go down, in either order; the
/// down event.
pub async fn up_and_down(
    rx: &mut mpsc::Receiver<CheckEvent>,
    timeout: Duration,
    what: &str,
    up: &RsKey,
    down: &RsKey,
) -> Result<CheckEvent> {
    let (mut seen_up, mut down_ev) = (false, None);
    while !(seen_up && down_ev.is_some()) {
        let (ev, _) = wait_event(rx, timeout, what, |e| is_up(up)(e) || is_down(down)(e)).await?;
        if is_up(up)(&ev) {
            seen_up = true;
        } else {
            down_ev = Some(ev);
        }
    }
    Ok(down_ev.expect("seen"))
}

/// `stop` takes `k`'s server away: `k` is down within `down_within` (how
/// long it took is printed, `{what}: down … s after {stopped}`); `start`
/// brings it back: up within `up_within`. The down event.
pub async fn down_and_back<S, T>(
    rx: &mut mpsc::Receiver<CheckEvent>,
    k: &RsKey,
    (what, stopped): (&str, &str),
    (down_within, up_within): (Duration, Duration),
    stop: impl FnOnce() -> Result<S>,
    start: impl FnOnce() -> Result<T>,
) -> Result<CheckEvent> {
    stop()?;
    let (ev, took) = wait_event(rx, down_within, &format!("{what} down"), is_down(k)).await?;
    println!(
        "{what}: down {:.2} s after {stopped}: {}",
        took.as_secs_f64(),
        down_reason(&ev)
    );
    start()?;
    wait_event(rx, up_within, &format!("{what} up again"), is_up(k)).await?;
    Ok(ev)
}

pub fn is_up(k: &RsKey) -> impl Fn(&CheckEvent) -> bool + '_ {
    move |e| matches!(e, CheckEvent::Up { rs } if rs == k)
}

pub fn is_down(k: &RsKey) -> impl Fn(&CheckEvent) -> bool + '_ {
    move |e| matches!(e, CheckEvent::Down { rs, .. } if rs == k)
}

pub fn down_reason(ev: &CheckEvent) -> &str {
    match ev {
        CheckEvent::Down { reason, .. } => reason,
        _ => "",
    }
}

/// The checkers' runtime (two workers, as lvsd's).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// A lab of one director, `real_servers` real servers and one client
/// address.
pub fn small_lab(real_servers: usize) -> Result<Lab> {
    Lab::create(LabSpec {
        real_servers,
        client_addrs: 1,
        ..LabSpec::default()
    })
}

/// The checkers of `cfg`, started (on the current runtime), and the
/// channel of their events.
pub fn start_checkers(cfg: &lvs_config::Config) -> (Checkers, mpsc::Receiver<CheckEvent>) {
    let (tx, rx) = mpsc::channel(64);
    let mut checkers = Checkers::new(tx);
    checkers.reconcile(cfg);
    (checkers, rx)
}

/// A directory of the test's own under the system's temporary directory
/// (`lvs-NAME-PID`), removed with what it holds on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("lvs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes an executable shell script: `#!/bin/sh`, then `body`.
pub fn write_script(path: &Path, body: &str) -> Result<()> {
    std::fs::write(path, format!("#!/bin/sh\n{body}"))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(())
}

/// A notify script in `dir` that appends its two arguments as a line of
/// `notify.log` there: (the script, the log).
pub fn notify_logger(dir: &TempDir) -> Result<(PathBuf, PathBuf)> {
    let (script, log) = (dir.join("notify.sh"), dir.join("notify.log"));
    write_script(&script, &format!("echo \"$1 $2\" >> {}\n", log.display()))?;
    Ok((script, log))
}

/// The lines of a log file the test's scripts append to, sorted (none
/// while it does not exist).
pub fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

/// A directory `name` for the test's files under the lab's log directory
/// (kept with the lab's logs).
pub fn lab_dir(lab: &Lab, name: &str) -> Result<PathBuf> {
    let dir = lab.log_dir().join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Runs the checkers of `cfg` in namespace `ns` (on their own runtime)
/// while `body` reads their events (and may reload or inspect them); then
/// shuts them down.
pub fn with_checkers(
    lab: &Lab,
    ns: &str,
    cfg: &lvs_config::Config,
    body: impl AsyncFnOnce(&mut Checkers, &mut mpsc::Receiver<CheckEvent>) -> Result<()> + Send,
) -> Result<()> {
    lab.run_in_netns(ns, || -> Result<()> {
        runtime()?.block_on(async {
            let (mut checkers, mut rx) = start_checkers(cfg);
            body(&mut checkers, &mut rx).await?;
            checkers.shutdown().await;
            Ok(())
        })
    })?
}

/// Log lines captured from a `tracing` subscriber.
#[derive(Clone, Default)]
pub struct Capture(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Capture {
    /// The test process's whole log, captured from the first call on. A
    /// per-thread subscriber (`set_default`) is not enough when tests run
    /// in parallel: a test thread without one that reaches a log call first
    /// leaves tracing's per-callsite cache saying "nobody listens", and the
    /// capturing thread misses that line. Assert on lines that name the
    /// test's own addresses or ports.
    pub fn global() -> Capture {
        static LOG: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
        LOG.get_or_init(|| {
            let capture = Capture::default();
            let writer = capture.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in a test process");
            capture
        })
        .clone()
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
