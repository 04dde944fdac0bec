//! `virtual_server_group`, `virtual_server`, `real_server` and the health
//! checkers (keepalived's check_parser.c, check_api.c, check_*.c).
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
use crate::diag::{Severity, Span};
use crate::keywords::{RS_ALL, VS_ALL};
use crate::model::{
    CheckCommon, Checker, Config, ConnOpts, DnsCheck, FileCheck, Granularity, HexPattern,
    HttpCheck, LbKind, MiscCheck, Protocol, RealServer, SmtpCheck, SorryServer, TcpCheck,
    TrackFile, UdpCheck, Url, VirtualServer, VirtualServerGroup, VsAddr, VsgEntry,
};
use crate::tree::{Node, Word};

const MAX_SECS: Duration = Duration::from_secs(u32::MAX as u64);
const WEIGHT_MAX: u64 = i32::MAX as u64;
const WEIGHT_MAX_I: i64 = i32::MAX as i64;
const LVS_MAX_TIMEOUT: u64 = 86400 * 31;
const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// IPVS schedulers keepalived accepts (check_parser.c `lvs_schedulers`).
const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

// ------------------------------------------------------- virtual_server_group

pub(super) fn parse_vsg(p: &mut Parser, cfg: &mut Config, n: &Node) {
    let Some(name) = p.string(n, 1) else { return };
    let Some(body) = &n.block else {
        p.diags
            .fatal(n.span(), "`virtual_server_group` needs a block");
        return;
    };
    let mut g = VirtualServerGroup {
        span: n.span().clone(),
        name,
        entries: Vec::new(),
    };
    for e in body {
        let w0 = &e.words[0];
        if w0.text == "fwmark" {
            if let Some(m) = p.uint(e, 1, 1, u64::from(u32::MAX)) {
                refuse_fwmark(
                    p,
                    &w0.span,
                    &format!("virtual_server_group {} entry fwmark {m}", g.name),
                );
                g.entries.push(VsgEntry::Fwmark {
                    span: w0.span.clone(),
                    mark: m as u32,
                });
            }
            continue;
        }
        let Some((first, last)) = addr_range(p, w0) else {
            continue;
        };
        // keepalived: a port of 0 (or "00") is no port.
        let port = match e.words.get(1) {
            Some(w) if w.text.bytes().all(|b| b == b'0') => 0,
            Some(_) => p.port(e, 1).unwrap_or(0),
            None => 0,
        };
        p.extra(e, 1);
        g.entries.push(VsgEntry::Range {
            span: w0.span.clone(),
            first,
            last,
            port,
        });
    }
    if cfg.virtual_server_groups.iter().any(|x| x.name == g.name) {
        p.diags.error(
            n.span(),
            format!(
                "virtual_server_group `{}` defined twice; the second is ignored",
                g.name
            ),
        );
        return;
    }
    cfg.virtual_server_groups.push(g);
}

/// lvs-xdp cannot serve firewall-mark services: its XDP program sees a
/// packet before netfilter, so no iptables/nftables rule has marked it
/// yet. Refused (the item is left out) with what to write instead: an
/// error, as for NAT and TUN services (exit 4, keepalived's "errors but
/// would run": the rest of the file runs).
fn refuse_fwmark(p: &mut Parser, span: &Span, what: &str) {
    p.diags.add(
        Severity::Error,
        span,
        format!(
            "{what}: fwmark services are not supported: the XDP program runs before netfilter, \
             so no packet carries a mark when lvs-xdp schedules it; left out"
        ),
        Some(
            "list the addresses and ports the mark selects instead: `virtual_server ADDR PORT`, \
             or a `virtual_server_group` with `ADDR[-LAST] PORT` entries"
                .into(),
        ),
    );
}

/// A `virtual_server_group` address entry, as keepalived's
/// `alloc_vsg_entry` reads it: `ADDR`, `ADDR-LAST` (the last byte / group),
/// `ADDR-ADDR` (a full end address) or `ADDR/LEN` (every address of the
/// prefix; the host bits must be 0). A bad entry is skipped (an error).
fn addr_range(p: &mut Parser, w: &Word) -> Option<(IpAddr, IpAddr)> {
    let text = w.text.as_str();
    let skip = |p: &mut Parser, why: &str| {
        p.diags.add(
            Severity::Error,
            &w.span,
            format!("{why} - {text} - skipping"),
            Some(
                "write ADDRESS, ADDRESS-LAST (192.0.2.3-10), ADDRESS-ADDRESS or ADDRESS/LEN".into(),
            ),
        );
        None
    };
    let head_end = text.find(['-', '/']).unwrap_or(text.len());
    let Ok(first) = text[..head_end].parse::<IpAddr>() else {
        p.diags.add(
            Severity::Fatal,
            &w.span,
            format!("`{text}` is not an address or address range"),
            Some(
                "write ADDRESS, ADDRESS-LAST (192.0.2.3-10), ADDRESS-ADDRESS or ADDRESS/LEN".into(),
            ),
        );
        return None;
    };
    let bits: u32 = if first.is_ipv4() { 32 } else { 128 };
    let as_u128 = |a: IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let from_u128 = |v: u128| -> IpAddr {
        if bits == 32 {
            IpAddr::from(std::net::Ipv4Addr::from(v as u32))
        } else {
            IpAddr::from(std::net::Ipv6Addr::from(v))
        }
    };
    let rest = &text[head_end..];
    if let Some(len) = rest.strip_prefix('/') {
        let Ok(len) = len.parse::<u32>() else {
            return skip(p, "Invalid netmask");
        };
        if len == 0 || len > bits {
            return skip(p, "Invalid netmask");
        }
        let host: u128 = if len == bits {
            0
        } else {
            (1u128 << (bits - len)) - 1
        };
        let start = as_u128(first);
        if start & host != 0 {
            return skip(p, "Address mask bits not empty");
        }
        return Some((first, from_u128(start | host)));
    }
    let Some(end) = rest.strip_prefix('-') else {
        return Some((first, first));
    };
    let full_end = if first.is_ipv4() {
        end.contains('.')
    } else {
        end.contains(':')
    };
    if full_end {
        let Ok(last) = end.parse::<IpAddr>() else {
            return skip(p, "Invalid range end");
        };
        if last.is_ipv4() != first.is_ipv4() {
            return skip(p, "Range address families do not match");
        }
        if as_u128(last) < as_u128(first) {
            return skip(p, "Address range end is less than address range start");
        }
        return Some((first, last));
    }
    let last = match first {
        IpAddr::V4(f) => {
            let Ok(e) = end.parse::<u8>() else {
                return skip(p, "Invalid range end");
            };
            let o = f.octets();
            (e > o[3]).then(|| IpAddr::from([o[0], o[1], o[2], e]))
        }
        IpAddr::V6(f) => {
            let Ok(e) = u16::from_str_radix(end, 16) else {
                return skip(p, "Invalid range end");
            };
            let mut s = f.segments();
            let ok = e > s[7];
            s[7] = e;
            ok.then(|| IpAddr::from(s))
        }
    };
    match last {
        Some(l) => Some((first, l)),
        None => skip(
            p,
            "Address range end is not greater than address range start",
        ),
    }
}

