//! `global_defs`.

use std::time::Duration;

use super::{block, leaf, Kw, Parser};
use crate::keywords::GLOBAL_ALL;
use crate::model::{Config, GlobalDefs, LvsSyncDaemon, LvsTimeouts, NotifyFifo};
use crate::tree::Node;

const MAX_SECS: Duration = Duration::from_secs(u32::MAX as u64);

static GLOBAL_KW: &[Kw<GlobalDefs>] = &[
    leaf("router_id", |p, g, n| {
        g.router_id = p.string(n, 1);
        p.extra(n, 1);
    }),
    block("notification_email", |_, g, n| {
        for e in n.block.iter().flatten() {
            g.notification_email
                .extend(e.words.iter().map(|w| w.text.clone()));
        }
    }),
    leaf("notification_email_from", |p, g, n| {
        g.notification_email_from = p.string(n, 1)
    }),
    leaf("smtp_server", |p, g, n| {
        if let Some(ip) = p.ip(n, 1) {
            // keepalived: `smtp_server ADDR [PORT]`, port default 25.
            let port = if n.words.len() > 2 {
                p.port(n, 2).unwrap_or(25)
            } else {
                25
            };
            g.smtp_server = Some((ip, port));
        }
    }),
    leaf("smtp_helo_name", |p, g, n| {
        g.smtp_helo_name = p.string(n, 1)
    }),
    leaf("smtp_connect_timeout", |p, g, n| {
        if let Some(d) = p.timer(n, 1, Duration::from_secs(1), MAX_SECS) {
            g.smtp_connect_timeout = d;
        }
    }),
    leaf("smtp_alert", |p, g, n| g.smtp_alert = p.flag(n)),
    leaf("script_user", |p, g, n| g.script_user = p.rest(n, 1)),
    leaf("enable_script_security", |_, g, _| {
        g.enable_script_security = true
    }),
    leaf("vrrp_version", |p, g, n| {
        if let Some(v) = p.number(n, 1, 2, 3) {
            g.vrrp_version = v;
        }
    }),
    leaf("default_interface", |p, g, n| {
        g.default_interface = p.string(n, 1)
    }),
    leaf("vrrp_mcast_group4", |p, g, n| {
        if let Some(w) = p.arg(n, 1) {
            g.vrrp_mcast_group4 = p.ipv4_word("vrrp_mcast_group4", w);
        }
    }),
    leaf("vrrp_mcast_group6", |p, g, n| {
        // keepalived global_parser.c vrrp_mcast_group6_handler.
        let Some(w) = p.arg(n, 1) else { return };
        let Ok(a) = w.text.parse::<std::net::IpAddr>() else {
            p.diags.error(
                &w.span,
                format!("Can't parse vrrp_mcast_group6 [{}]. Skipping", w.text),
            );
            return;
        };
        let std::net::IpAddr::V6(a) = a else {
            p.diags.error(
                &w.span,
                format!("vrrp_mcast_group6 [{}] is not IPv6. Skipping", w.text),
            );
            return;
        };
        if !a.is_multicast() {
            p.diags.error(
                &w.span,
                format!("vrrp_mcast_group6 [{}] is not multicast. Skipping", w.text),
            );
            return;
        }
        if a.segments()[0] & 0xff0f != 0xff02 {
            p.diags.warn(
                &w.span,
                format!(
                    "vrrp_mcast_group6 [{}] should be link-local multicast.",
                    w.text
                ),
            );
        }
        g.vrrp_mcast_group6 = Some(a);
    }),
    leaf("vrrp_garp_interval", |p, g, n| {
        if let Some(d) = p.timer(n, 1, Duration::from_micros(1), Duration::from_secs(4294)) {
            g.vrrp_garp_interval = d;
        }
    }),
    leaf("vrrp_gna_interval", |p, g, n| {
        if let Some(d) = p.timer(n, 1, Duration::from_micros(1), Duration::from_secs(4294)) {
            g.vrrp_gna_interval = d;
        }
    }),
    leaf("vrrp_garp_master_delay", |p, g, n| {
        if let Some(v) = p.number(n, 1, 0, u32::MAX) {
            g.vrrp_garp_master_delay = Duration::from_secs(v.into());
        }
    }),
    leaf("vrrp_garp_master_repeat", |p, g, n| {
        if let Some(v) = p.number(n, 1, 0, u32::MAX) {
            g.vrrp_garp_master_repeat = v.max(1);
        }
    }),
    leaf("vrrp_garp_master_refresh", |p, g, n| {
        if let Some(v) = p.number(n, 1, 0, u32::MAX) {
            g.vrrp_garp_master_refresh = (v > 0).then(|| Duration::from_secs(v.into()));
        }
    }),
    leaf("vrrp_strict", |_, g, _| g.vrrp_strict = true),
    leaf("dynamic_interfaces", |_, g, _| g.dynamic_interfaces = true),
    leaf("lvs_flush", |_, g, _| g.lvs_flush = true),
    leaf("notify_fifo", |p, g, n| fifo(p, &mut g.notify_fifo, n)),
    leaf("vrrp_notify_fifo", |p, g, n| {
        fifo(p, &mut g.vrrp_notify_fifo, n)
    }),
    leaf("notify_fifo_script", |p, g, n| {
        fifo_script(p, &mut g.notify_fifo, n)
    }),
    leaf("vrrp_notify_fifo_script", |p, g, n| {
        fifo_script(p, &mut g.vrrp_notify_fifo, n)
    }),
    leaf("vrrp_startup_delay", |p, g, n| {
        // keepalived: decimal seconds, at most TIMER_MAX_SEC (1000).
        if let Some(d) = p.timer(n, 1, Duration::ZERO, Duration::from_secs(1000)) {
            g.vrrp_startup_delay = d;
        }
    }),
    leaf("lvs_sync_daemon", |p, g, n| {
        g.lvs_sync_daemon = lvs_sync_daemon(p, n)
    }),
    leaf("lvs_timeouts", |p, g, n| {
        // keepalived: pairs of (tcp|tcpfin|udp) and seconds, any order.
        let mut i = 1;
        while let Some(w) = n.words.get(i) {
            let Some(v) = n.words.get(i + 1) else {
                p.diags
                    .error(&w.span, format!("lvs_timeouts `{}` needs a value", w.text));
                break;
            };
            let secs = p.number_word("lvs_timeouts", v, 1, 86_400 * 365);
            match w.text.as_str() {
                "tcp" => g.lvs_timeouts.tcp = secs,
                "tcpfin" => g.lvs_timeouts.tcpfin = secs,
                "udp" => g.lvs_timeouts.udp = secs,
                other => {
                    p.diags.error(
                        &w.span,
                        format!("unknown lvs_timeouts `{other}` (tcp, tcpfin, udp); ignored"),
                    );
                }
            }
            i += 2;
        }
    }),
];

