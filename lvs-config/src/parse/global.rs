//! `global_defs`.

use std::time::Duration;

use super::{block, leaf, Kw, Parser};
use crate::keywords::GLOBAL_ALL;
use crate::model::{Config, GlobalDefs, NotifyFifo};
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
        if let Some(v) = p.uint(n, 1, 2, 3) {
            g.vrrp_version = v as u8;
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
    leaf("vrrp_garp_master_delay", |p, g, n| {
        if let Some(v) = p.uint(n, 1, 0, u64::from(u32::MAX)) {
            g.vrrp_garp_master_delay = Duration::from_secs(v);
        }
    }),
    leaf("vrrp_garp_master_repeat", |p, g, n| {
        if let Some(v) = p.uint(n, 1, 0, u64::from(u32::MAX)) {
            g.vrrp_garp_master_repeat = (v as u32).max(1);
        }
    }),
    leaf("vrrp_garp_master_refresh", |p, g, n| {
        if let Some(v) = p.uint(n, 1, 0, u64::from(u32::MAX)) {
            g.vrrp_garp_master_refresh = (v > 0).then(|| Duration::from_secs(v));
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
