//! One `vrrp_instance`: its resolved parameters and the task that runs it
//! (socket ↔ state machine ↔ netlink/GARP/unsolicited NA).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lvs_config::{AuthType, Config, VrrpInstance};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info, warn};

use super::fifo::NotifyFifos;
use super::gate::PreemptGate;
use super::notify::{notify, NotifyScripts};
use super::packet::{
    self, Advert, AdvertAddr, Expect, Outgoing, RejectReason, Rx6, VRRP_MCAST_GROUP,
    VRRP_MCAST_GROUP6,
};
use super::socket::VrrpSocket;
use super::state::{Action, Heard, Machine, MachineParams, VrrpState};
use super::sync::{GroupCmd, MemberLink, Report};
use super::track::{
    self, ProcessState, ScriptState, TrackedFile, TrackedIf, TrackedProcess, TrackedScript,
};
use super::{VrrpError, VrrpEvent, VrrpStats};
use crate::netlink::monitor::{Monitor, NetEvent};
use crate::netlink::{self, IfAddr, IfAddr6, NetlinkError};

/// How often the tracked interfaces' link state (and, while MASTER, the
/// VIPs) are re-read, besides the netlink notifications (FAULT when a
/// tracked interface is down or has no carrier).
const LINK_CHECK: Duration = Duration::from_secs(1);

/// One `virtual_ipaddress` line, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Vip {
    pub dev: String,
    pub addr: VipAddr,
}

/// A VIP as it goes on the interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum VipAddr {
    V4(IfAddr),
    /// Added with `nodad` (unless `-nodad`), as keepalived adds IPv6 VIPs.
    V6(IfAddr6),
}

impl VipAddr {
    pub fn ip(&self) -> IpAddr {
        match self {
            VipAddr::V4(a) => a.addr.into(),
            VipAddr::V6(a) => a.addr.into(),
        }
    }

    pub fn prefix_len(&self) -> u8 {
        match self {
            VipAddr::V4(a) => a.prefix_len,
            VipAddr::V6(a) => a.prefix_len,
        }
    }

    fn add(&self, ifindex: u32) -> Result<(), NetlinkError> {
        match self {
            VipAddr::V4(a) => netlink::addr_add(ifindex, a),
            VipAddr::V6(a) => netlink::addr6_add(ifindex, a),
        }
    }

    fn del(&self, ifindex: u32) -> Result<(), NetlinkError> {
        match self {
            VipAddr::V4(a) => netlink::addr_del(ifindex, a),
            VipAddr::V6(a) => netlink::addr6_del(ifindex, a),
        }
    }
}

/// Everything an instance runs with (spans dropped, so a reload that only
/// moves lines in the file does not count as a change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    pub machine: MachineParams,
    pub ifname: String,
    pub vrid: u8,
    pub auth_pass: Option<[u8; 8]>,
    /// Added on MASTER: `virtual_ipaddress` then `virtual_ipaddress_excluded`.
    pub vips: Vec<Vip>,
    /// The instance runs over IPv6 (keepalived's family: see
    /// `lvs_config::VrrpInstance::ipv6`).
    pub ipv6: bool,
    /// Carried in adverts: the `virtual_ipaddress`es (IPv4 instance).
    pub advert_addrs: Vec<Ipv4Addr>,
    /// Carried in adverts: the `virtual_ipaddress`es (IPv6 instance).
    pub advert_addrs6: Vec<Ipv6Addr>,
    /// `unicast_src_ip` / `mcast_src_ip`, of the instance's family.
    pub src_ip: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    /// 224.0.0.18 (or `vrrp_mcast_group4`), ff02::12 for IPv6.
    pub mcast_group: IpAddr,
    pub garp_delay: Duration,
    pub garp_repeat: u32,
    pub garp_refresh: Option<Duration>,
    pub garp_refresh_repeat: u32,
    /// `vrrp_garp_interval` / `vrrp_gna_interval`: the pause between the
    /// gratuitous ARPs / unsolicited NAs of a burst.
    pub garp_interval: Duration,
    pub gna_interval: Duration,
    pub notify: NotifyScripts,
    pub scripts: Vec<TrackedScript>,
    /// `track_interface`, the primary and the VIPs' interfaces.
    pub tracked_ifs: Vec<TrackedIf>,
    /// `track_process`.
    pub processes: Vec<TrackedProcess>,
    /// `track_file`.
    pub files: Vec<TrackedFile>,
}

