//! `virtual_server` and `real_server` (keepalived's check_parser.c); the
//! blocks they hold or name each have a module, as keepalived splits them:
//! `checkers` (check_api.c, check_*.c), `vsg` (`virtual_server_group`),
//! `track_file` (track_file.c).
//!
//! Defaults, from keepalived (acassen/keepalived 9cbce3e):
//! - `lb_kind`/`lvs_method`: NAT when unset (check_data.c `validate_check_config`:
//!   "no forwarding method set, setting default NAT").
//! - `lb_algo`/`lvs_sched`: `wlc` (ipvswrapper.h `IPVS_DEF_SCHED`).
//! - `delay_loop`: 60 s (check_data.h `KEEPALIVED_DEFAULT_DELAY`).
//! - `connect_timeout`: 5 s (check_data.c `alloc_vs`).
//! - bare `persistence_timeout`: 360 s (libipvs.h `IPVS_SVC_PERSISTENT_TIMEOUT`),
//!   maximum 31 days (global_data.h `LVS_MAX_TIMEOUT`).
//! - `retry`: 1 (check_api.c `queue_checker`), 3 for DNS_CHECK
//!   (check_dns.h `DNS_DEFAULT_RETRY`), 0 for MISC_CHECK (check_misc.c).
//! - `delay_before_retry`: 1 s, 3 s for HTTP_GET/SSL_GET (check_http.c),
//!   `delay_loop` for DNS_CHECK.
//! - `warmup`: `delay_loop`.
//! - real-server `weight`: the virtual server's `weight` (default 1), range
//!   0..=2147483647 (ip_vs.h `IPVS_WEIGHT_LIMIT` = INT32_MAX).
//!
//! Checker settings inherit checker ← real server ← virtual server ← default.
//! `nb_get_retry` is keepalived's deprecated name of `retry`; keepalived
//! 2.2.7 accepts it only in HTTP_GET/SSL_GET, we accept it in every checker
//! (old configs, like the seed, use it in TCP_CHECK) with a warning at each
//! use saying that keepalived 2.2.7 ignores it there.

use std::net::IpAddr;
use std::time::Duration;

use super::{block, leaf, Kw, Parser};
use crate::diag::Span;
use crate::keywords::{CHECKERS, RS_ALL, VS_ALL};
use crate::model::{
    Config, Granularity, LbKind, Protocol, RealServer, SorryServer, VirtualServer, VsAddr,
};
use crate::tree::Node;

const MAX_SECS: Duration = Duration::from_secs(u32::MAX as u64);
/// IPVS weights are an int: 0..=i32::MAX.
const WEIGHT_MAX: u32 = i32::MAX as u32;
const WEIGHT_MAX_I: i32 = i32::MAX;
const LVS_MAX_TIMEOUT: u32 = 86400 * 31;
const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// IPVS schedulers keepalived accepts (check_parser.c `lvs_schedulers`).
const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

mod checkers;
mod track_file;
mod vsg;

use checkers::{parse_checker, CheckB, Inherited};
pub(super) use track_file::{parse_track_file, resolve_file_checks};
pub(super) use vsg::parse_vsg;

/// lvs-xdp cannot serve firewall-mark services: its XDP program sees a
/// packet before netfilter, so no iptables/nftables rule has marked it
/// yet. Refused (the item is left out) with what to write instead: an
/// error, as for NAT and TUN services (exit 4, keepalived's "errors but
/// would run": the rest of the file runs).
fn refuse_fwmark(p: &mut Parser, span: &Span, what: &str) {
    p.diags
        .error(
            span,
            format!(
            "{what}: fwmark services are not supported: the XDP program runs before netfilter, \
             so no packet carries a mark when lvs-xdp schedules it; left out"
        ),
        )
        .help(
            "list the addresses and ports the mark selects instead: `virtual_server ADDR PORT`, \
             or a `virtual_server_group` with `ADDR[-LAST] PORT` entries",
        );
}

// ------------------------------------------------------------- real_server

