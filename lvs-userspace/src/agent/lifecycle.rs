//! The running agent in named steps: [`Agent::start`] (lock, data path,
//! sync, BGP, VRRP, checkers, metrics), [`Agent::serve`] (the one loop that
//! touches the data path), [`Agent::reload`] (SIGHUP) and [`Agent::stop`].

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context, Result};
use lvs_config::{Config, EXIT_CANNOT_RUN};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::{
    announce,
    cli::{Args, XdpModeArg},
    conn_sync, interfaces, load_config, log_diagnostics, metrics, notify,
    plan::{self, Plan},
    reconcile::{Egress, Reconciler},
    status,
};
use crate::check::{CheckEvent, Checkers};
use crate::datapath::{
    owner::{self, InstanceLock},
    AttachMode, Datapath, Options,
};
use crate::vrrp::{PreemptGate, Vrrp, VrrpEvent, VrrpState};

/// Seconds between re-sends of long-lived connections to the other director.
const RESYNC_EVERY_TICKS: u64 = 120;

/// The signals lvsd acts on. Installed before anything else: a SIGTERM
/// that arrives while the data path is being attached waits for the loop
/// (a clean stop) instead of taking the default action and leaving pins
/// and an attached program behind.
pub(super) struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    pub(super) fn install() -> Result<Self> {
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

/// What the loop does next.
enum Next {
    Continue,
    Stop,
}

/// Everything a running agent owns.
pub(super) struct Agent {
    args: Args,
    /// Until `started()`, dropping it undoes what this start pinned.
    lock: InstanceLock,
    _pid: PidFile,
    rec: Reconciler,
    /// The interfaces the data path is attached to (a reload keeps them).
    interfaces: Vec<String>,
    /// The connection sync set-up in force, as logged (a reload keeps it).
    sync_setup: Option<String>,
    conn_sync: Option<conn_sync::ConnSync>,
    announcer: Option<crate::announce::Announcer>,
    vrrp: Option<Vrrp>,
    vrrp_rx: mpsc::Receiver<VrrpEvent>,
    /// Each VRRP instance's state, for ha_suspend.
    vrrp_state: BTreeMap<String, VrrpState>,
    checkers: Checkers,
    health_rx: mpsc::Receiver<CheckEvent>,
    metrics_listener: Option<tokio::net::TcpListener>,
    /// The config in force (for names in the status file after reloads).
    cfg_now: Config,
    status_path: PathBuf,
    ticks: u64,
}

impl Agent {
    /// Takes the instance, attaches the data path and starts every part;
    /// an error leaves nothing behind (the lock's drop unpins).
    pub(super) async fn start(args: Args, cfg: Config) -> Result<Agent> {
        // First: a second lvsd on this instance stops here, touching nothing.
        let lock = tokio::task::block_in_place(|| {
            InstanceLock::acquire(&args.bpffs, &args.instance, owner::HANDOVER_WAIT)
        })?;
        let pid = PidFile::create(args.pid.clone())?;
        info!(
            "Starting lvsd {} (instance {})",
            env!("CARGO_PKG_VERSION"),
            args.instance
        );

        let plan = plan_of(&cfg);
        let ifaces = interfaces::datapath_interfaces(&args.interface, &cfg, &plan)?;
        let (dp, egress) = open_and_attach(&args, &ifaces)?;
        let mut rec = start_reconciler(dp, egress, &args, &cfg, plan)?;

        // Connection sync, when the config names an lvs_sync_daemon_interface;
        // a starting director asks its peers for their tables first, and VRRP
        // does not preempt until they are in.
        let gate = PreemptGate::open();
        let setup = conn_sync::setup(&cfg, args.sync_key_file.as_deref())?;
        let sync_setup = setup.as_ref().map(describe_sync);
        let conn_sync = match setup {
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
        let announcer = match &cfg.bgp_announce {
            Some(b) => Some(crate::announce::Announcer::start(b, &args.instance)?),
            None => None,
        };

        // VRRP (not with -C, checkers only): MASTER holds the VIPs.
        let (vrrp_tx, vrrp_rx) = mpsc::channel(64);
        let vrrp = if args.check {
            None
        } else {
            Some(Vrrp::start(&cfg, vrrp_tx, gate.clone()).await?)
        };

        let (health_tx, health_rx) = mpsc::channel(1024);
        let mut checkers = Checkers::new(health_tx);
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
        let status_path = args
            .status_file
            .clone()
            .unwrap_or_else(|| status::default_path(&args.instance));

        let mut agent = Agent {
            args,
            lock,
            _pid: pid,
            rec,
            interfaces: ifaces,
            sync_setup,
            conn_sync,
            announcer,
            vrrp,
            vrrp_rx,
            vrrp_state: BTreeMap::new(),
            checkers,
            health_rx,
            metrics_listener,
            cfg_now: cfg,
            status_path,
            ticks: 0,
        };
        agent.lock.started();
        notify::ready(&format!(
            "forwarding {} virtual servers",
            agent.rec.plan().services.len()
        ));
        Ok(agent)
    }

    /// The loop: ticks, checker verdicts, VRRP states, sync messages,
    /// scrapes and signals, until SIGTERM or SIGINT.
    pub(super) async fn serve(&mut self, signals: &mut Signals) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sync_timer = tokio::time::interval(Duration::from_millis(100));
        loop {
            let next = tokio::select! {
                _ = tick.tick() => self.on_tick().await,
                _ = sync_timer.tick(), if self.conn_sync.is_some() => {
                    if let Some(s) = self.conn_sync.as_mut() {
                        s.on_timer();
                    }
                    Next::Continue
                }
                Some(ev) = self.vrrp_rx.recv() => self.on_vrrp(ev),
                Ok((stream, _)) = accept(&self.metrics_listener) => self.on_scrape(stream),
                Some(ev) = self.health_rx.recv() => self.on_health(ev).await,
                Some(msg) = recv_synced(&mut self.conn_sync) => {
                    if let Some(s) = self.conn_sync.as_mut() {
                        s.handle(msg, &mut self.rec);
                    }
                    Next::Continue
                }
                _ = signals.hup.recv() => {
                    self.reload().await;
                    Next::Continue
                }
                _ = signals.term.recv() => self.stopping("SIGTERM"),
                _ = signals.int.recv() => self.stopping("SIGINT"),
            };
            if let Next::Stop = next {
                return;
            }
        }
    }

    /// Once a second: the data path's housekeeping, BGP, the status file,
    /// and now and then a re-send of long-lived connections.
    async fn on_tick(&mut self) -> Next {
        if let Err(e) = self.rec.tick() {
            error!("datapath update failed: {e:#}");
        }
        self.ticks += 1;
        if let Some(a) = self.announcer.as_mut() {
            announce::update(a, &self.rec).await;
            a.tick().await;
        }
        self.write_status();
        if let Some(s) = self
            .conn_sync
            .as_ref()
            .filter(|_| self.ticks.is_multiple_of(RESYNC_EVERY_TICKS))
        {
            s.resend(&self.rec);
        }
        Next::Continue
    }

    fn write_status(&self) {
        let st = status::Status {
            pid: std::process::id(),
            updated_unix_s: status::now_unix_s(),
            health: health_view(&self.rec, &self.checkers),
            vrrp: self
                .vrrp
                .as_ref()
                .map(|v| status::vrrp_status(&self.cfg_now, &v.stats()))
                .unwrap_or_default(),
            sync: self.conn_sync.as_ref().map(|s| s.status()),
            announce: self.announcer.as_ref().map(|a| a.status()),
        };
        if let Err(e) = st.write(&self.status_path) {
            tracing::debug!("status file {}: {e}", self.status_path.display());
        }
    }

    /// A VRRP instance changed state; ha_suspend: checks of such virtual
    /// servers pause unless one instance is MASTER.
    fn on_vrrp(&mut self, ev: VrrpEvent) -> Next {
        self.vrrp_state.insert(ev.instance.clone(), ev.state);
        let master = self.vrrp_state.values().any(|s| *s == VrrpState::Master);
        self.checkers.set_suspended(!master);
        Next::Continue
    }

    /// A scrape: the exposition is rendered here, written by its own task.
    fn on_scrape(&self, stream: tokio::net::TcpStream) -> Next {
        let mut view = metrics::AgentView::of(self.vrrp.as_ref(), &self.rec);
        view.sync = self.conn_sync.as_ref().map(|s| s.status());
        let mut body = metrics::render(self.rec.datapath(), &view);
        if let Some(a) = &self.announcer {
            body += &crate::announce::metrics(&a.status());
        }
        tokio::spawn(serve_metrics(stream, body));
        Next::Continue
    }

    /// Checker verdicts: every one already queued is taken, then the maps
    /// are written once (a thousand real servers coming up is one update).
    async fn on_health(&mut self, first: CheckEvent) -> Next {
        let mut batch = vec![first];
        while let Ok(more) = self.health_rx.try_recv() {
            batch.push(more);
        }
        for ev in batch {
            apply_check_event(&mut self.rec, ev);
        }
        if let Err(e) = self.rec.apply() {
            error!("datapath update failed: {e:#}");
        }
        if let Some(a) = self.announcer.as_mut() {
            announce::update(a, &self.rec).await;
        }
        Next::Continue
    }

    /// SIGHUP: the file again, applied by diff; a file that cannot run is
    /// refused and the running one stays. What only a restart changes (the
    /// data path's interfaces, the connection sync set-up) is said and kept.
    async fn reload(&mut self) {
        notify::reloading();
        let path = self.args.use_file.clone();
        info!("Reloading configuration file {}", path.display());
        let parsed = load_config(&path, self.args.config_id.as_deref());
        log_diagnostics(&parsed);
        if parsed.exit_code() == EXIT_CANNOT_RUN {
            error!(
                "{}: new configuration refused; the running one stays in force",
                path.display()
            );
            notify::ready("new configuration refused; the previous one runs");
            return;
        }
        let cfg = parsed.config;
        let plan = plan_of(&cfg);
        self.report_restart_only_changes(&cfg, &plan);
        self.rec.set_plan(plan);
        if let Err(e) = apply_timeouts(self.rec.datapath_mut(), &cfg) {
            error!("lvs_timeouts: {e:#}");
        }
        if let Err(e) = self.rec.apply() {
            error!("applying the new configuration: {e:#}");
        }
        self.checkers.reconcile(&cfg);
        if let Some(v) = self.vrrp.as_mut() {
            if let Err(e) = v.reload(&cfg).await {
                error!("VRRP: new configuration not applied: {e}");
            }
        }
        announce::reload(
            &mut self.announcer,
            cfg.bgp_announce.as_ref(),
            &self.args.instance,
        )
        .await;
        self.cfg_now = cfg;
        notify::ready(&format!(
            "reloaded: {} virtual servers",
            self.rec.plan().services.len()
        ));
    }

    /// The interfaces the data path would attach to and the connection sync
    /// set-up, for the new config: a difference is logged (as keepalived
    /// logs what it cannot change on reload) and takes effect at the next
    /// start.
    fn report_restart_only_changes(&self, cfg: &Config, plan: &Plan) {
        match interfaces::datapath_interfaces(&self.args.interface, cfg, plan) {
            Ok(want) if want != self.interfaces => warn!(
                "reload: the data path would attach to {} but stays on {} until lvsd is restarted",
                want.join(", "),
                self.interfaces.join(", ")
            ),
            Ok(_) => {}
            Err(e) => warn!(
                "reload: data path interfaces of the new configuration: {e:#}; staying on {}",
                self.interfaces.join(", ")
            ),
        }
        let want = match conn_sync::setup(cfg, self.args.sync_key_file.as_deref()) {
            Ok(s) => s.as_ref().map(describe_sync),
            Err(e) => {
                warn!("reload: connection sync of the new configuration: {e:#}; the running set-up stays");
                return;
            }
        };
        if want != self.sync_setup {
            let show = |s: &Option<String>| s.clone().unwrap_or_else(|| "off".into());
            warn!(
                "reload: connection sync would change from {} to {}; it changes when lvsd is restarted",
                show(&self.sync_setup),
                show(&want)
            );
        }
    }

    /// Tells systemd and a waiting successor that this agent is on its way
    /// out.
    fn stopping(&self, signal: &str) -> Next {
        notify::stopping();
        self.lock.mark_stopping();
        info!("Stopping ({signal})");
        Next::Stop
    }

    /// Withdraws from BGP, stops the checkers (omega scripts), VRRP and
    /// sync, then removes the data path unless --keep-datapath.
    pub(super) async fn stop(mut self) -> Result<()> {
        // Withdraw first, keep forwarding while the router moves the flows.
        if let Some(mut a) = self.announcer.take() {
            a.withdraw_and_drain().await;
            a.stop().await;
        }
        self.checkers.shutdown().await;
        run_omega_quorum_down(&self.rec).await;
        if let Some(v) = self.vrrp.take() {
            v.shutdown().await;
        }
        let _ = std::fs::remove_file(&self.status_path);
        if self.conn_sync.is_some() {
            // Nobody reads the ring any more: stop filling it.
            let _ = self.rec.datapath_mut().set_sync(false);
        }
        if self.args.keep_datapath {
            info!("--keep-datapath: leaving the data path forwarding");
            drop(self.rec);
        } else {
            self.rec.into_datapath().destroy()?;
            info!("data path detached and unpinned");
        }
        info!("Stopped lvsd");
        Ok(())
    }
}

/// The config's plan, with what it leaves out logged.
fn plan_of(cfg: &Config) -> Plan {
    let plan = plan::plan(cfg);
    for s in &plan.skipped {
        warn!("{s}");
    }
    plan
}

/// Opens (or re-adopts) the pinned data path and attaches the XDP program
/// to each interface.
fn open_and_attach(args: &Args, ifaces: &[String]) -> Result<(Datapath, Vec<Egress>)> {
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
            .attach(ifname, mode)
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
            name: ifname.clone(),
            mac: a.mac,
        });
    }
    Ok((dp, egress))
}

