//! The typed configuration model. Every item keeps the [`Span`] of the
//! keyword that introduced it. Values are resolved: defaults and inherited
//! settings (checker ← real server ← virtual server) are filled in, so the
//! agent reads what keepalived would use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::diag::Span;

/// A whole keepalived configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub global: GlobalDefs,
    pub vrrp_scripts: Vec<VrrpScript>,
    /// `vrrp_track_process NAME { ... }`.
    pub vrrp_track_processes: Vec<TrackProcess>,
    pub vrrp_sync_groups: Vec<VrrpSyncGroup>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
    /// `track_file NAME { ... }` (and the deprecated `vrrp_track_file`).
    pub track_files: Vec<TrackFile>,
    /// `bgp_announce { }` (lvs-xdp's own): route health injection.
    pub bgp_announce: Option<BgpAnnounce>,
}

impl Config {
    pub fn vrrp_instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.vrrp_instances.iter().find(|v| v.name == name)
    }
    pub fn virtual_server_group(&self, name: &str) -> Option<&VirtualServerGroup> {
        self.virtual_server_groups.iter().find(|v| v.name == name)
    }
    pub fn track_file(&self, name: &str) -> Option<&TrackFile> {
        self.track_files.iter().find(|t| t.name == name)
    }
}

/// `track_file NAME { file PATH; weight W [reverse]; init_file [V] [overwrite] }`
/// (keepalived trackers/track_file.c).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackFile {
    pub span: Span,
    pub name: String,
    pub file: String,
    /// -254..=254, default 1.
    pub weight: i32,
    pub weight_reverse: bool,
    /// `init_file [VALUE] [overwrite]`: create the file with VALUE (default
    /// 0) if it does not exist, or always with `overwrite`.
    pub init_file: Option<(i64, bool)>,
}

impl TrackFile {
    /// The weight and `reverse` a user of the file (a FILE_CHECK, a
    /// `track_file` entry) applies: its own `weight W [reverse]` when it
    /// gives one, else the file's.
    pub fn weight_for(&self, own: Option<i32>, own_reverse: bool) -> (i32, bool) {
        match own {
            Some(w) => (w, own_reverse),
            None => (self.weight, self.weight_reverse),
        }
    }
}

/// How `vrrp_track_process` compares a process's parameters
/// (`param_match`; keepalived track_process.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamMatch {
    /// Parameters are not looked at.
    None,
    /// Exactly the configured parameters.
    Exact,
    /// The configured parameters, then possibly more.
    Partial,
    /// Like `Partial`, the last configured parameter may be a prefix.
    Initial,
}

/// `vrrp_track_process NAME { process NAME [PARAMS...]; param_match;
/// weight W [reverse]; quorum N; quorum_max N; delay/fork_delay/
/// terminate_delay S; full_command }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackProcess {
    pub span: Span,
    pub name: String,
    /// The process name (`comm`) or, with `full_command`, argv\[0\].
    pub process: String,
    pub params: Vec<String>,
    pub param_match: ParamMatch,
    pub full_command: bool,
    /// -254..=254, default 0 (FAULT without quorum).
    pub weight: i32,
    pub weight_reverse: bool,
    /// Quorum when `quorum <= running <= quorum_max` (default 1..).
    pub quorum: u32,
    pub quorum_max: u32,
    /// How long a gained quorum must last before it counts.
    pub fork_delay: Duration,
    /// How long a lost quorum must last before it counts.
    pub terminate_delay: Duration,
}

/// `notify_fifo PATH [USER [GROUP]]` (and `vrrp_notify_fifo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyFifo {
    pub path: String,
    /// `*_fifo_script`: started with the FIFO's path as its last argument.
    pub script: Option<String>,
}

