//! From the config to what each checker does, without the config's spans:
//! two specs are equal when the checker would behave the same, so a reload
//! that only moves lines keeps the running checkers (keepalived's
//! `clear_diff_services` / `migrate_checkers`).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use lvs_config::{CheckPolicy, Checker, Config, ConnOpts, HexPattern, HttpCheck, VsAddr};
use tracing::warn;

use super::{fmt_rs, Protocol, RsKey};

/// Where and how a connecting checker connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conn {
    pub target: SocketAddr,
    pub bind: Option<SocketAddr>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
    pub connect_timeout: Duration,
}

impl Conn {
    fn new(o: &ConnOpts, rs_addr: IpAddr, rs_port: u16) -> Conn {
        Conn {
            target: SocketAddr::new(
                o.connect_ip.unwrap_or(rs_addr),
                o.connect_port.unwrap_or(rs_port),
            ),
            bind: o
                .bindto
                .map(|b| SocketAddr::new(b, o.bind_port.unwrap_or(0))),
            bind_if: o.bind_if.clone(),
            fwmark: o.fwmark,
            connect_timeout: o.connect_timeout,
        }
    }

    /// keepalived's checker name, `[ip]:tcp:port` of what it connects to.
    pub fn name(&self) -> String {
        fmt_rs(self.target.ip(), Protocol::Tcp, self.target.port())
    }
}

/// One `url { }` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlSpec {
    pub path: String,
    /// Lower-case hex.
    pub digest: Option<String>,
    /// Inclusive ranges; never empty (default 200-299).
    pub status: Vec<(u16, u16)>,
    /// The `Host:` header: the first of url, checker, real server, virtual
    /// server `virtualhost` (keepalived's `http_request`).
    pub virtualhost: Option<String>,
    /// keepalived's `regex`: the body must match (searched in its first MiB).
    pub regex: Option<Pattern>,
    /// The TLS server name when SNI is on (keepalived's order: `sni_name`,
    /// url, checker, virtual server `virtualhost`).
    pub sni: Option<String>,
}

/// A compiled `regex`, compared by its source.
#[derive(Clone, Debug)]
pub struct Pattern(pub regex::bytes::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

/// HTTP_GET / SSL_GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSpec {
    pub tls: bool,
    pub urls: Vec<UrlSpec>,
    /// `http_protocol`: `1.0` (default), `1.0C`, `1.1`.
    pub protocol: HttpProtocol,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpProtocol {
    Http10,
    Http10Close,
    Http11,
}

impl HttpProtocol {
    pub fn parse(s: Option<&str>) -> HttpProtocol {
        match s.map(|s| s.to_ascii_lowercase()) {
            Some(s) if s == "1.1" => HttpProtocol::Http11,
            Some(s) if s == "1.0c" => HttpProtocol::Http10Close,
            _ => HttpProtocol::Http10,
        }
    }
}

/// MISC_CHECK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiscSpec {
    pub path: String,
    pub timeout: Duration,
    pub dynamic: bool,
    /// `user NAME [GROUP]`, else the global `script_user`.
    pub user: Option<String>,
}

/// UDP_CHECK (keepalived check_udp.c).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpSpec {
    /// Sent in one datagram; default 32 zero octets (layer4.c `UDP_BUFSIZE`).
    pub payload: Vec<u8>,
    /// `require_reply`: a reply must arrive within `connect_timeout`
    /// (without it, silence is success and only an ICMP error fails).
    pub require_reply: bool,
    /// The reply's first octets must match (mask bits are wildcards).
    pub reply: Option<HexPattern>,
    /// Default 0 and 255.
    pub min_reply_len: usize,
    pub max_reply_len: usize,
}

/// DNS_CHECK (keepalived check_dns.c).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSpec {
    /// keepalived's type names; default SOA.
    pub qtype: String,
    /// Default `.` (the root).
    pub name: String,
}

/// SMTP_CHECK (keepalived check_smtp.c).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpSpec {
    /// Default `smtpchecker.keepalived.org`.
    pub helo_name: String,
}

/// FILE_CHECK with its `track_file` (keepalived check_file.c, track_file.c).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    pub name: String,
    pub path: String,
    /// FILE_CHECK's `weight`, else the track_file's.
    pub weight: i32,
    pub reverse: bool,
    pub init_file: Option<(i64, bool)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    Http(HttpSpec),
    Misc(MiscSpec),
    Ping,
    Udp(UdpSpec),
    Dns(DnsSpec),
    Smtp(SmtpSpec),
    File(FileSpec),
}

/// One checker of one real server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckerSpec {
    pub common: CheckPolicy,
    /// `None` for MISC_CHECK.
    pub conn: Option<Conn>,
    pub kind: Kind,
}

/// A checked real server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsSpec {
    /// The configured weight (MISC_CHECK misc_dynamic exit 0 goes back to it).
    pub weight: u32,
    /// The virtual server's `ha_suspend`.
    pub ha_suspend: bool,
    pub checkers: Vec<CheckerSpec>,
    /// `notify_up` / `notify_down` of the real server.
    pub notify: Notify,
}

