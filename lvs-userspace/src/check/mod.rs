//! keepalived's health checkers: TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK,
//! PING_CHECK, UDP_CHECK, DNS_CHECK, SMTP_CHECK and FILE_CHECK, with
//! keepalived's options, retry semantics and log lines, and the real
//! servers' `notify_up` / `notify_down` scripts (and `omega`).
//!
//! [`Checkers`] runs one task per checker of each real server of the config
//! and one manager task that folds the checkers' verdicts into one state per
//! real server (up only when all its checkers are up) and sends
//! [`CheckEvent`]s to the agent. The agent does the data-path effects
//! (Removing/Adding service, inhibit_on_failure, sorry_server, quorum with
//! [`quorum_state`]).
//!
//! - `spec`: config → what each checker does (span-free, so reloads diff);
//! - `state`: the retry state machine and the quorum rule (pure);
//! - `runner`: one checker's loop (jitter, semaphore, retries, logs);
//! - `tcp`, `http` (+ TLS, `genhash`), `misc`, `ping`, `udp`, `dns`,
//!   `smtp`: the probes; `file`: FILE_CHECK's reading of a track_file;
//! - `error`: why a probe failed.
//!
//! Before its first event a real server is presumed up (keepalived), unless
//! `alpha` (then a `Down` is sent at once). The first check of each checker
//! starts at a random point within `warmup` (default `delay_loop`).

pub mod dns;
pub mod error;
pub mod file;
pub mod http;
pub mod misc;
pub mod ping;
mod runner;
pub mod smtp;
pub mod spec;
pub mod state;
pub mod tcp;
pub mod udp;

use std::{collections::BTreeMap, net::IpAddr, sync::Arc, time::SystemTime};

use serde::Serialize;
use tokio::{
    sync::{mpsc, watch, Semaphore},
    task::JoinHandle,
};
use tracing::{info, warn};

pub use error::CheckError;
pub use http::{genhash, GenhashOptions};
pub use spec::HttpProtocol;
pub use state::quorum_state;

use runner::{FromChecker, Report};
use spec::CheckerSpec;

/// The transport protocol (one type for config, checkers and data path).
pub use lvs_config::Protocol;
/// The name this type had here before there was one protocol type; kept so
/// that branches written against it still build. Prefer `Protocol`.
#[doc(hidden)]
pub use lvs_config::Protocol as Proto;

/// keepalived's `[ip]:proto:port`.
pub fn fmt_rs(addr: IpAddr, proto: Protocol, port: u16) -> String {
    format!("[{addr}]:{}:{port}", proto.as_str())
}

/// Identifies a real server of a virtual server across reloads.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RsKey {
    pub vs_addr: IpAddr,
    pub vs_port: u16,
    pub proto: Protocol,
    pub rs_addr: IpAddr,
    pub rs_port: u16,
}

impl RsKey {
    /// `[ip]:tcp:port` of the real server.
    pub fn rs_name(&self) -> String {
        fmt_rs(self.rs_addr, self.proto, self.rs_port)
    }
    /// `[ip]:tcp:port` of the virtual server.
    pub fn vs_name(&self) -> String {
        fmt_rs(self.vs_addr, self.proto, self.vs_port)
    }
}

/// What the checkers tell the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckEvent {
    /// All checkers of the real server agree it is up (first result, or a change).
    Up { rs: RsKey },
    /// One checker failed after its retries: the real server is down.
    Down { rs: RsKey, reason: String },
    /// MISC_CHECK misc_dynamic changed the weight (exit 2..255 → weight
    /// exit−2; exit 0 after that → the configured weight again).
    Weight { rs: RsKey, weight: u32 },
}

/// The health of one checked real server (`lvsadm --health`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RsHealth {
    pub rs: RsKey,
    /// The last state sent (presumed up before the first result, down with
    /// `alpha`).
    pub up: bool,
    /// Every checker has a result.
    pub checked: bool,
    /// Checker keywords, in config order.
    pub checkers: Vec<String>,
    /// The weight set by misc_dynamic, if any.
    pub dynamic_weight: Option<u32>,
    pub last_failure: Option<SystemTime>,
    pub last_reason: Option<String>,
    /// Paused by `ha_suspend`.
    pub suspended: bool,
}

/// Limits of concurrent probes.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connects / HTTP exchanges / scripts in flight at once (default 256).
    pub concurrent_probes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrent_probes: 256,
        }
    }
}