impl Params {
    pub fn resolve(cfg: &Config, i: &VrrpInstance) -> Result<Params, VrrpError> {
        let version = i.version.unwrap_or(cfg.global.vrrp_version);
        if version != 2 && version != 3 {
            return Err(VrrpError::Config(format!(
                "({}) unsupported VRRP version {version}",
                i.name
            )));
        }
        let mut adver_int = i.advert_int;
        if version == 2 {
            // v2 carries whole seconds: keepalived rounds to the nearest
            // (1.5 → 2), within 1..=255.
            let s = ((adver_int.as_millis() + 500) / 1000).clamp(1, 255);
            adver_int = Duration::from_secs(s as u64);
        } else {
            let cs = (adver_int.as_millis() / 10).clamp(1, 4095) as u64;
            adver_int = Duration::from_millis(cs * 10);
        }
        let auth_pass = match (&i.authentication, version) {
            (Some(a), 2) if a.ty == AuthType::Pass => Some(packet::pad_pass(&a.pass)),
            (Some(a), 2) if a.ty == AuthType::Ah => {
                return Err(VrrpError::Config(format!(
                    "({}) auth_type AH is not supported",
                    i.name
                )))
            }
            _ => None,
        };
        let mut vips = Vec::new();
        let mut advert_addrs = Vec::new();
        let mut advert_addrs6 = Vec::new();
        for (list, in_advert) in [
            (&i.virtual_ipaddress, true),
            (&i.virtual_ipaddress_excluded, false),
        ] {
            for e in list.iter() {
                let dev = e.dev.clone().unwrap_or_else(|| i.interface.clone());
                let addr = match e.addr {
                    IpAddr::V4(a) => a,
                    IpAddr::V6(a) => {
                        vips.push(Vip {
                            dev,
                            addr: VipAddr::V6(IfAddr6 {
                                addr: a,
                                prefix_len: e.prefix_len,
                                nodad: !e.dad,
                            }),
                        });
                        // The config keeps other-family addresses out of
                        // virtual_ipaddress (keepalived's rule).
                        if in_advert && i.ipv6 {
                            advert_addrs6.push(a);
                        }
                        continue;
                    }
                };
                let scope = match &e.scope {
                    Some(s) => Some(netlink::scope_from_name(s).ok_or_else(|| {
                        VrrpError::Config(format!("({}) unknown scope {s}", i.name))
                    })?),
                    None => None,
                };
                vips.push(Vip {
                    dev,
                    addr: VipAddr::V4(IfAddr {
                        addr,
                        prefix_len: e.prefix_len,
                        brd: e.brd,
                        scope,
                        label: e.label.clone(),
                    }),
                });
                if in_advert && !i.ipv6 {
                    advert_addrs.push(addr);
                }
            }
        }
        if i.ipv6
            && i.unicast_peer.is_empty()
            && advert_addrs6
                .first()
                .is_some_and(|a| a.segments()[0] & 0xffc0 != 0xfe80)
        {
            // keepalived vrrp.c (RFC 5798 §5.2.9 wants the link-local one
            // first); informational unless vrrp_strict.
            info!(
                "({}) the first IPv6 VIP address should be link local",
                i.name
            );
        }
        Ok(Params {
            machine: MachineParams {
                name: i.name.clone(),
                version,
                priority: i.priority,
                adver_int,
                preempt: i.preempt,
                preempt_delay: i.preempt_delay,
                init_master: i.state == Some(lvs_config::VrrpState::Master),
            },
            ifname: i.interface.clone(),
            vrid: i.virtual_router_id,
            auth_pass,
            vips,
            ipv6: i.ipv6,
            advert_addrs,
            advert_addrs6,
            src_ip: i
                .unicast_src_ip
                .or(i.mcast_src_ip)
                .filter(|a| a.is_ipv6() == i.ipv6),
            unicast_peers: i
                .unicast_peer
                .iter()
                .copied()
                .filter(|a| a.is_ipv6() == i.ipv6)
                .collect(),
            mcast_group: if i.ipv6 {
                cfg.global
                    .vrrp_mcast_group6
                    .unwrap_or(VRRP_MCAST_GROUP6)
                    .into()
            } else {
                cfg.global
                    .vrrp_mcast_group4
                    .unwrap_or(VRRP_MCAST_GROUP)
                    .into()
            },
            garp_delay: i.garp_master_delay,
            garp_repeat: i.garp_master_repeat.max(1),
            garp_refresh: i.garp_master_refresh.filter(|d| !d.is_zero()),
            garp_refresh_repeat: i.garp_master_refresh_repeat.max(1),
            garp_interval: cfg.global.vrrp_garp_interval,
            gna_interval: cfg.global.vrrp_gna_interval,
            notify: NotifyScripts::from(&i.notify).secure(),
            scripts: track::resolve(cfg, i)
                .map_err(VrrpError::Config)?
                .into_iter()
                .filter(|s| crate::script_security::allowed(&s.script))
                .collect(),
            tracked_ifs: track::tracked_interfaces(i),
            processes: track::resolve_processes(cfg, &i.name, &i.track_process)
                .map_err(VrrpError::Config)?,
            files: track::resolve_files(cfg, &i.name, &i.track_file),
        })
    }
}

impl Params {
    /// Whether `other` can be applied to a running instance in place
    /// (keepalived's `restore_vrrp_state`: the instance keeps its state).
    /// Only what the socket is bound to needs a restart: the interface,
    /// VRID, version, and multicast group or unicast mode.
    pub fn same_identity(&self, other: &Params) -> bool {
        self.machine.name == other.machine.name
            && self.machine.version == other.machine.version
            && self.ifname == other.ifname
            && self.vrid == other.vrid
            && self.ipv6 == other.ipv6
            && self.unicast_peers.is_empty() == other.unicast_peers.is_empty()
            && self.mcast_group == other.mcast_group
    }
}

/// The links of the VIPs' interfaces.
fn vip_links(vips: &[Vip]) -> Result<BTreeMap<String, netlink::Link>, VrrpError> {
    let mut out = BTreeMap::new();
    for v in vips {
        if !out.contains_key(&v.dev) {
            out.insert(v.dev.clone(), netlink::link_by_name(&v.dev)?);
        }
    }
    Ok(out)
}

/// Our source address: configured, else (IPv4) the interface's first
/// address that is not one of our VIPs (the primary), (IPv6) its link-local
/// address (RFC 5798 §5.1.2.1, keepalived).
fn local_ip(p: &Params, ifindex: u32) -> Result<IpAddr, VrrpError> {
    match p.src_ip {
        Some(a) => Ok(a),
        None if p.ipv6 => netlink::addrs6(ifindex)?
            .into_iter()
            .find(IfAddr6::is_link_local)
            .map(|a| a.addr.into())
            .ok_or_else(|| {
                VrrpError::Config(format!(
                    "({}) interface {} has no IPv6 link-local address",
                    p.machine.name, p.ifname
                ))
            }),
        None => netlink::addrs(ifindex)?
            .into_iter()
            .map(|a| IpAddr::from(a.addr))
            .find(|a| !p.vips.iter().any(|v| v.addr.ip() == *a))
            .ok_or_else(|| {
                VrrpError::Config(format!(
                    "({}) interface {} has no IPv4 address",
                    p.machine.name, p.ifname
                ))
            }),
    }
}

