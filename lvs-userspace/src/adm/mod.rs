//! `lvsadm`: what `ipvsadm -L` shows, from the data path's maps, in
//! ipvsadm 1.31's formats (`ipvsadm.c`: print_title, print_service_entry,
//! print_largenum, print_conn, list_timeout), so scripts that parse
//! `ipvsadm -ln` keep working. Pure functions over a [`Snapshot`]; the
//! binary takes the snapshot from the pinned maps.

use std::{fmt::Write as _, net::Ipv4Addr};

use lvs_common::{tcp, SVC_F_PERSISTENT, SVC_F_SCHED_RR};
use serde::Serialize;

use crate::datapath::{
    desired::addr_of,
    read::{ConnView, ServiceView, TemplateView},
    State,
};

/// ipvsadm's version line names the IPVS version it talks to; we print the
/// version of the IPVS behaviour we reproduce, as ipvsadm would.
pub const IPVS_VERSION: &str = "1.2.1";

/// What the listings need, read once.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub services: Vec<ServiceView>,
    pub conns: Vec<ConnView>,
    pub templates: Vec<TemplateView>,
    pub timeouts_s: [u32; tcp::NUM_STATES],
    pub table_size: u32,
}

impl Snapshot {
    pub fn take(state: &State) -> crate::datapath::Result<Self> {
        Ok(Snapshot {
            services: state.services()?,
            conns: state.conns()?,
            templates: state.templates()?,
            timeouts_s: state.settings()?.timeouts_s,
            table_size: state.conn_table_size()?,
        })
    }
}

/// The listing variants (ipvsadm's FMT_* flags).
#[derive(Clone, Copy, Debug, Default)]
pub struct Format {
    pub stats: bool,
    pub rate: bool,
    pub exact: bool,
    pub persistent_conn: bool,
}

/// Service selection (`-t VIP:port` / `-u VIP:port`).
#[derive(Clone, Copy, Debug)]
pub struct Select {
    pub proto: crate::datapath::Proto,
    pub vip: Ipv4Addr,
    pub port: u16,
}

fn proto_name(s: &ServiceView) -> &'static str {
    s.proto.map(|p| p.name()).unwrap_or("???")
}

fn sched_name(s: &ServiceView) -> &'static str {
    if s.svc.flags & SVC_F_SCHED_RR != 0 {
        "rr"
    } else {
        "wrr"
    }
}

/// ipvsadm's `print_largenum`.
fn largenum(out: &mut String, i: u64, exact: bool) {
    if exact {
        let len = i.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        let _ = write!(out, "{i:>width$}");
    } else if i < 100_000_000 {
        let _ = write!(out, "{i:>9}");
    } else if i < 1_000_000_000 {
        let _ = write!(out, "{:>8}K", i / 1000);
    } else if i < 100_000_000_000 {
        let _ = write!(out, "{:>8}M", i / 1_000_000);
    } else if i < 100_000_000_000_000 {
        let _ = write!(out, "{:>8}G", i / 1_000_000_000);
    } else {
        let _ = write!(out, "{:>8}T", i / 1_000_000_000_000);
    }
}

fn title(out: &mut String, f: Format) {
    if f.stats {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
    } else if f.rate {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        );
    } else if f.persistent_conn {
        let _ = writeln!(
            out,
            "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        );
    } else {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    }
}

/// Per-second rates between two snapshots (`--rate`): cps, inpps, outpps,
/// inbps, outbps. DR sees no reply traffic, so the Out columns are 0.
fn rates(
    now: &crate::datapath::read::BackendView,
    before: Option<&crate::datapath::read::BackendView>,
    secs: f64,
) -> [u64; 5] {
    let b = before.map(|b| b.stats).unwrap_or_default();
    let d = |x: u64, y: u64| ((x.saturating_sub(y)) as f64 / secs).round() as u64;
    [
        d(now.stats.conns, b.conns),
        d(now.stats.packets, b.packets),
        0,
        d(now.stats.bytes, b.bytes),
        0,
    ]
}

