//! `lvsadm`: what `ipvsadm -L` shows, from the data path's maps, in
//! ipvsadm 1.29–1.31's formats (`ipvsadm.c`: print_title,
//! print_service_entry, print_largenum, print_conn, list_timeout,
//! list_daemon, `-S` in restore syntax), so scripts that parse
//! `ipvsadm -ln` keep working.
//!
//! Everything here is a pure function over a [`Snapshot`] (read once from a
//! [`State`], plus the [`Extras`] only the agent knows); the binary takes
//! the snapshot from the pinned maps, tests from a test-run data path.
//!
//! - [`list`]: `-L -n`, `--stats`, `--rate`, `--exact`, `--persistent-conn`,
//!   `-t/-u` selection; [`timeout`]: `--timeout`;
//! - [`conns`]: `-L -n -c`, persistence templates included;
//! - [`save`]: `-S -n`;
//! - [`rate`]: per-second rates between two snapshots;
//! - [`json`]: `--json` for every listing;
//! - [`status`]: the agent's status file and `--health`, `--vrrp`, `--daemon`.

pub mod cli;
mod conns;
pub mod json;
mod list;
pub mod rate;
mod save;
pub mod status;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr},
};

use lvs_common::{
    tcp, SVC_F_PERSISTENT, SVC_F_SCHED_DH, SVC_F_SCHED_EXPECTED_DELAY, SVC_F_SCHED_FALLBACK,
    SVC_F_SCHED_IDLE_FIRST, SVC_F_SCHED_LC, SVC_F_SCHED_MH, SVC_F_SCHED_PORT, SVC_F_SCHED_RR,
    SVC_F_SCHED_SH, SVC_F_SCHED_WEIGHTED,
};

pub use conns::conns;
pub use list::{list, timeout};
pub use save::save;
pub use status::{daemon, health, vrrp};

use crate::datapath::{
    desired::addr_of,
    read::{BackendView, ConnView, ServiceView, TemplateView},
    DatapathError, Protocol, State,
};

/// ipvsadm's title names the IPVS version it talks to; we print the version
/// of the IPVS behaviour we reproduce, as ipvsadm would.
pub const IPVS_VERSION: &str = "1.2.1";

#[derive(Debug, thiserror::Error)]
pub enum AdmError {
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    /// ipvsadm says `No such service` (ipvs_strerror of ESRCH) for `-t`/`-u`
    /// naming a service that is not there; we add which one.
    #[error("No such service: {0}")]
    NoSuchService(Select),
}

/// One virtual service, as `-t VIP:port` / `-u VIP:port` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Select {
    pub proto: Protocol,
    pub vip: IpAddr,
    pub port: u16,
}

impl std::fmt::Display for Select {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opt = match self.proto {
            Protocol::Tcp => "-t",
            Protocol::Udp => "-u",
            Protocol::Sctp => "--sctp-service",
        };
        write!(f, "{opt} {}", endpoint(self.vip, self.port))
    }
}

impl Select {
    pub fn matches(&self, s: &ServiceView) -> bool {
        Some(self.proto) == s.proto && self.vip == s.vip && self.port == s.port
    }
}

/// What the agent knows of a service that the maps do not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceExtra {
    /// The configured `lb_algo` (the maps only know rr vs wrr tables).
    pub scheduler: Option<String>,
}

/// Per-service extras, by service; missing entries fall back to what the
/// maps say (`rr` if the service walks an rr table, else `wrr`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    pub services: BTreeMap<Select, ServiceExtra>,
}

/// What the listings need, read once so one listing is consistent.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub services: Vec<ServiceView>,
    pub conns: Vec<ConnView>,
    pub templates: Vec<TemplateView>,
    /// The IPv6 tables' entries.
    pub conns6: Vec<ConnView<lvs_common::FlowKey6>>,
    pub templates6: Vec<TemplateView<lvs_common::PersistKey6>>,
    pub timeouts_s: [u32; tcp::NUM_STATES],
    /// Printed as ipvsadm's `(size=N)`: IPVS prints its connection hash
    /// table size (4096 by default); ours is the `conns` map's max_entries,
    /// the number that bounds the table the same way.
    pub table_size: u32,
    pub extras: Extras,
}

impl Snapshot {
    pub fn take(state: &State) -> Result<Self, AdmError> {
        let mut snap = Self::take_services(state)?;
        snap.conns = state.conns()?;
        snap.templates = state.templates()?;
        snap.conns6 = state.conns6()?;
        snap.templates6 = state.templates6()?;
        Ok(snap)
    }

    /// Without the connection and template lists (`conns` and
    /// `templates` empty): enough for every listing but `-c`, and one walk
    /// of a table that may hold a million entries fewer.
    pub fn take_services(state: &State) -> Result<Self, AdmError> {
        Ok(Snapshot {
            services: state.services()?,
            conns: Vec::new(),
            templates: Vec::new(),
            conns6: Vec::new(),
            templates6: Vec::new(),
            timeouts_s: state.settings()?.timeouts_s,
            table_size: state.conn_table_size()?,
            extras: Extras::default(),
        })
    }

    pub fn with_extras(mut self, extras: Extras) -> Self {
        self.extras = extras;
        self
    }

    /// The scheduler name ipvsadm would print.
    pub fn scheduler(&self, s: &ServiceView) -> String {
        let configured = s.proto.and_then(|proto| {
            self.extras
                .services
                .get(&Select {
                    proto,
                    vip: s.vip,
                    port: s.port,
                })
                .and_then(|e| e.scheduler.clone())
        });
        configured.unwrap_or_else(|| scheduler_name(s.svc.flags).into())
    }