// ------------------------------------------------------------------ checkers

/// A checker being built; one struct for all checker kinds.
struct CheckB {
    kind: &'static str,
    span: Span,
    conn: Option<ConnOpts>,
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    delay_loop: Option<Duration>,
    warmup: Option<Duration>,
    alpha: Option<bool>,
    log_all_failures: bool,
    urls: Vec<Url>,
    virtualhost: Option<String>,
    http_protocol: Option<String>,
    enable_sni: bool,
    sni_name: Option<String>,
    misc_path: Option<String>,
    misc_timeout: Option<Duration>,
    misc_dynamic: bool,
    user: Option<String>,
    helo_name: Option<String>,
    hosts: Vec<(ConnOpts, Option<Duration>)>,
    payload: Option<String>,
    require_reply: Option<String>,
    min_reply_length: Option<u32>,
    max_reply_length: Option<u32>,
    dns_type: Option<String>,
    dns_name: Option<String>,
    file_track: Option<String>,
    file_weight: Option<(i32, bool)>,
}

impl CheckB {
    fn new(kind: &'static str, span: Span) -> Self {
        let conn = !matches!(kind, "MISC_CHECK" | "FILE_CHECK" | "BFD_CHECK");
        CheckB {
            kind,
            span,
            conn: conn.then(ConnOpts::default),
            connect_timeout: None,
            retry: None,
            delay_before_retry: None,
            delay_loop: None,
            warmup: None,
            alpha: None,
            log_all_failures: false,
            urls: Vec::new(),
            virtualhost: None,
            http_protocol: None,
            enable_sni: false,
            sni_name: None,
            misc_path: None,
            misc_timeout: None,
            misc_dynamic: false,
            user: None,
            helo_name: None,
            hosts: Vec::new(),
            payload: None,
            require_reply: None,
            min_reply_length: None,
            max_reply_length: None,
            dns_type: None,
            dns_name: None,
            file_track: None,
            file_weight: None,
        }
    }
    fn conn(&mut self) -> &mut ConnOpts {
        self.conn.get_or_insert_with(ConnOpts::default)
    }
}

/// Connection keywords (check_api.c `install_checker_common_keywords(true)`).
static CONN_KW: &[Kw<CheckB>] = &[
    leaf("connect_ip", |p, c, n| c.conn().connect_ip = p.ip(n, 1)),
    leaf("connect_port", |p, c, n| {
        c.conn().connect_port = p.port(n, 1)
    }),
    leaf("bindto", |p, c, n| c.conn().bindto = p.ip(n, 1)),
    leaf("bind_port", |p, c, n| c.conn().bind_port = p.port(n, 1)),
    leaf("bind_if", |p, c, n| c.conn().bind_if = p.string(n, 1)),
    leaf("fwmark", |p, c, n| {
        c.conn().fwmark = p.uint(n, 1, 0, u64::from(u32::MAX)).map(|v| v as u32)
    }),
    leaf("connect_timeout", |p, c, n| {
        c.connect_timeout = p
            .timer(n, 1, Duration::from_micros(1), MAX_SECS)
            .or(c.connect_timeout);
    }),
];