/// `global_defs { ... }`.
#[derive(Clone, Debug)]
pub struct GlobalDefs {
    pub span: Option<Span>,
    /// `router_id`; keepalived defaults it to the host name.
    pub router_id: Option<String>,
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    /// `smtp_server ADDR [PORT]` (port defaults to 25).
    pub smtp_server: Option<(IpAddr, u16)>,
    pub smtp_helo_name: Option<String>,
    /// `smtp_connect_timeout`, keepalived default 30 s.
    pub smtp_connect_timeout: Duration,
    pub smtp_alert: Option<bool>,
    pub script_user: Option<String>,
    pub enable_script_security: bool,
    /// `vrrp_version` default for all instances (keepalived default 2).
    pub vrrp_version: u8,
    pub default_interface: Option<String>,
    pub vrrp_mcast_group4: Option<Ipv4Addr>,
    /// `vrrp_mcast_group6` (default ff02::12).
    pub vrrp_mcast_group6: Option<Ipv6Addr>,
    /// `vrrp_garp_interval`: pause between gratuitous ARPs (default none).
    pub vrrp_garp_interval: Duration,
    /// `vrrp_gna_interval`: pause between unsolicited neighbour
    /// advertisements (default none).
    pub vrrp_gna_interval: Duration,
    /// `vrrp_garp_master_delay` (default 5 s).
    pub vrrp_garp_master_delay: Duration,
    /// `vrrp_garp_master_repeat` (default 5).
    pub vrrp_garp_master_repeat: u32,
    /// `vrrp_garp_master_refresh` (default: none).
    pub vrrp_garp_master_refresh: Option<Duration>,
    pub vrrp_strict: bool,
    pub dynamic_interfaces: bool,
    pub lvs_flush: bool,
    /// `vrrp_startup_delay`: VRRP waits this long after start (e.g. for
    /// the network to settle after boot).
    pub vrrp_startup_delay: Duration,
    /// `notify_fifo` (all events) and `vrrp_notify_fifo` (VRRP only).
    pub notify_fifo: Option<NotifyFifo>,
    pub vrrp_notify_fifo: Option<NotifyFifo>,
    /// keepalived 2.x's global `lvs_sync_daemon IF [INSTANCE] [id N]
    /// [maxlen N] [port N] [ttl N] [group ADDR]`.
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    /// `lvs_timeouts [tcp N] [tcpfin N] [udp N]`: IPVS's idle timeouts for
    /// ESTABLISHED, FIN_WAIT and UDP, seconds (`ipvsadm --set`).
    pub lvs_timeouts: LvsTimeouts,
}

/// `lvs_timeouts`; `None` keeps IPVS's default (900, 120, 300).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LvsTimeouts {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

/// The connection-sync daemon's settings (global `lvs_sync_daemon`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvsSyncDaemon {
    pub span: Span,
    pub interface: String,
    /// The vrrp_instance whose virtual_router_id is the default syncid.
    pub instance: Option<String>,
    pub syncid: Option<u8>,
    /// Accepted for keepalived's sake: lvs-xdp's datagrams always fit the
    /// MTU (kernel IPVS uses it to size its own).
    pub maxlen: Option<u16>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
    pub group: Option<Ipv4Addr>,
}

/// `vrrp_script NAME { ... }`.
#[derive(Clone, Debug)]
pub struct VrrpScript {
    pub span: Span,
    pub name: String,
    pub script: String,
    /// Default 1 s.
    pub interval: Duration,
    /// Default: `interval`.
    pub timeout: Option<Duration>,
    /// -253..=253, default 0.
    pub weight: i32,
    pub weight_reverse: bool,
    pub rise: u32,
    pub fall: u32,
    pub user: Option<String>,
    pub init_fail: bool,
}

/// `vrrp_sync_group NAME { group { ... } ... }`.
#[derive(Clone, Debug)]
pub struct VrrpSyncGroup {
    pub span: Span,
    pub name: String,
    pub group: Vec<String>,
    pub notify: Notify,
    pub track_interface: Vec<TrackInterface>,
    pub track_script: Vec<TrackScript>,
    /// `track_process` entries (`NAME [weight W [reverse]]`, as scripts).
    pub track_process: Vec<TrackScript>,
    /// `track_file` entries (`NAME [weight W [reverse]]`, as scripts).
    pub track_file: Vec<TrackScript>,
    pub smtp_alert: bool,
    pub global_tracking: bool,
}