/// `-L -n` and its variants. `before` and `secs` are for `--rate`.
pub fn list(
    snap: &Snapshot,
    f: Format,
    select: Option<Select>,
    before: Option<&Snapshot>,
    secs: f64,
) -> String {
    let mut out = String::new();
    if select.is_none() {
        let _ = writeln!(
            out,
            "IP Virtual Server version {IPVS_VERSION} (size={})",
            snap.table_size
        );
    }
    title(&mut out, f);
    let mut services: Vec<&ServiceView> = snap
        .services
        .iter()
        .filter(|s| {
            select.is_none_or(|sel| {
                Some(sel.proto) == s.proto && sel.vip == s.vip && sel.port == s.port
            })
        })
        .collect();
    // ipvs_cmp_services: protocol, then address, then port.
    services.sort_by_key(|s| (s.proto.map(|p| p.number()), s.vip, s.port));
    for s in services {
        let svc_name = format!("{:<4} {}:{}", proto_name(s), s.vip, s.port);
        let prev = before.and_then(|b| {
            b.services
                .iter()
                .find(|p| p.vip == s.vip && p.port == s.port && p.proto == s.proto)
        });
        if f.stats {
            let _ = write!(out, "{svc_name:<33}");
            for v in [s.stats.conns, s.stats.packets, 0, s.stats.bytes, 0] {
                largenum(&mut out, v, f.exact);
            }
        } else if f.rate {
            let _ = write!(out, "{svc_name:<33}");
            let p = prev.map(|p| p.stats).unwrap_or_default();
            let d = |x: u64, y: u64| ((x.saturating_sub(y)) as f64 / secs).round() as u64;
            for v in [
                d(s.stats.conns, p.conns),
                d(s.stats.packets, p.packets),
                0,
                d(s.stats.bytes, p.bytes),
                0,
            ] {
                largenum(&mut out, v, f.exact);
            }
        } else {
            let _ = write!(out, "{svc_name} {}", sched_name(s));
            if s.svc.flags & SVC_F_PERSISTENT != 0 {
                let _ = write!(out, " persistent {}", s.svc.persist_timeout_s);
                let mask = addr_of(s.svc.persist_mask_be);
                if mask != Ipv4Addr::BROADCAST {
                    let _ = write!(out, " mask {mask}");
                }
            }
        }
        out.push('\n');
        // ipvs_cmp_dests: address, then port.
        let mut dests: Vec<_> = s.backends.iter().collect();
        dests.sort_by_key(|b| (b.addr, b.port));
        for b in dests {
            let dname = format!("{}:{}", b.addr, b.port);
            if f.stats {
                let _ = write!(out, "  -> {dname:<28}");
                for v in [b.stats.conns, b.stats.packets, 0, b.stats.bytes, 0] {
                    largenum(&mut out, v, f.exact);
                }
                out.push('\n');
            } else if f.rate {
                let pb = prev.and_then(|p| {
                    p.backends
                        .iter()
                        .find(|x| x.addr == b.addr && x.port == b.port)
                });
                let r = rates(b, pb, secs);
                let _ = write!(out, "  -> {dname:<28} {:>8} {:>8} {:>8}", r[0], r[1], r[2]);
                largenum(&mut out, r[3], f.exact);
                largenum(&mut out, r[4], f.exact);
                out.push('\n');
            } else if f.persistent_conn {
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                    b.weight, b.templates, b.active, b.inactive
                );
            } else {
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                    "Route", b.weight, b.active, b.inactive
                );
            }
        }
    }
    out
}