/// Keywords of every checker (check_api.c).
static COMMON_KW: &[Kw<CheckB>] = &[
    leaf("retry", |p, c, n| {
        c.retry = p
            .uint(n, 1, 0, u64::from(u32::MAX))
            .map(|v| v as u32)
            .or(c.retry)
    }),
    leaf("nb_get_retry", |p, c, n| {
        // keepalived 2.2.7 knows `nb_get_retry` in HTTP_GET/SSL_GET only;
        // elsewhere it is an unknown keyword there (its -t fails, the checker
        // keeps its default retry). lvs-xdp honours it as `retry` everywhere
        // (README: deliberate differences).
        let (msg, help) = if matches!(c.kind, "HTTP_GET" | "SSL_GET") {
            (
                "`nb_get_retry` is deprecated - please use 'retry'".to_string(),
                "write `retry` instead",
            )
        } else {
            (
                format!(
                    "`nb_get_retry` in {}: keepalived 2.2.7 does not know it here (Unknown keyword; it keeps the default retry); lvs-xdp honours it as `retry`",
                    c.kind
                ),
                "write `retry` instead: both read it",
            )
        };
        p.diags
            .add(Severity::Warning, n.span(), msg, Some(help.into()));
        c.retry = p
            .uint(n, 1, 0, u64::from(u32::MAX))
            .map(|v| v as u32)
            .or(c.retry);
    }),
    leaf("delay_before_retry", |p, c, n| {
        c.delay_before_retry = p
            .timer(n, 1, Duration::ZERO, MAX_SECS)
            .or(c.delay_before_retry);
    }),
    leaf("warmup", |p, c, n| {
        c.warmup = p.timer(n, 1, Duration::ZERO, MAX_SECS).or(c.warmup)
    }),
    leaf("delay_loop", |p, c, n| {
        c.delay_loop = p
            .timer(n, 1, Duration::from_micros(1), MAX_SECS)
            .or(c.delay_loop);
    }),
    leaf("alpha", |p, c, n| c.alpha = p.flag(n).or(c.alpha)),
    leaf("log_all_failures", |p, c, n| {
        c.log_all_failures = p.flag(n).unwrap_or(c.log_all_failures)
    }),
];

static URL_KW: &[Kw<Url>] = &[
    leaf("path", |p, u, n| u.path = p.rest(n, 1).unwrap_or_default()),
    leaf("digest", |p, u, n| {
        if let Some(w) = p.arg(n, 1) {
            if w.text.len() != 32 || !w.text.bytes().all(|b| b.is_ascii_hexdigit()) {
                p.diags.add(
                    Severity::Error,
                    &w.span,
                    format!(
                        "digest `{}` is not an MD5 sum (32 hex digits); ignored",
                        w.text
                    ),
                    Some("compute it with `genhash` or `curl -s URL | md5sum`".into()),
                );
            } else {
                u.digest = Some(w.text.to_ascii_lowercase());
            }
        }
    }),
    leaf("status_code", |p, u, n| {
        p.arg(n, 1);
        for w in &n.words[1..] {
            let (a, b) = match w.text.split_once('-') {
                Some((a, b)) => (a, b),
                None => (w.text.as_str(), w.text.as_str()),
            };
            match (a.parse::<u16>(), b.parse::<u16>()) {
                (Ok(a), Ok(b)) if (100..=599).contains(&a) && (a..=599).contains(&b) => {
                    u.status_code.push((a, b))
                }
                _ => p.diags.add(
                    Severity::Fatal,
                    &w.span,
                    format!("status_code `{}` is not a status code or range", w.text),
                    Some("write codes from 100 to 599, or ranges like 200-299".into()),
                ),
            }
        }
    }),
    leaf("virtualhost", |p, u, n| u.virtualhost = p.string(n, 1)),
    leaf("regex", |p, u, n| u.regex = p.rest(n, 1)),
];
const URL_IGNORED: &[&str] = &[
    "regex_no_match",
    "regex_options",
    "regex_min_offset",
    "regex_max_offset",
    "regex_stack",
    "tls_compliant",
];

static HTTP_KW: &[Kw<CheckB>] = &[
    block("url", |p, c, n| {
        let mut u = Url {
            span: n.span().clone(),
            path: String::new(),
            digest: None,
            status_code: Vec::new(),
            virtualhost: None,
            regex: None,
        };
        p.dispatch(
            "url",
            &[URL_KW],
            URL_IGNORED,
            &mut u,
            n.block.as_deref().unwrap_or(&[]),
        );
        if u.path.is_empty() {
            p.diags.add(
                Severity::Error,
                n.span(),
                "url without `path`; ignored",
                Some("add `path /`".into()),
            );
        } else {
            c.urls.push(u);
        }
    }),
    leaf("virtualhost", |p, c, n| c.virtualhost = p.string(n, 1)),
    leaf("http_protocol", |p, c, n| c.http_protocol = p.string(n, 1)),
    leaf("enable_sni", |p, c, n| {
        c.enable_sni = p.flag(n).unwrap_or(false)
    }),
    leaf("sni_name", |p, c, n| c.sni_name = p.string(n, 1)),
];
const HTTP_IGNORED: &[&str] = &["fast_recovery", "tls_compliant"];

static MISC_KW: &[Kw<CheckB>] = &[
    leaf("misc_path", |p, c, n| c.misc_path = p.rest(n, 1)),
    leaf("misc_timeout", |p, c, n| {
        c.misc_timeout = p.timer(n, 1, Duration::from_micros(1), MAX_SECS)
    }),
    leaf("misc_dynamic", |_, c, _| c.misc_dynamic = true),
    leaf("user", |p, c, n| c.user = p.rest(n, 1)),
];

static SMTP_KW: &[Kw<CheckB>] = &[
    leaf("helo_name", |p, c, n| c.helo_name = p.string(n, 1)),
    block("host", |p, c, n| {
        let mut h = CheckB::new("host", n.span().clone());
        p.dispatch(
            "SMTP_CHECK host",
            &[CONN_KW, COMMON_KW],
            &[],
            &mut h,
            n.block.as_deref().unwrap_or(&[]),
        );
        c.hosts
            .push((h.conn.unwrap_or_default(), h.connect_timeout));
    }),
];

