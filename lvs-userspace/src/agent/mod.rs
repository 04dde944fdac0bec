//! `lvsd`: reads a keepalived.conf, runs the checkers and VRRP, and keeps
//! the XDP data path in step through one reconciler that owns the maps.
//!
//! One tokio runtime; the checkers and VRRP instances are tasks that send
//! messages; only the main loop touches the data path. SIGHUP reloads by
//! diff (unchanged services keep flows, counters and checker state; an
//! invalid file is refused and the old config keeps running); SIGTERM and
//! SIGINT stop cleanly (the data path is removed unless --keep-datapath).

pub mod announce;
pub mod cli;
pub mod conn_sync;
pub mod interfaces;
pub mod metrics;
pub mod notify;
pub mod plan;
pub mod reconcile;
pub mod status;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, Result};
use clap::Parser;
use lvs_config::{Config, ParseOptions, ParseResult, Severity, EXIT_CANNOT_RUN};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use self::{
    cli::{Args, XdpModeArg},
    reconcile::{Egress, Reconciler},
};
use crate::datapath::{
    self,
    owner::{self, InstanceLock},
    AttachMode, Datapath, Options,
};

/// `lvsd`'s main: exit codes follow keepalived's.
pub fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args);

    if args.flush {
        // Never under a running lvsd's feet.
        let _lock = match InstanceLock::acquire(&args.bpffs, &args.instance, Duration::ZERO) {
            Ok(l) => l,
            Err(e) => {
                error!("flush: {e}");
                return ExitCode::from(1);
            }
        };
        return match datapath::flush_instance(&args.bpffs, &args.instance) {
            Ok(()) => {
                info!(
                    "flushed instance {} under {}",
                    args.instance,
                    args.bpffs.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                error!("flush: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(ns) = &args.netns {
        // Before any thread exists, so every runtime thread is in it.
        if let Err(e) = enter_netns(ns) {
            error!("net_namespace {ns}: {e:#}");
            return ExitCode::from(EXIT_CANNOT_RUN as u8);
        }
    }

    let parsed = load_config(&args.use_file, args.config_id.as_deref());
    if args.config_test {
        for d in parsed.diagnostics.iter() {
            eprintln!("{d}");
        }
        let code = parsed.exit_code();
        if code == 0 {
            eprintln!("{}: configuration OK", args.use_file.display());
        }
        return ExitCode::from(code as u8);
    }
    log_diagnostics(&parsed);
    if parsed.exit_code() == EXIT_CANNOT_RUN {
        error!(
            "{}: configuration cannot run, exiting",
            args.use_file.display()
        );
        return ExitCode::from(EXIT_CANNOT_RUN as u8);
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args, parsed.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(args: &Args) {
    let default = if args.log_detail { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LVSD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_config(path: &Path, config_id: Option<&str>) -> ParseResult {
    let opts = match config_id {
        Some(id) => ParseOptions::with_config_id(id),
        None => ParseOptions::default(),
    };
    lvs_config::parse_file(path, &opts)
}

fn log_diagnostics(parsed: &ParseResult) {
    for d in parsed.diagnostics.iter() {
        match d.severity {
            Severity::Warning => warn!("{d}"),
            Severity::Error | Severity::Fatal => error!("{d}"),
        }
    }
}

fn enter_netns(name: &str) -> Result<()> {
    let path = PathBuf::from("/run/netns").join(name);
    let f = std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: a valid namespace fd; setns affects only this (single) thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setns");
    }
    Ok(())
}

/// The next metrics client, or never without --metrics.
async fn accept(
    l: &Option<tokio::net::TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Answers one scrape: reads the request head, writes the exposition.
async fn serve_metrics(mut stream: tokio::net::TcpStream, body: String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Seconds between re-sends of long-lived connections to the other director.
const RESYNC_EVERY_TICKS: u64 = 120;

/// The next message from the sync receiver, or never when sync is off.
async fn recv_synced(sync: &mut Option<conn_sync::ConnSync>) -> Option<crate::sync::Incoming> {
    match sync {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

struct PidFile(Option<PathBuf>);

impl PidFile {
    fn create(path: Option<PathBuf>) -> Result<Self> {
        if let Some(p) = &path {
            std::fs::write(p, format!("{}\n", std::process::id()))
                .with_context(|| format!("writing pid file {}", p.display()))?;
        }
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn run(args: Args, cfg: Config) -> Result<()> {
    // Signals first: a SIGTERM that arrives while the data path is being
    // attached waits for the loop below (a clean stop) instead of taking
    // the default action and leaving pins and an attached program behind.
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // First: a second lvsd on this instance stops here, touching nothing.
    // Until `started()`, dropping the lock undoes what this start pinned.
    let mut lock = tokio::task::block_in_place(|| {
        InstanceLock::acquire(&args.bpffs, &args.instance, owner::HANDOVER_WAIT)
    })?;
    let _pid = PidFile::create(args.pid.clone())?;
    info!(
        "Starting lvsd {} (instance {})",
        env!("CARGO_PKG_VERSION"),
        args.instance
    );

    let plan = plan::plan(&cfg);
    for s in &plan.skipped {
        warn!("{s}");
    }

    let ifaces = interfaces::datapath_interfaces(&args.interface, &cfg, &plan)?;
    let mut opts = Options::new(&args.instance);
    opts.bpffs_root = args.bpffs.clone();
    opts.conn_table_size = args.conn_table_size;
    let mut dp = Datapath::open(&opts).context("loading the XDP data path")?;
    if dp.adopted_maps() {
        info!(
            "re-adopting the running data path in {} (connections and counters kept)",
            dp.pin_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    let mode = match args.xdp_mode {
        XdpModeArg::Auto => AttachMode::Auto,
        XdpModeArg::Native => AttachMode::Native,
        XdpModeArg::Generic => AttachMode::Generic,
    };
    let mut egress = Vec::new();
    for ifname in ifaces {
        let a = dp
            .attach(&ifname, mode)
            .with_context(|| format!("attaching XDP to {ifname}"))?;
        match (a.adopted, a.mode) {
            (true, _) => info!("XDP on {ifname}: took over the running program's link"),
            (false, Some(_)) if a.fell_back => {
                warn!("XDP on {ifname}: native mode refused by the driver, running in generic (skb) mode")
            }
            (false, m) => info!(
                "XDP on {ifname}: attached in {} mode",
                match m {
                    Some(aya::programs::XdpMode::Skb) => "generic (skb)",
                    _ => "native (driver)",
                }
            ),
        }
        egress.push(Egress {
            ifindex: a.ifindex,
            name: ifname,
            mac: a.mac,
        });
    }

    dp.set_expire_nodest(args.expire_nodest_conn)?;
    dp.set_expire_quiescent(args.expire_quiescent_template)?;
    apply_timeouts(&mut dp, &cfg)?;
    let mut rec = Reconciler::new(dp, egress, Duration::from_secs(args.drain_timeout));
    rec.set_plan(plan);
    rec.apply()?;

    // Connection sync, when the config names an lvs_sync_daemon_interface;
    // a starting director asks its peers for their tables first, and VRRP
    // does not preempt until they are in.
    let gate = crate::vrrp::PreemptGate::open();
    let mut conn_sync = match conn_sync::setup(&cfg, args.sync_key_file.as_deref())? {
        Some(setup) => {
            let mut s = conn_sync::ConnSync::start(setup, &mut rec, gate.clone())?;
            s.warm_start(conn_sync::hold_bound(
                &cfg,
                Duration::from_secs(args.sync_hold_s),
            ));
            Some(s)
        }
        None => None,
    };

    // bgp_announce: BIRD beside us, our child (it dies with us); nothing is
    // announced until the first tick has seen the data path serve.
    let mut announcer = match &cfg.bgp_announce {
        Some(b) => Some(crate::announce::Announcer::start(b, &args.instance)?),
        None => None,
    };

    // VRRP (not with -C, checkers only): MASTER holds the VIPs.
    let (vrrp_tx, mut vrrp_rx) = tokio::sync::mpsc::channel(64);
    let mut vrrp = if args.check {
        None
    } else {
        Some(crate::vrrp::Vrrp::start(&cfg, vrrp_tx, gate.clone()).await?)
    };

    let (health_tx, mut health_rx) = tokio::sync::mpsc::channel(1024);
    let mut checkers = crate::check::Checkers::new(health_tx);
    checkers.reconcile(&cfg);

    let metrics_listener = match args.metrics {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--metrics {addr}"))?;
            info!("Serving metrics on http://{addr}/metrics");
            Some(l)
        }
        None => None,
    };
    // Each VRRP instance's state, for ha_suspend.
    let mut vrrp_state: std::collections::BTreeMap<String, crate::vrrp::VrrpState> =
        Default::default();
    // The config in force (for names in the status file after reloads).
    let mut cfg_now = cfg.clone();
    let status_path = args
        .status_file
        .clone()
        .unwrap_or_else(|| status::default_path(&args.instance));

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks: u64 = 0;
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sync_timer = tokio::time::interval(Duration::from_millis(100));

    lock.started();
    notify::ready(&format!(
        "forwarding {} virtual servers",
        rec.plan().services.len()
    ));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = rec.tick() {
                    error!("datapath update failed: {e:#}");
                }
                ticks += 1;
                if let Some(a) = announcer.as_mut() {
                    announce::update(a, &rec).await;
                    a.tick().await;
                }
                let st = status::Status {
                    pid: std::process::id(),
                    updated_unix_s: status::now_unix_s(),
                    health: health_view(&rec, &checkers),
                    vrrp: vrrp
                        .as_ref()
                        .map(|v| status::vrrp_status(&cfg_now, &v.stats()))
                        .unwrap_or_default(),
                    sync: conn_sync.as_ref().map(|s| s.status()),
                    announce: announcer.as_ref().map(|a| a.status()),
                };
                if let Err(e) = st.write(&status_path) {
                    tracing::debug!("status file {}: {e}", status_path.display());
                }
                if let Some(s) = conn_sync.as_ref().filter(|_| ticks.is_multiple_of(RESYNC_EVERY_TICKS)) {
                    s.resend(&rec);
                }
            }
            _ = sync_timer.tick(), if conn_sync.is_some() => {
                if let Some(s) = conn_sync.as_mut() {
                    s.on_timer();
                }
            }
            Some(ev) = vrrp_rx.recv() => {
                vrrp_state.insert(ev.instance.clone(), ev.state);
                // ha_suspend: checks of such virtual servers pause unless MASTER.
                let master = vrrp_state
                    .values()
                    .any(|s| *s == crate::vrrp::VrrpState::Master);
                checkers.set_suspended(!master);
            }
            Ok((stream, _)) = accept(&metrics_listener) => {
                let mut view = metrics::AgentView::of(vrrp.as_ref(), &rec);
                view.sync = conn_sync.as_ref().map(|s| s.status());
                let mut body = metrics::render(rec.datapath(), &view);
                if let Some(a) = &announcer {
                    body += &crate::announce::metrics(&a.status());
                }
                tokio::spawn(serve_metrics(stream, body));
            }
            Some(ev) = health_rx.recv() => {
                // Take every verdict already queued, then write the maps
                // once: a thousand real servers coming up is one update.
                let mut batch = vec![ev];
                while let Ok(more) = health_rx.try_recv() {
                    batch.push(more);
                }
                for ev in batch {
                    apply_check_event(&mut rec, ev);
                }
                if let Err(e) = rec.apply() {
                    error!("datapath update failed: {e:#}");
                }
                if let Some(a) = announcer.as_mut() {
                    announce::update(a, &rec).await;
                }
            }
            Some(msg) = recv_synced(&mut conn_sync) => {
                if let Some(s) = conn_sync.as_mut() {
                    s.handle(msg, &mut rec);
                }
            }
            _ = hup.recv() => {
                notify::reloading();
                info!("Reloading configuration file {}", args.use_file.display());
                let parsed = load_config(&args.use_file, args.config_id.as_deref());
                log_diagnostics(&parsed);
                if parsed.exit_code() == EXIT_CANNOT_RUN {
                    error!("{}: new configuration refused; the running one stays in force", args.use_file.display());
                    notify::ready("new configuration refused; the previous one runs");
                    continue;
                }
                let plan = plan::plan(&parsed.config);
                for s in &plan.skipped {
                    warn!("{s}");
                }
                rec.set_plan(plan);
                if let Err(e) = apply_timeouts(rec.datapath_mut(), &parsed.config) {
                    error!("lvs_timeouts: {e:#}");
                }
                if let Err(e) = rec.apply() {
                    error!("applying the new configuration: {e:#}");
                }
                checkers.reconcile(&parsed.config);
                if let Some(v) = vrrp.as_mut() {
                    if let Err(e) = v.reload(&parsed.config).await {
                        error!("VRRP: new configuration not applied: {e}");
                    }
                }
                announce::reload(&mut announcer, parsed.config.bgp_announce.as_ref(), &args.instance).await;
                cfg_now = parsed.config.clone();
                notify::ready(&format!("reloaded: {} virtual servers", rec.plan().services.len()));
            }
            _ = term.recv() => { stopping(&lock); info!("Stopping (SIGTERM)"); break; }
            _ = int.recv() => { stopping(&lock); info!("Stopping (SIGINT)"); break; }
        }
    }

    // Withdraw first, keep forwarding while the router moves the flows.
    if let Some(mut a) = announcer.take() {
        a.withdraw_and_drain().await;
        a.stop().await;
    }
    checkers.shutdown().await;
    // omega: quorum_down of the virtual servers still in quorum, each
    // waited for (bounded), as keepalived runs them when it stops.
    for script in rec.omega_quorum_down() {
        let mut cmd = crate::script::command(&script, &[]);
        cmd.stdin(std::process::Stdio::null());
        match cmd.spawn() {
            Ok(mut child) => {
                if tokio::time::timeout(Duration::from_secs(5), child.wait())
                    .await
                    .is_err()
                {
                    warn!("omega: quorum_down {script} still running after 5 s; left");
                }
            }
            Err(e) => warn!("omega: running quorum_down {script}: {e}"),
        }
    }
    if let Some(v) = vrrp {
        v.shutdown().await;
    }
    let _ = std::fs::remove_file(&status_path);
    if conn_sync.is_some() {
        // Nobody reads the ring any more: stop filling it.
        let _ = rec.datapath_mut().set_sync(false);
    }
    if args.keep_datapath {
        info!("--keep-datapath: leaving the data path forwarding");
        drop(rec);
    } else {
        rec.into_datapath().destroy()?;
        info!("data path detached and unpinned");
    }
    info!("Stopped lvsd");
    Ok(())
}

/// Tells systemd and a waiting successor that this agent is on its way out.
fn stopping(lock: &InstanceLock) {
    notify::stopping();
    lock.mark_stopping();
}

/// keepalived's global `lvs_timeouts` into the data path's settings.
fn apply_timeouts(dp: &mut Datapath, cfg: &Config) -> Result<()> {
    let t = cfg.global.lvs_timeouts;
    dp.set_timeouts(t.tcp, t.tcpfin, t.udp)
        .context("setting lvs_timeouts")
}

/// A checker's verdict, into the reconciler's view: on the service it was
/// checked for, or on every service of its `virtual_server_group`.
fn apply_check_event(rec: &mut Reconciler, ev: crate::check::CheckEvent) {
    use crate::check::CheckEvent;
    let rs = match &ev {
        CheckEvent::Up { rs } | CheckEvent::Down { rs, .. } | CheckEvent::Weight { rs, .. } => rs,
    };
    let Some(checked) = plan::key_of(rs) else {
        return;
    };
    for key in plan::checked_reals(rec.plan(), checked) {
        match &ev {
            CheckEvent::Up { .. } => rec.set_up(key, true, ""),
            CheckEvent::Down { reason, .. } => rec.set_up(key, false, reason),
            CheckEvent::Weight { weight, .. } => rec.set_dyn_weight(key, *weight),
        }
    }
}

/// Every planned real server with its health, for the status file.
fn health_view(rec: &Reconciler, checkers: &crate::check::Checkers) -> Vec<status::RealHealth> {
    let states: std::collections::HashMap<_, _> = checkers
        .states()
        .into_iter()
        .filter_map(|h| plan::key_of(&h.rs).map(|k| (k, h)))
        .collect();
    let mut out = Vec::new();
    for s in &rec.plan().services {
        for r in &s.reals {
            let key = s.id.real(r.id());
            // A group's services share their checkers' verdicts.
            let h = states.get(&s.checked_as.real(plan::RealId {
                addr: r.addr,
                port: r.check_port,
            }));
            out.push(status::RealHealth {
                protocol: s.id.proto.name().into(),
                vip: s.id.vip,
                port: s.id.port,
                real_server: r.addr,
                real_port: r.port,
                checkers: h.map(|h| h.checkers.clone()).unwrap_or_default(),
                up: rec.is_up(&key),
                last_failure_unix_s: h.and_then(|h| h.last_failure).and_then(|t| {
                    t.duration_since(std::time::UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs())
                }),
                last_reason: h.and_then(|h| h.last_reason.clone()),
            });
        }
    }
    out
}