/// Notification scripts of an instance or sync group.
#[derive(Clone, Debug, Default)]
pub struct Notify {
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
    pub any: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VrrpState {
    Master,
    Backup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    Pass,
    Ah,
}

/// `authentication { auth_type ..; auth_pass .. }`.
#[derive(Clone, Debug)]
pub struct Auth {
    pub span: Span,
    pub ty: AuthType,
    /// At most 8 bytes (keepalived truncates longer passwords).
    pub pass: String,
}

/// One line of `virtual_ipaddress`.
#[derive(Clone, Debug)]
pub struct VipEntry {
    pub span: Span,
    pub addr: IpAddr,
    /// Default 32 (IPv4) / 128 (IPv6).
    pub prefix_len: u8,
    pub brd: Option<Ipv4Addr>,
    /// Where the `brd` address is written.
    pub brd_span: Option<Span>,
    pub dev: Option<String>,
    pub scope: Option<String>,
    pub label: Option<String>,
    pub no_track: bool,
    /// `-nodad`: an IPv6 VIP goes through duplicate address detection
    /// (keepalived adds IPv6 VIPs with `nodad` unless told so).
    pub dad: bool,
}

/// `track_interface` entry: `IFNAME [weight W]`.
#[derive(Clone, Debug)]
pub struct TrackInterface {
    pub span: Span,
    pub name: String,
    pub weight: Option<i32>,
    /// `weight W reverse`: the adjustment goes the other way.
    pub reverse: bool,
}

/// `track_script` entry: `NAME [weight W [reverse]]`.
#[derive(Clone, Debug)]
pub struct TrackScript {
    pub span: Span,
    pub name: String,
    pub weight: Option<i32>,
    /// `weight W reverse`: the adjustment goes the other way.
    pub reverse: bool,
}

/// `vrrp_instance NAME { ... }`.
#[derive(Clone, Debug)]
pub struct VrrpInstance {
    pub span: Span,
    pub name: String,
    pub state: Option<VrrpState>,
    pub interface: String,
    pub virtual_router_id: u8,
    /// 1..=255, default 100.
    pub priority: u8,
    /// Default 1 s; VRRPv3 allows centiseconds.
    pub advert_int: Duration,
    /// `version` (2 or 3); `None` = the global `vrrp_version`.
    pub version: Option<u8>,
    /// `nopreempt` clears it; default true.
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub authentication: Option<Auth>,
    pub virtual_ipaddress: Vec<VipEntry>,
    pub virtual_ipaddress_excluded: Vec<VipEntry>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peer: Vec<IpAddr>,
    pub mcast_src_ip: Option<IpAddr>,
    pub track_interface: Vec<TrackInterface>,
    pub track_script: Vec<TrackScript>,
    /// `track_process` entries (`NAME [weight W [reverse]]`, as scripts).
    pub track_process: Vec<TrackScript>,
    /// `track_file` entries (`NAME [weight W [reverse]]`, as scripts).
    pub track_file: Vec<TrackScript>,
    pub dont_track_primary: bool,
    pub notify: Notify,
    pub smtp_alert: bool,
    pub lvs_sync_daemon_interface: Option<String>,
    /// `garp_master_delay`, default: the global one (5 s).
    pub garp_master_delay: Duration,
    pub garp_master_repeat: u32,
    pub garp_master_refresh: Option<Duration>,
    pub garp_master_refresh_repeat: u32,
    pub use_vmac: Option<String>,
    pub accept: Option<bool>,
    /// `native_ipv6`: the instance runs over IPv6 even without IPv6
    /// addresses (keepalived: it also means VRRPv3).
    pub native_ipv6: bool,
    /// The instance's address family is IPv6 (adverts to ff02::12 from the
    /// link-local address). keepalived decides it from the first of
    /// `virtual_ipaddress`, `unicast_peer`, `unicast_src_ip`/`mcast_src_ip`
    /// or `native_ipv6` in the file; addresses of the other family in
    /// those places are dropped with an error.
    pub ipv6: bool,
}

/// Transport protocol of a virtual server: the one protocol type of lvs-xdp
/// (config, checkers, data path, listings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// keepalived's name in logs and config (`tcp`, `udp`, `sctp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    /// As ipvsadm prints it (`TCP`, `UDP`, `SCTP`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// The IP protocol number (as in the data path's map keys).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn from_number(n: u8) -> Option<Protocol> {
        [Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
            .into_iter()
            .find(|p| p.number() == n)
    }
}

