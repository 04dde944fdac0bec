//! `notify_fifo` / `vrrp_notify_fifo` (global_defs): every state change is
//! written to a FIFO as a line in keepalived's format,
//! `INSTANCE "VI_1" MASTER 200` or `GROUP "G" BACKUP 0`, for a reader such
//! as `notify_fifo_script` (started with the FIFO's path as its last
//! argument, stopped with us).
//!
//! As keepalived: the FIFO is created if missing (and removed at exit if
//! we created it), opened read-write and non-blocking so that writing
//! never waits for a reader (a full FIFO loses the line), and refused if
//! the path is not a FIFO we own.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use tracing::{info, warn};

use super::notify::state_word;
use super::state::VrrpState;

struct Fifo {
    path: PathBuf,
    file: File,
    created: bool,
    script: Option<tokio::process::Child>,
}

/// The open notify FIFOs (none when not configured).
#[derive(Default)]
pub struct NotifyFifos {
    fifos: Vec<Fifo>,
}

impl NotifyFifos {
    /// Opens `notify_fifo` and `vrrp_notify_fifo` (must be called inside a
    /// tokio runtime when a FIFO script is configured).
    pub fn open(g: &lvs_config::GlobalDefs) -> NotifyFifos {
        let mut out = NotifyFifos::default();
        for (kind, f) in [("", &g.notify_fifo), ("vrrp_", &g.vrrp_notify_fifo)] {
            let Some(f) = f.as_ref().filter(|f| !f.path.is_empty()) else {
                continue;
            };
            let script = f
                .script
                .as_deref()
                .filter(|l| crate::script_security::allowed(l));
            match open_one(&f.path, script) {
                Ok(fifo) => out.fifos.push(fifo),
                Err(e) => warn!("Unable to open {kind}notify fifo {}: {e}", f.path),
            }
        }
        out
    }

    pub fn instance(&self, name: &str, state: VrrpState, priority: u8) {
        self.write(&format!(
            "INSTANCE \"{name}\" {} {priority}\n",
            state_word(state)
        ));
    }

    pub fn group(&self, name: &str, state: VrrpState) {
        self.write(&format!("GROUP \"{name}\" {} 0\n", state_word(state)));
    }

    fn write(&self, line: &str) {
        for f in &self.fifos {
            // One write(2) of less than PIPE_BUF bytes: atomic.
            if let Err(e) = (&f.file).write(line.as_bytes()) {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    info!("notify fifo write error: {e}");
                }
            }
        }
    }
}

impl Drop for NotifyFifos {
    fn drop(&mut self) {
        for f in &mut self.fifos {
            // Unlinked first, so a script that reopens it cannot.
            if f.created {
                let _ = std::fs::remove_file(&f.path);
            }
            if let Some(c) = &mut f.script {
                let _ = c.start_kill();
            }
        }
    }
}

fn open_one(path: &str, script: Option<&str>) -> std::io::Result<Fifo> {
    let c = std::ffi::CString::new(path)?;
    // SAFETY: `c` is a valid NUL-terminated path; mkfifo only reads it.
    let created = unsafe { libc::mkfifo(c.as_ptr(), 0o644) } == 0;
    if !created {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if !meta.file_type().is_fifo() || meta.uid() != uid {
        return Err(std::io::Error::other("not a fifo we own - not using"));
    }
    let script = script.and_then(|line| {
        // The FIFO's path as the script's last argument ("$1" after the
        // line's own words).
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("{line} \"$1\""))
            .arg("sh")
            .arg(path)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        crate::script_security::apply(&mut cmd);
        match cmd.spawn() {
            Ok(c) => Some(c),
            Err(e) => {
                warn!("cannot run notify fifo script {line}: {e}");
                None
            }
        }
    });
    Ok(Fifo {
        path: PathBuf::from(path),
        file,
        created,
        script,
    })
}
