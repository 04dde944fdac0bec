//! The health checkers of a `real_server` (keepalived's check_api.c and
//! check_*.c): one keyword table per kind, and the checker built with what
//! it inherits.

use std::time::Duration;

use super::{CheckerDefaults, RsB, MAX_SECS, WEIGHT_MAX_I};
use crate::diag::Span;
use crate::keywords::CHECKERS;
use crate::model::{
    CheckCommon, CheckPolicy, Checker, ConnOpts, DnsCheck, FileCheck, HexPattern, HttpCheck,
    MiscCheck, SmtpCheck, TcpCheck, UdpCheck, Url,
};
use crate::parse::{block, leaf, Kw, Parser};
use crate::tree::Node;

/// A checker being built; one struct for all checker kinds.
pub(super) struct CheckB {
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
        c.conn().fwmark = p.number(n, 1, 0, u32::MAX)
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
        c.retry = p.number(n, 1, 0, u32::MAX).or(c.retry)
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
        p.diags.warn(n.span(), msg).help(help);
        c.retry = p.number(n, 1, 0, u32::MAX).or(c.retry);
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
                p.diags
                    .error(
                        &w.span,
                        format!(
                            "digest `{}` is not an MD5 sum (32 hex digits); ignored",
                            w.text
                        ),
                    )
                    .help("compute it with `genhash` or `curl -s URL | md5sum`");
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
                _ => p
                    .diags
                    .fatal(
                        &w.span,
                        format!("status_code `{}` is not a status code or range", w.text),
                    )
                    .help("write codes from 100 to 599, or ranges like 200-299"),
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
        p.dispatch("url", &[URL_KW], URL_IGNORED, &mut u, n.body());
        if u.path.is_empty() {
            p.diags
                .error(n.span(), "url without `path`; ignored")
                .help("add `path /`");
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
            n.body(),
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
        p.diags
            .error(
                &span,
                format!("`{text}` is not a hex string; `{}` ignored", n.keyword()),
            )
            .help(if wildcard {
                "write octets in hex, e.g. `0a 1b 2c` (x for any nibble)"
            } else {
                "write octets in hex, e.g. `0a 1b 2c`"
            });
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
        c.min_reply_length = p.number(n, 1, 0, 65535)
    }),
    leaf("max_reply_length", |p, c, n| {
        c.max_reply_length = p.number(n, 1, 0, 65535)
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
            None => p
                .diags
                .error(
                    &w.span,
                    format!("Unknown DNS check type {} - ignoring", w.text),
                )
                .help(format!("use one of {}", DNS_TYPES.join(", "))),
        }
    }),
    leaf("name", |p, c, n| {
        let Some(w) = p.arg(n, 1) else { return };
        let name = w.text.as_str();
        // keepalived refuses empty labels (`a..b`, a leading dot).
        if (name.starts_with('.') && name != ".") || name.contains("..") {
            p.diags.error(
                &w.span,
                format!("DNS_CHECK name '{name}' has empty label - ignoring"),
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
        let Some(w) = p.number(n, 1, -WEIGHT_MAX_I, WEIGHT_MAX_I) else {
            return;
        };
        let reverse = match n.words.get(2).map(|w| w.text.as_str()) {
            None | Some("noreverse") => false,
            Some("reverse") => true,
            Some(other) => {
                p.diags
                    .error(
                        &n.words[2].span,
                        format!("unknown track file weight option {other} - ignoring"),
                    )
                    .help("write `reverse` or nothing");
                return;
            }
        };
        c.file_weight = Some((w, reverse));
    }),
];

pub(super) fn parse_checker(p: &mut Parser, rs: &mut RsB, n: &Node) {
    let kind = CHECKERS
        .iter()
        .copied()
        .find(|k| *k == n.keyword())
        .unwrap_or("TCP_CHECK");
    let mut c = CheckB::new(kind, n.span().clone());
    let body = n.body();
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
            p.diags
                .error(n.span(), format!("{kind} has no `url`; checker ignored"))
                .help("add `url { path / }`");
            return;
        }
        "FILE_CHECK" if c.file_track.is_none() => {
            p.diags
                .error(
                    n.span(),
                    "FILE_CHECK has no track_file specified - ignoring",
                )
                .help("add `track_file NAME`");
            return;
        }
        "MISC_CHECK" if c.misc_path.is_none() => {
            p.diags
                .error(n.span(), "MISC_CHECK has no `misc_path`; checker ignored")
                .help("add `misc_path \"/path/to/script args\"`");
            return;
        }
        _ => {}
    }
    rs.checkers.push(c);
}

/// What a checker inherits where it sets nothing itself: its real
/// server's settings (themselves inherited from the virtual server).
pub(super) struct Inherited {
    pub defaults: CheckerDefaults,
    pub delay_loop: Duration,
    pub alpha: bool,
    pub virtualhost: Option<String>,
}

impl CheckB {
    /// The checker, with keepalived's defaults of its kind for what
    /// neither it nor `inherited` sets.
    pub(super) fn build(self, inherited: &Inherited) -> Checker {
        let c = self;
        let delay_loop = c.delay_loop.unwrap_or(inherited.delay_loop);
        let (default_retry, default_dbr) = match c.kind {
            "HTTP_GET" | "SSL_GET" => (1, Duration::from_secs(3)),
            "DNS_CHECK" => (3, delay_loop),
            "MISC_CHECK" => (0, Duration::from_secs(1)),
            _ => (1, Duration::from_secs(1)),
        };
        let conn = c.conn.clone().map(|mut co| {
            co.connect_timeout = c
                .connect_timeout
                .unwrap_or(inherited.defaults.connect_timeout_or_default());
            co
        });
        let common = CheckCommon {
            span: c.span.clone(),
            conn,
            policy: CheckPolicy {
                retry: c
                    .retry
                    .or(inherited.defaults.retry)
                    .unwrap_or(default_retry),
                delay_before_retry: c
                    .delay_before_retry
                    .or(inherited.defaults.delay_before_retry)
                    .unwrap_or(default_dbr),
                delay_loop,
                warmup: c.warmup.or(inherited.defaults.warmup).unwrap_or(delay_loop),
                alpha: c.alpha.unwrap_or(inherited.alpha),
                log_all_failures: c.log_all_failures,
            },
        };
        match c.kind {
            "TCP_CHECK" => Checker::Tcp(TcpCheck { common }),
            "PING_CHECK" => Checker::Ping(TcpCheck { common }),
            "HTTP_GET" | "SSL_GET" => {
                let h = HttpCheck {
                    common,
                    urls: c.urls,
                    virtualhost: c.virtualhost.or_else(|| inherited.virtualhost.clone()),
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
                        h.connect_timeout = t.unwrap_or(
                            c.connect_timeout
                                .unwrap_or(inherited.defaults.connect_timeout_or_default()),
                        );
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
        }
    }
}