/// Messages to the manager task.
#[derive(Debug)]
pub(crate) enum Msg {
    Checker(FromChecker),
    Add {
        rs: RsKey,
        id: u64,
        keyword: &'static str,
        up: bool,
        weight: u32,
        ha_suspend: bool,
        notify: spec::Notify,
    },
    Remove {
        rs: RsKey,
        id: u64,
        /// The real server stays (its checker is replaced by a reload):
        /// keep its state, even without checkers for a moment.
        keep: bool,
    },
    Weight {
        rs: RsKey,
        weight: u32,
    },
    Notify {
        rs: RsKey,
        notify: spec::Notify,
    },
    Suspended(bool),
}

struct Running {
    spec: CheckerSpec,
    id: u64,
    task: JoinHandle<()>,
}

struct RsRunning {
    weight: u32,
    ha_suspend: bool,
    notify: spec::Notify,
    checkers: Vec<Running>,
}

/// The running health checkers.
pub struct Checkers {
    rt: tokio::runtime::Handle,
    running: BTreeMap<RsKey, RsRunning>,
    to_manager: mpsc::UnboundedSender<Msg>,
    manager: Option<JoinHandle<()>>,
    states: watch::Receiver<BTreeMap<RsKey, RsHealth>>,
    suspended: watch::Sender<bool>,
    permits: Arc<Semaphore>,
    next_id: u64,
}

impl Checkers {
    /// Must be called within a tokio runtime (its handle is kept, so
    /// [`Checkers::reconcile`] may be called from anywhere).
    pub fn new(events: mpsc::Sender<CheckEvent>) -> Self {
        Checkers::with_limits(events, Limits::default())
    }

    pub fn with_limits(events: mpsc::Sender<CheckEvent>, limits: Limits) -> Self {
        let rt = tokio::runtime::Handle::current();
        let (to_manager, rx) = mpsc::unbounded_channel();
        let (states_tx, states) = watch::channel(BTreeMap::new());
        let manager = rt.spawn(manager(rx, events, states_tx));
        Checkers {
            rt,
            running: BTreeMap::new(),
            to_manager,
            manager: Some(manager),
            states,
            suspended: watch::channel(false).0,
            permits: Arc::new(Semaphore::new(limits.concurrent_probes.max(1))),
            next_id: 1,
        }
    }

    /// Start/stop/keep per-real-server checker tasks to match the config, by
    /// diff: a reload keeps unchanged checkers and their state (keepalived's
    /// clear_diff_services semantics).
    pub fn reconcile(&mut self, cfg: &lvs_config::Config) {
        let wanted = spec::specs(cfg);
        // Stop what is gone or changed.
        let keys: Vec<RsKey> = self.running.keys().cloned().collect();
        for key in keys {
            let Some(want) = wanted.get(&key) else {
                let old = self.running.remove(&key).expect("key listed");
                for r in old.checkers {
                    self.stop(&key, r, false);
                }
                continue;
            };
            let old = self.running.get_mut(&key).expect("key listed");
            if old.ha_suspend != want.ha_suspend {
                // Rare: restart the real server's checkers with the new mode.
                let old = self.running.remove(&key).expect("key listed");
                for r in old.checkers {
                    self.stop(&key, r, false);
                }
                continue;
            }
            if old.weight != want.weight {
                old.weight = want.weight;
                let _ = self.to_manager.send(Msg::Weight {
                    rs: key.clone(),
                    weight: want.weight,
                });
            }
            if old.notify != want.notify {
                old.notify = want.notify.clone();
                let _ = self.to_manager.send(Msg::Notify {
                    rs: key.clone(),
                    notify: want.notify.clone(),
                });
            }
            // Keep each old checker that has an identical wanted one.
            let mut unmatched: Vec<Option<&CheckerSpec>> = want.checkers.iter().map(Some).collect();
            let mut kept = Vec::new();
            let mut stopped = Vec::new();
            for r in std::mem::take(&mut old.checkers) {
                match unmatched
                    .iter_mut()
                    .find(|w| w.is_some_and(|w| *w == r.spec))
                {
                    Some(slot) => {
                        *slot = None;
                        kept.push(r);
                    }
                    None => stopped.push(r),
                }
            }
            old.checkers = kept;
            for r in stopped {
                self.stop(&key, r, true);
            }
        }
        // Start what is new.
        for (key, want) in wanted {
            let existed = self.running.contains_key(&key);
            let entry = self.running.entry(key.clone()).or_insert(RsRunning {
                weight: want.weight,
                ha_suspend: want.ha_suspend,
                notify: want.notify.clone(),
                checkers: Vec::new(),
            });
            let mut have: Vec<&CheckerSpec> = entry.checkers.iter().map(|r| &r.spec).collect();
            let mut to_start = Vec::new();
            for spec in want.checkers {
                if let Some(i) = have.iter().position(|h| **h == spec) {
                    have.remove(i);
                } else {
                    to_start.push(spec);
                }
            }
            for spec in to_start {
                let id = self.next_id;
                self.next_id += 1;
                // A checker added to a real server that keeps running starts
                // up (keepalived's migrate_checkers); alpha only at first.
                let alpha = spec.common.alpha && !existed;
                info!(
                    "Activating healthchecker for service {} for VS {}",
                    key.rs_name(),
                    key.vs_name()
                );
                let _ = self.to_manager.send(Msg::Add {
                    rs: key.clone(),
                    id,
                    keyword: spec.keyword(),
                    up: !alpha,
                    weight: want.weight,
                    ha_suspend: want.ha_suspend,
                    notify: want.notify.clone(),
                });
                let ctx = runner::Ctx {
                    rs: key.clone(),
                    id,
                    spec: spec.clone(),
                    alpha,
                    fresh: !existed,
                    ha_suspend: want.ha_suspend,
                    out: self.to_manager.clone(),
                    permits: self.permits.clone(),
                    suspended: self.suspended.subscribe(),
                };
                let task = self.rt.spawn(runner::run(ctx));
                entry.checkers.push(Running { spec, id, task });
            }
        }
    }