/// The quorum of each tracked process, as /proc shows it now.
fn process_states(procs: &[TrackedProcess]) -> Vec<ProcessState> {
    let cfgs: Vec<&lvs_config::TrackProcess> = procs.iter().map(|t| &t.p).collect();
    let counts = track::count_processes(&cfgs);
    procs
        .iter()
        .zip(counts)
        .map(|(t, n)| ProcessState::new(t, n))
        .collect()
}

/// The tracked files' values now (`init_file` written first where it
/// applies; a missing file is 0, an unreadable number 0 at start).
fn file_values(files: &[TrackedFile]) -> Vec<i64> {
    files
        .iter()
        .map(|f| {
            if let Some((v, overwrite)) = f.init_file {
                let path = std::path::Path::new(&f.path);
                if overwrite || !path.exists() {
                    if let Err(e) = std::fs::write(path, format!("{v}\n")) {
                        warn!("track_file {}: cannot write {}: {e}", f.name, f.path);
                    }
                }
            }
            crate::check::file::read_value(std::path::Path::new(&f.path)).unwrap_or(0)
        })
        .collect()
}

/// The live state of one tracked interface.
#[derive(Clone, Debug)]
struct IfState {
    /// `None` while the interface does not exist.
    index: Option<u32>,
    up: bool,
}

impl IfState {
    fn read(t: &TrackedIf) -> IfState {
        let mut st = IfState {
            index: None,
            up: false,
        };
        st.refresh(&t.name);
        st
    }

    /// Re-reads the link; returns whether `up` changed. A netlink error
    /// other than "no such interface" leaves the state as it was (it says
    /// nothing about the carrier).
    fn refresh(&mut self, name: &str) -> bool {
        let was = self.up;
        if self.index.is_none() {
            self.index = netlink::link_by_name(name).ok().map(|l| l.index);
        }
        match self.index.map(netlink::link_operational) {
            None => self.up = false,
            Some(Ok(up)) => self.up = up,
            Some(Err(e)) if gone(&e) => {
                self.index = None;
                self.up = false;
            }
            Some(Err(e)) => debug!("link state of {name}: {e}"),
        }
        was != self.up
    }
}

fn gone(e: &NetlinkError) -> bool {
    matches!(e, NetlinkError::NoSuchLink(_)) || e.errno() == Some(libc::ENODEV)
}

pub(crate) enum Ctl {
    /// Stop (priority 0 if MASTER, VIPs removed); answer when done.
    Shutdown(oneshot::Sender<()>),
    /// New parameters with the same identity (see [`Params::same_identity`]).
    Update(Box<Params>),
}

/// What every instance of a [`super::Vrrp`] shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub events: mpsc::Sender<VrrpEvent>,
    pub gate: PreemptGate,
    pub fifos: Arc<NotifyFifos>,
}

/// A running instance.
pub(crate) struct Handle {
    pub params: Params,
    pub stats: Arc<Mutex<VrrpStats>>,
    ctl: mpsc::Sender<Ctl>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Resolves the interfaces, opens the socket and starts the task.
    pub fn spawn(
        params: Params,
        shared: &Shared,
        startup_delay: Duration,
        group: Option<MemberLink>,
    ) -> Result<Handle, VrrpError> {
        let name = params.machine.name.clone();
        let link = netlink::link_by_name(&params.ifname)?;
        let vip_links = vip_links(&params.vips)?;
        let local_ip = local_ip(&params, link.index)?;
        // Opened here: the socket belongs to the caller's namespace.
        let monitor = Monitor::open()?;
        let mcast = params
            .unicast_peers
            .is_empty()
            .then_some(params.mcast_group);
        let sock = match mcast {
            Some(IpAddr::V6(g)) => VrrpSocket::open6(&params.ifname, link.index, Some(g))?,
            None if params.ipv6 => VrrpSocket::open6(&params.ifname, link.index, None)?,
            Some(IpAddr::V4(g)) => VrrpSocket::open(&params.ifname, link.index, Some(g))?,
            None => VrrpSocket::open(&params.ifname, link.index, None)?,
        };
        let stats = Arc::new(Mutex::new(VrrpStats {
            instance: name.clone(),
            state: VrrpState::Init,
            priority: params.machine.priority,
            ..VrrpStats::default()
        }));
        let (ctl, ctl_rx) = mpsc::channel(4);
        let mut machine = Machine::new(params.machine.clone(), local_ip);
        machine.grouped = group.is_some();
        let task = Task {
            machine,
            p: params.clone(),
            sock,
            ifindex: link.index,
            vip_links,
            stats: stats.clone(),
            events: shared.events.clone(),
            fifos: shared.fifos.clone(),
            garp_next: None,
            refresh_next: None,
            reasons_logged: BTreeMap::new(),
            script_states: params.scripts.iter().map(ScriptState::new).collect(),
            script_tasks: Vec::new(),
            script_tx: None,
            if_states: params.tracked_ifs.iter().map(IfState::read).collect(),
            proc_states: process_states(&params.processes),
            file_values: file_values(&params.files),
            fault: false,
            monitor,
            group: group.map(|member| GroupMember {
                link: member,
                last: None,
                fault: false,
            }),
        };
        let task = tokio::spawn(task.run(ctl_rx, shared.gate.subscribe(), startup_delay));
        Ok(Handle {
            params,
            stats,
            ctl,
            task,
        })
    }