    /// The scheduler flags ipvsadm prints in parentheses after the name
    /// (`sh-fallback,sh-port`), from what the data path runs.
    pub fn sched_flags(&self, s: &ServiceView) -> Option<String> {
        let f = s.svc.flags;
        let prefix = if f & SVC_F_SCHED_SH != 0 {
            "sh"
        } else if f & SVC_F_SCHED_MH != 0 {
            "mh"
        } else {
            return None;
        };
        crate::sched::flag_words(
            prefix,
            f & SVC_F_SCHED_FALLBACK != 0,
            f & SVC_F_SCHED_PORT != 0,
        )
    }

    /// Services in ipvsadm's order (`ipvs_cmp_services`: protocol, then
    /// address, then port), optionally only one.
    pub(crate) fn sorted_services(&self, select: Option<Select>) -> Vec<&ServiceView> {
        let mut v: Vec<&ServiceView> = self
            .services
            .iter()
            .filter(|s| select.is_none_or(|sel| sel.matches(s)))
            .collect();
        v.sort_by_key(|s| (s.proto.map(|p| p.number()), s.vip, s.port));
        v
    }

    /// The real servers ipvsadm would list, in its order (`ipvs_cmp_dests`:
    /// address, then port). A real server that failed its checks is out
    /// (`alive` false): keepalived deletes it from IPVS, so `ipvsadm -ln`
    /// stops listing it, and scripts that look for it rely on that. With
    /// `inhibit_on_failure` the agent keeps it alive at weight 0, as
    /// keepalived does. `--health` and `--json` still show every one.
    pub(crate) fn listed_backends<'a>(&self, s: &'a ServiceView) -> Vec<&'a BackendView> {
        let mut v: Vec<&BackendView> = s.backends.iter().filter(|b| b.alive).collect();
        v.sort_by_key(|b| (b.addr, b.port));
        v
    }

    /// The service with this id.
    pub(crate) fn service_by_id(&self, id: u32) -> Option<&ServiceView> {
        self.services.iter().find(|s| s.svc.id == id)
    }

    /// A backend's address: ids are per service in the maps.
    pub(crate) fn backend_addr(&self, service: u32, backend: u32) -> Option<(IpAddr, u16)> {
        self.service_by_id(service)?
            .backends
            .iter()
            .find(|b| b.id == backend)
            .map(|b| (b.addr, b.port))
    }
}

/// The listing variants (ipvsadm's FMT_* flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Format {
    pub stats: bool,
    pub rate: bool,
    pub exact: bool,
    pub persistent_conn: bool,
    /// `--thresholds`: Uthreshold Lthreshold ActiveConn InActConn.
    pub thresholds: bool,
}

pub(crate) fn proto_name(s: &ServiceView) -> &'static str {
    s.proto.map(|p| p.name()).unwrap_or("???")
}

/// `persistent T [mask M]` parts, if persistent: the mask only when not /32
/// (IPv6: a prefix length, only when not 128), as ipvsadm prints it.
pub(crate) fn persistence(s: &ServiceView) -> Option<(u32, Option<String>)> {
    if s.svc.flags & SVC_F_PERSISTENT == 0 {
        return None;
    }
    let mask = match s.vip {
        IpAddr::V4(_) => {
            let mask = addr_of(s.svc.persist_mask_be);
            (mask != Ipv4Addr::BROADCAST).then(|| mask.to_string())
        }
        IpAddr::V6(_) => {
            let plen = s.svc.persist_mask_be;
            (plen != 128).then(|| plen.to_string())
        }
    };
    Some((s.svc.persist_timeout_s, mask))
}

pub use crate::datapath::desired::endpoint;

/// ipvsadm's `print_largenum`: `%9llu`, or K/M/G/T in 8 digits, or with
/// `--exact` the whole number in at least 9 columns and always a space.
pub(crate) fn largenum(out: &mut String, i: u64, exact: bool) {
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

/// C's `%-Ns` after `buf[N] = '\0'`: ipvsadm cuts names to the column.
pub(crate) fn cut(s: String, n: usize) -> String {
    if s.len() > n {
        s[..n].to_string()
    } else {
        s
    }
}

/// The scheduler the data path's `SVC_F_SCHED_*` bits `f` run, by
/// ipvsadm's name: the first entry whose bits are all set (the
/// least-connection variants before plain lc), else wrr.
fn scheduler_name(f: u32) -> &'static str {
    const LC: u32 = SVC_F_SCHED_LC;
    const NAMES: [(u32, &str); 10] = [
        (SVC_F_SCHED_RR, "rr"),
        (SVC_F_SCHED_SH, "sh"),
        (SVC_F_SCHED_MH, "mh"),
        (SVC_F_SCHED_DH, "dh"),
        (LC | lvs_common::SVC_F_SCHED_FO, "fo"),
        (LC | lvs_common::SVC_F_SCHED_OVF, "ovf"),
        (LC | SVC_F_SCHED_IDLE_FIRST, "nq"),
        (LC | SVC_F_SCHED_EXPECTED_DELAY, "sed"),
        (LC | SVC_F_SCHED_WEIGHTED, "wlc"),
        (LC, "lc"),
    ];
    NAMES
        .iter()
        .find(|(bits, _)| f & bits == *bits)
        .map_or("wrr", |(_, name)| name)
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
        assert_eq!(f(99_999_999, false), " 99999999");
        assert_eq!(f(123_456_789, false), "  123456K");
        assert_eq!(f(12_345_678_901, false), "   12345M");
        assert_eq!(f(123_456_789_012_345, false), "     123T");
        assert_eq!(f(123_456_789, true), " 123456789");
        assert_eq!(f(12, true), "       12");
    }

    #[test]
    fn cut_is_strncpy_like() {
        assert_eq!(cut("abcdef".into(), 3), "abc");
        assert_eq!(cut("ab".into(), 3), "ab");
    }
}