    fn stop(&self, key: &RsKey, r: Running, keep: bool) {
        r.task.abort();
        let _ = self.to_manager.send(Msg::Remove {
            rs: key.clone(),
            id: r.id,
            keep,
        });
    }

    /// ha_suspend: pause checks of virtual servers with ha_suspend while the
    /// VRRP instance is not MASTER.
    pub fn set_suspended(&mut self, suspended: bool) {
        if *self.suspended.borrow() == suspended {
            return;
        }
        for (key, rs) in &self.running {
            if rs.ha_suspend {
                for _ in &rs.checkers {
                    info!(
                        "{}ing healthchecker for service {} for VS {}",
                        if suspended { "Deactivat" } else { "Activat" },
                        key.rs_name(),
                        key.vs_name()
                    );
                }
            }
        }
        self.suspended.send_replace(suspended);
        let _ = self.to_manager.send(Msg::Suspended(suspended));
    }

    /// Current state of every checked real server (for `lvsadm --health`):
    /// up/down, last failure time and reason, checker kinds.
    pub fn states(&self) -> Vec<RsHealth> {
        self.states.borrow().values().cloned().collect()
    }

    /// Stops every checker (scripts running are killed and reaped) and the
    /// manager. With the virtual server's `omega`, the `notify_down` script
    /// of each real server still up is run first (keepalived runs them as
    /// it clears the services on exit), each bounded to 5 s.
    pub async fn shutdown(mut self) {
        let up: BTreeMap<RsKey, bool> = self
            .states
            .borrow()
            .iter()
            .map(|(k, h)| (k.clone(), h.up))
            .collect();
        let mut scripts = Vec::new();
        for (key, rs) in &self.running {
            if rs.notify.omega && up.get(key).copied().unwrap_or(false) {
                if let Some(down) = &rs.notify.down {
                    scripts.push(run_notify(
                        down,
                        rs.notify.user.as_deref(),
                        key,
                        "down",
                        None,
                    ));
                }
            }
        }
        for child in scripts.into_iter().flatten() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), child).await;
        }
        let mut tasks = Vec::new();
        for (_, rs) in std::mem::take(&mut self.running) {
            for r in rs.checkers {
                r.task.abort();
                tasks.push(r.task);
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        if let Some(m) = self.manager.take() {
            m.abort();
            let _ = m.await;
        }
    }
}

