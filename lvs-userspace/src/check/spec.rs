//! From the config to what each checker does, without the config's spans:
//! two specs are equal when the checker would behave the same, so a reload
//! that only moves lines keeps the running checkers (keepalived's
//! `clear_diff_services` / `migrate_checkers`).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use lvs_config::{CheckCommon, Checker, Config, ConnOpts, HttpCheck, VsAddr};
use tracing::warn;

use super::{fmt_rs, Protocol, RsKey};

/// Options shared by every checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Common {
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub delay_loop: Duration,
    pub warmup: Duration,
    pub alpha: bool,
    pub log_all_failures: bool,
}

impl From<&CheckCommon> for Common {
    fn from(c: &CheckCommon) -> Self {
        Common {
            retry: c.retry,
            delay_before_retry: c.delay_before_retry,
            delay_loop: c.delay_loop,
            warmup: c.warmup,
            alpha: c.alpha,
            log_all_failures: c.log_all_failures,
        }
    }
}

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    Http(HttpSpec),
    Misc(MiscSpec),
}

/// One checker of one real server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckerSpec {
    pub common: Common,
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
}

impl CheckerSpec {
    /// The keepalived keyword.
    pub fn keyword(&self) -> &'static str {
        match &self.kind {
            Kind::Tcp => "TCP_CHECK",
            Kind::Http(h) if h.tls => "SSL_GET",
            Kind::Http(_) => "HTTP_GET",
            Kind::Misc(_) => "MISC_CHECK",
        }
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
        let VsAddr::Ip(vs_addr, vs_port) = vs.addr else {
            warn_once(format!(
                "health checks of virtual server {} are not supported (fwmark / group): its real servers are not checked",
                vs.addr
            ));
            continue;
        };
        for rs in &vs.real_servers {
            let key = RsKey {
                vs_addr,
                vs_port,
                proto: vs.protocol,
                rs_addr: rs.addr,
                rs_port: rs.port,
            };
            let mut list = Vec::new();
            for c in &rs.checkers {
                let Some(common) = c.common() else {
                    warn_once(format!(
                        "{} is not supported: real servers it checks count as up",
                        c.kind()
                    ));
                    continue;
                };
                let conn = common.conn.as_ref().map(|o| Conn::new(o, rs.addr, rs.port));
                let kind = match c {
                    Checker::Tcp(_) => Kind::Tcp,
                    Checker::Http(h) | Checker::Ssl(h) => {
                        Kind::Http(http_spec(h, matches!(c, Checker::Ssl(_)), rs, vs))
                    }
                    Checker::Misc(m) => Kind::Misc(MiscSpec {
                        path: m.path.clone(),
                        timeout: m.timeout.unwrap_or(common.delay_loop),
                        dynamic: m.dynamic,
                        user: m.user.clone().or_else(|| cfg.global.script_user.clone()),
                    }),
                    other => {
                        warn_once(format!(
                            "{} is not supported: real servers it checks count as up",
                            other.kind()
                        ));
                        continue;
                    }
                };
                if !matches!(kind, Kind::Misc(_)) && conn.is_none() {
                    continue;
                }
                list.push(CheckerSpec {
                    common: common.into(),
                    conn,
                    kind,
                });
            }
            if !list.is_empty() {
                out.insert(
                    key,
                    RsSpec {
                        weight: rs.weight,
                        ha_suspend: vs.ha_suspend,
                        checkers: list,
                    },
                );
            }
        }
    }
    out
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
