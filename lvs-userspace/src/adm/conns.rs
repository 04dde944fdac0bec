//! `-L -n -c`: the connection table as ipvsadm's list_conn/print_conn
//! print /proc/net/ip_vs_conn, persistence templates included the way IPVS
//! lists them: client port 0 (the client network for a masked template),
//! state NONE, the service's protocol and port.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr},
};

use super::{endpoint, proto_name, Format, Select, Snapshot};
use crate::datapath::{
    desired::{addr6_of, addr_of},
    Protocol,
};
use lvs_common::tcp;

/// One row of `-c`, decoded (also what `--json -c` prints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnRow {
    pub protocol: &'static str,
    pub expire_s: u64,
    pub state: &'static str,
    pub source: (IpAddr, u16),
    pub virtual_: (IpAddr, u16),
    /// None when the backend is no longer configured (0.0.0.0:0).
    pub destination: Option<(IpAddr, u16)>,
    pub template: bool,
}

/// The live rows, sorted by client then service (IPVS prints hash order; a
/// stable order diffs better and sorts a client's template before its
/// connections). Entries already idle past their timeout are left out: IPVS
/// would have deleted them, our agent deletes them on its next sweep.
pub fn rows(snap: &Snapshot, select: Option<Select>) -> Vec<ConnRow> {
    let mut rows = Vec::new();
    // (proto, source, virtual, entry) of both families' entries.
    let v4 = snap.conns.iter().map(|c| {
        let k = &c.key;
        let src = (addr_of(k.src_be).into(), u16::from_be(k.sport_be));
        let dst = (addr_of(k.dst_be).into(), u16::from_be(k.dport_be));
        (k.proto, src, dst, &c.conn, c.expires_in_s)
    });
    let v6 = snap.conns6.iter().map(|c| {
        let k = &c.key;
        let src = (addr6_of(&k.src_be).into(), u16::from_be(k.sport_be));
        let dst = (addr6_of(&k.dst_be).into(), u16::from_be(k.dport_be));
        (k.proto, src, dst, &c.conn, c.expires_in_s)
    });
    for (proto, source, virtual_, conn, expire_s) in v4.chain(v6).filter(|c| c.4 > 0) {
        if let Some(sel) = select {
            let svc = snap.service_by_id(conn.service);
            if !svc.is_some_and(|s| sel.matches(s)) {
                continue;
            }
        }
        let state = tcp::STATE_NAMES
            .get(conn.state as usize)
            .copied()
            .unwrap_or("ERR!");
        rows.push(ConnRow {
            protocol: Protocol::from_number(proto)
                .map(|p| p.name())
                .unwrap_or("???"),
            expire_s,
            state,
            source,
            virtual_,
            destination: snap.backend_addr(conn.service, conn.backend),
            template: false,
        });
    }
    let t4 = snap.templates.iter().map(|t| {
        let client: IpAddr = addr_of(t.key.client_be).into();
        (t.key.service, client, &t.value, t.expires_in_s)
    });
    let t6 = snap.templates6.iter().map(|t| {
        let client: IpAddr = addr6_of(&t.key.client_be).into();
        (t.key.service, client, &t.value, t.expires_in_s)
    });
    for (service, client, value, expire_s) in t4.chain(t6).filter(|t| t.3 > 0) {
        let Some(s) = snap.service_by_id(service) else {
            continue;
        };
        if select.is_some_and(|sel| !sel.matches(s)) {
            continue;
        }
        rows.push(ConnRow {
            protocol: proto_name(s),
            expire_s,
            state: "NONE",
            source: (client, 0),
            virtual_: (s.vip, s.port),
            destination: snap.backend_addr(service, value.backend),
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
    let ap = |(a, p): (IpAddr, u16)| endpoint(a, p);
    for r in rows(snap, select) {
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            r.protocol,
            expire(r.expire_s),
            r.state,
            ap(r.source),
            ap(r.virtual_),
            ap(r.destination
                .unwrap_or((IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)))
        );
    }
    out
}