    /// Applies parameters with the same identity in place: the instance
    /// keeps its state (a MASTER advertises its new priority at once).
    pub async fn update(&mut self, p: Params) {
        let _ = self.ctl.send(Ctl::Update(Box::new(p.clone()))).await;
        self.params = p;
    }

    /// Graceful stop, bounded.
    pub async fn stop(self) {
        let (tx, rx) = oneshot::channel();
        if self.ctl.send(Ctl::Shutdown(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(3), rx).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.task).await;
    }
}

struct Task {
    p: Params,
    machine: Machine,
    sock: VrrpSocket,
    ifindex: u32,
    vip_links: BTreeMap<String, netlink::Link>,
    stats: Arc<Mutex<VrrpStats>>,
    events: mpsc::Sender<VrrpEvent>,
    fifos: Arc<NotifyFifos>,
    /// Second gratuitous ARP burst (garp_master_delay after MASTER).
    garp_next: Option<Instant>,
    /// Periodic bursts (garp_master_refresh).
    refresh_next: Option<Instant>,
    /// Rejections per reason so far (the first few of each are logged at
    /// info, the rest at debug: a misconfigured peer sends one a second).
    reasons_logged: BTreeMap<&'static str, u64>,
    script_states: Vec<ScriptState>,
    script_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Results of the script tasks come back through this.
    script_tx: Option<mpsc::Sender<(usize, bool)>>,
    if_states: Vec<IfState>,
    proc_states: Vec<ProcessState>,
    /// The tracked files' values.
    file_values: Vec<i64>,
    /// A tracked interface is down or a weight-0 script failed.
    fault: bool,
    monitor: Monitor,
    group: Option<GroupMember>,
}

/// This instance's membership of a `vrrp_sync_group`.
struct GroupMember {
    link: MemberLink,
    /// What the group was told last.
    last: Option<Report>,
    /// Some member of the group has a fault.
    fault: bool,
}

/// The next command of the sync group, if any (never, without one).
async fn group_cmd(g: &mut Option<GroupMember>) -> Option<GroupCmd> {
    match g {
        Some(g) => g.link.cmds.recv().await,
        None => std::future::pending().await,
    }
}

