//! VRRP as keepalived speaks it: v2 (RFC 3768, with `auth_type PASS`) and
//! v3 (RFC 5798, centisecond intervals) for IPv4, multicast to
//! 224.0.0.18 (`vrrp_mcast_group4`) or unicast to `unicast_peer`s, so an
//! lvsd director can stand beside a keepalived one.
//!
//! One task per `vrrp_instance`. BACKUP waits 3 × advert_int + skew for the
//! master's adverts; MASTER holds the `virtual_ipaddress`es, sends adverts
//! and gratuitous ARPs; on shutdown a MASTER sends priority 0 so its backup
//! takes over at once. Every rejected advert is counted by reason and
//! logged once per reason.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddrV4},
    time::Duration,
};

use lvs_config::{AuthType, Config, VrrpInstance, VrrpState as CfgState};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use thiserror::Error;
use tokio::{
    io::unix::AsyncFd,
    sync::{mpsc, watch},
    task::JoinHandle,
    time::{sleep_until, Instant},
};
use tracing::{info, warn};

use crate::netlink::{self, IfAddr};

/// A `virtual_ipaddress` entry and the interface it goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub ifindex: u32,
    pub addr: IfAddr,
}

pub const IPPROTO_VRRP: i32 = 112;
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Backup,
    Master,
    Fault,
}

/// A state change, for the agent.
#[derive(Clone, Debug)]
pub struct VrrpEvent {
    pub instance: String,
    pub state: State,
}

#[derive(Debug, Error)]
pub enum VrrpError {
    #[error("vrrp_instance {instance}: interface {ifname}: {source}")]
    Socket {
        instance: String,
        ifname: String,
        #[source]
        source: std::io::Error,
    },
}

/// Why a received advert was thrown away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reject {
    Truncated,
    Ttl,
    Version,
    Type,
    Checksum,
    AuthType,
    AuthPass,
    Interval,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Truncated => "truncated packet",
            Reject::Ttl => "invalid TTL (must be 255)",
            Reject::Version => "wrong VRRP version",
            Reject::Type => "invalid type",
            Reject::Checksum => "invalid checksum",
            Reject::AuthType => "authentication type mismatch",
            Reject::AuthPass => "received an invalid passwd",
            Reject::Interval => "advertisement interval mismatch",
        }
    }
}

/// A received, valid advert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub src: Ipv4Addr,
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds (v2 seconds × 100).
    pub interval_cs: u16,
    pub addrs: Vec<Ipv4Addr>,
}