/// IPVS forwarding method (`lb_kind` / `lvs_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbKind {
    Dr,
    Nat,
    Tun,
}

/// What a virtual server listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VsAddr {
    Ip(IpAddr, u16),
    Fwmark(u32),
    Group(String),
}

impl std::fmt::Display for VsAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VsAddr::Ip(IpAddr::V6(a), p) => write!(f, "[{a}]:{p}"),
            VsAddr::Ip(a, p) => write!(f, "{a}:{p}"),
            VsAddr::Fwmark(m) => write!(f, "fwmark {m}"),
            VsAddr::Group(g) => write!(f, "group {g}"),
        }
    }
}

/// `persistence_granularity`: an IPv4 netmask or an IPv6 prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    V4Mask(Ipv4Addr),
    V6Prefix(u8),
}

/// A `sorry_server ADDR PORT`.
#[derive(Clone, Debug)]
pub struct SorryServer {
    pub span: Span,
    pub addr: IpAddr,
    pub port: u16,
    pub inhibit: bool,
    pub lb_kind: Option<LbKind>,
}

/// `virtual_server ... { ... }`.
#[derive(Clone, Debug)]
pub struct VirtualServer {
    pub span: Span,
    pub addr: VsAddr,
    /// Where the address (or `fwmark` / `group`) is written.
    pub addr_span: Span,
    pub protocol: Protocol,
    /// Scheduler name; keepalived's default is `wlc`.
    pub lb_algo: String,
    /// Scheduler flags (`ops`, `sh-port`, ...).
    pub lb_flags: Vec<String>,
    /// keepalived's default is NAT.
    pub lb_kind: LbKind,
    /// Where `lb_kind` / `lvs_method` was written, if it was.
    pub lb_kind_span: Option<Span>,
    /// Default 60 s.
    pub delay_loop: Duration,
    /// Seconds; a bare `persistence_timeout` is 360 s.
    pub persistence_timeout: Option<u32>,
    pub persistence_granularity: Option<Granularity>,
    pub persistence_engine: Option<String>,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    pub sorry_server: Option<SorryServer>,
    pub inhibit_on_failure: bool,
    pub alpha: bool,
    pub omega: bool,
    pub ha_suspend: bool,
    pub virtualhost: Option<String>,
    pub smtp_alert: Option<bool>,
    /// Default real-server weight (`weight` in the virtual server, default 1).
    pub weight: u32,
    pub real_servers: Vec<RealServer>,
}

/// `real_server ADDR [PORT] { ... }`.
#[derive(Clone, Debug)]
pub struct RealServer {
    pub span: Span,
    pub addr: IpAddr,
    /// The virtual server's port when not given.
    pub port: u16,
    /// 0..=2147483647 (keepalived's IPVS_WEIGHT_LIMIT), default: the virtual
    /// server's `weight` (1).
    pub weight: u32,
    /// Its own `lvs_method`, else the virtual server's.
    pub lb_kind: LbKind,
    /// Where `lvs_method` / `lb_kind` was written (the real server's own, else
    /// the virtual server's), if it was.
    pub lb_kind_span: Option<Span>,
    pub inhibit_on_failure: bool,
    pub alpha: bool,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    pub uthreshold: Option<u32>,
    pub lthreshold: Option<u32>,
    pub virtualhost: Option<String>,
    pub checkers: Vec<Checker>,
}

/// Connection options shared by the connecting checkers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnOpts {
    /// Default: the real server's address.
    pub connect_ip: Option<IpAddr>,
    /// Default: the real server's port.
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
    /// Resolved; default 5 s (keepalived check_data.c `alloc_vs`).
    pub connect_timeout: Duration,
}

