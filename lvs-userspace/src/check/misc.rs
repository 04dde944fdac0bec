//! MISC_CHECK: run `misc_path`; exit 0 is up, anything else down, and with
//! `misc_dynamic` exit 2..=255 is up with weight `exit - 2` (keepalived's
//! check_misc.c).
//!
//! How the command line runs is [`crate::script`]'s rule, the same for every
//! script lvsd starts. The script runs in its own process group with
//! stdin/stdout/stderr on /dev/null, as `user` (or the global
//! `script_user`) when given. After `misc_timeout` (default `delay_loop`)
//! the group gets SIGTERM, then SIGKILL 2 s later (keepalived's sequence);
//! the child is always waited for, and a checker stopped mid-run kills the
//! group, so no zombie and no stray script is left behind.

use std::{process::Stdio, time::Duration};

use super::{error::CheckError, spec::MiscSpec};

/// How a script run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exit(i32),
    Signal(i32),
    TimedOut,
}

/// The command for a script line: [`crate::script::command`] without extra
/// arguments (kept under this name for branches written against it).
pub fn command(line: &str) -> tokio::process::Command {
    crate::script::command(line, &[])
}

/// uid and gid of `user NAME [GROUP]`.
pub fn resolve_user(spec: &str) -> Result<(u32, u32), CheckError> {
    let mut it = spec.split_whitespace();
    let name = it
        .next()
        .ok_or_else(|| CheckError::Spawn("empty user".into()))?;
    let (uid, mut gid) = lookup_user(name)?;
    if let Some(group) = it.next() {
        gid = lookup_group(group)?;
    }
    Ok((uid, gid))
}

fn lookup_user(name: &str) -> Result<(u32, u32), CheckError> {
    crate::script_security::user_ids(name).ok_or_else(|| not_found("user", name))
}

fn lookup_group(name: &str) -> Result<u32, CheckError> {
    crate::script_security::group_id(name).ok_or_else(|| not_found("group", name))
}

fn not_found(what: &str, name: &str) -> CheckError {
    if name.contains('\0') {
        CheckError::Spawn(format!("bad {what} {name:?}"))
    } else {
        CheckError::Spawn(format!("unknown {what} {name}"))
    }
}

/// Sends `sig` to the process group `pgid`.
fn kill_group(pgid: i32, sig: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid only signals that process
        // group; no memory is involved.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// Kills the script's process group if the run is abandoned (the checker
/// task was stopped while the script ran).
struct GroupGuard {
    pgid: i32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pgid, libc::SIGKILL);
        }
    }
}

/// Runs the script once.
pub async fn run(spec: &MiscSpec) -> Result<Outcome, CheckError> {
    let mut cmd = crate::script::command(&spec.path, &[]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        // Backstop: tokio reaps a dropped child in the background.
        .kill_on_drop(true);
    if let Some(user) = &spec.user {
        let (uid, gid) = resolve_user(user)?;
        cmd.uid(uid).gid(gid);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| CheckError::Spawn(format!("{}: {e}", spec.path)))?;
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    let mut guard = GroupGuard { pgid, armed: true };
    let status = match tokio::time::timeout(spec.timeout, child.wait()).await {
        Ok(r) => r.map_err(|e| CheckError::Spawn(e.to_string()))?,
        Err(_) => {
            kill_group(pgid, libc::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(2), child.wait())
                .await
                .is_err()
            {
                kill_group(pgid, libc::SIGKILL);
                let _ = child.wait().await;
            }
            // Whatever the script started in its group goes too.
            kill_group(pgid, libc::SIGKILL);
            guard.armed = false;
            return Ok(Outcome::TimedOut);
        }
    };
    guard.armed = false;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => Outcome::Exit(c),
        (None, Some(s)) => Outcome::Signal(s),
        _ => Outcome::Exit(-1),
    })
}

/// keepalived's reading of an exit: `Ok(Some(weight))` up with a dynamic
/// weight, `Ok(None)` up, `Err(reason)` down.
pub fn verdict(outcome: Outcome, dynamic: bool) -> Result<Option<u32>, String> {
    match outcome {
        Outcome::Exit(0) => Ok(None),
        Outcome::Exit(c @ 2..=255) if dynamic => Ok(Some(c as u32 - 2)),
        Outcome::Exit(c) => Err(format!("exited with status {c}")),
        Outcome::Signal(s) => Err(format!("due to signal {s}")),
        Outcome::TimedOut => Err("timed out".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(verdict(Outcome::Exit(0), true), Ok(None));
        assert_eq!(verdict(Outcome::Exit(7), true), Ok(Some(5)));
        assert_eq!(verdict(Outcome::Exit(2), true), Ok(Some(0)));
        assert!(verdict(Outcome::Exit(7), false).is_err());
        assert!(verdict(Outcome::Exit(1), true).is_err());
        assert!(verdict(Outcome::TimedOut, true).is_err());
    }

    #[tokio::test]
    async fn runs_times_out_and_reaps() {
        let spec = |path: &str, t: u64| MiscSpec {
            path: path.into(),
            timeout: Duration::from_millis(t),
            dynamic: true,
            user: None,
        };
        assert_eq!(
            run(&spec("/bin/sh -c 'exit 5'", 5000)).await.unwrap(),
            Outcome::Exit(5)
        );
        assert_eq!(run(&spec("exit 3", 5000)).await.unwrap(), Outcome::Exit(3));
        let t = std::time::Instant::now();
        assert_eq!(
            run(&spec("sleep 30", 200)).await.unwrap(),
            Outcome::TimedOut
        );
        assert!(t.elapsed() < Duration::from_secs(3));
        assert!(run(&spec("/nonexistent/x", 5000)).await.is_err());
    }
}