/// Scripts run when a real server changes state, and the virtual server's
/// `omega` (run `notify_down` for the servers still up when lvsd stops).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub up: Option<String>,
    pub down: Option<String>,
    pub omega: bool,
    /// The global `script_user`.
    pub user: Option<String>,
}

impl CheckerSpec {
    /// The keepalived keyword.
    pub fn keyword(&self) -> &'static str {
        match &self.kind {
            Kind::Tcp => "TCP_CHECK",
            Kind::Http(h) if h.tls => "SSL_GET",
            Kind::Http(_) => "HTTP_GET",
            Kind::Misc(_) => "MISC_CHECK",
            Kind::Ping => "PING_CHECK",
            Kind::Udp(_) => "UDP_CHECK",
            Kind::Dns(_) => "DNS_CHECK",
            Kind::Smtp(_) => "SMTP_CHECK",
            Kind::File(_) => "FILE_CHECK",
        }
    }

    /// Whether the probe needs connection options.
    fn needs_conn(&self) -> bool {
        !matches!(self.kind, Kind::Misc(_) | Kind::File(_))
    }
}

/// A FILE_CHECK's checker options: it has none of its own (keepalived knows
/// its state at once, so no alpha, no retries).
fn file_common() -> CheckPolicy {
    CheckPolicy {
        retry: 0,
        delay_before_retry: Duration::ZERO,
        delay_loop: Duration::from_secs(1),
        warmup: Duration::ZERO,
        alpha: false,
        log_all_failures: false,
    }
}

/// Every checked real server of the config and its checkers, in config order.
pub fn specs(cfg: &Config) -> BTreeMap<RsKey, RsSpec> {
    let mut out = BTreeMap::new();
    let mut warned = BTreeSet::new();
    let mut warn_once = |what: String| {
        if warned.insert(what.clone()) {
            warn!("{what}");
        }
    };
    for vs in &cfg.virtual_servers {
        // A group's real servers are checked once, under the group's first
        // service (keepalived), and the verdict applies to all of them.
        let (vs_addr, vs_port) = match &vs.addr {
            VsAddr::Ip(a, p) => (*a, *p),
            VsAddr::Group(name) => match group_first(cfg, name) {
                Some(x) => x,
                None => continue,
            },
            VsAddr::Fwmark(_) => continue, // refused: not served, not checked
        };
        for rs in &vs.real_servers {
            // A group's real server without a port: the first service's.
            let rs_port = if rs.port == 0 { vs_port } else { rs.port };
            let key = RsKey {
                vs_addr,
                vs_port,
                proto: vs.protocol,
                rs_addr: rs.addr,
                rs_port,
            };
            let mut list = Vec::new();
            for c in &rs.checkers {
                if let Checker::File(f) = c {
                    let Some(t) = cfg.track_file(&f.track_file) else {
                        continue; // refused by the parser
                    };
                    let (weight, reverse) = t.weight_for(f.weight, f.weight_reverse);
                    list.push(CheckerSpec {
                        common: file_common(),
                        conn: None,
                        kind: Kind::File(FileSpec {
                            name: t.name.clone(),
                            path: t.file.clone(),
                            weight,
                            reverse,
                            init_file: t.init_file,
                        }),
                    });
                    continue;
                }
                let Some(common) = c.common() else {
                    warn_once(format!(
                        "{} is not supported: real servers it checks count as up",
                        c.kind()
                    ));
                    continue;
                };
                let conn = common.conn.as_ref().map(|o| Conn::new(o, rs.addr, rs_port));
                let kind = match c {
                    Checker::Tcp(_) => Kind::Tcp,
                    Checker::Ping(_) => Kind::Ping,
                    Checker::Http(h) | Checker::Ssl(h) => {
                        Kind::Http(http_spec(h, matches!(c, Checker::Ssl(_)), rs, vs))
                    }
                    Checker::Misc(m) => Kind::Misc(MiscSpec {
                        path: m.path.clone(),
                        timeout: m.timeout.unwrap_or(common.policy.delay_loop),
                        dynamic: m.dynamic,
                        user: m.user.clone().or_else(|| cfg.global.script_user.clone()),
                    }),
                    Checker::Udp(u) => Kind::Udp(udp_spec(u)),
                    Checker::Dns(d) => Kind::Dns(DnsSpec {
                        qtype: d.query_type.clone().unwrap_or_else(|| "SOA".into()),
                        name: d.name.clone().unwrap_or_else(|| ".".into()),
                    }),
                    Checker::Smtp(m) => {
                        let smtp = SmtpSpec {
                            helo_name: m
                                .helo_name
                                .clone()
                                .unwrap_or_else(|| "smtpchecker.keepalived.org".into()),
                        };
                        // keepalived: the checker's own connection options
                        // when any is set (or there is no `host`), else the
                        // first host's; every further host is a checker of
                        // its own.
                        let own_set = common.conn.as_ref().is_some_and(|o| {
                            o.connect_ip.is_some()
                                || o.connect_port.is_some()
                                || o.bindto.is_some()
                                || o.bind_port.is_some()
                                || o.bind_if.is_some()
                                || o.fwmark.is_some()
                        });
                        let mut hosts: Vec<Conn> = m
                            .hosts
                            .iter()
                            .map(|h| Conn::new(h, rs.addr, rs_port))
                            .collect();
                        let first = if own_set || hosts.is_empty() {
                            conn.clone()
                        } else {
                            Some(hosts.remove(0))
                        };
                        for h in hosts {
                            list.push(CheckerSpec {
                                common: common.policy.clone(),
                                conn: Some(h),
                                kind: Kind::Smtp(smtp.clone()),
                            });
                        }
                        list.push(CheckerSpec {
                            common: common.policy.clone(),
                            conn: first,
                            kind: Kind::Smtp(smtp),
                        });
                        continue;
                    }
                    other => {
                        warn_once(format!(
                            "{} is not supported: real servers it checks count as up",
                            other.kind()
                        ));
                        continue;
                    }
                };
                let spec = CheckerSpec {
                    common: common.policy.clone(),
                    conn,
                    kind,
                };
                if spec.needs_conn() && spec.conn.is_none() {
                    continue;
                }
                list.push(spec);
            }
            if !list.is_empty() {
                out.insert(
                    key,
                    RsSpec {
                        weight: rs.weight,
                        ha_suspend: vs.ha_suspend,
                        checkers: list,
                        notify: Notify {
                            up: rs.notify_up.clone(),
                            down: rs.notify_down.clone(),
                            omega: vs.omega,
                            user: cfg.global.script_user.clone(),
                        },
                    },
                );
            }
        }
    }
    out
}

