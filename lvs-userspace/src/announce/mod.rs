//! Route health injection: lvsd announces each VIP over BGP while this
//! director can serve it, through BIRD 2 running beside it. lvsd never
//! speaks BGP or BFD itself.
//!
//! BIRD runs as lvsd's child, in the foreground, with
//! `PR_SET_PDEATHSIG(SIGTERM)`: when lvsd dies — even by `kill -9` — the
//! kernel stops BIRD, whose BGP sessions then close (the router withdraws
//! at once) and whose BFD stops answering (the router's BFD notices within
//! interval × multiplier). A crashed agent therefore never leaves a VIP
//! announced, without a heartbeat file or a watchdog to get wrong. A dead
//! machine or a cut link is caught by BFD alone.
//!
//! What is announced is one static protocol in a configuration lvsd writes
//! (`bird.rs`); a change is a rewrite and `birdc configure`.

pub mod bird;

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use lvs_config::BgpAnnounce;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{error, info, warn};

pub use bird::NeighborStatus;

#[derive(Debug, Error)]
pub enum AnnounceError {
    #[error("bgp_announce: cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bgp_announce: cannot start {bin} (install BIRD 2: apt-get install bird2, or set daemon_path): {source}")]
    Spawn { bin: String, source: std::io::Error },
}

/// Where BIRD's files live.
#[derive(Clone, Debug)]
pub struct Paths {
    pub config: PathBuf,
    pub socket: PathBuf,
    pub pid: PathBuf,
}

impl Paths {
    /// The block's paths, else `/run/lvs-xdp/<instance>/bird.*`.
    pub fn of(block: &BgpAnnounce, instance: &str) -> Paths {
        let dir = PathBuf::from("/run/lvs-xdp").join(instance);
        let config = block
            .config_file
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("bird.conf"));
        let socket = block
            .socket
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("bird.ctl"));
        let pid = config.with_extension("pid");
        Paths {
            config,
            socket,
            pid,
        }
    }
}

/// What `lvsadm --daemon`, the status file and /metrics show.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AnnounceStatus {
    pub daemon: String,
    pub daemon_running: bool,
    pub local_as: u32,
    /// Every VIP of the config.
    pub vips: Vec<Ipv4Addr>,
    /// Those announced now.
    pub announced: Vec<Ipv4Addr>,
    pub neighbors: Vec<NeighborStatus>,
}

/// The running BIRD and what it was told.
pub struct Announcer {
    block: BgpAnnounce,
    paths: Paths,
    child: Option<tokio::process::Child>,
    last_spawn: Option<Instant>,
    /// What BIRD's configuration holds; `None`: unknown (retry).
    announced: Option<BTreeSet<Ipv4Addr>>,
    wanted: BTreeSet<Ipv4Addr>,
    candidates: BTreeSet<Ipv4Addr>,
    neighbors: Vec<NeighborStatus>,
}

/// Bound on one `birdc` call.
const BIRDC_TIMEOUT: Duration = Duration::from_secs(3);
/// A BIRD that exits is started again at most this often.
const RESPAWN_EVERY: Duration = Duration::from_secs(2);

impl Announcer {
    /// Writes a configuration announcing nothing and starts BIRD. Call it
    /// from the thread that lives as long as lvsd (the runtime's main
    /// thread): the death signal follows the thread that forked.
    pub fn start(block: &BgpAnnounce, instance: &str) -> Result<Announcer, AnnounceError> {
        let paths = Paths::of(block, instance);
        let mut a = Announcer {
            block: block.clone(),
            paths,
            child: None,
            last_spawn: None,
            announced: None,
            wanted: BTreeSet::new(),
            candidates: BTreeSet::new(),
            neighbors: Vec::new(),
        };
        a.write_config(&BTreeSet::new())?;
        a.announced = Some(BTreeSet::new());
        a.spawn()?;
        Ok(a)
    }