/// A hex string argument (keepalived's `read_hex_str`), checked here so a
/// typo is reported at its place.
fn hex_arg(p: &mut Parser, n: &Node, wildcard: bool) -> Option<String> {
    let text = n.words[1..]
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    if HexPattern::parse(&text, wildcard).is_none() {
        let span = n
            .words
            .get(1)
            .map_or_else(|| n.span().clone(), |w| w.span.clone());
        p.diags.add(
            Severity::Error,
            &span,
            format!("`{text}` is not a hex string; `{}` ignored", n.keyword()),
            Some(if wildcard {
                "write octets in hex, e.g. `0a 1b 2c` (x for any nibble)".into()
            } else {
                "write octets in hex, e.g. `0a 1b 2c`".into()
            }),
        );
        return None;
    }
    Some(text)
}

static UDP_KW: &[Kw<CheckB>] = &[
    leaf("payload", |p, c, n| {
        if n.words.len() < 2 {
            p.diags
                .error(n.span(), "UDP_CHECK payload requires a payload; ignored");
            return;
        }
        c.payload = hex_arg(p, n, false);
    }),
    leaf("require_reply", |p, c, n| {
        // A bare `require_reply`: any reply will do.
        c.require_reply = if n.words.len() < 2 {
            Some(String::new())
        } else {
            hex_arg(p, n, true).or(Some(String::new()))
        };
    }),
    leaf("min_reply_length", |p, c, n| {
        c.min_reply_length = p.uint(n, 1, 0, 65535).map(|v| v as u32)
    }),
    leaf("max_reply_length", |p, c, n| {
        c.max_reply_length = p.uint(n, 1, 0, 65535).map(|v| v as u32)
    }),
];

/// DNS_CHECK query types (check_dns.c `DNS_TYPE`).
pub const DNS_TYPES: &[&str] = &[
    "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY",
];

static DNS_KW: &[Kw<CheckB>] = &[
    leaf("type", |p, c, n| {
        let Some(w) = p.arg(n, 1) else { return };
        match DNS_TYPES.iter().find(|t| t.eq_ignore_ascii_case(&w.text)) {
            Some(t) => c.dns_type = Some((*t).to_string()),
            None => p.diags.add(
                Severity::Error,
                &w.span,
                format!("Unknown DNS check type {} - ignoring", w.text),
                Some(format!("use one of {}", DNS_TYPES.join(", "))),
            ),
        }
    }),
    leaf("name", |p, c, n| {
        let Some(w) = p.arg(n, 1) else { return };
        let name = w.text.as_str();
        // keepalived refuses empty labels (`a..b`, a leading dot).
        if (name.starts_with('.') && name != ".") || name.contains("..") {
            p.diags.add(
                Severity::Error,
                &w.span,
                format!("DNS_CHECK name '{name}' has empty label - ignoring"),
                None,
            );
            return;
        }
        if c.dns_name.is_some() {
            p.diags
                .error(&w.span, "DNS_CHECK name already specified - ignoring");
            return;
        }
        c.dns_name = Some(name.to_string());
    }),
];

static FILE_KW: &[Kw<CheckB>] = &[
    leaf("track_file", |p, c, n| c.file_track = p.string(n, 1)),
    leaf("weight", |p, c, n| {
        let Some(w) = p.int(n, 1, -WEIGHT_MAX_I, WEIGHT_MAX_I) else {
            return;
        };
        let reverse = match n.words.get(2).map(|w| w.text.as_str()) {
            None | Some("noreverse") => false,
            Some("reverse") => true,
            Some(other) => {
                p.diags.add(
                    Severity::Error,
                    &n.words[2].span,
                    format!("unknown track file weight option {other} - ignoring"),
                    Some("write `reverse` or nothing".into()),
                );
                return;
            }
        };
        c.file_weight = Some((w as i32, reverse));
    }),
];

// ---------------------------------------------------------------- track_file

/// `track_file NAME { file PATH; weight W [reverse]; init_file [V] [overwrite] }`.
pub(super) fn parse_track_file(p: &mut Parser, cfg: &mut Config, n: &Node) {
    let Some(name) = p.string(n, 1) else { return };
    if n.keyword() == "vrrp_track_file" {
        p.warn_once(
            "deprecated/vrrp_track_file",
            n,
            "\"vrrp_track_file\" is deprecated, please use \"track_file\"".into(),
            None,
        );
    }
    let Some(body) = &n.block else {
        p.diags.fatal(n.span(), "`track_file` needs a block");
        return;
    };
    let mut t = TrackFile {
        span: n.span().clone(),
        name,
        file: String::new(),
        weight: 1,
        weight_reverse: false,
        init_file: None,
    };
    p.dispatch("track_file", &[TRACK_FILE_KW], &[], &mut t, body);
    if t.file.is_empty() {
        p.diags.add(
            Severity::Error,
            n.span(),
            format!("No file set for track_file {} - ignoring", t.name),
            Some("add `file /path/to/file`".into()),
        );
        return;
    }
    if cfg.track_files.iter().any(|x| x.name == t.name) {
        p.diags.error(
            n.span(),
            format!(
                "track_file `{}` defined twice; the second is ignored",
                t.name
            ),
        );
        return;
    }
    cfg.track_files.push(t);
}

