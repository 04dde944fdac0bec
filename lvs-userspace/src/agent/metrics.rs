//! `lvsd --metrics ADDR`: Prometheus text exposition (format 0.0.4, checked
//! by `promtool check metrics`) of the data path's counters, the real
//! servers' state, quorum and VRRP, rendered on each scrape from the maps
//! (the same numbers `lvsadm --stats --exact` prints). Connection counts
//! come from the latest pass over the connection tables (see
//! `datapath::table`, done on a thread of the agent's own): a scrape never
//! walks the tables.
//!
//! Table-driven: a new counter is one row in `SERVICE_COUNTERS`,
//! `REAL_SERVER_GAUGES` or `TABLE_GAUGES`; every data-path verdict
//! (`lvs_common::verdict::NAMES`) and event (`lvs_common::event::NAMES`)
//! appears on its own. Alert rules
//! over these names: packaging/prometheus/alerts.yml.

use std::{collections::BTreeMap, fmt::Write as _, sync::Arc};

use lvs_common::{verdict, Stats};

use super::{plan::ServiceId, reconcile::Reconciler};
use crate::datapath::{
    read::{BackendView, ServiceView},
    table::ConnCounts,
    State,
};
use crate::vrrp::VrrpState;

/// What the metrics show of a VRRP instance (from `Vrrp::stats`).
#[derive(Clone, Debug)]
pub struct VrrpView {
    pub state: VrrpState,
    /// Times it became MASTER.
    pub became_master: u64,
}

/// What only the agent knows (the maps have the rest).
#[derive(Clone, Debug, Default)]
pub struct AgentView {
    pub vrrp: BTreeMap<String, VrrpView>,
    /// Services whose real servers' weight is below their quorum.
    pub quorum_lost: Vec<ServiceId>,
    /// Connection sync, when configured.
    pub sync: Option<super::status::SyncStatus>,
    /// Connections per real server and the tables' fill, from the last pass.
    pub conns: Arc<ConnCounts>,
}

