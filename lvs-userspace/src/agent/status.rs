//! The agent's state that the maps do not hold — health, VRRP, sync —
//! written every second as JSON (atomically: write, then rename) for
//! `lvsadm --health`, `--vrrp` and `--daemon`.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Default place of the status file of an instance.
pub fn default_path(instance: &str) -> PathBuf {
    PathBuf::from("/run/lvs-xdp")
        .join(instance)
        .join("status.json")
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RealHealth {
    pub protocol: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub real_server: Ipv4Addr,
    pub real_port: u16,
    /// Checker keywords (TCP_CHECK, …); empty = not checked (always up).
    pub checkers: Vec<String>,
    pub up: bool,
    /// Seconds since the epoch of the last failure, if any.
    pub last_failure_unix_s: Option<u64>,
    pub last_reason: Option<String>,
}

/// What `lvsadm --vrrp` shows of an instance.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub state: String,
    pub priority: u8,
    /// The last master heard (or ourselves when MASTER).
    pub master: Option<std::net::IpAddr>,
    pub adverts_received: u64,
    pub adverts_sent: u64,
    pub rejected: std::collections::BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncStatus {
    pub interface: String,
    pub syncid: u8,
    pub group: String,
    #[serde(default)]
    pub sent_entries: u64,
    #[serde(default)]
    pub received_entries: u64,
    #[serde(default)]
    pub rejected_datagrams: u64,
    /// This director's own warm start.
    #[serde(default)]
    pub bulk: crate::sync::BulkStatus,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub pid: u32,
    pub updated_unix_s: u64,
    pub health: Vec<RealHealth>,
    pub vrrp: Vec<InstanceStatus>,
    pub sync: Option<SyncStatus>,
    /// `bgp_announce`: what is announced, the BGP/BFD sessions.
    #[serde(default)]
    pub announce: Option<crate::announce::AnnounceStatus>,
}

pub fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Status {
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(self)?)?;
        std::fs::rename(&tmp, path)
    }

    pub fn read(path: &Path) -> std::io::Result<Status> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}

/// The VRRP instances as `lvsadm --vrrp` shows them.
pub fn vrrp_status(
    cfg: &lvs_config::Config,
    stats: &[crate::vrrp::VrrpStats],
) -> Vec<InstanceStatus> {
    stats
        .iter()
        .map(|st| {
            let inst = cfg.vrrp_instance(&st.instance);
            InstanceStatus {
                name: st.instance.clone(),
                interface: inst.map(|i| i.interface.clone()).unwrap_or_default(),
                vrid: inst.map(|i| i.virtual_router_id).unwrap_or_default(),
                version: inst
                    .and_then(|i| i.version)
                    .unwrap_or(cfg.global.vrrp_version),
                state: st.state.to_string(),
                priority: st.priority,
                master: st.master_ip,
                adverts_received: st.adverts_received,
                adverts_sent: st.adverts_sent,
                rejected: st.rejected.clone(),
            }
        })
        .collect()
}