struct RsB {
    span: Span,
    addr: IpAddr,
    port: u16,
    weight: Option<u32>,
    lb_kind: Option<(LbKind, Span)>,
    inhibit: Option<bool>,
    alpha: Option<bool>,
    notify_up: Option<String>,
    notify_down: Option<String>,
    uthreshold: Option<u32>,
    lthreshold: Option<u32>,
    virtualhost: Option<String>,
    defaults: CheckerDefaults,
    delay_loop: Option<Duration>,
    checkers: Vec<CheckB>,
}

/// Checker settings a `virtual_server` or a `real_server` sets for the
/// checkers under it (the same keywords at both levels).
#[derive(Clone, Copy, Default)]
struct CheckerDefaults {
    retry: Option<u32>,
    connect_timeout: Option<Duration>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
}

impl CheckerDefaults {
    /// These settings, each falling back to `outer`'s (a real server's
    /// over its virtual server's).
    fn or(&self, outer: &CheckerDefaults) -> CheckerDefaults {
        CheckerDefaults {
            retry: self.retry.or(outer.retry),
            connect_timeout: self.connect_timeout.or(outer.connect_timeout),
            delay_before_retry: self.delay_before_retry.or(outer.delay_before_retry),
            warmup: self.warmup.or(outer.warmup),
        }
    }

    /// `connect_timeout`, or keepalived's default (check_data.c `alloc_vs`).
    fn connect_timeout_or_default(&self) -> Duration {
        self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }
}

/// A block that holds [`CheckerDefaults`].
trait HasCheckerDefaults {
    fn defaults(&mut self) -> &mut CheckerDefaults;
}

impl HasCheckerDefaults for RsB {
    fn defaults(&mut self) -> &mut CheckerDefaults {
        &mut self.defaults
    }
}

impl HasCheckerDefaults for VsB {
    fn defaults(&mut self) -> &mut CheckerDefaults {
        &mut self.defaults
    }
}

/// `retry`, `delay_before_retry`, `warmup` and `connect_timeout` of a
/// `virtual_server` or `real_server` (check_parser.c).
const fn checker_defaults_kw<T: HasCheckerDefaults>() -> [Kw<T>; 4] {
    fn retry<T: HasCheckerDefaults>(p: &mut Parser, t: &mut T, n: &Node) {
        let d = t.defaults();
        d.retry = p.number(n, 1, 1, u32::MAX).or(d.retry);
    }
    fn delay_before_retry<T: HasCheckerDefaults>(p: &mut Parser, t: &mut T, n: &Node) {
        let d = t.defaults();
        d.delay_before_retry = p
            .timer(n, 1, Duration::ZERO, MAX_SECS)
            .or(d.delay_before_retry);
    }
    fn warmup<T: HasCheckerDefaults>(p: &mut Parser, t: &mut T, n: &Node) {
        let d = t.defaults();
        d.warmup = p.timer(n, 1, Duration::ZERO, MAX_SECS).or(d.warmup);
    }
    fn connect_timeout<T: HasCheckerDefaults>(p: &mut Parser, t: &mut T, n: &Node) {
        let d = t.defaults();
        d.connect_timeout = p
            .timer(n, 1, Duration::from_micros(1), MAX_SECS)
            .or(d.connect_timeout);
    }
    [
        leaf("retry", retry::<T>),
        leaf("delay_before_retry", delay_before_retry::<T>),
        leaf("warmup", warmup::<T>),
        leaf("connect_timeout", connect_timeout::<T>),
    ]
}

static RS_DEFAULTS_KW: [Kw<RsB>; 4] = checker_defaults_kw();
static VS_DEFAULTS_KW: [Kw<VsB>; 4] = checker_defaults_kw();

/// `lb_kind` / `lvs_method` value.
fn lb_kind(p: &mut Parser, n: &Node) -> Option<(LbKind, Span)> {
    let w = p.arg(n, 1)?;
    let k = match w.text.as_str() {
        "DR" => LbKind::Dr,
        "NAT" => LbKind::Nat,
        "TUN" => LbKind::Tun,
        other => {
            p.diags
                .fatal(&w.span, format!("unknown forwarding method `{other}`"))
                .help("write `DR` (lvs-xdp supports Direct Routing only)");
            return None;
        }
    };
    if k == LbKind::Tun && n.words.len() > 2 {
        p.warn_once(
            "tun-options",
            n,
            "TUN tunnel options are not supported yet, ignored".into(),
            None,
        );
    } else {
        p.extra(n, 1);
    }
    Some((k, w.span.clone()))
}