impl AgentView {
    pub fn of(vrrp: Option<&crate::vrrp::Vrrp>, rec: &Reconciler) -> Self {
        let vrrp = vrrp
            .map(|v| {
                v.stats()
                    .into_iter()
                    .map(|s| {
                        (
                            s.instance.clone(),
                            VrrpView {
                                state: s.state,
                                became_master: s.became_master,
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        AgentView {
            vrrp,
            quorum_lost: rec.quorum_lost().collect(),
            sync: None,
            conns: rec.conn_counts(),
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// Counters kept per service and per real server (`Stats`).
type StatsCounter = (&'static str, &'static str, fn(&Stats) -> u64);
const SERVICE_COUNTERS: [StatsCounter; 3] = [
    ("packets", "Packets forwarded", |s| s.packets),
    ("bytes", "Bytes forwarded", |s| s.bytes),
    ("connections", "Connections scheduled", |s| s.conns),
];

/// Per real server gauges.
type BackendGauge = (&'static str, &'static str, fn(&BackendView) -> u64);
const REAL_SERVER_GAUGES: [BackendGauge; 4] = [
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

/// The connection tables' fill, as the last pass counted it.
struct Tables {
    established: u64,
    size: u64,
    half_open: u64,
    half_open_size: u64,
}

impl Tables {
    fn read(state: &State, counts: &ConnCounts) -> Option<Tables> {
        Some(Tables {
            established: counts.entries,
            size: state.conn_table_size().ok()?.into(),
            half_open: counts.half_open_entries,
            half_open_size: state.half_open_size().ok()?.into(),
        })
    }
}

/// Whole-data-path gauges over [`Tables`].
type TableGauge = (&'static str, &'static str, fn(&Tables) -> u64);
const TABLE_GAUGES: [TableGauge; 4] = [
    (
        "lvs_conn_table_entries",
        "Established entries in the connection table (conns).",
        |t| t.established,
    ),
    (
        "lvs_conn_table_size",
        "Established connections the connection table holds at most.",
        |t| t.size,
    ),
    (
        "lvs_half_open_entries",
        "Flows awaiting the client's second packet (half_open); near its size during a SYN flood.",
        |t| t.half_open,
    ),
    (
        "lvs_half_open_size",
        "Entries the half-open table holds at most (all CPUs' shares).",
        |t| t.half_open_size,
    ),
];

/// One family being written: HELP and TYPE once, then its samples.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.0, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// Label values: backslash, double quote and newline escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text: backslash and newline escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

struct SvcLabels {
    vip: String,
    port: String,
    proto: &'static str,
}

impl SvcLabels {
    fn of(s: &ServiceView) -> Self {
        SvcLabels {
            vip: s.vip.to_string(),
            port: s.port.to_string(),
            proto: s.proto.map(|p| p.name()).unwrap_or("?"),
        }
    }
    fn labels(&self) -> [(&'static str, &str); 3] {
        [
            ("vip", &self.vip),
            ("port", &self.port),
            ("proto", self.proto),
        ]
    }
}

/// The whole exposition. Errors reading the maps become a comment line, so
/// a scrape never fails half-way through a family.
pub fn render(state: &State, agent: &AgentView) -> String {
    let services = match state.services_counted(&agent.conns) {
        Ok(s) => s,
        Err(e) => return format!("# lvsd: reading the data path failed: {e}\n"),
    };
    let mut out = Out(String::new());
    out.family("lvs_build_info", Kind::Gauge, "lvsd's version (always 1).");
    out.sample(
        "lvs_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );

    let svc: Vec<SvcLabels> = services.iter().map(SvcLabels::of).collect();
    for (what, help, get) in SERVICE_COUNTERS {
        let name = format!("lvs_service_{what}_total");
        out.family(
            &name,
            Kind::Counter,
            &format!("{help} for a virtual service."),
        );
        for (s, l) in services.iter().zip(&svc) {
            out.sample(&name, &l.labels(), get(&s.stats));
        }
    }
    out.family(
        "lvs_service_quorum_up",
        Kind::Gauge,
        "0 while the live real servers' weight is below the service's quorum (sorry server in use).",
    );
    for (s, l) in services.iter().zip(&svc) {
        let lost = agent
            .quorum_lost
            .iter()
            .any(|id| id.vip == s.vip && id.port == s.port && Some(id.proto) == s.proto);
        out.sample("lvs_service_quorum_up", &l.labels(), (!lost) as u64);
    }

    // Real servers: the service's labels plus real_server="ip:port".
    let reals: Vec<(usize, &BackendView, String)> = services
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.backends
                .iter()
                .map(move |b| (i, b, crate::datapath::desired::endpoint(b.addr, b.port)))
        })
        .collect();
    let real_labels = |i: usize, rs: &str| -> Vec<(&str, String)> {
        let l = &svc[i];
        vec![
            ("vip", l.vip.clone()),
            ("port", l.port.clone()),
            ("proto", l.proto.to_owned()),
            ("real_server", rs.to_owned()),
        ]
    };
    for (what, help, get) in SERVICE_COUNTERS {
        let name = format!("lvs_real_server_{what}_total");
        out.family(&name, Kind::Counter, &format!("{help} to a real server."));
        for (i, b, rs) in &reals {
            let l = real_labels(*i, rs);
            let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            out.sample(&name, &l, get(&b.stats));
        }
    }
    for (name, help, get) in REAL_SERVER_GAUGES {
        out.family(name, Kind::Gauge, help);
        for (i, b, rs) in &reals {
            let l = real_labels(*i, rs);
            let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            out.sample(name, &l, get(b));
        }
    }

    if let Ok(v) = state.verdicts() {
        out.family(
            "lvs_datapath_packets_total",
            Kind::Counter,
            "Packets seen by the XDP program, by verdict reason.",
        );
        for (reason, n) in verdict::NAMES.iter().zip(v.iter()) {
            out.sample("lvs_datapath_packets_total", &[("reason", reason)], *n);
        }
    }
    if let Ok(v) = state.events() {
        out.family(
            "lvs_datapath_events_total",
            Kind::Counter,
            "Events in the XDP program beside the verdicts (flow-cache hits, half-open flows scheduled and promoted, sync events lost).",
        );
        for (event, n) in lvs_common::event::NAMES.iter().zip(v.iter()) {
            out.sample("lvs_datapath_events_total", &[("event", event)], *n);
        }
    }
    if let Some(t) = Tables::read(state, &agent.conns) {
        for (name, help, get) in TABLE_GAUGES {
            out.family(name, Kind::Gauge, help);
            out.sample(name, &[], get(&t));
        }
    }

    // `vrrp_instance`, not `instance`: Prometheus gives every scraped
    // series an `instance` label of its own (the target).
    out.family(
        "lvs_vrrp_master",
        Kind::Gauge,
        "1 while the VRRP instance is MASTER.",
    );
    for (name, v) in &agent.vrrp {
        out.sample(
            "lvs_vrrp_master",
            &[("vrrp_instance", name)],
            (v.state == VrrpState::Master) as u64,
        );
    }
    out.family(
        "lvs_vrrp_became_master_total",
        Kind::Counter,
        "Times the VRRP instance became MASTER.",
    );
    for (name, v) in &agent.vrrp {
        out.sample(
            "lvs_vrrp_became_master_total",
            &[("vrrp_instance", name)],
            v.became_master,
        );
    }
    if let Some(sync) = &agent.sync {
        render_sync(&mut out, sync);
    }
    out.0
}

/// Connection sync: what flowed, what was refused, and this director's
/// own warm start (bulk sync).
fn render_sync(out: &mut Out, s: &super::status::SyncStatus) {
    let labels = [("interface", s.interface.as_str())];
    for (name, kind, help, value) in [
        (
            "lvs_sync_entries_sent_total",
            Kind::Counter,
            "Connection and template entries sent to the other directors (updates and bulk answers).",
            s.sent_entries,
        ),
        (
            "lvs_sync_entries_received_total",
            Kind::Counter,
            "Entries received from the other directors.",
            s.received_entries,
        ),
        (
            "lvs_sync_datagrams_rejected_total",
            Kind::Counter,
            "Sync datagrams refused: off-link, wrong TTL or group, bad HMAC, malformed, other syncid.",
            s.rejected_datagrams,
        ),
        (
            "lvs_sync_bulk_in_progress",
            Kind::Gauge,
            "1 while this director's warm-start bulk sync runs (VRRP preemption held).",
            (s.bulk.state == "requesting") as u64,
        ),
        (
            "lvs_sync_bulk_entries",
            Kind::Gauge,
            "Entries the last warm-start bulk sync received.",
            s.bulk.entries,
        ),
        (
            "lvs_sync_bulk_answers_total",
            Kind::Counter,
            "Bulk requests of other directors this one answered.",
            s.bulk.answers_sent,
        ),
    ] {
        out.family(name, kind, help);
        out.sample(name, &labels, value);
    }
    out.family(
        "lvs_sync_bulk_duration_seconds",
        Kind::Gauge,
        "How long the last warm-start bulk sync took.",
    );
    let _ = writeln!(
        out.0,
        "lvs_sync_bulk_duration_seconds{{interface=\"{}\"}} {:.3}",
        escape_label(&s.interface),
        s.bulk.duration_ms as f64 / 1000.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut o = Out(String::new());
        o.sample("m", &[("a", "x\"y\\z\nw")], 3);
        assert_eq!(o.0, "m{a=\"x\\\"y\\\\z\\nw\"} 3\n");
    }
}