    fn write_config(&self, vips: &BTreeSet<Ipv4Addr>) -> Result<(), AnnounceError> {
        let text = bird::render(&self.block, vips);
        let path = &self.paths.config;
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("conf.tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|source| AnnounceError::Write {
            path: path.clone(),
            source,
        })
    }

    fn spawn(&mut self) -> Result<(), AnnounceError> {
        if let Some(dir) = self.paths.socket.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut cmd = tokio::process::Command::new(&self.block.daemon_path);
        cmd.arg("-f")
            .arg("-c")
            .arg(&self.paths.config)
            .arg("-s")
            .arg(&self.paths.socket)
            .arg("-P")
            .arg(&self.paths.pid)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the forked child before exec and only
        // calls async-signal-safe functions (prctl, getppid).
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // lvsd died between fork and prctl: do not outlive it.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("lvsd is gone"));
                }
                Ok(())
            });
        }
        self.last_spawn = Some(Instant::now());
        let child = cmd.spawn().map_err(|source| AnnounceError::Spawn {
            bin: self.block.daemon_path.clone(),
            source,
        })?;
        info!(
            "bgp_announce: started {} (pid {}, socket {})",
            self.block.daemon_path,
            child.id().unwrap_or(0),
            self.paths.socket.display()
        );
        self.child = Some(child);
        Ok(())
    }

    /// Runs `birdc -s SOCK ARGS…`; its output, or why not.
    async fn birdc(&self, args: &[&str]) -> Result<String, String> {
        let fut = tokio::process::Command::new(&self.block.control_path)
            .arg("-s")
            .arg(&self.paths.socket)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(BIRDC_TIMEOUT, fut).await {
            Err(_) => Err(format!("birdc {} timed out", args.join(" "))),
            Ok(Err(e)) => Err(format!("birdc: {e}")),
            Ok(Ok(o)) => {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                if o.status.success() {
                    Ok(text)
                } else {
                    Err(format!(
                        "birdc {}: {}{}",
                        args.join(" "),
                        text.trim(),
                        String::from_utf8_lossy(&o.stderr).trim()
                    ))
                }
            }
        }
    }

    /// Announces exactly `vips` (of `candidates`, the config's VIPs);
    /// logs each change. Cheap when nothing changed.
    pub async fn set(&mut self, candidates: BTreeSet<Ipv4Addr>, vips: BTreeSet<Ipv4Addr>) {
        self.candidates = candidates;
        self.wanted = vips;
        if self.announced.as_ref() == Some(&self.wanted) {
            return;
        }
        let wanted = self.wanted.clone();
        if let Err(e) = self.write_config(&wanted) {
            error!("{e}");
            return;
        }
        match self.birdc(&["configure"]).await {
            Ok(out) if out.contains("Reconfigur") => {
                let before = self.announced.take().unwrap_or_default();
                for v in wanted.difference(&before) {
                    info!("bgp_announce: announcing {v}/32");
                }
                for v in before.difference(&wanted) {
                    info!("bgp_announce: withdrawing {v}/32");
                }
                self.announced = Some(wanted);
            }
            Ok(out) => {
                warn!(
                    "bgp_announce: BIRD refused the configuration: {}",
                    out.trim()
                );
                self.announced = None;
            }
            Err(e) => {
                // BIRD still starting, or gone: the next tick retries.
                tracing::debug!("bgp_announce: {e}");
                self.announced = None;
            }
        }
    }

    /// Once a second: restarts a BIRD that exited, reads the sessions.
    pub async fn tick(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                error!(
                    "bgp_announce: BIRD exited ({st}); nothing is announced until it runs again"
                );
                self.child = None;
                self.neighbors.clear();
            }
        }
        if self.child.is_none() {
            if self.last_spawn.is_some_and(|t| t.elapsed() < RESPAWN_EVERY) {
                return;
            }
            let wanted = self.wanted.clone();
            // A new BIRD reads the wanted state from its file at start.
            match self.write_config(&wanted).and_then(|()| self.spawn()) {
                Ok(()) => self.announced = Some(wanted),
                Err(e) => {
                    error!("{e}");
                    return;
                }
            }
        }
        if self.announced.is_none() {
            let (c, w) = (self.candidates.clone(), self.wanted.clone());
            self.set(c, w).await;
        }
        self.poll_sessions().await;
    }

    async fn poll_sessions(&mut self) {
        let protocols = self.birdc(&["show", "protocols"]).await;
        let bfd = if self.block.bfd {
            self.birdc(&["show", "bfd", "sessions"]).await.ok()
        } else {
            None
        };
        let protocols = match protocols {
            Ok(p) => bird::parse_protocols(&p),
            Err(e) => {
                tracing::debug!("bgp_announce: {e}");
                Vec::new()
            }
        };
        let bfd = bfd
            .map(|b| bird::parse_bfd_sessions(&b))
            .unwrap_or_default();
        let before = std::mem::take(&mut self.neighbors);
        for n in &self.block.neighbors {
            let name = bird::bgp_proto_name(n.addr);
            let bgp = protocols
                .iter()
                .find(|(p, _)| *p == name)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| "unknown".into());
            let bfd_state = if self.block.bfd {
                bfd.iter()
                    .find(|(a, _)| *a == n.addr)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_else(|| "Down".into())
            } else {
                String::new()
            };
            let now = NeighborStatus {
                addr: n.addr,
                remote_as: n.remote_as,
                bgp,
                bfd: bfd_state,
            };
            let was = before.iter().find(|b| b.addr == n.addr);
            if was.map(|w| w.established()) != Some(now.established()) {
                if now.established() {
                    info!("bgp_announce: BGP session with {} Established", n.addr);
                } else if was.is_some() {
                    warn!("bgp_announce: BGP session with {} is {}", n.addr, now.bgp);
                }
            }
            self.neighbors.push(now);
        }
    }

    pub fn status(&self) -> AnnounceStatus {
        AnnounceStatus {
            daemon: "bird".into(),
            daemon_running: self.child.is_some(),
            local_as: self.block.local_as,
            vips: self.candidates.iter().copied().collect(),
            announced: self
                .announced
                .iter()
                .flatten()
                .copied()
                .filter(|_| self.child.is_some())
                .collect(),
            neighbors: self.neighbors.clone(),
        }
    }

    /// A reloaded config's block: rewritten and applied by BIRD itself.
    pub async fn reload(&mut self, block: &BgpAnnounce) {
        if *block == self.block {
            return;
        }
        self.block = block.clone();
        self.announced = None;
        let (c, w) = (self.candidates.clone(), self.wanted.clone());
        self.set(c, w).await;
    }

    /// Graceful stop, first half: withdraw everything, then keep the data
    /// path forwarding for `withdraw_delay` while the router moves the
    /// flows to the other directors.
    pub async fn withdraw_and_drain(&mut self) {
        let c = self.candidates.clone();
        self.set(c, BTreeSet::new()).await;
        let d = self.block.withdraw_delay;
        if !d.is_zero() {
            info!(
                "bgp_announce: withdrawn; forwarding for {:.1} s more (withdraw_delay)",
                d.as_secs_f64()
            );
            tokio::time::sleep(d).await;
        }
    }

    /// Stops BIRD (SIGTERM: it closes its sessions with a Cease).
    pub async fn stop(mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = c.id() {
                // SAFETY: signalling our own child by its pid.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(3), c.wait())
                .await
                .is_err()
            {
                let _ = c.kill().await;
            }
        }
        let _ = std::fs::remove_file(&self.paths.pid);
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }
}

