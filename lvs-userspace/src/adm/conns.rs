//! `-L -n -c`: the connection table as ipvsadm's list_conn/print_conn
//! print /proc/net/ip_vs_conn, persistence templates included the way IPVS
//! lists them: client port 0 (the client network for a masked template),
//! state NONE, the service's protocol and port.

use std::{fmt::Write as _, net::Ipv4Addr};

use super::{proto_name, Format, Select, Snapshot};
use crate::datapath::{desired::addr_of, Protocol};
use lvs_common::tcp;

/// One row of `-c`, decoded (also what `--json -c` prints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnRow {
    pub protocol: &'static str,
    pub expire_s: u64,
    pub state: &'static str,
    pub source: (Ipv4Addr, u16),
    pub virtual_: (Ipv4Addr, u16),
    /// None when the backend is no longer configured (0.0.0.0:0).
    pub destination: Option<(Ipv4Addr, u16)>,
    pub template: bool,
}

/// The live rows, sorted by client then service (IPVS prints hash order; a
/// stable order diffs better and sorts a client's template before its
/// connections). Entries already idle past their timeout are left out: IPVS
/// would have deleted them, our agent deletes them on its next sweep.
pub fn rows(snap: &Snapshot, select: Option<Select>) -> Vec<ConnRow> {
    let mut rows = Vec::new();
    for c in snap.conns.iter().filter(|c| c.expires_in_s > 0) {
        if let Some(sel) = select {
            let svc = snap.service_by_id(c.conn.service);
            if !svc.is_some_and(|s| sel.matches(s)) {
                continue;
            }
        }
        let state = tcp::STATE_NAMES
            .get(c.conn.state as usize)
            .copied()
            .unwrap_or("ERR!");
        rows.push(ConnRow {
            protocol: Protocol::from_number(c.key.proto)
                .map(|p| p.name())
                .unwrap_or("???"),
            expire_s: c.expires_in_s,
            state,
            source: (addr_of(c.key.src_be), u16::from_be(c.key.sport_be)),
            virtual_: (addr_of(c.key.dst_be), u16::from_be(c.key.dport_be)),
            destination: snap.backend_addr(c.conn.service, c.conn.backend),
            template: false,
        });
    }
    for t in snap.templates.iter().filter(|t| t.expires_in_s > 0) {
        let Some(s) = snap.service_by_id(t.key.service) else {
            continue;
        };
        if select.is_some_and(|sel| !sel.matches(s)) {
            continue;
        }
        rows.push(ConnRow {
            protocol: proto_name(s),
            expire_s: t.expires_in_s,
            state: "NONE",
            source: (addr_of(t.key.client_be), 0),
            virtual_: (s.vip, s.port),
            destination: snap.backend_addr(t.key.service, t.value.backend),
            template: true,
        });
    }
    rows.sort_by_key(|r| (r.source, r.virtual_, r.protocol, !r.template));
    rows
}

/// `expire` as print_conn: "%02d:%02d" of minutes and seconds.
fn expire(s: u64) -> String {
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// `-L -n -c`. With `--persistent-conn` ipvsadm adds `pe name` and
/// `pe_data` to the header; rows have them only with a persistence engine
/// (SIP), which lvs-xdp has not, so rows keep the plain format (as ipvsadm's
/// `n == 11` test does for entries without pe data).
pub fn conns(snap: &Snapshot, f: Format, select: Option<Select>) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if f.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    let ap = |(a, p): (Ipv4Addr, u16)| format!("{a}:{p}");
    for r in rows(snap, select) {
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            r.protocol,
            expire(r.expire_s),
            r.state,
            ap(r.source),
            ap(r.virtual_),
            ap(r.destination.unwrap_or((Ipv4Addr::UNSPECIFIED, 0)))
        );
    }
    out
}