/// `real_server|sorry_server ADDR [PORT]`: the address as keepalived reads
/// it, and the port (0 when absent or bad).
fn server_addr(p: &mut Parser, n: &Node) -> Option<(IpAddr, u16)> {
    let w = p.arg(n, 1)?;
    let addr = p.sockaddr_word(n.keyword(), w)?;
    let port = if n.words.len() > 2 {
        p.port(n, 2).unwrap_or(0)
    } else {
        0
    };
    Some((addr, port))
}

/// The `sorry_server` a `sorry_server_*` keyword `n` amends; an error when
/// it comes first.
fn sorry_server<'v>(p: &mut Parser, v: &'v mut VsB, n: &Node) -> Option<&'v mut SorryServer> {
    if v.vs.sorry_server.is_none() {
        p.diags.error(
            n.span(),
            format!(
                "`{}` before or without `sorry_server`; ignored",
                n.keyword()
            ),
        );
    }
    v.vs.sorry_server.as_mut()
}

static RS_KW: &[Kw<RsB>] = &[
    leaf("weight", |p, r, n| {
        r.weight = p.number(n, 1, 0, WEIGHT_MAX).or(r.weight)
    }),
    leaf("lvs_method", |p, r, n| {
        r.lb_kind = lb_kind(p, n).or(r.lb_kind.take())
    }),
    leaf("uthreshold", |p, r, n| {
        r.uthreshold = p.number(n, 1, 0, u32::MAX)
    }),
    leaf("lthreshold", |p, r, n| {
        r.lthreshold = p.number(n, 1, 0, u32::MAX)
    }),
    leaf("inhibit_on_failure", |p, r, n| {
        r.inhibit = p.flag(n).or(r.inhibit)
    }),
    leaf("notify_up", |p, r, n| r.notify_up = p.rest(n, 1)),
    leaf("notify_down", |p, r, n| r.notify_down = p.rest(n, 1)),
    leaf("alpha", |p, r, n| r.alpha = p.flag(n).or(r.alpha)),
    leaf("delay_loop", |p, r, n| {
        r.delay_loop = p
            .timer(n, 1, Duration::from_micros(1), MAX_SECS)
            .or(r.delay_loop)
    }),
    leaf("smtp_alert", |p, _, n| {
        p.flag(n);
    }),
    leaf("virtualhost", |p, r, n| r.virtualhost = p.string(n, 1)),
];

/// `real_server`'s checker blocks: one per name in [`CHECKERS`].
static CHECKER_KW: [Kw<RsB>; CHECKERS.len()] = {
    let mut table = [const { block("", parse_checker) }; CHECKERS.len()];
    let mut i = 0;
    while i < CHECKERS.len() {
        table[i] = block(CHECKERS[i], parse_checker);
        i += 1;
    }
    table
};

// ------------------------------------------------------------ virtual_server

struct VsB {
    vs: VirtualServer,
    lb_algo: Option<String>,
    lb_kind: Option<(LbKind, Span)>,
    protocol_set: bool,
    defaults: CheckerDefaults,
    rss: Vec<RsB>,
}