/// Options every checker has, resolved (checker ← real server ← virtual
/// server ← checker-type default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckCommon {
    pub span: Span,
    /// `None` for MISC_CHECK, FILE_CHECK and BFD_CHECK.
    pub conn: Option<ConnOpts>,
    pub policy: CheckPolicy,
}

/// How a checker runs and how its results count: what the agent's checker
/// needs, without where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckPolicy {
    /// Failed attempts before the server is declared down. Defaults (keepalived
    /// check_api.c `queue_checker`): 1; HTTP_GET/SSL_GET 1; DNS_CHECK 3;
    /// MISC_CHECK 0.
    pub retry: u32,
    /// Defaults: 1 s; HTTP_GET/SSL_GET 3 s; DNS_CHECK `delay_loop`.
    pub delay_before_retry: Duration,
    pub delay_loop: Duration,
    /// Default: `delay_loop`.
    pub warmup: Duration,
    pub alpha: bool,
    pub log_all_failures: bool,
}

/// A `url { ... }` of HTTP_GET / SSL_GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub span: Span,
    pub path: String,
    pub digest: Option<String>,
    /// Inclusive ranges; empty = keepalived's default 200-299.
    pub status_code: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
    pub regex: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpCheck {
    pub common: CheckCommon,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCheck {
    pub common: CheckCommon,
    pub urls: Vec<Url>,
    pub virtualhost: Option<String>,
    pub http_protocol: Option<String>,
    pub enable_sni: bool,
    pub sni_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiscCheck {
    pub common: CheckCommon,
    pub path: String,
    /// Default: `delay_loop`.
    pub timeout: Option<Duration>,
    pub dynamic: bool,
    pub user: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpCheck {
    pub common: CheckCommon,
    pub helo_name: Option<String>,
    pub hosts: Vec<ConnOpts>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpCheck {
    pub common: CheckCommon,
    pub payload: Option<String>,
    pub require_reply: Option<String>,
    pub min_reply_length: Option<u32>,
    pub max_reply_length: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsCheck {
    pub common: CheckCommon,
    pub query_type: Option<String>,
    pub name: Option<String>,
}

/// `FILE_CHECK { track_file NAME; weight W [reverse] }`: the real server's
/// weight follows the file's value × weight; with weight 0 a non-zero value
/// is a failure (keepalived check_file.c).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCheck {
    pub span: Span,
    /// The name of a `track_file` block.
    pub track_file: String,
    /// -2147483647..=2147483647; `None`: the track_file's weight.
    pub weight: Option<i32>,
    pub weight_reverse: bool,
}

/// A hex string of UDP_CHECK `payload` / `require_reply` (keepalived's
/// `read_hex_str`: hex digits, spaces between octets, `x` for a wildcard
/// nibble where allowed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HexPattern {
    pub bytes: Vec<u8>,
    /// Bits set where the nibble is a wildcard (all zero without `x`).
    pub mask: Vec<u8>,
}

impl HexPattern {
    /// `None` when the string is empty or not hex.
    pub fn parse(s: &str, wildcard: bool) -> Option<HexPattern> {
        fn nib(c: u8, wildcard: bool) -> Option<(u8, u8)> {
            match c {
                b'0'..=b'9' => Some((c - b'0', 0)),
                b'a'..=b'f' => Some((c - b'a' + 10, 0)),
                b'A'..=b'F' => Some((c - b'A' + 10, 0)),
                b'x' | b'X' if wildcard => Some((0, 0x0f)),
                _ => None,
            }
        }
        let b = s.as_bytes();
        let (mut bytes, mut mask) = (Vec::new(), Vec::new());
        let mut i = 0;
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            let (mut v, mut m) = nib(b[i], wildcard)?;
            i += 1;
            if i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                let (v2, m2) = nib(b[i], wildcard)?;
                i += 1;
                v = v << 4 | v2;
                m = m << 4 | m2;
            }
            bytes.push(v);
            mask.push(m);
        }
        (!bytes.is_empty()).then_some(HexPattern { bytes, mask })
    }
}

/// A health checker of a real server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checker {
    Tcp(TcpCheck),
    Http(HttpCheck),
    Ssl(HttpCheck),
    Misc(MiscCheck),
    Smtp(SmtpCheck),
    Udp(UdpCheck),
    Dns(DnsCheck),
    Ping(TcpCheck),
    File(FileCheck),
    /// BFD_CHECK: recognised, not modelled.
    Other {
        kind: String,
        span: Span,
    },
}