/// `notify_fifo PATH [USER [GROUP]]` (the FIFO is created by root; the
/// user/group words are accepted, the FIFO stays root's).
fn fifo(p: &mut Parser, f: &mut Option<NotifyFifo>, n: &Node) {
    let Some(path) = p.string(n, 1) else { return };
    match f {
        Some(f) => f.path = path,
        None => *f = Some(NotifyFifo { path, script: None }),
    }
}

/// `notify_fifo_script SCRIPT`: the script line as one string.
fn fifo_script(p: &mut Parser, f: &mut Option<NotifyFifo>, n: &Node) {
    let Some(script) = p.string(n, 1) else { return };
    match f {
        Some(f) => f.script = Some(script),
        None => {
            *f = Some(NotifyFifo {
                path: String::new(),
                script: Some(script),
            })
        }
    }
}

/// `lvs_sync_daemon IF [INSTANCE] [id N] [maxlen N] [port N] [ttl N]
/// [group ADDR]`, as keepalived's global parser reads it.
fn lvs_sync_daemon(p: &mut Parser, n: &Node) -> Option<LvsSyncDaemon> {
    let interface = p.string(n, 1)?;
    let mut d = LvsSyncDaemon {
        span: n.span().clone(),
        interface,
        instance: None,
        syncid: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
    };
    let mut i = 2;
    while let Some(w) = n.words.get(i) {
        let value = n.words.get(i + 1);
        match (w.text.as_str(), value) {
            ("id", Some(v)) => d.syncid = p.number_word("lvs_sync_daemon id", v, 0, u8::MAX),
            ("maxlen", Some(v)) => d.maxlen = p.number_word("lvs_sync_daemon maxlen", v, 1, 65507),
            ("port", Some(v)) => d.port = p.number_word("lvs_sync_daemon port", v, 1, u16::MAX),
            ("ttl", Some(v)) => d.ttl = p.number_word("lvs_sync_daemon ttl", v, 1, u8::MAX),
            ("group", Some(v)) => {
                d.group = p.ipv4_word("lvs_sync_daemon group", v);
                if d.group.is_some_and(|g| !g.is_multicast()) {
                    p.diags.error(
                        &v.span,
                        "lvs_sync_daemon group must be a multicast address; the default 224.0.0.81 is used",
                    );
                    d.group = None;
                }
            }
            ("id" | "maxlen" | "port" | "ttl" | "group", None) => {
                p.diags.error(
                    &w.span,
                    format!("lvs_sync_daemon `{}` needs a value", w.text),
                );
                return Some(d);
            }
            (name, _) if i == 2 => {
                d.instance = Some(name.to_string());
                i += 1;
                continue;
            }
            (other, _) => {
                p.diags.error(
                    &w.span,
                    format!("unknown lvs_sync_daemon option `{other}` (id, maxlen, port, ttl, group); ignored"),
                );
                return Some(d);
            }
        }
        i += 2;
    }
    Some(d)
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            span: None,
            router_id: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_helo_name: None,
            // keepalived global_data.c: DEFAULT_SMTP_CONNECTION_TIMEOUT 30 s.
            smtp_connect_timeout: Duration::from_secs(30),
            smtp_alert: None,
            script_user: None,
            enable_script_security: false,
            vrrp_version: 2,
            default_interface: None,
            vrrp_mcast_group4: None,
            vrrp_mcast_group6: None,
            vrrp_garp_interval: Duration::ZERO,
            vrrp_gna_interval: Duration::ZERO,
            // keepalived vrrp.h: VRRP_GARP_DELAY 5 s, VRRP_GARP_REP 5.
            vrrp_garp_master_delay: Duration::from_secs(5),
            vrrp_garp_master_repeat: 5,
            vrrp_garp_master_refresh: None,
            vrrp_strict: false,
            dynamic_interfaces: false,
            lvs_flush: false,
            vrrp_startup_delay: Duration::ZERO,
            notify_fifo: None,
            vrrp_notify_fifo: None,
            lvs_sync_daemon: None,
            lvs_timeouts: LvsTimeouts::default(),
        }
    }
}