static VS_KW: &[Kw<VsB>] = &[
    leaf("delay_loop", |p, v, n| {
        if let Some(d) = p.timer(n, 1, Duration::from_micros(1), MAX_SECS) {
            v.vs.delay_loop = d;
        }
    }),
    leaf("lb_algo", |p, v, n| {
        v.lb_algo = sched(p, n).or(v.lb_algo.take())
    }),
    leaf("lvs_sched", |p, v, n| {
        v.lb_algo = sched(p, n).or(v.lb_algo.take())
    }),
    leaf("hashed", lb_flag),
    leaf("ops", lb_flag),
    leaf("flag-1", lb_flag),
    leaf("flag-2", lb_flag),
    leaf("flag-3", lb_flag),
    leaf("sh-port", lb_flag),
    leaf("sh-fallback", lb_flag),
    leaf("mh-port", lb_flag),
    leaf("mh-fallback", lb_flag),
    leaf("lb_kind", |p, v, n| {
        v.lb_kind = lb_kind(p, n).or(v.lb_kind.take())
    }),
    leaf("lvs_method", |p, v, n| {
        v.lb_kind = lb_kind(p, n).or(v.lb_kind.take())
    }),
    leaf("persistence_timeout", |p, v, n| {
        if n.words.len() < 2 {
            // keepalived pto_handler: no value = IPVS_SVC_PERSISTENT_TIMEOUT.
            v.vs.persistence_timeout = Some(360);
        } else if let Some(t) = p.number(n, 1, 1, LVS_MAX_TIMEOUT) {
            v.vs.persistence_timeout = Some(t);
        }
    }),
    leaf("persistence_granularity", |p, v, n| {
        let Some(w) = p.arg(n, 1) else { return };
        let v4 = matches!(v.vs.addr, VsAddr::Ip(IpAddr::V4(_), _));
        if v4 && !w.text.contains('.') {
            // keepalived reads `24` with inet_aton, i.e. as the netmask
            // 0.0.0.24; neither that nor a /32 is what was meant.
            p.diags
                .fatal(
                    &w.span,
                    format!(
                        "persistence_granularity `{}` on an IPv4 virtual_server is not a netmask (keepalived would use 0.0.0.{})",
                        w.text, w.text
                    ),
                )
                .help("write a netmask, e.g. `persistence_granularity 255.255.255.0` for a /24");
            return;
        }
        let g = if w.text.contains('.') {
            p.ipv4_word("persistence_granularity", w)
                .map(Granularity::V4Mask)
        } else {
            p.number_word("persistence_granularity", w, 1, 128)
                .map(Granularity::V6Prefix)
        };
        if g.is_some() {
            v.vs.persistence_granularity = g;
            // keepalived pgr_handler: granularity implies persistence.
            v.vs.persistence_timeout.get_or_insert(360);
        }
    }),
    leaf("persistence_engine", |p, v, n| {
        v.vs.persistence_engine = p.string(n, 1)
    }),
    leaf("protocol", |p, v, n| {
        let Some(w) = p.arg(n, 1) else { return };
        v.vs.protocol = match w.text.to_ascii_uppercase().as_str() {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            "SCTP" => Protocol::Sctp,
            _ => {
                p.diags
                    .fatal(&w.span, format!("unknown protocol `{}`", w.text))
                    .help("write `protocol TCP`, `UDP` or `SCTP`");
                return;
            }
        };
        v.protocol_set = true;
    }),
    leaf("ha_suspend", |_, v, _| v.vs.ha_suspend = true),
    leaf("smtp_alert", |p, v, n| v.vs.smtp_alert = p.flag(n)),
    leaf("virtualhost", |p, v, n| v.vs.virtualhost = p.string(n, 1)),
    leaf("alpha", |_, v, _| v.vs.alpha = true),
    leaf("omega", |_, v, _| v.vs.omega = true),
    leaf("quorum_up", |p, v, n| v.vs.quorum_up = p.rest(n, 1)),
    leaf("quorum_down", |p, v, n| v.vs.quorum_down = p.rest(n, 1)),
    leaf("quorum", |p, v, n| {
        // keepalived quorum_handler: [1, UINT_MAX], else 1.
        v.vs.quorum = p.number(n, 1, 1, u32::MAX).unwrap_or(1);
    }),
    leaf("hysteresis", |p, v, n| {
        if let Some(h) = p.number(n, 1, 0, u32::MAX) {
            v.vs.hysteresis = h;
        }
    }),
    leaf("weight", |p, v, n| {
        if let Some(w) = p.number(n, 1, 1, WEIGHT_MAX) {
            v.vs.weight = w;
        }
    }),
    leaf("inhibit_on_failure", |_, v, _| {
        v.vs.inhibit_on_failure = true
    }),
    leaf("sorry_server", |p, v, n| {
        let Some((addr, port)) = server_addr(p, n) else {
            return;
        };
        v.vs.sorry_server = Some(SorryServer {
            span: n.span().clone(),
            addr,
            port,
            inhibit: false,
            lb_kind: None,
        });
    }),
    leaf("sorry_server_inhibit", |p, v, n| {
        if let Some(s) = sorry_server(p, v, n) {
            s.inhibit = true;
        }
    }),
    leaf("sorry_server_lvs_method", |p, v, n| {
        let k = lb_kind(p, n);
        if let Some(s) = sorry_server(p, v, n) {
            s.lb_kind = k.map(|k| k.0);
        }
    }),
    block("real_server", |p, v, n| {
        let Some((addr, port)) = server_addr(p, n) else {
            return;
        };
        p.extra(n, 2);
        let mut r = RsB {
            span: n.span().clone(),
            addr,
            port,
            weight: None,
            lb_kind: None,
            inhibit: None,
            alpha: None,
            notify_up: None,
            notify_down: None,
            uthreshold: None,
            lthreshold: None,
            virtualhost: None,
            defaults: CheckerDefaults::default(),
            delay_loop: None,
            checkers: Vec::new(),
        };
        p.dispatch(
            "real_server",
            &[RS_KW, &RS_DEFAULTS_KW, &CHECKER_KW],
            RS_ALL,
            &mut r,
            n.body(),
        );
        v.rss.push(r);
    }),
];

