//! Network namespaces: entering one from a thread, listing, creating and
//! deleting (through `ip netns`, so they live under /run/netns).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::process;

const IP_TIMEOUT: Duration = Duration::from_secs(30);

/// The bind-mount `ip netns add NAME` creates.
pub fn path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

/// Moves the *calling thread* into network namespace `ns` (setns with
/// CLONE_NEWNET). Only this thread changes; threads it spawns afterwards
/// start in `ns` too.
pub fn enter(ns: &str) -> Result<()> {
    let p = path(ns);
    let f = File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
    // SAFETY: `f` is an open namespace file for the duration of the call.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("setns(CLONE_NEWNET) into {ns}"));
    }
    Ok(())
}

/// Runs `f` on a fresh thread that has entered `ns`, and returns its result.
/// `f` may borrow from the caller (scoped thread). A panic in `f` is resumed
/// in the caller, so `catch_unwind` and `#[should_panic]` work as usual.
pub fn run_in<F, R>(ns: &str, f: F) -> Result<R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    thread::scope(|s| {
        let h = thread::Builder::new()
            .name(format!("netns:{}", short(ns)))
            .spawn_scoped(s, move || -> Result<R> {
                enter(ns)?;
                Ok(f())
            })
            .context("cannot spawn a thread")?;
        match h.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Spawns a detached (joinable) thread that runs `f` inside `ns`; for
/// long-lived helpers such as a held-open connection.
pub fn spawn_thread<F, R>(ns: &str, f: F) -> Result<thread::JoinHandle<Result<R>>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let ns = ns.to_string();
    thread::Builder::new()
        .name(format!("netns:{}", short(&ns)))
        .spawn(move || -> Result<R> {
            enter(&ns)?;
            Ok(f())
        })
        .context("cannot spawn a thread")
}

fn short(ns: &str) -> &str {
    ns.rsplit('-').next().unwrap_or(ns)
}

/// Names listed by `ip netns list` (first word of each line).
pub fn list() -> Result<Vec<String>> {
    let out = process::run_ok(&["ip", "netns", "list"], None, IP_TIMEOUT)?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Names with the given prefix.
pub fn list_with_prefix(prefix: &str) -> Result<Vec<String>> {
    Ok(list()?
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect())
}

/// Creates the namespaces (one `ip -batch` call).
pub fn add_all(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let batch: String = names.iter().map(|n| format!("netns add {n}\n")).collect();
    process::run_ok(&["ip", "-batch", "-"], Some(batch.as_bytes()), IP_TIMEOUT)
        .context("creating network namespaces")?;
    Ok(())
}

/// Deletes the namespaces (one `ip -force -batch` call, so one failure does
/// not stop the others); fails if any of them is still listed afterwards.
pub fn del_all(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let batch: String = names.iter().map(|n| format!("netns del {n}\n")).collect();
    let res = process::run(
        &["ip", "-force", "-batch", "-"],
        Some(batch.as_bytes()),
        IP_TIMEOUT,
    );
    let left: Vec<String> = names.iter().filter(|n| path(n).exists()).cloned().collect();
    if !left.is_empty() {
        let why = match res {
            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => format!("{e:#}"),
        };
        bail!("namespaces not deleted: {left:?}: {why}");
    }
    Ok(())
}

/// Pids of processes whose network namespace is `ns` (`ip netns pids`).
pub fn pids(ns: &str) -> Result<Vec<u32>> {
    let out = process::run_ok(&["ip", "netns", "pids", ns], None, IP_TIMEOUT)?;
    Ok(out
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Removes namespaces left by lab runs that died without tearing down
/// (killed with SIGKILL, say): names `lvs-<pid>-…` whose `<pid>` is no
/// longer alive. Processes still inside such a namespace are killed by pid
/// (only the lab's naming scheme makes them ours). Returns the names removed.
pub fn cleanup_stale() -> Result<Vec<String>> {
    let mut stale = Vec::new();
    for name in list()? {
        let Some(rest) = name.strip_prefix("lvs-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || PathBuf::from(format!("/proc/{pid}")).exists() {
            continue;
        }
        stale.push(name);
    }
    for ns in &stale {
        for pid in pids(ns).unwrap_or_default() {
            // SAFETY: kill() takes no pointers; the pids are of a stale lab's
            // namespace, whose owning test process is gone.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
    del_all(&stale)?;
    Ok(stale)
}

/// Writes a sysctl (`net.ipv4.conf.all.arp_ignore` style key) for the
/// calling thread's network namespace, via /proc/sys.
pub fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let p = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    std::fs::write(&p, value).with_context(|| format!("sysctl {key}={value}"))
}

/// Reads a sysctl for the calling thread's network namespace.
pub fn read_sysctl(key: &str) -> Result<String> {
    let p = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    Ok(std::fs::read_to_string(&p)
        .with_context(|| format!("sysctl {key}"))?
        .trim()
        .to_string())
}