impl Task {
    async fn run(
        mut self,
        mut ctl: mpsc::Receiver<Ctl>,
        mut gate: tokio::sync::watch::Receiver<Option<std::time::Instant>>,
        startup_delay: Duration,
    ) {
        if !startup_delay.is_zero() {
            info!(
                "({}) Delaying startup for {:?}",
                self.p.machine.name, startup_delay
            );
            tokio::time::sleep(startup_delay).await;
        }
        // VIPs left behind by a predecessor that died (SIGKILL) must not
        // stay while we are BACKUP (keepalived removes them too).
        if self.p.machine.priority != 255 {
            for v in &self.p.vips {
                if let Some(link) = self.vip_links.get(&v.dev) {
                    let _ = v.addr.del(link.index);
                }
            }
        }
        let (script_tx, mut script_rx) = mpsc::channel(16);
        self.script_tx = Some(script_tx);
        self.start_scripts();
        self.log_tracked_down();
        self.apply_tracking(Instant::now()).await;
        let hold = gate.borrow_and_update().map(Instant::from_std);
        self.machine.set_preempt_hold(Instant::now(), hold);
        let acts = self.machine.start(Instant::now());
        self.apply(acts).await;
        if self.fault {
            let acts = self.machine.set_fault(Instant::now(), true);
            self.apply(acts).await;
        }
        let mut buf = vec![0u8; 4096];
        let mut link_check = Instant::now() + LINK_CHECK;
        loop {
            let deadline = [
                self.machine.deadline(),
                self.garp_next,
                self.refresh_next,
                Some(link_check),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(link_check);
            tokio::select! {
                r = self.sock.recv_any(&mut buf) => match r {
                    Ok((n, rx6)) => {
                        let pkt = buf[..n].to_vec();
                        self.on_packet(&pkt, rx6).await;
                    }
                    Err(e) => {
                        warn!("({}) receive error: {e}", self.p.machine.name);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                evs = self.monitor.next() => {
                    self.on_net_events(evs).await;
                }
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    let acts = self.machine.on_timer(now);
                    self.apply(acts).await;
                    if self.garp_next.is_some_and(|t| now >= t) {
                        self.garp_next = None;
                        self.garp_burst(self.p.garp_repeat);
                    }
                    if let Some(t) = self.refresh_next {
                        if now >= t {
                            self.garp_burst(self.p.garp_refresh_repeat);
                            self.refresh_next = self.p.garp_refresh.map(|r| now + r);
                        }
                    }
                    if now >= link_check {
                        link_check = now + LINK_CHECK;
                        self.check_links(now).await;
                        self.check_vips(now).await;
                        self.check_processes(now).await;
                        self.check_files(now).await;
                    }
                }
                Some(cmd) = group_cmd(&mut self.group) => {
                    self.on_group_cmd(cmd).await;
                }
                Ok(()) = gate.changed() => {
                    let hold = gate.borrow_and_update().map(Instant::from_std);
                    self.machine.set_preempt_hold(Instant::now(), hold);
                }
                Some((idx, ok)) = script_rx.recv() => {
                    let Some(s) = self.p.scripts.get(idx) else { continue };
                    let first = self.script_states[idx].ok.is_none();
                    if self.script_states[idx].feed(s, ok) {
                        if !first || !ok {
                            info!(
                                "({}) Script `{}` now returning {}",
                                self.p.machine.name,
                                s.name,
                                if ok { "success" } else { "failure" }
                            );
                        }
                        self.apply_tracking(Instant::now()).await;
                    }
                }
                c = ctl.recv() => {
                    let done = match c {
                        Some(Ctl::Update(p)) => {
                            self.update(*p).await;
                            continue;
                        }
                        Some(Ctl::Shutdown(done)) => Some(done),
                        None => None,
                    };
                    let acts = self.machine.shutdown();
                    self.apply(acts).await;
                    for t in &self.script_tasks {
                        t.abort();
                    }
                    if let Some(d) = done {
                        let _ = d.send(());
                    }
                    return;
                }
            }
        }
    }

    async fn on_group_cmd(&mut self, cmd: GroupCmd) {
        let now = Instant::now();
        match cmd {
            GroupCmd::Fault(f) => {
                if let Some(g) = &mut self.group {
                    g.fault = f;
                }
                self.sync_fault(now).await;
            }
            GroupCmd::ToMaster => {
                let acts = self.machine.force_master(now);
                self.apply(acts).await;
            }
            GroupCmd::ToBackup { quick } => {
                let acts = self.machine.force_backup(now, quick);
                self.apply(acts).await;
            }
        }
    }

    /// Tells the sync group what changed.
    fn report_group(&mut self) {
        let Some(g) = &mut self.group else { return };
        let r = Report {
            state: self.machine.state,
            own_fault: self.fault,
            wants_master: self.machine.wants_master,
            quick: self.machine.left_quick,
        };
        if g.last == Some(r) || r.state == VrrpState::Init {
            return;
        }
        g.last = Some(r);
        if g.link.reports.try_send((g.link.idx, r)).is_err() {
            warn!("({}) sync group does not take reports", self.p.machine.name);
        }
    }

    /// One task per tracked script; results come back on `script_tx`
    /// tagged with the script's index.
    fn start_scripts(&mut self) {
        for t in self.script_tasks.drain(..) {
            t.abort();
        }
        let Some(tx) = &self.script_tx else { return };
        self.script_tasks = self
            .p
            .scripts
            .iter()
            .enumerate()
            .map(|(i, s)| {
                tokio::spawn(track::run(
                    i,
                    s.clone(),
                    self.p.machine.name.clone(),
                    tx.clone(),
                ))
            })
            .collect();
    }

    fn log_tracked_down(&self) {
        for (t, st) in self.p.tracked_ifs.iter().zip(&self.if_states) {
            if !st.up {
                info!("Netlink reports {} down", t.name);
            }
        }
        for (t, st) in self.p.processes.iter().zip(&self.proc_states) {
            if !st.have_quorum {
                info!(
                    "({}) tracked process {} quorum not achieved",
                    self.p.machine.name, t.p.name
                );
            }
        }
    }

    /// Re-reads the tracked files (keepalived watches them with inotify;
    /// once a second is close enough for failover).
    async fn check_files(&mut self, now: Instant) {
        let mut changed = false;
        for (f, v) in self.p.files.iter().zip(&mut self.file_values) {
            // An unreadable number keeps the last value (keepalived).
            let Some(new) = crate::check::file::read_value(std::path::Path::new(&f.path)) else {
                continue;
            };
            if new != *v {
                info!(
                    "({}) tracked file {} now {new} (was {})",
                    self.p.machine.name, f.name, v
                );
                *v = new;
                changed = true;
            }
        }
        if changed {
            self.apply_tracking(now).await;
        }
    }

    /// Counts the tracked processes (keepalived watches process events;
    /// /proc once a second is close enough for failover).
    async fn check_processes(&mut self, now: Instant) {
        if self.p.processes.is_empty() {
            return;
        }
        let cfgs: Vec<&lvs_config::TrackProcess> = self.p.processes.iter().map(|t| &t.p).collect();
        let counts = track::count_processes(&cfgs);
        let mut changed = false;
        for ((t, st), n) in self
            .p
            .processes
            .iter()
            .zip(&mut self.proc_states)
            .zip(counts)
        {
            if st.feed(t, n, now) {
                info!(
                    "Quorum {} for tracked process {}",
                    if st.have_quorum { "gained" } else { "lost" },
                    t.p.name
                );
                changed = true;
            }
        }
        if changed {
            self.apply_tracking(now).await;
        }
    }

    /// A reload with the same identity: everything else is applied in
    /// place, keeping the state (keepalived's `restore_vrrp_state`).
    async fn update(&mut self, p: Params) {
        info!(
            "({}) configuration updated (priority {}, advert_int {:?})",
            p.machine.name, p.machine.priority, p.machine.adver_int
        );
        let old = std::mem::replace(&mut self.p, p);
        let master = self.machine.state == VrrpState::Master;
        // VIPs: new interfaces resolved; as MASTER, the removed ones go
        // and the added ones come (announced by gratuitous ARP).
        if old.vips != self.p.vips {
            match vip_links(&self.p.vips) {
                Ok(l) => self.vip_links = l,
                Err(e) => warn!("({}) VIP interfaces: {e}", self.p.machine.name),
            }
            if master {
                let old_links = vip_links(&old.vips).unwrap_or_default();
                for v in old.vips.iter().filter(|v| !self.p.vips.contains(v)) {
                    if let Some(l) = old_links.get(&v.dev) {
                        let _ = v.addr.del(l.index);
                    }
                }
                let added: Vec<Vip> = self
                    .p
                    .vips
                    .iter()
                    .filter(|v| !old.vips.contains(v))
                    .cloned()
                    .collect();
                self.add_vips(&added);
                for v in &added {
                    self.garp_one(v, self.p.garp_repeat);
                }
            }
        }
        if old.src_ip != self.p.src_ip {
            match local_ip(&self.p, self.ifindex) {
                Ok(a) => self.machine.local_ip = a,
                Err(e) => warn!("({}) {e}", self.p.machine.name),
            }
        }
        if old.scripts != self.p.scripts {
            // Scripts kept by name keep their state; new ones start
            // unknown without holding the instance (keepalived's
            // INIT_RELOAD): a reload never faults a running instance.
            let states = self
                .p
                .scripts
                .iter()
                .map(|s| {
                    old.scripts
                        .iter()
                        .position(|o| o.name == s.name)
                        .map(|i| self.script_states[i].clone())
                        .unwrap_or_else(|| ScriptState::on_reload(s))
                })
                .collect();
            self.script_states = states;
            self.start_scripts();
        }
        if old.tracked_ifs != self.p.tracked_ifs {
            self.if_states = self.p.tracked_ifs.iter().map(IfState::read).collect();
        }
        if old.processes != self.p.processes {
            self.proc_states = process_states(&self.p.processes);
        }
        if old.files != self.p.files {
            self.file_values = file_values(&self.p.files);
        }
        let (effective, _) = self.tracking();
        let prio = self.machine.p.priority;
        self.machine.p = self.p.machine.clone();
        self.machine.p.priority = prio;
        if effective != prio {
            self.set_priority(effective);
        } else if master {
            // Auth, addresses or peers may have changed: say so at once.
            self.send(prio);
        }
        self.apply_tracking(Instant::now()).await;
    }

    /// Link notifications and VIP removals.
    async fn on_net_events(&mut self, evs: Vec<NetEvent>) {
        let now = Instant::now();
        let mut links_changed = false;
        for ev in evs {
            match ev {
                NetEvent::Link { index, operational } => {
                    for (t, st) in self.p.tracked_ifs.iter().zip(&mut self.if_states) {
                        if st.index == Some(index) && st.up != operational {
                            // Re-read: a notification may be stale.
                            links_changed |= st.refresh(&t.name);
                        } else if st.index.is_none() {
                            links_changed |= st.refresh(&t.name);
                        }
                    }
                }
                NetEvent::AddrRemoved { index, addr } => {
                    let ours = self.p.vips.iter().any(|v| {
                        v.addr.ip() == addr
                            && self.vip_links.get(&v.dev).map(|l| l.index) == Some(index)
                    });
                    if ours && self.machine.state == VrrpState::Master {
                        let acts = self.machine.on_vip_removed(now, addr);
                        self.apply(acts).await;
                    }
                }
                NetEvent::Overrun => {
                    self.check_links(now).await;
                    self.check_vips(now).await;
                }
            }
        }
        if links_changed {
            self.links_changed(now).await;
        }
    }

    async fn check_links(&mut self, now: Instant) {
        let mut changed = false;
        for (t, st) in self.p.tracked_ifs.iter().zip(&mut self.if_states) {
            changed |= st.refresh(&t.name);
        }
        if changed {
            self.links_changed(now).await;
        }
    }

    async fn links_changed(&mut self, now: Instant) {
        for (t, st) in self.p.tracked_ifs.iter().zip(&self.if_states) {
            debug!("({}) {} up={}", self.p.machine.name, t.name, st.up);
        }
        self.apply_tracking(now).await;
    }

    /// While MASTER: a VIP missing from its interface (a notification we
    /// did not get) counts as removed.
    async fn check_vips(&mut self, now: Instant) {
        if self.machine.state != VrrpState::Master {
            return;
        }
        // One address dump per interface, not per VIP.
        let mut present: BTreeMap<u32, Vec<IpAddr>> = BTreeMap::new();
        let mut missing = None;
        for v in &self.p.vips {
            let Some(link) = self.vip_links.get(&v.dev) else {
                continue;
            };
            let addrs = match present.entry(link.index) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let Ok(addrs) = netlink::addrs(link.index) else {
                        continue;
                    };
                    let mut all: Vec<IpAddr> = addrs.into_iter().map(|a| a.addr.into()).collect();
                    if self.p.vips.iter().any(|v| matches!(v.addr, VipAddr::V6(_))) {
                        let Ok(addrs6) = netlink::addrs6(link.index) else {
                            continue;
                        };
                        all.extend(addrs6.into_iter().map(|a| IpAddr::from(a.addr)));
                    }
                    e.insert(all)
                }
            };
            if !addrs.contains(&v.addr.ip()) {
                missing = Some(v.addr.ip());
                break;
            }
        }
        if let Some(addr) = missing {
            let acts = self.machine.on_vip_removed(now, addr);
            self.apply(acts).await;
        }
    }