/// Dropped without [`Checkers::shutdown`]: the tasks are aborted (a running
/// script's group is killed as its task unwinds).
impl Drop for Checkers {
    fn drop(&mut self) {
        for rs in self.running.values() {
            for r in &rs.checkers {
                r.task.abort();
            }
        }
        if let Some(m) = &self.manager {
            m.abort();
        }
    }
}

/// Starts a real server's notify script (keepalived's `notify_up` /
/// `notify_down`), as `script_user` when set, once the one before it
/// (`after`) has ended; returns a task that reaps it.
fn run_notify(
    script: &str,
    user: Option<&str>,
    rs: &RsKey,
    what: &str,
    after: Option<JoinHandle<()>>,
) -> Option<JoinHandle<()>> {
    let mut cmd = crate::script::command(script, &[]);
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(false);
    if let Some(user) = user {
        match misc::resolve_user(user) {
            Ok((uid, gid)) => {
                cmd.uid(uid).gid(gid);
            }
            Err(e) => {
                warn!("notify_{what} of {}: {e}; not run", rs.rs_name());
                return after;
            }
        }
    }
    let (name, what, script) = (rs.rs_name(), what.to_string(), script.to_string());
    Some(tokio::spawn(async move {
        if let Some(before) = after {
            let _ = before.await;
        }
        match cmd.spawn() {
            Ok(mut child) => {
                let _ = child.wait().await;
            }
            Err(e) => warn!("notify_{what} of {name}: cannot run {script}: {e}"),
        }
    }))
}

/// The manager's view of one checker.
struct ChkState {
    keyword: &'static str,
    up: bool,
    has_run: bool,
    reason: String,
    weight: Option<u32>,
    /// FILE_CHECK's offset to the configured weight.
    offset: i64,
}

struct RsState {
    checkers: BTreeMap<u64, ChkState>,
    weight: u32,
    ha_suspend: bool,
    notify: spec::Notify,
    /// The state the notify scripts last saw: the presumed one at start
    /// (up, or down with alpha), then each change.
    announced: bool,
    sent: Option<bool>,
    sent_weight: u32,
    last_failure: Option<SystemTime>,
    last_reason: Option<String>,
    /// The last notify script started for this server: the next one waits
    /// for it, so a quick down-then-up runs its scripts in that order.
    last_notify: Option<JoinHandle<()>>,
}

impl RsState {
    fn alive(&self) -> bool {
        self.checkers.values().all(|c| c.up)
    }

    /// The weight the misc_dynamic checkers ask for (keepalived adds each
    /// checker's offset from the configured weight).
    fn effective_weight(&self) -> u32 {
        let base = i64::from(self.weight);
        let w = self
            .checkers
            .values()
            .filter_map(|c| c.weight)
            .fold(base, |acc, w| acc + i64::from(w) - base);
        let w = w + self.checkers.values().map(|c| c.offset).sum::<i64>();
        // keepalived's IPVS_WEIGHT_LIMIT.
        w.clamp(0, i64::from(i32::MAX)) as u32
    }

    fn health(&self, rs: &RsKey, suspended: bool) -> RsHealth {
        RsHealth {
            rs: rs.clone(),
            up: self.sent.unwrap_or_else(|| self.alive()),
            checked: self.checkers.values().all(|c| c.has_run),
            checkers: self
                .checkers
                .values()
                .map(|c| c.keyword.to_string())
                .collect(),
            dynamic_weight: self
                .checkers
                .values()
                .any(|c| c.weight.is_some() || c.offset != 0)
                .then(|| self.effective_weight()),
            last_failure: self.last_failure,
            last_reason: self.last_reason.clone(),
            suspended: suspended && self.ha_suspend,
        }
    }
}

