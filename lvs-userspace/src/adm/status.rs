//! What the maps do not hold — health checks, VRRP, connection sync — comes
//! from the agent's status file, which `lvsd` writes every second
//! (atomically: write, then rename). The type is the agent's own
//! (`agent::status`), re-exported here so `lvsadm` and `lvsd` cannot drift
//! apart; this module renders it for `--health`, `--vrrp` and `--daemon`,
//! the columns ipvsadm never had.

use std::{fmt::Write as _, path::PathBuf};

pub use crate::agent::status::InstanceStatus;
pub use crate::agent::status::{now_unix_s, RealHealth, Status, SyncStatus};

/// `/run/lvs-xdp/<instance>/status.json`.
pub fn status_path(instance: &str) -> PathBuf {
    crate::agent::status::default_path(instance)
}

/// `--health`: what the checkers say of each real server.
pub fn health(st: &Status) -> String {
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

/// `--vrrp`: each instance's state, priority, master and advert counters,
/// rejected adverts by reason.
pub fn vrrp(st: &Status) -> String {
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

/// `--daemon` in list_daemon's words. lvs-xdp runs the sender and the
/// receiver together (no role to switch on failover), so both lines print.
pub fn daemon(st: &Status) -> String {
    let mut out = sync_daemon(st);
    // lvs-xdp's own: the BGP announcement and its sessions.
    if let Some(a) = &st.announce {
        out += &crate::announce::daemon_lines(a);
    }
    out
}

fn sync_daemon(st: &Status) -> String {
    let Some(s) = &st.sync else {
        return String::new();
    };
    // `group` is "address:port" in the status file.
    let extra = match s.group.rsplit_once(':') {
        Some((group, port)) => format!(", group={group}, port={port}, ttl=1"),
        None if !s.group.is_empty() => format!(", group={}, ttl=1", s.group),
        None => String::new(),
    };
    let mut out: String = ["master", "backup"]
        .iter()
        .map(|role| {
            format!(
                "{role} sync daemon (mcast={}, syncid={}{extra})\n",
                s.interface, s.syncid
            )
        })
        .collect();
    // lvs-xdp's own lines: what ipvsadm cannot know.
    if !s.bulk.state.is_empty() {
        let b = &s.bulk;
        out += &format!(
            "bulk sync: {}, {} entries from {} peer(s) in {} ms; answered {} request(s)\n",
            b.state, b.entries, b.peers, b.duration_ms, b.answers_sent
        );
        out += &format!(
            "sync entries: sent {}, received {}; datagrams rejected {}\n",
            s.sent_entries, s.received_entries, s.rejected_datagrams
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_lines_as_list_daemon() {
        let st = Status {
            sync: Some(SyncStatus {
                interface: "bond0".into(),
                syncid: 51,
                group: "224.0.0.81:8848".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            daemon(&st),
            "master sync daemon (mcast=bond0, syncid=51, group=224.0.0.81, port=8848, ttl=1)\n\
             backup sync daemon (mcast=bond0, syncid=51, group=224.0.0.81, port=8848, ttl=1)\n"
        );
        assert_eq!(daemon(&Status::default()), "");
    }

    #[test]
    fn status_round_trips_through_its_file() {
        let dir = std::env::temp_dir().join(format!("adm-status-{}", std::process::id()));
        let path = dir.join("status.json");
        let st = Status {
            pid: 7,
            updated_unix_s: 100,
            ..Default::default()
        };
        st.write(&path).unwrap();
        assert_eq!(Status::read(&path).unwrap(), st);
        let _ = std::fs::remove_dir_all(dir);
    }
}