fn sched(p: &mut Parser, n: &Node) -> Option<String> {
    let w = p.arg(n, 1)?;
    if SCHEDULERS.contains(&w.text.as_str()) {
        Some(w.text.clone())
    } else {
        p.diags
            .fatal(&w.span, format!("unknown scheduler `{}`", w.text))
            .help(format!("use one of {}", SCHEDULERS.join(", ")));
        None
    }
}

fn lb_flag(_: &mut Parser, v: &mut VsB, n: &Node) {
    v.vs.lb_flags.push(n.keyword().to_string());
}

fn vs_addr(p: &mut Parser, n: &Node) -> Option<(VsAddr, Span)> {
    let w = p.arg(n, 1)?;
    let span = w.span.clone();
    match w.text.as_str() {
        "fwmark" => {
            let m = p.number(n, 2, 1, u32::MAX)?;
            refuse_fwmark(p, &span, &format!("virtual_server fwmark {m}"));
            Some((VsAddr::Fwmark(m), span))
        }
        "group" => Some((VsAddr::Group(p.string(n, 2)?), span)),
        _ => {
            let ip = p.sockaddr_word("virtual_server", w)?;
            let port = if n.words.len() > 2 { p.port(n, 2)? } else { 0 };
            p.extra(n, 2);
            Some((VsAddr::Ip(ip, port), span))
        }
    }
}

pub(super) fn parse_vs(p: &mut Parser, cfg: &mut Config, n: &Node) {
    let Some((addr, addr_span)) = vs_addr(p, n) else {
        return;
    };
    let Some(body) = &n.block else {
        p.diags.fatal(n.span(), "`virtual_server` needs a block");
        return;
    };
    let mut b = VsB {
        vs: VirtualServer {
            span: n.span().clone(),
            addr,
            addr_span,
            protocol: Protocol::Tcp,
            lb_algo: String::new(),
            lb_flags: Vec::new(),
            lb_kind: LbKind::Nat,
            lb_kind_span: None,
            delay_loop: DEFAULT_DELAY_LOOP,
            persistence_timeout: None,
            persistence_granularity: None,
            persistence_engine: None,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            sorry_server: None,
            inhibit_on_failure: false,
            alpha: false,
            omega: false,
            ha_suspend: false,
            virtualhost: None,
            smtp_alert: None,
            weight: 1,
            real_servers: Vec::new(),
        },
        lb_algo: None,
        lb_kind: None,
        protocol_set: false,
        defaults: CheckerDefaults::default(),
        rss: Vec::new(),
    };
    p.dispatch(
        "virtual_server",
        &[VS_KW, &VS_DEFAULTS_KW],
        VS_ALL,
        &mut b,
        body,
    );
    if let Some(vs) = finish_vs(p, b) {
        if let Some(prev) = cfg
            .virtual_servers
            .iter_mut()
            .find(|x| x.addr == vs.addr && x.protocol == vs.protocol)
        {
            // keepalived adds the second block's real servers to the IPVS
            // service the first block created; the first block's settings
            // stay (its service already exists).
            p.diags
                .warn(
                    &vs.span,
                    format!(
                        "virtual_server {} is defined twice (first at {}): its real servers are added to the first, its other settings are ignored (as keepalived does)",
                        vs.addr, prev.span
                    ),
                )
                .help("merge the two blocks into one");
            for r in vs.real_servers {
                if let Some(dup) = prev
                    .real_servers
                    .iter()
                    .find(|x| x.addr == r.addr && x.port == r.port)
                {
                    p.diags.error(
                        &r.span,
                        format!(
                                "VS {}: real server {} port {} is duplicated (first at {}) - removing second rs",
                                prev.addr, r.addr, r.port, dup.span
                            ),
                    );
                } else {
                    prev.real_servers.push(r);
                }
            }
            return;
        }
        cfg.virtual_servers.push(vs);
    }
}

