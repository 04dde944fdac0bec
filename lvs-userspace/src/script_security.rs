//! keepalived's script security (core/notify.c), for the scripts the VRRP
//! side starts (notify*, track_script, notify_fifo_script; MISC_CHECK has
//! its own `user`):
//! - who they run as: `script_user USER [GROUP]`, else keepalived's default
//!   user `keepalived_script` when it exists, else root (as keepalived);
//! - which are refused: with `enable_script_security`, a script that is
//!   not owned by root or is writable by a non-root group or by others,
//!   or that sits in such a directory (sticky directories such as /tmp
//!   excepted), is disabled with keepalived's warning; without it, the
//!   same finding is logged as a SECURITY VIOLATION and the script runs.
//!
//! The policy is process-wide, as `global_defs` is: [`set`] at start and
//! on reload, [`apply`] to every script's command.

use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use tracing::{info, warn};

/// The uid/gid scripts run as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptUser {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// `None`: as ourselves (root).
    pub user: Option<ScriptUser>,
    /// `enable_script_security`.
    pub enforce: bool,
}

static POLICY: RwLock<Policy> = RwLock::new(Policy {
    user: None,
    enforce: false,
});

impl Policy {
    /// From `global_defs`: `script_user` (an unknown user is an error),
    /// else `keepalived_script` if it exists.
    pub fn from_global(g: &lvs_config::GlobalDefs) -> Result<Policy, String> {
        let user = match &g.script_user {
            Some(line) => {
                let mut w = line.split_whitespace();
                let name = w.next().unwrap_or_default();
                let u =
                    lookup_user(name).ok_or_else(|| format!("script_user: unknown user {name}"))?;
                let gid = match w.next() {
                    Some(grp) => lookup_group(grp)
                        .ok_or_else(|| format!("script_user: unknown group {grp}"))?,
                    None => u.gid,
                };
                Some(ScriptUser { uid: u.uid, gid })
            }
            None => lookup_user("keepalived_script"),
        };
        Ok(Policy {
            user,
            enforce: g.enable_script_security,
        })
    }
}

/// Makes `p` the policy for scripts started from now on.
pub fn set(p: Policy) {
    *POLICY.write().unwrap() = p;
}

pub fn current() -> Policy {
    *POLICY.read().unwrap()
}

/// Runs `cmd` as the script user (std drops supplementary groups too).
pub fn apply(cmd: &mut tokio::process::Command) {
    if let Some(u) = current().user {
        cmd.uid(u.uid).gid(u.gid);
    }
}

/// Whether the script a line starts may run; logs keepalived's warning
/// when it is insecure. A line whose program cannot be found is left to
/// fail when started.
pub fn allowed(line: &str) -> bool {
    let Some(path) = program(line) else {
        return true;
    };
    let enforce = current().enforce;
    match insecure_component(&path) {
        None => true,
        Some(_) if enforce => {
            info!(
                "Unsafe permissions found for script '{}' - disabling.",
                path.display()
            );
            false
        }
        Some(_) => {
            info!("Unsafe permissions found for script '{}'.", path.display());
            warn!(
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
            );
            true
        }
    }
}

/// The program a script line runs: its first word, found in $PATH when it
/// has no slash.
fn program(line: &str) -> Option<PathBuf> {
    let first = line
        .split_whitespace()
        .next()?
        .trim_matches(|c| c == '"' || c == '\'');
    if first.contains('/') {
        return Some(PathBuf::from(first));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(first))
        .find(|p| p.is_file())
}

/// keepalived's check_security: the first component of `path` (from `/`
/// down to the script itself, symlinks not followed) that a non-root
/// user could change.
pub fn insecure_component(path: &Path) -> Option<PathBuf> {
    let mut prefix = PathBuf::new();
    for c in path.components() {
        prefix.push(c);
        let Ok(m) = std::fs::symlink_metadata(&prefix) else {
            return None; // not found: nothing to judge
        };
        let mode = m.permissions().mode();
        let is_dir = m.is_dir();
        let sticky = mode & 0o1000 != 0;
        let writable_by_others = (m.gid() != 0 && mode & 0o020 != 0) || mode & 0o002 != 0;
        let checked = (is_dir && !sticky) || m.is_file();
        if m.uid() != 0 || (checked && writable_by_others) {
            return Some(prefix);
        }
    }
    None
}

fn lookup_user(name: &str) -> Option<ScriptUser> {
    user_ids(name).map(|(uid, gid)| ScriptUser { uid, gid })
}

fn lookup_group(name: &str) -> Option<u32> {
    if let Ok(gid) = name.parse() {
        return Some(gid);
    }
    group_id(name)
}

/// The uid and primary gid of user `name` (getpwnam_r); also what
/// `MISC_CHECK`'s `user` runs as.
pub(crate) fn user_ids(name: &str) -> Option<(u32, u32)> {
    by_name(name, libc::getpwnam_r, |pw: &libc::passwd| {
        (pw.pw_uid, pw.pw_gid)
    })
}

/// The gid of group `name` (getgrnam_r).
pub(crate) fn group_id(name: &str) -> Option<u32> {
    by_name(name, libc::getgrnam_r, |gr: &libc::group| gr.gr_gid)
}

/// One reentrant `get*nam_r` lookup of `name`; `pick` reads what is wanted
/// before the buffer the entry's strings point into goes.
fn by_name<T, R>(
    name: &str,
    getnam_r: unsafe extern "C" fn(
        *const libc::c_char,
        *mut T,
        *mut libc::c_char,
        libc::size_t,
        *mut *mut T,
    ) -> libc::c_int,
    pick: impl FnOnce(&T) -> R,
) -> Option<R> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16384];
    // SAFETY: T is passwd or group, plain old data; zeroed is a valid
    // initial value, read only after the call filled it.
    let mut entry: T = unsafe { std::mem::zeroed() };
    let mut out: *mut T = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives it and its
    // length is passed; the call writes only into entry and buf.
    let rc = unsafe {
        getnam_r(
            c.as_ptr(),
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut out,
        )
    };
    (rc == 0 && !out.is_null()).then(|| pick(&entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_as_keepalived() {
        let base = std::env::temp_dir().join(format!("lvs-sec-{}", std::process::id()));
        let dir = base.join("bin");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = dir.join("notify.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Root-owned, 0755 all along (/tmp is sticky) when run as root.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(insecure_component(&script), None);
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o757)).unwrap();
            assert_eq!(insecure_component(&script), Some(script.clone()));
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            assert_eq!(insecure_component(&script), Some(dir.clone()));
        }
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(program("/bin/true arg"), Some(PathBuf::from("/bin/true")));
        assert!(program("true").is_some_and(|p| p.is_absolute()));
    }
}