/// What an instance expects of adverts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub version: u8,
    pub vrid: u8,
    /// v2 PASS authentication: the password, 8 bytes zero padded.
    pub pass: Option<[u8; 8]>,
    pub interval_cs: u16,
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for c in chunks {
        for pair in c.chunks(2) {
            let word = if pair.len() == 2 {
                u16::from_be_bytes([pair[0], pair[1]])
            } else {
                u16::from_be_bytes([pair[0], 0])
            };
            sum += word as u32;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds an advert (the VRRP part; the kernel adds the IP header).
pub fn encode(
    e: &Expect,
    priority: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    addrs: &[Ipv4Addr],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + 4 * addrs.len() + 8);
    p.push((e.version << 4) | 1);
    p.push(e.vrid);
    p.push(priority);
    p.push(addrs.len() as u8);
    if e.version == 3 {
        p.extend_from_slice(&(e.interval_cs & 0x0fff).to_be_bytes());
    } else {
        p.push(if e.pass.is_some() { 1 } else { 0 });
        p.push((e.interval_cs / 100).max(1) as u8);
    }
    p.extend_from_slice(&[0, 0]);
    for a in addrs {
        p.extend_from_slice(&a.octets());
    }
    if e.version == 2 {
        p.extend_from_slice(&e.pass.unwrap_or([0; 8]));
    }
    let sum = if e.version == 3 {
        let len = (p.len() as u16).to_be_bytes();
        let pseudo = [
            &src.octets()[..],
            &dst.octets()[..],
            &[0, IPPROTO_VRRP as u8],
            &len[..],
        ]
        .concat();
        checksum(&[&pseudo, &p])
    } else {
        checksum(&[&p])
    };
    p[6..8].copy_from_slice(&sum.to_be_bytes());
    p
}

/// Parses and validates a received IPv4 packet carrying a VRRP advert.
/// `Ok(None)`: valid but for another virtual router (not ours to count).
pub fn parse(pkt: &[u8], e: &Expect) -> Result<Option<Advert>, Reject> {
    if pkt.len() < 20 {
        return Err(Reject::Truncated);
    }
    let ihl = ((pkt[0] & 0x0f) as usize) * 4;
    if ihl < 20 || pkt.len() < ihl + 8 {
        return Err(Reject::Truncated);
    }
    let ttl = pkt[8];
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    let total = (u16::from_be_bytes([pkt[2], pkt[3]]) as usize).min(pkt.len());
    let v = &pkt[ihl..total.max(ihl)];
    if v.len() < 8 {
        return Err(Reject::Truncated);
    }
    if ttl != 255 {
        return Err(Reject::Ttl);
    }
    let version = v[0] >> 4;
    if version != e.version {
        return Err(Reject::Version);
    }
    if v[0] & 0x0f != 1 {
        return Err(Reject::Type);
    }
    if v[1] != e.vrid {
        return Ok(None);
    }
    let count = v[3] as usize;
    let need = 8 + 4 * count + if version == 2 { 8 } else { 0 };
    if v.len() < need {
        return Err(Reject::Truncated);
    }
    let v = &v[..need];
    let ok = if version == 3 {
        let len = (v.len() as u16).to_be_bytes();
        let pseudo = [
            &src.octets()[..],
            &dst.octets()[..],
            &[0, IPPROTO_VRRP as u8],
            &len[..],
        ]
        .concat();
        checksum(&[&pseudo, v]) == 0
    } else {
        checksum(&[v]) == 0
    };
    if !ok {
        return Err(Reject::Checksum);
    }
    let interval_cs = if version == 3 {
        u16::from_be_bytes([v[4], v[5]]) & 0x0fff
    } else {
        let want = if e.pass.is_some() { 1 } else { 0 };
        if v[4] != want {
            return Err(Reject::AuthType);
        }
        if let Some(pass) = e.pass {
            if v[8 + 4 * count..8 + 4 * count + 8] != pass {
                return Err(Reject::AuthPass);
            }
        }
        let secs = v[5] as u16;
        if secs * 100 != e.interval_cs {
            return Err(Reject::Interval);
        }
        secs * 100
    };
    let addrs = (0..count)
        .map(|i| {
            let o = 8 + 4 * i;
            Ipv4Addr::new(v[o], v[o + 1], v[o + 2], v[o + 3])
        })
        .collect();
    Ok(Some(Advert {
        src,
        vrid: v[1],
        priority: v[2],
        interval_cs,
        addrs,
    }))
}

/// An instance's settings, resolved from the config.
#[derive(Clone, Debug)]
pub struct InstanceSpec {
    pub name: String,
    pub ifname: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub src: Ipv4Addr,
    pub peers: Vec<Ipv4Addr>,
    pub group: Ipv4Addr,
    pub expect: Expect,
    pub priority: u8,
    pub start_master: bool,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub vips: Vec<Vip>,
    pub garp_delay: Duration,
    pub garp_repeat: u32,
}

impl InstanceSpec {
    fn interval(&self) -> Duration {
        Duration::from_millis(self.expect.interval_cs as u64 * 10)
    }
    /// Master down interval: 3 × the master's interval + skew.
    fn master_down(&self, master_cs: u16) -> Duration {
        let adv = Duration::from_millis(master_cs as u64 * 10);
        let skew = if self.expect.version == 3 {
            adv.mul_f64((256 - self.priority as u32) as f64 / 256.0)
        } else {
            Duration::from_secs_f64((256 - self.priority as u32) as f64 / 256.0)
        };
        adv * 3 + skew
    }
}

fn first_v4(ifname: &str) -> Option<Ipv4Addr> {
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills ifap with a list we free below.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        // SAFETY: ifa_name is a NUL-terminated string.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if !ifa.ifa_addr.is_null() && name.to_bytes() == ifname.as_bytes() {
            // SAFETY: checked non-null; the family says how to read it.
            let fam = unsafe { (*ifa.ifa_addr).sa_family } as i32;
            if fam == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                found = Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
                break;
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(ifap) };
    found
}