    /// FAULT while a tracked interface is down or a weight-0 script is KO
    /// (or has not run yet).
    async fn sync_fault(&mut self, now: Instant) {
        // A sync group member is also in FAULT while another member is.
        let fault = self.fault || self.group.as_ref().is_some_and(|g| g.fault);
        if fault != (self.machine.state == VrrpState::Fault)
            && self.machine.state != VrrpState::Init
        {
            let acts = self.machine.set_fault(now, fault);
            self.apply(acts).await;
        }
        self.report_group();
    }

    /// Effective priority and FAULT from everything tracked.
    fn tracking(&self) -> (u8, bool) {
        let ifs = self
            .p
            .tracked_ifs
            .iter()
            .zip(&self.if_states)
            .map(|(t, st)| track::effect(t.weight, t.reverse, Some(st.up)));
        let procs = self
            .p
            .processes
            .iter()
            .zip(&self.proc_states)
            .map(|(t, st)| track::effect(t.weight, t.reverse, Some(st.have_quorum)));
        let files = self
            .p
            .files
            .iter()
            .zip(&self.file_values)
            .map(|(f, v)| track::file_effect(*v, f.weight, f.reverse));
        track::effective(
            self.p.machine.priority,
            track::script_effects(&self.p.scripts, &self.script_states)
                .chain(ifs)
                .chain(procs)
                .chain(files),
        )
    }