/// The data path's global settings, then the reconciler with the first
/// plan applied.
fn start_reconciler(
    mut dp: Datapath,
    egress: Vec<Egress>,
    args: &Args,
    cfg: &Config,
    plan: Plan,
) -> Result<Reconciler> {
    dp.set_expire_nodest(args.expire_nodest_conn)?;
    dp.set_expire_quiescent(args.expire_quiescent_template)?;
    apply_timeouts(&mut dp, cfg)?;
    let mut rec = Reconciler::new(dp, egress, Duration::from_secs(args.drain_timeout));
    rec.set_plan(plan);
    rec.apply()?;
    Ok(rec)
}

/// The sync set-up as the log names it (the key is not shown).
fn describe_sync(s: &crate::sync::SyncSetup) -> String {
    format!(
        "{} syncid {} group {} port {} ttl {}",
        s.ifname, s.syncid, s.group, s.port, s.ttl
    )
}

/// omega: quorum_down of the virtual servers still in quorum, each waited
/// for (bounded), as keepalived runs them when it stops.
async fn run_omega_quorum_down(rec: &Reconciler) {
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

/// keepalived's global `lvs_timeouts` into the data path's settings.
fn apply_timeouts(dp: &mut Datapath, cfg: &Config) -> Result<()> {
    let t = cfg.global.lvs_timeouts;
    dp.set_timeouts(t.tcp, t.tcpfin, t.udp)
        .context("setting lvs_timeouts")
}

/// A checker's verdict, into the reconciler's view: on the service it was
/// checked for, or on every service of its `virtual_server_group`.
fn apply_check_event(rec: &mut Reconciler, ev: CheckEvent) {
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
fn health_view(rec: &Reconciler, checkers: &Checkers) -> Vec<status::RealHealth> {
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