/// The first service of a `virtual_server_group` (its first IPv4 address
/// entry, else its first entry): the one its checkers report under.
fn group_first(cfg: &Config, name: &str) -> Option<(IpAddr, u16)> {
    let ranges: Vec<(IpAddr, u16)> = cfg
        .virtual_server_group(name)?
        .entries
        .iter()
        .filter_map(|e| match e {
            lvs_config::VsgEntry::Range { first, port, .. } => Some((*first, *port)),
            lvs_config::VsgEntry::Fwmark { .. } => None,
        })
        .collect();
    ranges
        .iter()
        .find(|(a, _)| a.is_ipv4())
        .or(ranges.first())
        .copied()
}

fn udp_spec(u: &lvs_config::UdpCheck) -> UdpSpec {
    let payload = u
        .payload
        .as_deref()
        .and_then(|p| HexPattern::parse(p, false))
        .map(|p| p.bytes)
        .unwrap_or_else(|| vec![0; 32]);
    UdpSpec {
        payload,
        require_reply: u.require_reply.is_some(),
        reply: u
            .require_reply
            .as_deref()
            .and_then(|r| HexPattern::parse(r, true)),
        min_reply_len: u.min_reply_length.unwrap_or(0) as usize,
        max_reply_len: u.max_reply_length.unwrap_or(255) as usize,
    }
}

fn http_spec(
    h: &HttpCheck,
    tls: bool,
    rs: &lvs_config::RealServer,
    vs: &lvs_config::VirtualServer,
) -> HttpSpec {
    let mut urls: Vec<UrlSpec> = h
        .urls
        .iter()
        .map(|u| {
            let regex = u
                .regex
                .as_ref()
                .and_then(|r| match regex::bytes::Regex::new(r) {
                    Ok(re) => Some(Pattern(re)),
                    Err(e) => {
                        warn!("url {}: invalid regex {r:?} ignored: {e}", u.path);
                        None
                    }
                });
            let virtualhost = u
                .virtualhost
                .clone()
                .or_else(|| h.virtualhost.clone())
                .or_else(|| rs.virtualhost.clone())
                .or_else(|| vs.virtualhost.clone());
            let sni = h.enable_sni.then(|| {
                h.sni_name
                    .clone()
                    .or_else(|| u.virtualhost.clone())
                    .or_else(|| h.virtualhost.clone())
                    .or_else(|| vs.virtualhost.clone())
            });
            UrlSpec {
                path: u.path.clone(),
                digest: u.digest.as_ref().map(|d| d.to_ascii_lowercase()),
                status: if u.status_code.is_empty() {
                    vec![(200, 299)]
                } else {
                    u.status_code.clone()
                },
                virtualhost,
                regex,
                sni: sni.flatten(),
            }
        })
        .collect();
    if urls.is_empty() {
        // keepalived refuses an HTTP_GET without url; we check `/` for 2xx.
        urls.push(UrlSpec {
            path: "/".into(),
            digest: None,
            status: vec![(200, 299)],
            virtualhost: vs.virtualhost.clone(),
            regex: None,
            sni: None,
        });
    }
    HttpSpec {
        tls,
        urls,
        protocol: HttpProtocol::parse(h.http_protocol.as_deref()),
    }
}