pub(super) fn parse(p: &mut Parser, cfg: &mut Config, n: &Node) {
    let Some(body) = &n.block else {
        p.diags
            .error(n.span(), "`global_defs` needs a block; ignored");
        return;
    };
    if cfg.global.span.is_some() {
        p.diags.warn(
            n.span(),
            "second `global_defs`: its settings are merged into the first",
        );
    } else {
        cfg.global.span = Some(n.span().clone());
    }
    p.extra(n, 0);
    p.dispatch(
        "global_defs",
        &[GLOBAL_KW],
        GLOBAL_ALL,
        &mut cfg.global,
        body,
    );
}

#[cfg(test)]
mod tests {
    use crate::{parse_str, ParseOptions};

    #[test]
    fn lvs_sync_daemon_global_form() {
        let r = parse_str(
            "t.conf",
            "global_defs {\n lvs_sync_daemon bond0 VI_1 id 51 maxlen 1400 port 8849 ttl 2 group 224.0.0.82\n}\n",
            &ParseOptions::default(),
        );
        let d = r.config.global.lvs_sync_daemon.expect("parsed");
        assert_eq!(d.interface, "bond0");
        assert_eq!(d.instance.as_deref(), Some("VI_1"));
        assert_eq!(
            (d.syncid, d.maxlen, d.port, d.ttl),
            (Some(51), Some(1400), Some(8849), Some(2))
        );
        assert_eq!(d.group, Some("224.0.0.82".parse().unwrap()));
        assert!(r.diagnostics.iter().next().is_none(), "no findings");

        let r = parse_str(
            "t.conf",
            "global_defs {\n lvs_timeouts tcp 3600 udp 60\n}\n",
            &ParseOptions::default(),
        );
        let t = r.config.global.lvs_timeouts;
        assert_eq!((t.tcp, t.tcpfin, t.udp), (Some(3600), None, Some(60)));

        let r = parse_str(
            "t.conf",
            "global_defs {\n lvs_sync_daemon eth1 id 7\n}\n",
            &ParseOptions::default(),
        );
        let d = r.config.global.lvs_sync_daemon.expect("parsed");
        assert_eq!((d.instance, d.syncid), (None, Some(7)));

        let r = parse_str(
            "t.conf",
            "global_defs {\n lvs_sync_daemon eth1 group 198.18.0.1\n}\n",
            &ParseOptions::default(),
        );
        let found: Vec<String> = r.diagnostics.iter().map(|d| d.to_string()).collect();
        assert!(
            found
                .iter()
                .any(|d| d.contains("t.conf:2:29") && d.contains("multicast")),
            "{found:?}"
        );
    }
}