/// The announcement as Prometheus text (appended to /metrics).
pub fn metrics(st: &AnnounceStatus) -> String {
    let mut out = String::new();
    out += "# HELP lvs_bgp_announced Whether this director announces the VIP over BGP (1) or has withdrawn it (0).\n";
    out += "# TYPE lvs_bgp_announced gauge\n";
    for v in &st.vips {
        let on = st.announced.contains(v);
        gauge01(&mut out, "lvs_bgp_announced", &format!("vip=\"{v}\""), on);
    }
    out += "# HELP lvs_bgp_session_up Whether the BGP session (session=\"bgp\": Established) or BFD session (session=\"bfd\": Up) with a neighbor is up.\n";
    out += "# TYPE lvs_bgp_session_up gauge\n";
    for n in &st.neighbors {
        let session = |s: &str| format!("neighbor=\"{}\",session=\"{s}\"", n.addr);
        gauge01(
            &mut out,
            "lvs_bgp_session_up",
            &session("bgp"),
            n.established(),
        );
        if !n.bfd.is_empty() {
            gauge01(
                &mut out,
                "lvs_bgp_session_up",
                &session("bfd"),
                n.bfd == "Up",
            );
        }
    }
    out
}

/// One sample `name{labels} 1` (or 0) of a yes/no gauge.
fn gauge01(out: &mut String, name: &str, labels: &str, on: bool) {
    let _ = writeln!(out, "{name}{{{labels}}} {}", u8::from(on));
}

/// `lvsadm --daemon` lines.
pub fn daemon_lines(st: &AnnounceStatus) -> String {
    let list = |v: &[Ipv4Addr]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|a| format!("{a}/32"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let withdrawn: Vec<Ipv4Addr> = st
        .vips
        .iter()
        .filter(|v| !st.announced.contains(v))
        .copied()
        .collect();
    let mut out = format!(
        "bgp announce ({}{}, local AS {}): announced {}; withdrawn {}\n",
        st.daemon,
        if st.daemon_running {
            ""
        } else {
            " not running"
        },
        st.local_as,
        list(&st.announced),
        list(&withdrawn)
    );
    for n in &st.neighbors {
        let _ = write!(out, "bgp neighbor {} AS {}: {}", n.addr, n.remote_as, n.bgp);
        if !n.bfd.is_empty() {
            let _ = write!(out, ", BFD {}", n.bfd);
        }
        out += "\n";
    }
    out
}

/// Whether `path` is a socket BIRD answers on (for tests and tools).
pub fn socket_exists(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_and_metrics_show_announced_and_sessions() {
        let st = AnnounceStatus {
            daemon: "bird".into(),
            daemon_running: true,
            local_as: 65001,
            vips: vec![
                Ipv4Addr::new(198, 18, 0, 100),
                Ipv4Addr::new(198, 18, 0, 101),
            ],
            announced: vec![Ipv4Addr::new(198, 18, 0, 100)],
            neighbors: vec![NeighborStatus {
                addr: Ipv4Addr::new(198, 18, 0, 250),
                remote_as: 65000,
                bgp: "Established".into(),
                bfd: "Up".into(),
            }],
        };
        assert_eq!(
            daemon_lines(&st),
            "bgp announce (bird, local AS 65001): announced 198.18.0.100/32; withdrawn 198.18.0.101/32\n\
             bgp neighbor 198.18.0.250 AS 65000: Established, BFD Up\n"
        );
        let m = metrics(&st);
        assert!(m.contains("lvs_bgp_announced{vip=\"198.18.0.100\"} 1\n"));
        assert!(m.contains("lvs_bgp_announced{vip=\"198.18.0.101\"} 0\n"));
        assert!(m.contains("lvs_bgp_session_up{neighbor=\"198.18.0.250\",session=\"bgp\"} 1\n"));
        assert!(m.contains("lvs_bgp_session_up{neighbor=\"198.18.0.250\",session=\"bfd\"} 1\n"));
    }
}