/// Folds checker reports into real-server events; the only writer of the
/// states.
async fn manager(
    mut rx: mpsc::UnboundedReceiver<Msg>,
    events: mpsc::Sender<CheckEvent>,
    states: watch::Sender<BTreeMap<RsKey, RsHealth>>,
) {
    let mut all: BTreeMap<RsKey, RsState> = BTreeMap::new();
    let mut suspended = false;
    while let Some(msg) = rx.recv().await {
        let mut out = Vec::new();
        let key = match msg {
            Msg::Suspended(s) => {
                suspended = s;
                states.send_modify(|m| {
                    for (k, h) in m.iter_mut() {
                        if let Some(st) = all.get(k) {
                            h.suspended = s && st.ha_suspend;
                        }
                    }
                });
                continue;
            }
            Msg::Add {
                rs,
                id,
                keyword,
                up,
                weight,
                ha_suspend,
                notify,
            } => {
                let st = all.entry(rs.clone()).or_insert_with(|| RsState {
                    checkers: BTreeMap::new(),
                    weight,
                    ha_suspend,
                    notify,
                    announced: up,
                    sent: None,
                    sent_weight: weight,
                    last_failure: None,
                    last_reason: None,
                    last_notify: None,
                });
                st.checkers.insert(
                    id,
                    ChkState {
                        keyword,
                        up,
                        has_run: false,
                        reason: if up {
                            String::new()
                        } else {
                            "alpha: not checked yet".into()
                        },
                        weight: None,
                        offset: 0,
                    },
                );
                rs
            }
            Msg::Notify { rs, notify } => {
                if let Some(st) = all.get_mut(&rs) {
                    st.notify = notify;
                }
                continue;
            }
            Msg::Remove { rs, id, keep } => {
                if let Some(st) = all.get_mut(&rs) {
                    st.checkers.remove(&id);
                    if st.checkers.is_empty() {
                        if !keep {
                            all.remove(&rs);
                            states.send_modify(|m| {
                                m.remove(&rs);
                            });
                        }
                        // Kept: its new checkers follow at once; nothing
                        // to decide without any.
                        continue;
                    }
                }
                rs
            }
            Msg::Weight { rs, weight } => {
                if let Some(st) = all.get_mut(&rs) {
                    st.weight = weight;
                    // The configured weight is the agent's; only a dynamic
                    // one is ours to announce.
                    if st.checkers.values().all(|c| c.weight.is_none()) {
                        st.sent_weight = weight;
                    }
                }
                rs
            }
            Msg::Checker(FromChecker { rs, id, report }) => {
                let Some(st) = all.get_mut(&rs) else { continue };
                let Some(c) = st.checkers.get_mut(&id) else {
                    continue; // a stopped checker's last words
                };
                match report {
                    Report::Verdict { up, reason } => {
                        c.up = up;
                        c.has_run = true;
                        c.reason = reason;
                    }
                    Report::Failure { reason } => {
                        st.last_failure = Some(SystemTime::now());
                        st.last_reason = Some(reason);
                    }
                    Report::Weight(w) => c.weight = w,
                    Report::Offset(o) => c.offset = o,
                }
                rs
            }
        };
        let Some(st) = all.get_mut(&key) else {
            continue;
        };
        let w = st.effective_weight();
        if w != st.sent_weight {
            st.sent_weight = w;
            out.push(CheckEvent::Weight {
                rs: key.clone(),
                weight: w,
            });
        }
        let alive = st.alive();
        let ready = !alive || st.checkers.values().all(|c| c.has_run);
        if ready && st.sent != Some(alive) {
            st.sent = Some(alive);
            if st.announced != alive {
                st.announced = alive;
                let (script, what) = if alive {
                    (st.notify.up.as_deref(), "up")
                } else {
                    (st.notify.down.as_deref(), "down")
                };
                if let Some(script) = script {
                    let after = st.last_notify.take();
                    st.last_notify =
                        run_notify(script, st.notify.user.as_deref(), &key, what, after);
                }
            }
            out.push(if alive {
                CheckEvent::Up { rs: key.clone() }
            } else {
                let reason = st
                    .checkers
                    .values()
                    .find(|c| !c.up)
                    .map(|c| c.reason.clone())
                    .unwrap_or_default();
                CheckEvent::Down {
                    rs: key.clone(),
                    reason,
                }
            });
        }
        let h = st.health(&key, suspended);
        states.send_modify(|m| {
            m.insert(key.clone(), h);
        });
        for ev in out {
            if events.send(ev).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keepalived's `inet_sockaddrtotrio`: brackets for both families, so
    /// operators' greps for `[2001:2::11]:tcp:80` find the IPv6 lines.
    #[test]
    fn rs_names_as_keepalived_formats_them() {
        assert_eq!(
            fmt_rs("2001:2::11".parse().unwrap(), Protocol::Tcp, 80),
            "[2001:2::11]:tcp:80"
        );
        assert_eq!(
            fmt_rs("198.18.0.11".parse().unwrap(), Protocol::Udp, 53),
            "[198.18.0.11]:udp:53"
        );
    }
}