static TRACK_FILE_KW: &[Kw<TrackFile>] = &[
    leaf("file", |p, t, n| {
        if let Some(f) = p.string(n, 1) {
            t.file = f;
        }
    }),
    leaf("weight", |p, t, n| {
        if let Some(w) = p.int(n, 1, -254, 254) {
            t.weight = w as i32;
        }
        match n.words.get(2).map(|w| w.text.as_str()) {
            None => {}
            Some("reverse") => t.weight_reverse = true,
            Some(other) => p.diags.add(
                Severity::Error,
                &n.words[2].span,
                format!("track_file {} unknown weight option {other}", t.name),
                None,
            ),
        }
    }),
    leaf("init_file", |p, t, n| {
        let mut value = 0;
        let mut overwrite = false;
        for w in &n.words[1..] {
            if w.text == "overwrite" {
                overwrite = true;
            } else if let Some(v) = p.int_word("init_file", w, -254, 254) {
                value = v;
            }
        }
        t.init_file = Some((value, overwrite));
    }),
];

/// After the whole file: FILE_CHECKs name existing `track_file`s
/// (keepalived looks them up when it reads the checker).
pub(super) fn resolve_file_checks(p: &mut Parser, cfg: &mut Config) {
    let names: Vec<String> = cfg.track_files.iter().map(|t| t.name.clone()).collect();
    for vs in &mut cfg.virtual_servers {
        for rs in &mut vs.real_servers {
            rs.checkers.retain(|c| {
                let Checker::File(f) = c else { return true };
                if names.contains(&f.track_file) {
                    return true;
                }
                p.diags.add(
                    Severity::Error,
                    &f.span,
                    format!("track_file {} not found; FILE_CHECK ignored", f.track_file),
                    Some("define it with `track_file NAME { file PATH }` at the top level".into()),
                );
                false
            });
        }
    }
}

const CHECKERS: &[&str] = &[
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
];

fn parse_checker(p: &mut Parser, rs: &mut RsB, n: &Node) {
    let kind = CHECKERS
        .iter()
        .copied()
        .find(|k| *k == n.keyword())
        .unwrap_or("TCP_CHECK");
    let mut c = CheckB::new(kind, n.span().clone());
    let body = n.block.as_deref().unwrap_or(&[]);
    match kind {
        "TCP_CHECK" | "PING_CHECK" => p.dispatch(kind, &[CONN_KW, COMMON_KW], &[], &mut c, body),
        "HTTP_GET" | "SSL_GET" => p.dispatch(
            kind,
            &[HTTP_KW, CONN_KW, COMMON_KW],
            HTTP_IGNORED,
            &mut c,
            body,
        ),
        "MISC_CHECK" => p.dispatch(kind, &[MISC_KW, COMMON_KW], &[], &mut c, body),
        "SMTP_CHECK" => p.dispatch(kind, &[SMTP_KW, CONN_KW, COMMON_KW], &[], &mut c, body),
        "UDP_CHECK" => p.dispatch(kind, &[UDP_KW, CONN_KW, COMMON_KW], &[], &mut c, body),
        "DNS_CHECK" => p.dispatch(kind, &[DNS_KW, CONN_KW, COMMON_KW], &[], &mut c, body),
        "FILE_CHECK" => p.dispatch(kind, &[FILE_KW], &[], &mut c, body),
        // BFD_CHECK is recognised only; its body is skipped.
        _ => {}
    }
    // End-of-block validation (keepalived's level end handlers).
    match kind {
        "HTTP_GET" | "SSL_GET" if c.urls.is_empty() => {
            p.diags.add(
                Severity::Error,
                n.span(),
                format!("{kind} has no `url`; checker ignored"),
                Some("add `url { path / }`".into()),
            );
            return;
        }
        "FILE_CHECK" if c.file_track.is_none() => {
            p.diags.add(
                Severity::Error,
                n.span(),
                "FILE_CHECK has no track_file specified - ignoring",
                Some("add `track_file NAME`".into()),
            );
            return;
        }
        "MISC_CHECK" if c.misc_path.is_none() => {
            p.diags.add(
                Severity::Error,
                n.span(),
                "MISC_CHECK has no `misc_path`; checker ignored",
                Some("add `misc_path \"/path/to/script args\"`".into()),
            );
            return;
        }
        _ => {}
    }
    rs.checkers.push(c);
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
    retry: Option<u32>,
    connect_timeout: Option<Duration>,
    delay_loop: Option<Duration>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
    checkers: Vec<CheckB>,
}