/// End of a `virtual_server` block: defaults, inheritance and checks.
fn finish_vs(p: &mut Parser, mut b: VsB) -> Option<VirtualServer> {
    let vs = &mut b.vs;
    let label = vs.addr.to_string();
    match b.lb_algo.take() {
        Some(a) => vs.lb_algo = a,
        None => {
            p.diags
                .warn(
                    &vs.span,
                    format!(
                        "virtual_server {label}: no `lb_algo`, keepalived's default `wlc` is used"
                    ),
                )
                .help("write `lb_algo wrr` (or rr, wlc, ...)");
            vs.lb_algo = "wlc".into();
        }
    }
    match b.lb_kind.take() {
        Some((k, s)) => {
            vs.lb_kind = k;
            vs.lb_kind_span = Some(s);
        }
        None => {
            p.diags
                .warn(
                    &vs.span,
                    format!(
                        "virtual_server {label}: no `lb_kind`, keepalived's default NAT is used"
                    ),
                )
                .help("write `lb_kind DR`");
            vs.lb_kind = LbKind::Nat;
        }
    }
    if matches!(vs.addr, VsAddr::Fwmark(_)) && b.protocol_set {
        // keepalived ignores it too.
        p.diags.warn(
            &vs.span,
            format!("virtual_server {label}: `protocol` is ignored for fwmark services"),
        );
    }
    if !matches!(vs.addr, VsAddr::Fwmark(_)) && !b.protocol_set {
        // keepalived check_data.c validate_check_config: protocol 0 would be
        // UDP to the kernel, so keepalived sets it explicitly.
        p.diags
            .error(
                &vs.span,
                format!("Virtual server {label}: no protocol set - defaulting to UDP"),
            )
            .help("write `protocol TCP` for a TCP service (or `protocol UDP` to keep UDP)");
        vs.protocol = Protocol::Udp;
    }
    if vs.protocol != Protocol::Udp
        && !matches!(vs.addr, VsAddr::Fwmark(_))
        && vs.lb_flags.iter().any(|f| f == "ops")
    {
        // keepalived check_data.c: one-packet scheduling is for UDP only;
        // it clears the flag (IPVS would ignore it for TCP anyway).
        p.diags
            .error(
                &vs.span,
                format!("Virtual server {label}: one packet scheduling requires UDP - resetting"),
            )
            .help("remove `ops`: it applies to UDP services only");
        vs.lb_flags.retain(|f| f != "ops");
    }
    if let VsAddr::Ip(addr, 0) = vs.addr {
        let label = addr.to_string();
        // keepalived: an all-ports service (IPVS port 0), made persistent
        // ("zero port only valid for persistent services - setting").
        // The data path matches exact ports; it has no catch-all port.
        p.diags
            .error(
                &vs.addr_span,
                format!(
                    "virtual_server {label} has no port: keepalived serves every port of the address (IPVS port 0, persistence {} s); lvs-xdp matches exact ports and cannot serve it; ignored",
                    vs.persistence_timeout.unwrap_or(360)
                ),
            )
            .help("write the port, `virtual_server ADDRESS PORT`, one virtual_server per port");
        return None;
    }
    let vs_port = match vs.addr {
        VsAddr::Ip(_, port) => port,
        _ => 0,
    };
    // keepalived check_parser.c: the service's family is its address's,
    // else its first server's; with DR (the only method lvs-xdp runs) a
    // server of the other family cannot be reached (the frame keeps its IP
    // header; IPVS refuses it outside TUN), so it is skipped.
    let mut family_v6 = match vs.addr {
        VsAddr::Ip(a, _) => Some(a.is_ipv6()),
        _ => None,
    };
    let mut family_ok = |p: &mut Parser, kind: &str, addr: IpAddr, span: &Span| -> bool {
        let v6 = *family_v6.get_or_insert(addr.is_ipv6());
        if v6 == addr.is_ipv6() {
            return true;
        }
        p.diags
            .error(
                span,
                format!(
                    "Address family of virtual server and {kind} server {addr} don't match - skipping {kind} server."
                ),
            )
            .help(format!(
                "with Direct Routing the {kind} server must be an IPv{} address, like the virtual server",
                if v6 { 6 } else { 4 }
            ));
        false
    };
    if let Some(s) = vs.sorry_server.take() {
        if family_ok(p, "sorry", s.addr, &s.span) {
            vs.sorry_server = Some(s);
        }
    }
    b.rss.retain(|r| family_ok(p, "real", r.addr, &r.span));

    for r in b.rss.drain(..) {
        let port = if r.port == 0 { vs_port } else { r.port };
        if let Some(prev) = vs
            .real_servers
            .iter()
            .find(|x| x.addr == r.addr && x.port == port)
        {
            p.diags
                .error(
                    &r.span,
                    format!(
                        "virtual_server {label}: real_server {} port {port} is a duplicate of the one at {}; removed",
                        r.addr, prev.span
                    ),
                )
                .help("remove this real_server, or correct its address");
            continue;
        }
        let (lb_kind, lb_kind_span) = match r.lb_kind {
            Some((k, s)) => (k, Some(s)),
            None => (vs.lb_kind, vs.lb_kind_span.clone()),
        };
        let rs_alpha = r.alpha.unwrap_or(vs.alpha);
        let inherited = Inherited {
            defaults: r.defaults.or(&b.defaults),
            delay_loop: r.delay_loop.unwrap_or(vs.delay_loop),
            alpha: rs_alpha,
            virtualhost: r.virtualhost.clone().or_else(|| vs.virtualhost.clone()),
        };
        let checkers = r
            .checkers
            .into_iter()
            .map(|c| c.build(&inherited))
            .collect();
        vs.real_servers.push(RealServer {
            span: r.span,
            addr: r.addr,
            port,
            weight: r.weight.unwrap_or(vs.weight),
            lb_kind,
            lb_kind_span,
            inhibit_on_failure: r.inhibit.unwrap_or(vs.inhibit_on_failure),
            alpha: rs_alpha,
            notify_up: r.notify_up,
            notify_down: r.notify_down,
            uthreshold: r.uthreshold,
            lthreshold: r.lthreshold,
            virtualhost: r.virtualhost,
            checkers,
        });
    }
    if vs.real_servers.is_empty() {
        p.diags
            .error(
                &vs.span,
                format!("virtual_server {label} has no real servers; ignored"),
            )
            .help("add `real_server ADDRESS PORT { ... }`");
        return None;
    }
    adjust_quorum(p, vs, &label);
    Some(b.vs)
}