/// `-L -n -c`: the connection table, persistence templates included (as
/// IPVS lists them: client port 0, state NONE).
pub fn conns(snap: &Snapshot) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let _ = writeln!(
        out,
        "pro expire {:<11} {:<18} {:<18} destination",
        "state", "source", "virtual"
    );
    let backend = |service: u32, id: u32| {
        snap.services
            .iter()
            .filter(|s| s.svc.id == service)
            .flat_map(|s| s.backends.iter())
            .find(|b| b.id == id)
            .map(|b| (b.addr, b.port))
    };
    let expire = |s: u64| format!("{:02}:{:02}", s / 60, s % 60);
    let mut rows: Vec<(String, String)> = Vec::new();
    for c in snap.conns.iter().filter(|c| c.expires_in_s > 0) {
        let proto = crate::datapath::Proto::from_number(c.key.proto)
            .map(|p| p.name())
            .unwrap_or("???");
        let state = if c.conn.state == tcp::STATE_UDP {
            "UDP"
        } else {
            tcp::STATE_NAMES
                .get(c.conn.state as usize)
                .copied()
                .unwrap_or("ERR!")
        };
        let dest = backend(c.conn.service, c.conn.backend)
            .map(|(a, p)| format!("{a}:{p}"))
            .unwrap_or_else(|| "0.0.0.0:0".into());
        let source = format!("{}:{}", addr_of(c.key.src_be), u16::from_be(c.key.sport_be));
        let line = format!(
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            proto,
            expire(c.expires_in_s),
            state,
            source,
            format!("{}:{}", addr_of(c.key.dst_be), u16::from_be(c.key.dport_be)),
            dest
        );
        rows.push((source, line));
    }
    for t in snap.templates.iter().filter(|t| t.expires_in_s > 0) {
        let Some(s) = snap.services.iter().find(|s| s.svc.id == t.key.service) else {
            continue;
        };
        let dest = backend(t.key.service, t.value.backend)
            .map(|(a, p)| format!("{a}:{p}"))
            .unwrap_or_else(|| "0.0.0.0:0".into());
        let source = format!("{}:0", addr_of(t.key.client_be));
        let line = format!(
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            proto_name(s),
            expire(t.expires_in_s),
            "NONE",
            source,
            format!("{}:{}", s.vip, s.port),
            dest
        );
        rows.push((source, line));
    }
    rows.sort();
    for (_, line) in rows {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `--timeout`.
pub fn timeout(snap: &Snapshot) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        snap.timeouts_s[tcp::ESTABLISHED as usize],
        snap.timeouts_s[tcp::FIN_WAIT as usize],
        snap.timeouts_s[tcp::STATE_UDP as usize]
    )
}

/// `-S -n`: the table as ipvsadm-restore input.
pub fn save(snap: &Snapshot) -> String {
    let mut out = String::new();
    let mut services: Vec<&ServiceView> = snap.services.iter().collect();
    services.sort_by_key(|s| (s.proto.map(|p| p.number()), s.vip, s.port));
    for s in services {
        let opt = match s.proto {
            Some(crate::datapath::Proto::Udp) => "-u",
            _ => "-t",
        };
        let svc = format!("{opt} {}:{}", s.vip, s.port);
        let _ = write!(out, "-A {svc} -s {}", sched_name(s));
        if s.svc.flags & SVC_F_PERSISTENT != 0 {
            let _ = write!(out, " -p {}", s.svc.persist_timeout_s);
            let mask = addr_of(s.svc.persist_mask_be);
            if mask != Ipv4Addr::BROADCAST {
                let _ = write!(out, " -M {mask}");
            }
        }
        out.push('\n');
        let mut dests: Vec<_> = s.backends.iter().collect();
        dests.sort_by_key(|b| (b.addr, b.port));
        for b in dests {
            let _ = writeln!(out, "-a {svc} -r {}:{} -g -w {}", b.addr, b.port, b.weight);
        }
    }
    out
}

/// `--json`: everything, for scripts that would rather not parse columns.
#[derive(Serialize)]
pub struct JsonService {
    pub protocol: &'static str,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub scheduler: &'static str,
    pub persistent_timeout_s: Option<u32>,
    pub persistent_mask: Option<Ipv4Addr>,
    pub conns: u64,
    pub packets: u64,
    pub bytes: u64,
    pub real_servers: Vec<JsonReal>,
}

#[derive(Serialize)]
pub struct JsonReal {
    pub address: Ipv4Addr,
    pub port: u16,
    pub forward: &'static str,
    pub weight: u32,
    pub alive: bool,
    pub active_conns: u64,
    pub inactive_conns: u64,
    pub persistent_conns: u64,
    pub conns: u64,
    pub packets: u64,
    pub bytes: u64,
}