    fn set_priority(&mut self, prio: u8) {
        info!(
            "({}) Changing effective priority from {} to {}",
            self.p.machine.name, self.machine.p.priority, prio
        );
        self.machine.p.priority = prio;
        self.stats.lock().unwrap().priority = prio;
        if self.machine.state == VrrpState::Master {
            self.send(prio);
        }
    }

    /// Recomputes the priority and FAULT from what is tracked.
    async fn apply_tracking(&mut self, now: Instant) {
        let (prio, fault) = self.tracking();
        if prio != self.machine.p.priority {
            self.set_priority(prio);
        }
        self.fault = fault;
        self.sync_fault(now).await;
    }

    async fn on_packet(&mut self, pkt: &[u8], rx6: Option<Rx6>) {
        // Both families reduce to what the state machine hears plus the
        // address-list mismatch line.
        let parsed: Result<(Heard, Option<String>), RejectReason> = match rx6 {
            Some(rx) => packet::parse_advert6(pkt, &rx, &self.expect(&self.p.advert_addrs6))
                .map(|a| self.heard_advert(a)),
            None => packet::parse_advert(pkt, &self.expect(&self.p.advert_addrs))
                .map(|a| self.heard_advert(a)),
        };
        match parsed {
            Err(reason) => self.reject(&reason),
            Ok((heard, line)) => {
                {
                    let mut s = self.stats.lock().unwrap();
                    s.adverts_received += 1;
                    if heard.priority == 0 {
                        s.priority_zero_received += 1;
                    }
                    if line.is_some() {
                        s.addr_list_mismatch += 1;
                    }
                }
                if let Some(line) = line {
                    // Logged, not dropped (keepalived ≥ 2.3.3): during a
                    // rolling VIP change the nodes' lists differ for a while.
                    let n = self.reasons_logged.entry("addr_list_mismatch").or_default();
                    *n += 1;
                    if *n <= 20 {
                        info!("{line}");
                    } else {
                        debug!("{line}");
                    }
                }
                if matches!(self.machine.state, VrrpState::Init | VrrpState::Fault) {
                    return;
                }
                let acts = self.machine.on_advert(Instant::now(), heard);
                self.apply(acts).await;
            }
        }
    }

    /// Our advert interval, in the centiseconds the codec speaks.
    fn adver_int_cs(&self) -> u16 {
        (self.p.machine.adver_int.as_millis() / 10) as u16
    }

    /// What a received advert must match, for our addresses of its family.
    fn expect<'a, A>(&'a self, vips: &'a [A]) -> Expect<'a, A> {
        Expect {
            version: self.p.machine.version,
            vrid: self.p.vrid,
            auth_pass: self.p.auth_pass,
            adver_int_cs: self.adver_int_cs(),
            vips,
            check_ttl: self.p.unicast_peers.is_empty(),
        }
    }

    /// What the state machine hears from an accepted advert, with the
    /// address-list mismatch line.
    fn heard_advert<A: AdvertAddr + Into<IpAddr>>(&self, a: Advert<A>) -> (Heard, Option<String>) {
        let line = a
            .addr_mismatch
            .as_ref()
            .map(|m| m.log_line(&self.p.machine.name, a.src));
        (heard(a.src.into(), a.priority, a.adver_int_cs), line)
    }

    /// Our advert with `priority` from `src` to `dst`, carrying `addrs`.
    fn outgoing<'a, A>(&'a self, priority: u8, addrs: &'a [A], src: A, dst: A) -> Outgoing<'a, A> {
        Outgoing {
            version: self.p.machine.version,
            vrid: self.p.vrid,
            priority,
            adver_int_cs: self.adver_int_cs(),
            addrs,
            auth_pass: self.p.auth_pass,
            src,
            dst,
        }
    }

    fn reject(&mut self, reason: &RejectReason) {
        let key = reason.key();
        *self
            .stats
            .lock()
            .unwrap()
            .rejected
            .entry(key.to_string())
            .or_default() += 1;
        let n = self.reasons_logged.entry(key).or_default();
        *n += 1;
        let line = reason.log_line(&self.p.machine.name);
        // Other instances' adverts on a shared segment are normal traffic.
        if matches!(reason, RejectReason::Vrid { .. }) || *n > 20 {
            debug!("{line}");
        } else {
            info!("{line}");
        }
    }

    fn send(&mut self, priority: u8) {
        let src = self.machine.local_ip;
        let dsts: Vec<IpAddr> = if self.p.unicast_peers.is_empty() {
            vec![self.p.mcast_group]
        } else {
            self.p.unicast_peers.clone()
        };
        for dst in dsts {
            let sent = match (src, dst) {
                (IpAddr::V4(src), IpAddr::V4(dst)) => {
                    let o = self.outgoing(priority, &self.p.advert_addrs, src, dst);
                    self.sock.send(&packet::build_advert(&o), dst)
                }
                (IpAddr::V6(src), IpAddr::V6(dst)) => {
                    let o = self.outgoing(priority, &self.p.advert_addrs6, src, dst);
                    self.sock.send6(&packet::build_advert6(&o), src, dst)
                }
                _ => Err(std::io::Error::other(format!(
                    "source {src} and destination {dst} are of different families"
                ))),
            };
            match sent {
                Ok(()) => {
                    let mut s = self.stats.lock().unwrap();
                    s.adverts_sent += 1;
                    if priority == 0 {
                        s.priority_zero_sent += 1;
                    }
                }
                Err(e) => warn!("({}) cannot send advert to {dst}: {e}", self.p.machine.name),
            }
        }
    }

