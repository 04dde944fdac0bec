//! `lvsd --metrics ADDR`: Prometheus text exposition of the data path's
//! counters, the real servers' state and VRRP, rendered on each scrape from
//! the maps (the same numbers `lvsadm --stats --exact` prints).

use std::{collections::BTreeMap, fmt::Write as _};

use lvs_common::verdict;

use crate::datapath::State;
use crate::vrrp::VrrpState;

/// What the metrics show of a VRRP instance (from `Vrrp::stats`).
#[derive(Clone, Debug)]
pub struct VrrpView {
    pub state: VrrpState,
    /// Times it became MASTER.
    pub became_master: u64,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The whole exposition. Errors reading the maps become a comment line, so
/// a scrape never fails half-way through a family.
pub fn render(state: &State, vrrp: &BTreeMap<String, VrrpView>) -> String {
    let mut out = String::new();
    let services = match state.services() {
        Ok(s) => s,
        Err(e) => return format!("# lvsd: reading the data path failed: {e}\n"),
    };
    let svc_label = |s: &crate::datapath::read::ServiceView| {
        format!(
            "vip=\"{}\",port=\"{}\",proto=\"{}\"",
            s.vip,
            s.port,
            s.proto.map(|p| p.name()).unwrap_or("?")
        )
    };
    // The same three counters are kept per service and per real server.
    type Counter = fn(&lvs_common::Stats) -> u64;
    let counters: [(&str, &str, Counter); 3] = [
        ("packets", "Packets forwarded", |s| s.packets),
        ("bytes", "Bytes forwarded", |s| s.bytes),
        ("connections", "Connections scheduled", |s| s.conns),
    ];
    for (what, help, get) in counters {
        let name = format!("lvs_service_{what}_total");
        family(
            &mut out,
            &name,
            "counter",
            &format!("{help} for a virtual service."),
        );
        for s in &services {
            let _ = writeln!(out, "{name}{{{}}} {}", svc_label(s), get(&s.stats));
        }
    }
    for (what, help, get) in counters {
        let name = format!("lvs_real_server_{what}_total");
        family(
            &mut out,
            &name,
            "counter",
            &format!("{help} to a real server."),
        );
        for s in &services {
            for b in &s.backends {
                let _ = writeln!(
                    out,
                    "{name}{{{},real_server=\"{}:{}\"}} {}",
                    svc_label(s),
                    b.addr,
                    b.port,
                    get(&b.stats)
                );
            }
        }
    }
    type Gauge = fn(&crate::datapath::read::BackendView) -> u64;
    let gauges: [(&str, &str, Gauge); 4] = [
        (
            "lvs_real_server_active_connections",
            "Connections in ESTABLISHED (ipvsadm ActiveConn).",
            |b| b.active,
        ),
        (
            "lvs_real_server_inactive_connections",
            "Connections in any other state (ipvsadm InActConn).",
            |b| b.inactive,
        ),
        ("lvs_real_server_weight", "Configured weight.", |b| {
            b.weight as u64
        }),
        (
            "lvs_real_server_up",
            "1 while health checks pass and the server is in the schedule.",
            |b| b.alive as u64,
        ),
    ];
    for (name, help, get) in gauges {
        family(&mut out, name, "gauge", help);
        for s in &services {
            for b in &s.backends {
                let _ = writeln!(
                    out,
                    "{name}{{{},real_server=\"{}:{}\"}} {}",
                    svc_label(s),
                    b.addr,
                    b.port,
                    get(b)
                );
            }
        }
    }
    if let Ok(v) = state.verdicts() {
        family(
            &mut out,
            "lvs_datapath_packets_total",
            "counter",
            "Packets seen by the XDP program, by verdict reason.",
        );
        for (i, n) in v.iter().enumerate() {
            let _ = writeln!(
                out,
                "lvs_datapath_packets_total{{reason=\"{}\"}} {n}",
                verdict::NAMES[i]
            );
        }
    }
    if let Ok(v) = state.events() {
        family(
            &mut out,
            "lvs_datapath_events_total",
            "counter",
            "Events in the XDP program beside the verdicts (flow-cache hits, half-open flows scheduled and promoted, sync events lost).",
        );
        for (i, n) in v.iter().enumerate() {
            let _ = writeln!(
                out,
                "lvs_datapath_events_total{{event=\"{}\"}} {n}",
                lvs_common::event::NAMES[i]
            );
        }
    }
    if let (Ok(conns), Ok(size), Ok(half_size)) = (
        state.conns(),
        state.conn_table_size(),
        state.half_open_size(),
    ) {
        let half = conns.iter().filter(|c| c.half_open).count();
        family(
            &mut out,
            "lvs_conn_table_entries",
            "gauge",
            "Established entries in the connection table (conns).",
        );
        let _ = writeln!(out, "lvs_conn_table_entries {}", conns.len() - half);
        family(
            &mut out,
            "lvs_conn_table_size",
            "gauge",
            "Established connections the connection table holds at most.",
        );
        let _ = writeln!(out, "lvs_conn_table_size {size}");
        family(
            &mut out,
            "lvs_half_open_entries",
            "gauge",
            "Flows awaiting the client's second packet (half_open); near its size during a SYN flood.",
        );
        let _ = writeln!(out, "lvs_half_open_entries {half}");
        family(
            &mut out,
            "lvs_half_open_size",
            "gauge",
            "Entries the half-open table holds at most (all CPUs' shares).",
        );
        let _ = writeln!(out, "lvs_half_open_size {half_size}");
    }
    family(
        &mut out,
        "lvs_vrrp_master",
        "gauge",
        "1 while the VRRP instance is MASTER.",
    );
    for (name, v) in vrrp {
        let _ = writeln!(
            out,
            "lvs_vrrp_master{{instance=\"{name}\"}} {}",
            (v.state == VrrpState::Master) as u8
        );
    }
    family(
        &mut out,
        "lvs_vrrp_became_master_total",
        "counter",
        "Times the VRRP instance became MASTER.",
    );
    for (name, v) in vrrp {
        let _ = writeln!(
            out,
            "lvs_vrrp_became_master_total{{instance=\"{name}\"}} {}",
            v.became_master
        );
    }
    out
}