/// Resolves the config's instances against this host's interfaces.
pub fn specs(cfg: &Config) -> Vec<Result<InstanceSpec, String>> {
    cfg.vrrp_instances.iter().map(|v| spec_of(cfg, v)).collect()
}

fn spec_of(cfg: &Config, v: &VrrpInstance) -> Result<InstanceSpec, String> {
    let ifindex = crate::datapath::ifindex(&v.interface).map_err(|e| e.to_string())?;
    let mac = crate::datapath::interface_mac(&v.interface).map_err(|e| e.to_string())?;
    let src = match v.unicast_src_ip.or(v.mcast_src_ip) {
        Some(IpAddr::V4(a)) => a,
        _ => first_v4(&v.interface)
            .ok_or_else(|| format!("interface {} has no IPv4 address", v.interface))?,
    };
    let version = v.version.unwrap_or(cfg.global.vrrp_version);
    let pass = match (&v.authentication, version) {
        (Some(a), 2) if a.ty == AuthType::Pass => {
            let mut p = [0u8; 8];
            for (d, s) in p.iter_mut().zip(a.pass.bytes()) {
                *d = s;
            }
            Some(p)
        }
        _ => None,
    };
    let interval_cs = (v.advert_int.as_millis() / 10).clamp(1, 4095) as u16;
    let vips = v
        .virtual_ipaddress
        .iter()
        .filter_map(|e| match e.addr {
            IpAddr::V4(addr) => {
                let dev = e.dev.as_deref().unwrap_or(&v.interface);
                let ifindex = crate::datapath::ifindex(dev).ok()?;
                Some(Vip {
                    ifindex,
                    addr: IfAddr {
                        addr,
                        prefix_len: e.prefix_len,
                        brd: e.brd,
                        scope: e.scope.as_deref().and_then(netlink::scope_from_name),
                        label: e.label.clone(),
                    },
                })
            }
            IpAddr::V6(_) => None,
        })
        .collect();
    Ok(InstanceSpec {
        name: v.name.clone(),
        ifname: v.interface.clone(),
        ifindex,
        mac,
        src,
        peers: v
            .unicast_peer
            .iter()
            .filter_map(|p| match p {
                IpAddr::V4(a) => Some(*a),
                _ => None,
            })
            .collect(),
        group: cfg.global.vrrp_mcast_group4.unwrap_or(VRRP_GROUP),
        expect: Expect {
            version,
            vrid: v.virtual_router_id,
            pass,
            interval_cs: if version == 2 {
                ((interval_cs / 100).max(1)) * 100
            } else {
                interval_cs
            },
        },
        priority: v.priority,
        start_master: v.state == Some(CfgState::Master) || v.priority == 255,
        // keepalived: nopreempt only means something with state BACKUP.
        preempt: v.preempt || v.state == Some(CfgState::Master),
        preempt_delay: v.preempt_delay,
        vips,
        garp_delay: v.garp_master_delay,
        garp_repeat: v.garp_master_repeat.max(1),
    })
}

/// The instance's raw socket. Not bound to an address: a bound raw socket
/// only receives packets *to* that address, and adverts go to the group.
/// The source of what we send is the interface's address (or
/// `unicast_src_ip`), set per datagram with IP_PKTINFO-free `IP_MULTICAST_IF`.
fn socket(spec: &InstanceSpec) -> std::io::Result<AsyncFd<Socket>> {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))?;
    s.bind_device(Some(spec.ifname.as_bytes()))?;
    s.set_multicast_if_v4(&spec.src)?;
    if spec.peers.is_empty() {
        s.join_multicast_v4_n(&spec.group, &InterfaceIndexOrAddress::Index(spec.ifindex))?;
        s.set_multicast_loop_v4(false)?;
        s.set_multicast_ttl_v4(255)?;
    }
    s.set_ttl_v4(255)?;
    s.set_nonblocking(true)?;
    // SAFETY: the AsyncFd owns the socket, hence its fd, until dropped.
    unsafe { AsyncFd::register(s) }.map_err(|e| std::io::Error::other(e.to_string()))
}