    fn garp_burst(&self, repeat: u32) {
        for v in &self.p.vips {
            self.garp_one(v, repeat);
        }
    }

    fn garp_one(&self, v: &Vip, repeat: u32) {
        let Some(link) = self.vip_links.get(&v.dev) else {
            return;
        };
        // keepalived's wording: IPv6 VIPs are announced by unsolicited
        // neighbour advertisements, repeated as gratuitous ARPs are.
        let what = match v.addr {
            VipAddr::V4(_) => "gratuitous ARPs",
            VipAddr::V6(_) => "Unsolicited Neighbour Adverts",
        };
        info!(
            "({}) Sending/queueing {what} on {} for {}",
            self.p.machine.name,
            v.dev,
            v.addr.ip()
        );
        let router = matches!(v.addr, VipAddr::V6(_)) && netlink::ipv6_forwarding(&v.dev);
        let (ifindex, mac, addr) = (link.index, link.mac, v.addr.clone());
        let name = self.p.machine.name.clone();
        let send = move || {
            let r = match &addr {
                VipAddr::V4(a) => netlink::send_garp(ifindex, mac, a.addr),
                VipAddr::V6(a) => netlink::send_unsolicited_na(ifindex, mac, a.addr, router),
            };
            if let Err(e) = &r {
                warn!("({name}) {what} for {}: {e}", addr.ip());
            }
            r.is_ok()
        };
        let pause = match v.addr {
            VipAddr::V4(_) => self.p.garp_interval,
            VipAddr::V6(_) => self.p.gna_interval,
        };
        if pause.is_zero() {
            for _ in 0..repeat {
                if !send() {
                    break;
                }
            }
        } else {
            // Paced: off the instance's task, so its timers keep running.
            tokio::spawn(async move {
                for n in 0..repeat {
                    if n > 0 {
                        tokio::time::sleep(pause).await;
                    }
                    if !send() {
                        break;
                    }
                }
            });
        }
    }

    fn add_vips(&self, vips: &[Vip]) {
        for v in vips {
            let Some(link) = self.vip_links.get(&v.dev) else {
                continue;
            };
            if let Err(e) = v.addr.add(link.index) {
                warn!(
                    "({}) cannot add {}/{} to {}: {e}",
                    self.p.machine.name,
                    v.addr.ip(),
                    v.addr.prefix_len(),
                    v.dev
                );
            }
        }
    }

    // The netlink calls below are synchronous; each is one request on a
    // fresh socket answered by the kernel in microseconds, so they run on
    // the task itself rather than on a blocking thread.
    async fn apply(&mut self, acts: Vec<Action>) {
        for a in acts {
            match a {
                Action::Send(prio) => self.send(prio),
                Action::TakeVips => {
                    info!("({}) setting VIPs.", self.p.machine.name);
                    self.add_vips(&self.p.vips);
                    self.garp_burst(self.p.garp_repeat);
                    let now = Instant::now();
                    self.garp_next =
                        (!self.p.garp_delay.is_zero()).then(|| now + self.p.garp_delay);
                    self.refresh_next = self.p.garp_refresh.map(|r| now + r);
                }
                Action::Garp => self.garp_burst(self.p.garp_repeat),
                Action::WantMaster => {}
                Action::DropVips => {
                    info!("({}) removing VIPs.", self.p.machine.name);
                    self.garp_next = None;
                    self.refresh_next = None;
                    for v in &self.p.vips {
                        if let Some(link) = self.vip_links.get(&v.dev) {
                            if let Err(e) = v.addr.del(link.index) {
                                warn!(
                                    "({}) cannot remove {} from {}: {e}",
                                    self.p.machine.name,
                                    v.addr.ip(),
                                    v.dev
                                );
                            }
                        }
                    }
                }
                Action::Changed { prev, state } => {
                    {
                        let mut s = self.stats.lock().unwrap();
                        s.state = state;
                        if state == VrrpState::Master {
                            s.became_master += 1;
                        }
                    }
                    notify(
                        &self.p.notify,
                        &self.p.machine.name,
                        state,
                        self.machine.p.priority,
                    );
                    self.fifos
                        .instance(&self.p.machine.name, state, self.machine.p.priority);
                    let ev = VrrpEvent {
                        instance: self.p.machine.name.clone(),
                        state,
                        prev,
                    };
                    // Neither a receiver that went away nor one that
                    // does not keep up may stall the protocol's timers.
                    if let Err(mpsc::error::TrySendError::Full(ev)) = self.events.try_send(ev) {
                        warn!(
                            "({}) event queue full: {:?} -> {:?} not delivered",
                            ev.instance, ev.prev, ev.state
                        );
                    }
                }
            }
        }
        self.stats.lock().unwrap().master_ip = match self.machine.state {
            VrrpState::Master => Some(self.machine.local_ip),
            VrrpState::Backup => self.machine.master_ip,
            _ => None,
        };
        self.report_group();
    }
}

/// What the state machine needs of a valid advert.
fn heard(src: IpAddr, priority: u8, adver_int_cs: u16) -> Heard {
    Heard {
        src,
        priority,
        // A (checksum-valid) zero interval would make our master-down
        // timer zero: count it as 10 ms.
        adver_int: Duration::from_millis(adver_int_cs.max(1) as u64 * 10),
    }
}