impl Checker {
    /// The keepalived keyword of this checker.
    pub fn kind(&self) -> &str {
        match self {
            Checker::Tcp(_) => "TCP_CHECK",
            Checker::Http(_) => "HTTP_GET",
            Checker::Ssl(_) => "SSL_GET",
            Checker::Misc(_) => "MISC_CHECK",
            Checker::Smtp(_) => "SMTP_CHECK",
            Checker::Udp(_) => "UDP_CHECK",
            Checker::Dns(_) => "DNS_CHECK",
            Checker::Ping(_) => "PING_CHECK",
            Checker::File(_) => "FILE_CHECK",
            Checker::Other { kind, .. } => kind,
        }
    }

    pub fn common(&self) -> Option<&CheckCommon> {
        match self {
            Checker::Tcp(c) | Checker::Ping(c) => Some(&c.common),
            Checker::Http(c) | Checker::Ssl(c) => Some(&c.common),
            Checker::Misc(c) => Some(&c.common),
            Checker::Smtp(c) => Some(&c.common),
            Checker::Udp(c) => Some(&c.common),
            Checker::Dns(c) => Some(&c.common),
            Checker::File(_) | Checker::Other { .. } => None,
        }
    }
}

/// One entry of a `virtual_server_group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VsgEntry {
    /// `ADDR[-LAST] PORT`: addresses `first..=last` (last = first when no range).
    Range {
        span: Span,
        first: IpAddr,
        last: IpAddr,
        port: u16,
    },
    Fwmark {
        span: Span,
        mark: u32,
    },
}

/// `virtual_server_group NAME { ... }`.
#[derive(Clone, Debug)]
pub struct VirtualServerGroup {
    pub span: Span,
    pub name: String,
    pub entries: Vec<VsgEntry>,
}

/// `bgp_announce { ... }`: lvs-xdp's own block (keepalived has none). lvsd
/// announces each virtual server's address over BGP through a routing
/// daemon it runs beside itself, while this director can serve it.
#[derive(Clone, Debug, PartialEq)]
pub struct BgpAnnounce {
    pub span: Span,
    /// `daemon bird` (the only one so far).
    pub daemon: AnnounceDaemon,
    /// `daemon_path`: the BIRD binary (default `bird`, from PATH).
    pub daemon_path: String,
    /// `control_path`: the client (default `birdc`).
    pub control_path: String,
    /// `socket`: BIRD's control socket; default under lvsd's run directory.
    pub socket: Option<String>,
    /// `config_file`: where lvsd writes BIRD's configuration; default under
    /// lvsd's run directory.
    pub config_file: Option<String>,
    /// `router_id`: BGP identifier (default: BIRD picks an address).
    pub router_id: Option<Ipv4Addr>,
    /// `local_as`: this director's AS.
    pub local_as: u32,
    /// `neighbor ADDR as AS`, one line per peer.
    pub neighbors: Vec<BgpNeighbor>,
    /// `bfd on|off`: BFD with every neighbor (default on).
    pub bfd: bool,
    /// `bfd_interval` (default 0.1 s) and `bfd_multiplier` (default 3):
    /// detection time = interval × multiplier.
    pub bfd_interval: Duration,
    pub bfd_multiplier: u32,
    /// `hold_time` (s, default 3, BGP's minimum).
    pub hold_time: u32,
    /// `withdraw_delay`: on a graceful stop, keep forwarding this long after
    /// withdrawing (default 2 s) so the router moves flows first.
    pub withdraw_delay: Duration,
}

/// The routing daemon lvsd drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnounceDaemon {
    Bird,
}

/// One BGP peer of `bgp_announce`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgpNeighbor {
    pub span: Span,
    pub addr: Ipv4Addr,
    pub remote_as: u32,
}
