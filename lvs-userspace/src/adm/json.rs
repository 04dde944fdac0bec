//! `--json`: every listing as JSON, for scripts that would rather not parse
//! columns. Field names say the ipvsadm column they match.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{json, Value};

use super::{conns::rows, list::timeouts, persistence, proto_name, rate::Rates, Select, Snapshot};

#[derive(Serialize)]
pub struct JsonService {
    pub protocol: &'static str,
    pub vip: IpAddr,
    pub port: u16,
    pub scheduler: String,
    pub persistent_timeout_s: Option<u32>,
    /// Present with persistence; 255.255.255.255 unless a granularity is set.
    /// A netmask (IPv4) or a prefix length (IPv6).
    pub persistent_mask: Option<String>,
    /// `--stats` columns (cumulative).
    pub conns: u64,
    pub packets: u64,
    pub bytes: u64,
    /// `--rate` columns, when two snapshots were taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rates>,
    pub real_servers: Vec<JsonReal>,
}

#[derive(Serialize)]
pub struct JsonReal {
    pub address: IpAddr,
    pub port: u16,
    pub forward: &'static str,
    pub weight: u32,
    /// In the schedule (health checks pass, MAC resolved).
    pub alive: bool,
    pub active_conns: u64,
    pub inactive_conns: u64,
    /// `--persistent-conn`'s PersistConn: clients pinned here.
    pub persistent_conns: u64,
    pub conns: u64,
    pub packets: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rates>,
}

/// `-L -n [--stats|--rate|--persistent-conn] --json`: one document for all
/// the column sets (they are cheap, and scripts pick what they need).
pub fn services(snap: &Snapshot, select: Option<Select>, rate: Option<(&Snapshot, f64)>) -> Value {
    let services: Vec<JsonService> = snap
        .sorted_services(select)
        .into_iter()
        .map(|s| {
            let before = rate.and_then(|(b, _)| {
                b.services
                    .iter()
                    .find(|p| p.vip == s.vip && p.port == s.port && p.proto == s.proto)
            });
            let secs = rate.map(|(_, secs)| secs).unwrap_or(1.0);
            let persist = persistence(s);
            let mut dests: Vec<_> = s.backends.iter().collect();
            dests.sort_by_key(|b| (b.addr, b.port));
            JsonService {
                protocol: proto_name(s),
                vip: s.vip,
                port: s.port,
                scheduler: snap.scheduler(s),
                persistent_timeout_s: persist.as_ref().map(|(t, _)| *t),
                persistent_mask: persist.map(|(_, m)| {
                    m.unwrap_or_else(|| match s.vip {
                        IpAddr::V4(_) => "255.255.255.255".into(),
                        IpAddr::V6(_) => "128".into(),
                    })
                }),
                conns: s.stats.conns,
                packets: s.stats.packets,
                bytes: s.stats.bytes,
                rate: rate.map(|_| Rates::between(&s.stats, before.map(|b| &b.stats), secs)),
                real_servers: dests
                    .into_iter()
                    .map(|b| {
                        let prev = before.and_then(|p| {
                            p.backends
                                .iter()
                                .find(|x| x.addr == b.addr && x.port == b.port)
                        });
                        JsonReal {
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
                            rate: rate
                                .map(|_| Rates::between(&b.stats, prev.map(|p| &p.stats), secs)),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    json!({
        "version": super::IPVS_VERSION,
        "size": snap.table_size,
        "services": services,
    })
}

/// `-L -n -c --json`.
pub fn conns(snap: &Snapshot, select: Option<Select>) -> Value {
    let ap = |(a, p): (IpAddr, u16)| super::endpoint(a, p);
    let rows: Vec<Value> = rows(snap, select)
        .into_iter()
        .map(|r| {
            json!({
                "protocol": r.protocol,
                "expire_s": r.expire_s,
                "state": r.state,
                "source": ap(r.source),
                "virtual": ap(r.virtual_),
                "destination": r.destination.map(ap),
                "template": r.template,
            })
        })
        .collect();
    json!({ "connections": rows })
}

/// `--timeout --json`.
pub fn timeout(snap: &Snapshot) -> Value {
    let [tcp, tcpfin, udp] = timeouts(snap);
    json!({ "tcp": tcp, "tcpfin": tcpfin, "udp": udp })
}

/// Pretty, with the newline a listing ends with.
pub fn to_text(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}