/// Per-instance counters.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub received: u64,
    pub sent: u64,
    pub rejected: BTreeMap<&'static str, u64>,
}

/// What `lvsadm --vrrp` shows of an instance.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub state: String,
    pub priority: u8,
    /// The last master heard (or ourselves when MASTER).
    pub master: Option<Ipv4Addr>,
    pub adverts_received: u64,
    pub adverts_sent: u64,
    pub rejected: BTreeMap<String, u64>,
}

/// Running instances; dropping the handle does not stop them: call `shutdown`.
pub struct Vrrp {
    tasks: Vec<(String, JoinHandle<()>)>,
    stop: watch::Sender<bool>,
    status: Vec<watch::Receiver<InstanceStatus>>,
}

impl Vrrp {
    /// Starts every instance of the config.
    pub fn start(cfg: &Config, events: mpsc::Sender<VrrpEvent>) -> Result<Vrrp, VrrpError> {
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut status = Vec::new();
        for spec in specs(cfg) {
            let spec = match spec {
                Ok(s) => s,
                Err(e) => {
                    warn!("VRRP: {e}; instance not started");
                    continue;
                }
            };
            let sock = socket(&spec).map_err(|source| VrrpError::Socket {
                instance: spec.name.clone(),
                ifname: spec.ifname.clone(),
                source,
            })?;
            let name = spec.name.clone();
            let (status_tx, status_rx) = watch::channel(InstanceStatus::default());
            status.push(status_rx);
            tasks.push((
                name,
                tokio::spawn(run(spec, sock, events.clone(), stop_rx.clone(), status_tx)),
            ));
        }
        Ok(Vrrp {
            tasks,
            stop,
            status,
        })
    }

    /// Every instance's state and counters, as of now.
    pub fn status(&self) -> Vec<InstanceStatus> {
        self.status.iter().map(|r| r.borrow().clone()).collect()
    }

    /// Graceful stop: a MASTER sends priority 0 and releases its addresses.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for (_, t) in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
        }
    }
}

async fn send(sock: &AsyncFd<Socket>, spec: &InstanceSpec, priority: u8) {
    let addrs: Vec<Ipv4Addr> = spec.vips.iter().map(|v| v.addr.addr).collect();
    let dsts: Vec<Ipv4Addr> = if spec.peers.is_empty() {
        vec![spec.group]
    } else {
        spec.peers.clone()
    };
    for dst in dsts {
        let pkt = encode(&spec.expect, priority, spec.src, dst, &addrs);
        let to = SocketAddrV4::new(dst, 0).into();
        if let Err(e) = sock.get_ref().send_to(&pkt, &to) {
            warn!("({}) sending advert to {dst}: {e}", spec.name);
        }
    }
}

fn become_master(spec: &InstanceSpec) {
    info!("({}) Transition to MASTER STATE", spec.name);
    info!("({}) Entering MASTER STATE", spec.name);
    info!("({}) setting VIPs.", spec.name);
    for v in &spec.vips {
        if let Err(e) = netlink::addr_add(v.ifindex, &v.addr) {
            warn!(
                "({}) adding {}/{}: {e}",
                spec.name, v.addr.addr, v.addr.prefix_len
            );
        }
    }
    garp_burst(spec);
}

fn garp_burst(spec: &InstanceSpec) {
    for v in &spec.vips {
        info!(
            "({}) Sending/queueing gratuitous ARPs on {} for {}",
            spec.name, spec.ifname, v.addr.addr
        );
        for _ in 0..spec.garp_repeat {
            let _ = netlink::send_garp(v.ifindex, spec.mac, v.addr.addr);
        }
    }
}

fn leave_master(spec: &InstanceSpec) {
    info!("({}) removing VIPs.", spec.name);
    for v in &spec.vips {
        if let Err(e) = netlink::addr_del(v.ifindex, &v.addr) {
            warn!("({}) removing {}: {e}", spec.name, v.addr.addr);
        }
    }
}