/// keepalived's validate_check_config: a quorum above the sum of the real
/// servers' weights could never be reached, so it is lowered to that sum;
/// a hysteresis of at least the quorum is lowered to quorum - 1.
fn adjust_quorum(p: &mut Parser, vs: &mut VirtualServer, label: &str) {
    let weight_sum: u64 = vs.real_servers.iter().map(|r| u64::from(r.weight)).sum();
    if u64::from(vs.quorum) > weight_sum {
        let to = u32::try_from(weight_sum).unwrap_or(u32::MAX);
        p.diags
            .error(
                &vs.span,
                format!(
                    "Warning - quorum {} for {label} exceeds total weight of real servers {weight_sum}, reducing quorum to {to}",
                    vs.quorum
                ),
            )
            .help(format!("write `quorum {to}` or less"));
        vs.quorum = to;
    }
    if vs.hysteresis >= vs.quorum && vs.hysteresis > 0 {
        let to = vs.quorum.saturating_sub(1);
        p.diags
            .error(
                &vs.span,
                format!(
                "Virtual server {label}: hysteresis {} >= quorum {}; setting hysteresis to {to}",
                vs.hysteresis, vs.quorum
            ),
            )
            .help(format!("write `hysteresis {to}` or less"));
        vs.hysteresis = to;
    }
}
