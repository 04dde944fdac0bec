//! One owner per instance: the running `lvsd` holds an exclusive `flock` on
//! its pin directory, with its pid in an `owner` symlink beside the maps
//! (bpffs holds no regular files, but it holds symlinks).
//!
//! keepalived refuses a second instance through its pid file; we do the
//! same through the lock, which the kernel drops when the process dies
//! (also on `kill -9`), so a stale `owner` link never blocks a restart.
//!
//! Hand-over (`--keep-datapath` upgrades): a stopping owner rewrites its
//! link to say so; a new agent finding the lock held by a *stopping* owner
//! waits for it to go and then adopts the pins, while one finding a
//! *running* owner refuses at once, naming its pid.
//!
//! A start that fails drops its lock unconfirmed ([`InstanceLock::started`]
//! never called): everything the start added to the pin directory is
//! removed (links unpinned, so their XDP programs detach), the directory
//! and the bpffs root too when this start created them, and a bpffs this
//! start mounted is unmounted when nothing else is pinned in it.

use std::{
    collections::BTreeSet,
    fs::File,
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use aya::programs::links::PinnedLink;
use thiserror::Error;

use super::pins::{self, PinDir};

/// The symlink naming the owner (`pid=1234`, `pid=1234 stopping`).
const OWNER: &str = "owner";
/// Written first, then renamed over [`OWNER`] (bpffs names may not hold dots).
const OWNER_NEW: &str = "owner_new";
/// How long a new agent waits for a stopping owner to finish.
pub const HANDOVER_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum OwnerError {
    #[error("instance {instance} is in use by lvsd (pid {pid}) in {dir}; stop it first (or use another --instance)")]
    Running {
        instance: String,
        pid: String,
        dir: PathBuf,
    },
    #[error(
        "instance {instance}: lvsd (pid {pid}) is stopping but still holds {dir} after {waited:?}"
    )]
    StillStopping {
        instance: String,
        pid: String,
        dir: PathBuf,
        waited: Duration,
    },
    #[error("bpffs path {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a held lock's owner link says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: String,
    pub stopping: bool,
}

impl Owner {
    fn parse(target: &str) -> Owner {
        let mut words = target.split_whitespace();
        let pid = words
            .next()
            .and_then(|w| w.strip_prefix("pid="))
            .unwrap_or("?")
            .to_owned();
        Owner {
            pid,
            stopping: words.any(|w| w == "stopping"),
        }
    }
}

/// Reads the owner link of an instance directory, if any.
pub fn read_owner(dir: &Path) -> Option<Owner> {
    let t = std::fs::read_link(dir.join(OWNER)).ok()?;
    Some(Owner::parse(&t.to_string_lossy()))
}

/// The exclusive hold on one instance's pin directory.
pub struct InstanceLock {
    instance: String,
    dir: PathBuf,
    /// The locked directory; closing it releases the lock.
    fd: Option<File>,
    /// Entries present when the lock was taken (kept by a failed start).
    before: BTreeSet<String>,
    created_dir: bool,
    created_root: bool,
    /// The bpffs this start mounted, if it had to.
    mounted: Option<PathBuf>,
    started: bool,
}