/// `lb_kind` / `lvs_method` value.
fn lb_kind(p: &mut Parser, n: &Node) -> Option<(LbKind, Span)> {
    let w = p.arg(n, 1)?;
    let k = match w.text.as_str() {
        "DR" => LbKind::Dr,
        "NAT" => LbKind::Nat,
        "TUN" => LbKind::Tun,
        other => {
            p.diags.add(
                Severity::Fatal,
                &w.span,
                format!("unknown forwarding method `{other}`"),
                Some("write `DR` (lvs-xdp supports Direct Routing only)".into()),
            );
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

static RS_KW: &[Kw<RsB>] = &[
    leaf("weight", |p, r, n| {
        r.weight = p.uint(n, 1, 0, WEIGHT_MAX).map(|v| v as u32).or(r.weight)
    }),
    leaf("lvs_method", |p, r, n| {
        r.lb_kind = lb_kind(p, n).or(r.lb_kind.take())
    }),
    leaf("uthreshold", |p, r, n| {
        r.uthreshold = p.uint(n, 1, 0, u64::from(u32::MAX)).map(|v| v as u32)
    }),
    leaf("lthreshold", |p, r, n| {
        r.lthreshold = p.uint(n, 1, 0, u64::from(u32::MAX)).map(|v| v as u32)
    }),
    leaf("inhibit_on_failure", |p, r, n| {
        r.inhibit = p.flag(n).or(r.inhibit)
    }),
    leaf("notify_up", |p, r, n| r.notify_up = p.rest(n, 1)),
    leaf("notify_down", |p, r, n| r.notify_down = p.rest(n, 1)),
    leaf("alpha", |p, r, n| r.alpha = p.flag(n).or(r.alpha)),
    leaf("retry", |p, r, n| {
        r.retry = p
            .uint(n, 1, 1, u64::from(u32::MAX))
            .map(|v| v as u32)
            .or(r.retry)
    }),
    leaf("delay_before_retry", |p, r, n| {
        r.delay_before_retry = p
            .timer(n, 1, Duration::ZERO, MAX_SECS)
            .or(r.delay_before_retry)
    }),
    leaf("warmup", |p, r, n| {
        r.warmup = p.timer(n, 1, Duration::ZERO, MAX_SECS).or(r.warmup)
    }),
    leaf("connect_timeout", |p, r, n| {
        r.connect_timeout = p
            .timer(n, 1, Duration::from_micros(1), MAX_SECS)
            .or(r.connect_timeout)
    }),
    leaf("delay_loop", |p, r, n| {
        r.delay_loop = p
            .timer(n, 1, Duration::from_micros(1), MAX_SECS)
            .or(r.delay_loop)
    }),
    leaf("smtp_alert", |p, _, n| {
        p.flag(n);
    }),
    leaf("virtualhost", |p, r, n| r.virtualhost = p.string(n, 1)),
    block("TCP_CHECK", parse_checker),
    block("HTTP_GET", parse_checker),
    block("SSL_GET", parse_checker),
    block("MISC_CHECK", parse_checker),
    block("SMTP_CHECK", parse_checker),
    block("DNS_CHECK", parse_checker),
    block("UDP_CHECK", parse_checker),
    block("PING_CHECK", parse_checker),
    block("FILE_CHECK", parse_checker),
    block("BFD_CHECK", parse_checker),
];

// ------------------------------------------------------------ virtual_server

struct VsB {
    vs: VirtualServer,
    lb_algo: Option<String>,
    lb_kind: Option<(LbKind, Span)>,
    protocol_set: bool,
    retry: Option<u32>,
    connect_timeout: Option<Duration>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
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
        } else if let Some(t) = p.uint(n, 1, 1, LVS_MAX_TIMEOUT) {
            v.vs.persistence_timeout = Some(t as u32);
        }
    }),
    leaf("persistence_granularity", |p, v, n| {
        let Some(w) = p.arg(n, 1) else { return };
        let v4 = matches!(v.vs.addr, VsAddr::Ip(IpAddr::V4(_), _));
        if v4 && !w.text.contains('.') {
            // keepalived reads `24` with inet_aton, i.e. as the netmask
            // 0.0.0.24; neither that nor a /32 is what was meant.
            p.diags.add(
                Severity::Fatal,
                &w.span,
                format!(
                    "persistence_granularity `{}` on an IPv4 virtual_server is not a netmask (keepalived would use 0.0.0.{})",
                    w.text, w.text
                ),
                Some(
                    "write a netmask, e.g. `persistence_granularity 255.255.255.0` for a /24"
                        .into(),
                ),
            );
            return;
        }
        let g = if w.text.contains('.') {
            p.ipv4_word("persistence_granularity", w)
                .map(Granularity::V4Mask)
        } else {
            p.uint_word("persistence_granularity", w, 1, 128)
                .map(|v| Granularity::V6Prefix(v as u8))
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
                p.diags.add(
                    Severity::Fatal,
                    &w.span,
                    format!("unknown protocol `{}`", w.text),
                    Some("write `protocol TCP`, `UDP` or `SCTP`".into()),
                );
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
        v.vs.quorum = p
            .uint(n, 1, 1, u64::from(u32::MAX))
            .map(|q| q as u32)
            .unwrap_or(1);
    }),
    leaf("hysteresis", |p, v, n| {
        if let Some(h) = p.uint(n, 1, 0, u64::from(u32::MAX)) {
            v.vs.hysteresis = h as u32;
        }
    }),
    leaf("weight", |p, v, n| {
        if let Some(w) = p.uint(n, 1, 1, WEIGHT_MAX) {
            v.vs.weight = w as u32;
        }
    }),
    leaf("inhibit_on_failure", |_, v, _| {
        v.vs.inhibit_on_failure = true
    }),
    leaf("retry", |p, v, n| {
        v.retry = p
            .uint(n, 1, 1, u64::from(u32::MAX))
            .map(|x| x as u32)
            .or(v.retry)
    }),
    leaf("delay_before_retry", |p, v, n| {
        v.delay_before_retry = p
            .timer(n, 1, Duration::ZERO, MAX_SECS)
            .or(v.delay_before_retry)
    }),
    leaf("warmup", |p, v, n| {
        v.warmup = p.timer(n, 1, Duration::ZERO, MAX_SECS).or(v.warmup)
    }),
    leaf("connect_timeout", |p, v, n| {
        v.connect_timeout = p
            .timer(n, 1, Duration::from_micros(1), MAX_SECS)
            .or(v.connect_timeout)
    }),
    leaf("sorry_server", |p, v, n| {
        let Some(w) = p.arg(n, 1) else { return };
        let Some(addr) = p.sockaddr_word("sorry_server", w) else {
            return;
        };
        let port = if n.words.len() > 2 {
            p.port(n, 2).unwrap_or(0)
        } else {
            0
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
        match &mut v.vs.sorry_server {
            Some(s) => s.inhibit = true,
            None => p.diags.error(
                n.span(),
                "`sorry_server_inhibit` before or without `sorry_server`; ignored",
            ),
        }
    }),
    leaf("sorry_server_lvs_method", |p, v, n| {
        let k = lb_kind(p, n);
        match &mut v.vs.sorry_server {
            Some(s) => s.lb_kind = k.map(|k| k.0),
            None => p.diags.error(
                n.span(),
                "`sorry_server_lvs_method` before or without `sorry_server`; ignored",
            ),
        }
    }),
    block("real_server", |p, v, n| {
        let Some(w) = p.arg(n, 1) else { return };
        let Some(addr) = p.sockaddr_word("real_server", w) else {
            return;
        };
        let port = if n.words.len() > 2 {
            p.port(n, 2).unwrap_or(0)
        } else {
            0
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
            retry: None,
            connect_timeout: None,
            delay_loop: None,
            delay_before_retry: None,
            warmup: None,
            checkers: Vec::new(),
        };
        p.dispatch(
            "real_server",
            &[RS_KW],
            RS_ALL,
            &mut r,
            n.block.as_deref().unwrap_or(&[]),
        );
        v.rss.push(r);
    }),
];

fn sched(p: &mut Parser, n: &Node) -> Option<String> {
    let w = p.arg(n, 1)?;
    if SCHEDULERS.contains(&w.text.as_str()) {
        Some(w.text.clone())
    } else {
        p.diags.add(
            Severity::Fatal,
            &w.span,
            format!("unknown scheduler `{}`", w.text),
            Some(format!("use one of {}", SCHEDULERS.join(", "))),
        );
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
            let m = p.uint(n, 2, 1, u64::from(u32::MAX))?;
            refuse_fwmark(p, &span, &format!("virtual_server fwmark {m}"));
            Some((VsAddr::Fwmark(m as u32), span))
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
        retry: None,
        connect_timeout: None,
        delay_before_retry: None,
        warmup: None,
        rss: Vec::new(),
    };
    p.dispatch("virtual_server", &[VS_KW], VS_ALL, &mut b, body);
    if let Some(vs) = finish_vs(p, b) {
        if let Some(prev) = cfg
            .virtual_servers
            .iter_mut()
            .find(|x| x.addr == vs.addr && x.protocol == vs.protocol)
        {
            // keepalived adds the second block's real servers to the IPVS
            // service the first block created; the first block's settings
            // stay (its service already exists).
            p.diags.add(
                Severity::Warning,
                &vs.span,
                format!(
                    "virtual_server {} is defined twice (first at {}): its real servers are added to the first, its other settings are ignored (as keepalived does)",
                    vs.addr, prev.span
                ),
                Some("merge the two blocks into one".into()),
            );
            for r in vs.real_servers {
                if let Some(dup) = prev
                    .real_servers
                    .iter()
                    .find(|x| x.addr == r.addr && x.port == r.port)
                {
                    p.diags.add(
                        Severity::Error,
                        &r.span,
                        format!(
                            "VS {}: real server {} port {} is duplicated (first at {}) - removing second rs",
                            prev.addr, r.addr, r.port, dup.span
                        ),
                        None,
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
            p.diags.add(
                Severity::Warning,
                &vs.span,
                format!("virtual_server {label}: no `lb_algo`, keepalived's default `wlc` is used"),
                Some("write `lb_algo wrr` (or rr, wlc, ...)".into()),
            );
            vs.lb_algo = "wlc".into();
        }
    }
    match b.lb_kind.take() {
        Some((k, s)) => {
            vs.lb_kind = k;
            vs.lb_kind_span = Some(s);
        }
        None => {
            p.diags.add(
                Severity::Warning,
                &vs.span,
                format!("virtual_server {label}: no `lb_kind`, keepalived's default NAT is used"),
                Some("write `lb_kind DR`".into()),
            );
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
        p.diags.add(
            Severity::Error,
            &vs.span,
            format!("Virtual server {label}: no protocol set - defaulting to UDP"),
            Some("write `protocol TCP` for a TCP service (or `protocol UDP` to keep UDP)".into()),
        );
        vs.protocol = Protocol::Udp;
    }
    if vs.protocol != Protocol::Udp
        && !matches!(vs.addr, VsAddr::Fwmark(_))
        && vs.lb_flags.iter().any(|f| f == "ops")
    {
        // keepalived check_data.c: one-packet scheduling is for UDP only;
        // it clears the flag (IPVS would ignore it for TCP anyway).
        p.diags.add(
            Severity::Error,
            &vs.span,
            format!("Virtual server {label}: one packet scheduling requires UDP - resetting"),
            Some("remove `ops`: it applies to UDP services only".into()),
        );
        vs.lb_flags.retain(|f| f != "ops");
    }
    if let VsAddr::Ip(addr, 0) = vs.addr {
        let label = addr.to_string();
        // keepalived: an all-ports service (IPVS port 0), made persistent
        // ("zero port only valid for persistent services - setting").
        // The data path matches exact ports; it has no catch-all port.
        p.diags.add(
            Severity::Error,
            &vs.addr_span,
            format!(
                "virtual_server {label} has no port: keepalived serves every port of the address (IPVS port 0, persistence {} s); lvs-xdp matches exact ports and cannot serve it; ignored",
                vs.persistence_timeout.unwrap_or(360)
            ),
            Some("write the port, `virtual_server ADDRESS PORT`, one virtual_server per port".into()),
        );
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
        p.diags.add(
            Severity::Error,
            span,
            format!(
                "Address family of virtual server and {kind} server {addr} don't match - skipping {kind} server."
            ),
            Some(format!(
                "with Direct Routing the {kind} server must be an IPv{} address, like the virtual server",
                if v6 { 6 } else { 4 }
            )),
        );
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
            p.diags.add(
                Severity::Error,
                &r.span,
                format!(
                    "virtual_server {label}: real_server {} port {port} is a duplicate of the one at {}; removed",
                    r.addr, prev.span
                ),
                Some("remove this real_server, or correct its address".into()),
            );
            continue;
        }
        let (lb_kind, lb_kind_span) = match r.lb_kind {
            Some((k, s)) => (k, Some(s)),
            None => (vs.lb_kind, vs.lb_kind_span.clone()),
        };
        let rs_alpha = r.alpha.unwrap_or(vs.alpha);
        let retry = r.retry.or(b.retry);
        let connect_timeout = r
            .connect_timeout
            .or(b.connect_timeout)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let rs_delay_loop = r.delay_loop.unwrap_or(vs.delay_loop);
        let rs_warmup = r.warmup.or(b.warmup);
        let rs_dbr = r.delay_before_retry.or(b.delay_before_retry);
        let mut checkers = Vec::new();
        for c in r.checkers {
            let delay_loop = c.delay_loop.unwrap_or(rs_delay_loop);
            let (default_retry, default_dbr) = match c.kind {
                "HTTP_GET" | "SSL_GET" => (1, Duration::from_secs(3)),
                "DNS_CHECK" => (3, delay_loop),
                "MISC_CHECK" => (0, Duration::from_secs(1)),
                _ => (1, Duration::from_secs(1)),
            };
            let conn = c.conn.clone().map(|mut co| {
                co.connect_timeout = c.connect_timeout.unwrap_or(connect_timeout);
                co
            });
            let common = CheckCommon {
                span: c.span.clone(),
                conn,
                retry: c.retry.or(retry).unwrap_or(default_retry),
                delay_before_retry: c.delay_before_retry.or(rs_dbr).unwrap_or(default_dbr),
                delay_loop,
                warmup: c.warmup.or(rs_warmup).unwrap_or(delay_loop),
                alpha: c.alpha.unwrap_or(rs_alpha),
                log_all_failures: c.log_all_failures,
            };
            let checker = match c.kind {
                "TCP_CHECK" => Checker::Tcp(TcpCheck { common }),
                "PING_CHECK" => Checker::Ping(TcpCheck { common }),
                "HTTP_GET" | "SSL_GET" => {
                    let h = HttpCheck {
                        common,
                        urls: c.urls,
                        virtualhost: c
                            .virtualhost
                            .or_else(|| r.virtualhost.clone())
                            .or_else(|| vs.virtualhost.clone()),
                        http_protocol: c.http_protocol,
                        enable_sni: c.enable_sni,
                        sni_name: c.sni_name,
                    };
                    if c.kind == "HTTP_GET" {
                        Checker::Http(h)
                    } else {
                        Checker::Ssl(h)
                    }
                }
                "MISC_CHECK" => Checker::Misc(MiscCheck {
                    common,
                    path: c.misc_path.unwrap_or_default(),
                    timeout: c.misc_timeout,
                    dynamic: c.misc_dynamic,
                    user: c.user,
                }),
                "SMTP_CHECK" => Checker::Smtp(SmtpCheck {
                    common,
                    helo_name: c.helo_name,
                    hosts: c
                        .hosts
                        .into_iter()
                        .map(|(mut h, t)| {
                            h.connect_timeout =
                                t.unwrap_or(c.connect_timeout.unwrap_or(connect_timeout));
                            h
                        })
                        .collect(),
                }),
                "UDP_CHECK" => Checker::Udp(UdpCheck {
                    common,
                    payload: c.payload,
                    require_reply: c.require_reply,
                    min_reply_length: c.min_reply_length,
                    max_reply_length: c.max_reply_length,
                }),
                "DNS_CHECK" => Checker::Dns(DnsCheck {
                    common,
                    query_type: c.dns_type,
                    name: c.dns_name,
                }),
                "FILE_CHECK" => Checker::File(FileCheck {
                    span: c.span,
                    track_file: c.file_track.unwrap_or_default(),
                    weight: c.file_weight.map(|w| w.0),
                    weight_reverse: c.file_weight.is_some_and(|w| w.1),
                }),
                other => Checker::Other {
                    kind: other.to_string(),
                    span: c.span,
                },
            };
            checkers.push(checker);
        }
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
        p.diags.add(
            Severity::Error,
            &vs.span,
            format!("virtual_server {label} has no real servers; ignored"),
            Some("add `real_server ADDRESS PORT { ... }`".into()),
        );
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
        p.diags.add(
            Severity::Error,
            &vs.span,
            format!(
                "Warning - quorum {} for {label} exceeds total weight of real servers {weight_sum}, reducing quorum to {to}",
                vs.quorum
            ),
            Some(format!("write `quorum {to}` or less")),
        );
        vs.quorum = to;
    }
    if vs.hysteresis >= vs.quorum && vs.hysteresis > 0 {
        let to = vs.quorum.saturating_sub(1);
        p.diags.add(
            Severity::Error,
            &vs.span,
            format!(
                "Virtual server {label}: hysteresis {} >= quorum {}; setting hysteresis to {to}",
                vs.hysteresis, vs.quorum
            ),
            Some(format!("write `hysteresis {to}` or less")),
        );
        vs.hysteresis = to;
    }
}