async fn run(
    spec: InstanceSpec,
    sock: AsyncFd<Socket>,
    events: mpsc::Sender<VrrpEvent>,
    mut stop: watch::Receiver<bool>,
    status: watch::Sender<InstanceStatus>,
) {
    let started = Instant::now();
    let mut master: Option<Ipv4Addr> = None;
    let publish = |state: State, counters: &Counters, master: Option<Ipv4Addr>| {
        let _ = status.send(InstanceStatus {
            name: spec.name.clone(),
            interface: spec.ifname.clone(),
            vrid: spec.expect.vrid,
            version: spec.expect.version,
            state: match state {
                State::Master => "MASTER",
                State::Backup => "BACKUP",
                State::Fault => "FAULT",
            }
            .into(),
            priority: spec.priority,
            master: if state == State::Master {
                Some(spec.src)
            } else {
                master
            },
            adverts_received: counters.received,
            adverts_sent: counters.sent,
            rejected: counters
                .rejected
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        });
    };
    let mut counters = Counters::default();
    let mut state = State::Backup;
    let mut next = Instant::now() + spec.master_down(spec.expect.interval_cs);
    let mut second_garp: Option<Instant> = None;
    info!("({}) Entering BACKUP STATE (init)", spec.name);
    if spec.start_master {
        state = State::Master;
        become_master(&spec);
        send(&sock, &spec, spec.priority).await;
        counters.sent += 1;
        next = Instant::now() + spec.interval();
        second_garp = Some(Instant::now() + spec.garp_delay);
    }
    let _ = events
        .send(VrrpEvent {
            instance: spec.name.clone(),
            state,
        })
        .await;
    let mut buf = vec![0u8; 2048];
    loop {
        publish(state, &counters, master);
        let garp_at = second_garp.unwrap_or(next + Duration::from_secs(3600));
        tokio::select! {
            _ = stop.changed() => {
                if state == State::Master {
                    // Priority 0: the backup takes over without waiting.
                    send(&sock, &spec, 0).await;
                    leave_master(&spec);
                }
                info!("({}) Stopping", spec.name);
                return;
            }
            _ = sleep_until(garp_at), if second_garp.is_some() => {
                second_garp = None;
                if state == State::Master {
                    garp_burst(&spec);
                }
            }
            _ = sleep_until(next) => {
                match state {
                    State::Master => {
                        send(&sock, &spec, spec.priority).await;
                        counters.sent += 1;
                        next = Instant::now() + spec.interval();
                    }
                    _ => {
                        info!("({}) Receive advertisement timeout", spec.name);
                        state = State::Master;
                        become_master(&spec);
                        send(&sock, &spec, spec.priority).await;
                        counters.sent += 1;
                        next = Instant::now() + spec.interval();
                        second_garp = Some(Instant::now() + spec.garp_delay);
                        let _ = events.send(VrrpEvent { instance: spec.name.clone(), state }).await;
                    }
                }
            }
            ready = sock.readable() => {
                let Ok(mut guard) = ready else { return };
                let n = match guard.try_io(|s| {
                    // SAFETY: reading into initialised bytes viewed as MaybeUninit.
                    let b = unsafe { &mut *(buf.as_mut_slice() as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
                    s.get_ref().recv(b)
                }) {
                    Ok(Ok(n)) => n,
                    Ok(Err(_)) | Err(_) => continue,
                };
                let advert = match parse(&buf[..n], &spec.expect) {
                    Ok(Some(a)) => a,
                    Ok(None) => continue,
                    Err(r) => {
                        let c = counters.rejected.entry(r.as_str()).or_default();
                        *c += 1;
                        if *c == 1 {
                            warn!("({}) {} (advert dropped; counted from now on)", spec.name, r.as_str());
                        }
                        continue;
                    }
                };
                if advert.src == spec.src {
                    continue;
                }
                counters.received += 1;
                master = Some(advert.src);
                if advert.addrs.len() != spec.vips.len() {
                    tracing::debug!("({}) advert from {} lists {} addresses, we have {}", spec.name, advert.src, advert.addrs.len(), spec.vips.len());
                }
                match state {
                    State::Master => {
                        if advert.priority == 0 {
                            send(&sock, &spec, spec.priority).await;
                            counters.sent += 1;
                            next = Instant::now() + spec.interval();
                        } else if advert.priority > spec.priority
                            || (advert.priority == spec.priority && advert.src > spec.src)
                        {
                            info!(
                                "({}) Master received advert from {} with higher priority {}, ours {}",
                                spec.name, advert.src, advert.priority, spec.priority
                            );
                            state = State::Backup;
                            leave_master(&spec);
                            info!("({}) Entering BACKUP STATE", spec.name);
                            next = Instant::now() + spec.master_down(advert.interval_cs);
                            let _ = events.send(VrrpEvent { instance: spec.name.clone(), state }).await;
                        }
                    }
                    _ => {
                        let preempt = spec.preempt && started.elapsed() >= spec.preempt_delay;
                        if advert.priority == 0 {
                            let skew = spec.master_down(advert.interval_cs.max(1))
                                - Duration::from_millis(advert.interval_cs.max(1) as u64 * 30);
                            next = Instant::now() + skew;
                        } else if !preempt || advert.priority >= spec.priority {
                            next = Instant::now() + spec.master_down(advert.interval_cs);
                        }
                        // else: a lower-priority master; let the timer run out.
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip_packet(ttl: u8, src: Ipv4Addr, dst: Ipv4Addr, vrrp: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, ttl, 112, 0, 0];
        p[2..4].copy_from_slice(&((20 + vrrp.len()) as u16).to_be_bytes());
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(vrrp);
        p
    }

    fn expect(version: u8, pass: Option<&str>) -> Expect {
        Expect {
            version,
            vrid: 20,
            pass: pass.map(|p| {
                let mut b = [0u8; 8];
                b[..p.len()].copy_from_slice(p.as_bytes());
                b
            }),
            interval_cs: 100,
        }
    }

    #[test]
    fn v2_and_v3_round_trip_and_reject_what_keepalived_rejects() {
        let src = Ipv4Addr::new(198, 18, 0, 2);
        let addrs = [Ipv4Addr::new(198, 18, 0, 100)];
        for e in [expect(2, Some("7890")), expect(2, None), expect(3, None)] {
            let v = encode(&e, 200, src, VRRP_GROUP, &addrs);
            let pkt = ip_packet(255, src, VRRP_GROUP, &v);
            let a = parse(&pkt, &e).unwrap().unwrap();
            assert_eq!(
                (a.priority, a.vrid, a.addrs.as_slice()),
                (200, 20, &addrs[..])
            );
            assert_eq!(
                parse(&ip_packet(254, src, VRRP_GROUP, &v), &e),
                Err(Reject::Ttl)
            );
            let mut bad = v.clone();
            bad[2] ^= 1;
            assert_eq!(
                parse(&ip_packet(255, src, VRRP_GROUP, &bad), &e),
                Err(Reject::Checksum)
            );
            let mut other = e.clone();
            other.vrid = 21;
            assert_eq!(parse(&pkt, &other), Ok(None));
        }
        let v = encode(&expect(2, Some("7890")), 200, src, VRRP_GROUP, &addrs);
        let pkt = ip_packet(255, src, VRRP_GROUP, &v);
        assert_eq!(
            parse(&pkt, &expect(2, Some("wrong"))),
            Err(Reject::AuthPass)
        );
        assert_eq!(parse(&pkt, &expect(2, None)), Err(Reject::AuthType));
        assert_eq!(parse(&pkt, &expect(3, None)), Err(Reject::Version));
    }

    #[test]
    fn malformed_adverts_never_panic() {
        let src = Ipv4Addr::new(198, 18, 0, 2);
        let e = expect(2, Some("7890"));
        let good = ip_packet(
            255,
            src,
            VRRP_GROUP,
            &encode(&e, 100, src, VRRP_GROUP, &[src]),
        );
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = good.clone();
            let i = (x as usize) % m.len();
            m[i] = (x >> 40) as u8;
            let cut = (x as usize >> 16) % (m.len() + 1);
            let _ = parse(&m[..cut], &e);
            let _ = parse(&m, &e);
        }
    }
}