pub fn json(snap: &Snapshot) -> String {
    let services: Vec<JsonService> = snap
        .services
        .iter()
        .map(|s| {
            let persistent = s.svc.flags & SVC_F_PERSISTENT != 0;
            JsonService {
                protocol: proto_name(s),
                vip: s.vip,
                port: s.port,
                scheduler: sched_name(s),
                persistent_timeout_s: persistent.then_some(s.svc.persist_timeout_s),
                persistent_mask: persistent.then(|| addr_of(s.svc.persist_mask_be)),
                conns: s.stats.conns,
                packets: s.stats.packets,
                bytes: s.stats.bytes,
                real_servers: s
                    .backends
                    .iter()
                    .map(|b| JsonReal {
                        address: b.addr,
                        port: b.port,
                        forward: "Route",
                        weight: b.weight,
                        alive: b.alive,
                        active_conns: b.active,
                        inactive_conns: b.inactive,
                        persistent_conns: b.templates,
                        conns: b.stats.conns,
                        packets: b.stats.packets,
                        bytes: b.stats.bytes,
                    })
                    .collect(),
            }
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "version": IPVS_VERSION,
        "size": snap.table_size,
        "services": services,
    }))
    .unwrap_or_default()
}

/// `--health`: what the checkers say (ipvsadm has no such column).
pub fn health(st: &crate::agent::status::Status) -> String {
    let mut out = format!(
        "{:<26} {:<22} {:<6} {:<12} {:<20} Reason\n",
        "Prot LocalAddress:Port", "RemoteAddress:Port", "Health", "Checkers", "Last failure"
    );
    for h in &st.health {
        let when = h
            .last_failure_unix_s
            .map(|t| format!("{}s ago", st.updated_unix_s.saturating_sub(t)))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<26} {:<22} {:<6} {:<12} {:<20} {}",
            format!("{:<4} {}:{}", h.protocol, h.vip, h.port),
            format!("{}:{}", h.real_server, h.real_port),
            if h.up { "UP" } else { "DOWN" },
            if h.checkers.is_empty() {
                "-".to_string()
            } else {
                h.checkers.join(",")
            },
            when,
            h.last_reason.as_deref().unwrap_or("-")
        );
    }
    out
}

/// `--vrrp`: each instance's state, priority, master and advert counters.
pub fn vrrp(st: &crate::agent::status::Status) -> String {
    let mut out = format!(
        "{:<10} {:<9} {:>4} {:>3} {:<7} {:>4} {:<15} {:>9} {:>9} Rejected\n",
        "Instance", "Interface", "VRID", "Ver", "State", "Prio", "Master", "Received", "Sent"
    );
    for v in &st.vrrp {
        let rejected = if v.rejected.is_empty() {
            "-".to_string()
        } else {
            v.rejected
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "{:<10} {:<9} {:>4} {:>3} {:<7} {:>4} {:<15} {:>9} {:>9} {}",
            v.name,
            v.interface,
            v.vrid,
            v.version,
            v.state,
            v.priority,
            v.master
                .map(|m| m.to_string())
                .unwrap_or_else(|| "-".into()),
            v.adverts_received,
            v.adverts_sent,
            rejected
        );
    }
    out
}

/// `--daemon`: the connection sync, in ipvsadm's words. lvs-xdp runs the
/// sender and the receiver together (no role to switch on failover).
pub fn daemon(st: &crate::agent::status::Status) -> String {
    match &st.sync {
        Some(s) => format!(
            "master sync daemon (mcast={}, syncid={})\nbackup sync daemon (mcast={}, syncid={})\n",
            s.interface, s.syncid, s.interface, s.syncid
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largenum_matches_ipvsadm() {
        let f = |i, exact| {
            let mut s = String::new();
            largenum(&mut s, i, exact);
            s
        };
        assert_eq!(f(12, false), "       12");
        assert_eq!(f(123_456_789, false), "  123456K");
        assert_eq!(f(12_345_678_901, false), "   12345M");
        assert_eq!(f(123_456_789, true), " 123456789");
        assert_eq!(f(12, true), "       12");
    }
}