impl InstanceLock {
    /// Takes the instance: makes sure the bpffs and the directory exist,
    /// then locks it. A running owner is refused at once; a stopping one is
    /// waited for (at most `wait`).
    pub fn acquire(root: &Path, instance: &str, wait: Duration) -> Result<Self, OwnerError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| OwnerError::Io { path, source }
        };
        let created_root = !root.exists();
        let mounted = pins::ensure_bpffs(root).map_err(io(root))?;
        let dir = PinDir::new(root, instance).dir().to_owned();
        let deadline = Instant::now() + wait;
        let mut created_dir = false;
        let mut told = false;
        loop {
            match std::fs::create_dir(&dir) {
                Ok(()) => created_dir = true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(&dir)(e)),
            }
            let fd = File::open(&dir).map_err(io(&dir))?;
            if !try_flock(&fd).map_err(io(&dir))? {
                let owner = read_owner(&dir).unwrap_or(Owner {
                    pid: "?".into(),
                    stopping: false,
                });
                if !owner.stopping {
                    return Err(OwnerError::Running {
                        instance: instance.to_owned(),
                        pid: owner.pid,
                        dir,
                    });
                }
                if Instant::now() >= deadline {
                    return Err(OwnerError::StillStopping {
                        instance: instance.to_owned(),
                        pid: owner.pid,
                        dir,
                        waited: wait,
                    });
                }
                if !told {
                    tracing::info!(
                        "instance {instance}: lvsd (pid {}) is stopping, waiting to take over its data path",
                        owner.pid
                    );
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            // The previous owner may have removed the directory (a stop
            // without --keep-datapath) while we waited on it: lock the one
            // that is there now.
            let same = match (fd.metadata(), std::fs::metadata(&dir)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if !same {
                continue;
            }
            let before = entries(&dir)
                .into_iter()
                .filter(|n| n != OWNER && n != OWNER_NEW)
                .collect();
            let lock = InstanceLock {
                instance: instance.to_owned(),
                dir,
                fd: Some(fd),
                before,
                created_dir,
                created_root,
                mounted: mounted.then(|| root.to_owned()),
                started: false,
            };
            lock.write_owner(false).map_err(io(&lock.dir))?;
            return Ok(lock);
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The start succeeded: from now on the pins are the running data path
    /// and dropping the lock leaves them alone.
    pub fn started(&mut self) {
        self.started = true;
    }

    /// Tells a new agent that this one is on its way out (it will wait).
    pub fn mark_stopping(&self) {
        if let Err(e) = self.write_owner(true) {
            tracing::debug!("owner link in {}: {e}", self.dir.display());
        }
    }

    fn write_owner(&self, stopping: bool) -> std::io::Result<()> {
        let target = format!(
            "pid={}{}",
            std::process::id(),
            if stopping { " stopping" } else { "" }
        );
        let tmp = self.dir.join(OWNER_NEW);
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp)?;
        std::fs::rename(&tmp, self.dir.join(OWNER))
    }

    /// Undoes a failed start: removes what it added, keeps what was there.
    fn undo_start(&mut self) {
        for name in entries(&self.dir) {
            if self.before.contains(&name) {
                continue;
            }
            let path = self.dir.join(&name);
            if let Some(_ifname) = name.strip_prefix("link_") {
                if let Ok(link) = PinnedLink::from_pin(&path) {
                    // The pin held the last reference: the program detaches.
                    let _ = link.unpin();
                    continue;
                }
            }
            let _ = std::fs::remove_file(&path);
        }
        if self.created_dir {
            let _ = std::fs::remove_dir(&self.dir);
        }
        // Our open directory would keep the bpffs busy.
        self.fd = None;
        let Some(root) = self.dir.parent() else {
            return;
        };
        // Each removal fails harmlessly where something else still lives.
        if self.created_root {
            let _ = std::fs::remove_dir(root);
        }
        if let Some(m) = &self.mounted {
            // The kernel's own `maps.debug`/`progs.debug` (bpf_preload) do
            // not count: pinned names cannot hold a dot.
            let pinned = entries(pins::mount_point(m))
                .into_iter()
                .any(|n| !n.contains('.'));
            if !pinned {
                let _ = pins::unmount(m);
                if self.created_root {
                    let _ = std::fs::remove_dir(root);
                }
            }
        }
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        if !self.started {
            self.undo_start();
        }
        // Only while the directory is still ours (a destroyed data path
        // took it with it).
        let _ = std::fs::remove_file(self.dir.join(OWNER));
        // Closing `fd` (after this) releases the lock.
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: true when taken, false when another holds it.
fn try_flock(f: &File) -> std::io::Result<bool> {
    // SAFETY: a valid open descriptor; flock has no memory arguments.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_link_text() {
        assert_eq!(
            Owner::parse("pid=42"),
            Owner {
                pid: "42".into(),
                stopping: false
            }
        );
        assert_eq!(
            Owner::parse("pid=42 stopping"),
            Owner {
                pid: "42".into(),
                stopping: true
            }
        );
        assert_eq!(Owner::parse("junk").pid, "?");
    }
}
