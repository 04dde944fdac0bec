//! Processes: bounded command execution, and the table of processes a lab
//! started (killed by pid on teardown: SIGTERM, then SIGKILL after a bound,
//! then reaped).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Default bound for [`run`] and for `Lab::exec`.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process gets between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(3);

/// The pid of a process started by a lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub u32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn describe(argv: &[impl AsRef<str>]) -> String {
    argv.iter()
        .map(|a| a.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits for `child` until `deadline`; on expiry kills it (SIGKILL), reaps
/// it and returns `None`.
fn wait_deadline(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Kills a child on drop unless it was reaped: an `exec` whose caller
/// unwinds leaves no orphan.
struct ReapGuard(Option<Child>);

impl Drop for ReapGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `argv` (`argv[0]` looked up in PATH), feeding `stdin` if given, and
/// collects its output. Fails if it cannot start or does not finish within
/// `timeout` (it is then killed). The exit status is *not* checked.
pub fn run(argv: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    let (prog, args) = argv.split_first().context("empty argv")?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{}`", describe(argv)))?;
    let mut guard = ReapGuard(Some(child));
    let child = guard.0.as_mut().unwrap();
    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => {
            let data = data.to_vec();
            Some(thread::spawn(move || {
                let _ = pipe.write_all(&data);
            }))
        }
        _ => None,
    };
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_deadline(child, Instant::now() + timeout)?;
    guard.0 = None;
    // The child is gone; its pipes are closed unless it left a grandchild
    // holding them, so do not wait on the readers forever.
    let stdout = join_bounded(out_t, Duration::from_secs(2));
    let stderr = join_bounded(err_t, Duration::from_secs(2));
    if let Some(w) = writer {
        let _ = w.join();
    }
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => bail!(
            "`{}` did not finish within {:?} (killed); stderr: {}",
            describe(argv),
            timeout,
            String::from_utf8_lossy(&stderr).trim()
        ),
    }
}

fn join_bounded(t: thread::JoinHandle<Vec<u8>>, bound: Duration) -> Vec<u8> {
    let deadline = Instant::now() + bound;
    while !t.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    if t.is_finished() {
        t.join().unwrap_or_default()
    } else {
        Vec::new()
    }
}

/// Like [`run`], but fails unless the command exits 0; returns its stdout.
pub fn run_ok(argv: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Result<String> {
    let out = run(argv, stdin, timeout)?;
    check_output(argv, &out)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails with the command line and its stderr unless `out` says exit 0.
pub fn check_output(argv: &[&str], out: &Output) -> Result<()> {
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}{}",
            describe(argv),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(())
}

/// Finds the `lvs-lab-httpd` binary: `$LVS_LAB_HTTPD`, else next to the
/// current executable (or its parent, for `target/*/deps/` test binaries),
/// else `target/{debug,release}` under `$CARGO_TARGET_DIR` or the workspace.
pub fn httpd_path() -> Result<PathBuf> {
    lab_bin_path("lvs-lab-httpd", "LVS_LAB_HTTPD")
}

/// Finds the `lvs-lab-responder` binary (UDP echo, minimal SMTP) as
/// [`httpd_path`] does, with `$LVS_LAB_RESPONDER`.
pub fn responder_path() -> Result<PathBuf> {
    lab_bin_path("lvs-lab-responder", "LVS_LAB_RESPONDER")
}

/// One of the lab's binaries: `$ENV`, else next to the current executable
/// (or its parent), else `target/{debug,release}`.
fn lab_bin_path(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("{env}={} does not name a file", p.display());
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join(name));
            if let Some(up) = dir.parent() {
                candidates.push(up.join(name));
            }
        }
    }
    let mut roots = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        roots.push(PathBuf::from(t));
    }
    // lvs-testkit/../target
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    for root in roots {
        for profile in ["debug", "release"] {
            candidates.push(root.join(profile).join(name));
        }
    }
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    bail!(
        "the lab's `{name}` was not found (looked in: {}); build it with \
         `cargo build -p lvs-testkit --bin {name}` or set {env}=/path/to/{name}",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// How a spawned process' stdout/stderr are handled.
pub enum SpawnOutput {
    /// Both go to a log file in the lab's log directory.
    Log,
    /// Inherited from the caller (shown on the terminal, e.g. by the demo).
    Inherit,
}

pub(crate) struct Tracked {
    child: Child,
    pub(crate) ns: String,
    pub(crate) argv: Vec<String>,
    pub(crate) log: Option<PathBuf>,
}

/// The processes a lab started, by pid.
#[derive(Default)]
pub(crate) struct ProcessTable {
    procs: Mutex<BTreeMap<Pid, Tracked>>,
    counter: Mutex<u64>,
}

impl ProcessTable {
    /// Starts `argv` inside `ns` with `ip netns exec`. If `ready` is given,
    /// waits (bounded) for a stdout line containing that marker; the process
    /// is killed and an error returned if it exits or stays silent.
    pub(crate) fn spawn(
        &self,
        ns: &str,
        argv: &[&str],
        output: SpawnOutput,
        log_dir: &Path,
        ready: Option<(&str, Duration)>,
    ) -> Result<Pid> {
        let (prog, _) = argv.split_first().context("empty argv")?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(argv);
        cmd.stdin(Stdio::null());
        let log = match output {
            SpawnOutput::Log => {
                let n = {
                    let mut c = self.counter.lock().unwrap();
                    *c += 1;
                    *c
                };
                let base = Path::new(prog)
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "proc".into());
                let short_ns = ns.rsplit('-').next().unwrap_or(ns);
                let path = log_dir.join(format!("{n:03}-{short_ns}-{base}.log"));
                let f = File::create(&path)
                    .with_context(|| format!("cannot create log {}", path.display()))?;
                cmd.stderr(f.try_clone()?);
                if ready.is_some() {
                    cmd.stdout(Stdio::piped());
                } else {
                    cmd.stdout(f);
                }
                Some(path)
            }
            SpawnOutput::Inherit => {
                if ready.is_some() {
                    cmd.stdout(Stdio::piped());
                }
                None
            }
        };
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start `ip netns exec {ns} {}`", describe(argv)))?;
        let pid = Pid(child.id());
        let ready_rx = if let Some((marker, _)) = ready {
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = mpsc::channel();
            let marker = marker.to_string();
            let mut sink: Box<dyn Write + Send> = match &log {
                Some(p) => Box::new(File::options().append(true).open(p)?),
                None => Box::new(std::io::stdout()),
            };
            thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(sink, "{line}");
                    if line.contains(&marker) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            });
            Some(rx)
        } else {
            None
        };
        self.procs.lock().unwrap().insert(
            pid,
            Tracked {
                child,
                ns: ns.to_string(),
                argv: argv.iter().map(|s| s.to_string()).collect(),
                log: log.clone(),
            },
        );
        if let (Some(rx), Some((marker, timeout))) = (ready_rx, ready) {
            let deadline = Instant::now() + timeout;
            loop {
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(()) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                        if let Some(status) = self.try_status(pid) {
                            let _ = self.kill(pid);
                            bail!(
                                "`{}` in {ns} exited ({status}) before printing {marker:?}{}",
                                describe(argv),
                                log_tail(log.as_deref())
                            );
                        }
                    }
                    Err(_) => {
                        let _ = self.kill(pid);
                        bail!(
                            "`{}` in {ns} did not print {marker:?} within {timeout:?}{}",
                            describe(argv),
                            log_tail(log.as_deref())
                        );
                    }
                }
            }
        }
        Ok(pid)
    }

    fn try_status(&self, pid: Pid) -> Option<ExitStatus> {
        let mut procs = self.procs.lock().unwrap();
        procs.get_mut(&pid)?.child.try_wait().ok().flatten()
    }

    pub(crate) fn log_path(&self, pid: Pid) -> Option<PathBuf> {
        self.procs.lock().unwrap().get(&pid)?.log.clone()
    }

    pub(crate) fn is_running(&self, pid: Pid) -> bool {
        let mut procs = self.procs.lock().unwrap();
        match procs.get_mut(&pid) {
            Some(t) => matches!(t.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub(crate) fn pids(&self) -> Vec<Pid> {
        self.procs.lock().unwrap().keys().copied().collect()
    }

    /// SIGTERM, wait up to [`TERM_GRACE`], SIGKILL, reap. Returns the exit
    /// status. Fails if `pid` is not one of ours.
    pub(crate) fn kill(&self, pid: Pid) -> Result<ExitStatus> {
        let t =
            self.procs.lock().unwrap().remove(&pid).ok_or_else(|| {
                anyhow!("pid {pid} was not started by this lab (or already killed)")
            })?;
        let mut v = vec![t];
        Ok(terminate_all(&mut v, TERM_GRACE)
            .pop()
            .expect("one status per process"))
    }

    /// Kills every tracked process (in parallel: one grace period in all).
    pub(crate) fn kill_all(&self) -> Vec<(Pid, String, ExitStatus)> {
        let mut v: Vec<Tracked> = std::mem::take(&mut *self.procs.lock().unwrap())
            .into_values()
            .collect();
        let statuses = terminate_all(&mut v, TERM_GRACE);
        v.iter()
            .zip(statuses)
            .map(|(t, s)| {
                (
                    Pid(t.child.id()),
                    format!("{}: {}", t.ns, t.argv.join(" ")),
                    s,
                )
            })
            .collect()
    }
}

fn log_tail(log: Option<&Path>) -> String {
    let Some(p) = log else { return String::new() };
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(10).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!("; log {}:\n{}", p.display(), tail.join("\n"))
}

/// SIGTERM to all, reap within `grace`, SIGKILL the rest, reap them.
/// Descendants that outlive them (a daemon's children orphaned by its
/// SIGKILL, a shell's background jobs) are then sent SIGTERM and, after a
/// short bound, SIGKILL, by pid (checked against their start time, so a
/// reused pid is never hit).
fn terminate_all(procs: &mut [Tracked], grace: Duration) -> Vec<ExitStatus> {
    let mut status: Vec<Option<ExitStatus>> = procs
        .iter_mut()
        .map(|t| t.child.try_wait().ok().flatten())
        .collect();
    let roots: Vec<u32> = procs
        .iter()
        .zip(&status)
        .filter(|(_, s)| s.is_none())
        .map(|(t, _)| t.child.id())
        .collect();
    let descendants = descendants(&roots);
    for (t, s) in procs.iter().zip(&status) {
        if s.is_none() {
            // Safe against pid reuse: the child is not reaped yet, so the pid
            // still names it (at worst as a zombie).
            unsafe { libc::kill(t.child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + grace;
    loop {
        for (t, s) in procs.iter_mut().zip(status.iter_mut()) {
            if s.is_none() {
                *s = t.child.try_wait().ok().flatten();
            }
        }
        if status.iter().all(Option::is_some) || Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let statuses = procs
        .iter_mut()
        .zip(status)
        .map(|(t, s)| match s {
            Some(s) => s,
            None => {
                let _ = t.child.kill();
                t.child
                    .wait()
                    .unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(9))
            }
        })
        .collect();
    kill_leftovers(&descendants, DESCENDANT_GRACE);
    statuses
}

/// How long orphaned descendants get between SIGTERM and SIGKILL.
const DESCENDANT_GRACE: Duration = Duration::from_secs(1);

/// (ppid, state, start time) from /proc/PID/stat.
fn proc_stat(pid: u32) -> Option<(u32, char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let ppid = f.get(1)?.parse().ok()?;
    let start = f.get(19)?.parse().ok()?;
    Some((ppid, state, start))
}

/// Every live descendant of `roots`, as (pid, start time).
fn descendants(roots: &[u32]) -> Vec<(u32, u64)> {
    if roots.is_empty() {
        return Vec::new();
    }
    let mut table = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((ppid, _, start)) = proc_stat(pid) {
                table.push((pid, ppid, start));
            }
        }
    }
    let mut found: Vec<(u32, u64)> = Vec::new();
    let mut frontier: Vec<u32> = roots.to_vec();
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid, start) in &table {
            if ppid == parent && !found.iter().any(|(p, _)| *p == pid) {
                found.push((pid, start));
                frontier.push(pid);
            }
        }
    }
    found
}

fn still_there(pid: u32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((_, state, s)) if s == start && state != 'Z' && state != 'X')
}

fn kill_leftovers(procs: &[(u32, u64)], grace: Duration) {
    let alive: Vec<(u32, u64)> = procs
        .iter()
        .copied()
        .filter(|(p, s)| still_there(*p, *s))
        .collect();
    if alive.is_empty() {
        return;
    }
    for (p, _) in &alive {
        unsafe { libc::kill(*p as libc::pid_t, libc::SIGTERM) };
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && alive.iter().any(|(p, s)| still_there(*p, *s)) {
        thread::sleep(Duration::from_millis(5));
    }
    for (p, s) in &alive {
        if still_there(*p, *s) {
            unsafe { libc::kill(*p as libc::pid_t, libc::SIGKILL) };
        }
    }
    // Not our children: init reaps them. Wait (bounded) until they are gone
    // so that the namespace is empty when it is deleted.
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && alive.iter().any(|(p, s)| still_there(*p, *s)) {
        thread::sleep(Duration::from_millis(5));
    }
}
