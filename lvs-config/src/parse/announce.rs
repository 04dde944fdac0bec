//! `bgp_announce { }`: lvs-xdp's route-health-injection block. keepalived
//! has no keyword for it; it reads like its neighbours:
//!
//! ```text
//! bgp_announce {
//!     daemon bird
//!     local_as 65001
//!     neighbor 198.18.0.250 as 65000
//!     bfd on
//! }
//! ```

use std::time::Duration;

use super::{leaf, Kw, Parser};
use crate::model::{AnnounceDaemon, BgpAnnounce, BgpNeighbor, Config};
use crate::tree::Node;

/// The block as read, before its end-of-block check.
#[derive(Default)]
struct Draft {
    daemon: Option<AnnounceDaemon>,
    daemon_path: Option<String>,
    control_path: Option<String>,
    socket: Option<String>,
    config_file: Option<String>,
    router_id: Option<std::net::Ipv4Addr>,
    local_as: Option<u32>,
    neighbors: Vec<BgpNeighbor>,
    bfd: Option<bool>,
    bfd_interval: Option<Duration>,
    bfd_multiplier: Option<u32>,
    hold_time: Option<u32>,
    withdraw_delay: Option<Duration>,
}

/// AS numbers are 32-bit (RFC 6793); 0 is reserved.
const AS_MAX: u32 = u32::MAX;

static ANNOUNCE_KW: &[Kw<Draft>] = &[
    leaf("daemon", |p, d, n| {
        let Some(w) = p.arg(n, 1) else { return };
        match w.text.as_str() {
            "bird" => d.daemon = Some(AnnounceDaemon::Bird),
            other => p
                .diags
                .fatal(
                    &w.span,
                    format!("`daemon {other}`: lvsd drives BIRD 2 only"),
                )
                .help("write `daemon bird`"),
        }
        p.extra(n, 1);
    }),
    leaf("daemon_path", |p, d, n| d.daemon_path = p.one_string(n)),
    leaf("control_path", |p, d, n| d.control_path = p.one_string(n)),
    leaf("socket", |p, d, n| d.socket = p.one_string(n)),
    leaf("config_file", |p, d, n| d.config_file = p.one_string(n)),
    leaf("router_id", |p, d, n| {
        if let Some(w) = p.arg(n, 1) {
            d.router_id = p.ipv4_word("router_id", w);
        }
        p.extra(n, 1);
    }),
    leaf("local_as", |p, d, n| {
        d.local_as = p.number(n, 1, 1, AS_MAX);
        p.extra(n, 1);
    }),
    leaf("neighbor", |p, d, n| {
        // `neighbor ADDR as AS`
        let Some(w) = p.arg(n, 1) else { return };
        let Some(addr) = p.ipv4_word("neighbor", w) else {
            return;
        };
        match n.words.get(2) {
            Some(kw) if kw.text == "as" => {}
            Some(kw) => {
                p.diags
                    .fatal(
                        &kw.span,
                        format!("`neighbor {addr}`: expected `as`, found `{}`", kw.text),
                    )
                    .help(format!("write `neighbor {addr} as 65000`"));
                return;
            }
            None => {
                p.diags
                    .fatal(
                        &n.end_span(),
                        format!("`neighbor {addr}` needs the peer's AS"),
                    )
                    .help(format!("write `neighbor {addr} as 65000`"));
                return;
            }
        }
        let Some(remote_as) = p.number(n, 3, 1, AS_MAX) else {
            return;
        };
        p.extra(n, 3);
        if d.neighbors.iter().any(|x| x.addr == addr) {
            p.diags
                .error(n.span(), format!("neighbor {addr} given twice; ignored"));
            return;
        }
        d.neighbors.push(BgpNeighbor {
            span: n.span().clone(),
            addr,
            remote_as,
        });
    }),
    leaf("bfd", |p, d, n| d.bfd = p.flag(n)),
    leaf("bfd_interval", |p, d, n| {
        d.bfd_interval = p.timer(n, 1, Duration::from_millis(10), Duration::from_secs(60));
        p.extra(n, 1);
    }),
    leaf("bfd_multiplier", |p, d, n| {
        d.bfd_multiplier = p.number(n, 1, 1, 255);
        p.extra(n, 1);
    }),
    leaf("hold_time", |p, d, n| {
        // RFC 4271: 0 or at least 3 s; lvsd always wants keepalives.
        d.hold_time = p.number(n, 1, 3, 65535);
        p.extra(n, 1);
    }),
    leaf("withdraw_delay", |p, d, n| {
        d.withdraw_delay = p.timer(n, 1, Duration::ZERO, Duration::from_secs(3600));
        p.extra(n, 1);
    }),
];

pub(super) fn parse(p: &mut Parser, cfg: &mut Config, n: &Node) {
    let Some(body) = &n.block else {
        p.diags
            .fatal(n.span(), "`bgp_announce` needs a block")
            .help("write `bgp_announce { daemon bird ... }`");
        return;
    };
    p.extra(n, 0);
    if cfg.bgp_announce.is_some() {
        p.diags
            .error(n.span(), "second `bgp_announce` block; ignored");
        return;
    }
    let mut d = Draft::default();
    p.dispatch("bgp_announce", &[ANNOUNCE_KW], &[], &mut d, body);

    // End of block: what cannot run without.
    let at = n.span();
    let Some(daemon) = d.daemon else {
        p.diags
            .fatal(at, "`bgp_announce` names no daemon")
            .help("add `daemon bird`");
        return;
    };
    let Some(local_as) = d.local_as else {
        p.diags
            .fatal(at, "`bgp_announce` has no `local_as`")
            .help("add `local_as 65001` (this director's AS)");
        return;
    };
    if d.neighbors.is_empty() {
        p.diags
            .fatal(at, "`bgp_announce` has no `neighbor`")
            .help("add `neighbor ROUTER_ADDR as ROUTER_AS`");
        return;
    }
    cfg.bgp_announce = Some(BgpAnnounce {
        span: at.clone(),
        daemon,
        daemon_path: d.daemon_path.unwrap_or_else(|| "bird".into()),
        control_path: d.control_path.unwrap_or_else(|| "birdc".into()),
        socket: d.socket,
        config_file: d.config_file,
        router_id: d.router_id,
        local_as,
        neighbors: d.neighbors,
        bfd: d.bfd.unwrap_or(true),
        bfd_interval: d.bfd_interval.unwrap_or(Duration::from_millis(100)),
        bfd_multiplier: d.bfd_multiplier.unwrap_or(3),
        hold_time: d.hold_time.unwrap_or(3),
        withdraw_delay: d.withdraw_delay.unwrap_or(Duration::from_secs(2)),
    });
}
