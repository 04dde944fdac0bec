//! The userspace half of lvs-xdp.
//!
//! - `datapath`: load or re-adopt the pinned XDP program and maps, apply a
//!   desired state by diff, read counters and connections;
//! - `sched`: the schedules the data path walks (IPVS wrr/rr);
//! - `netlink`: links, neighbours, addresses (rtnetlink), gratuitous ARP;
//! - `check`: keepalived's health checkers (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK);
//! - `vrrp`: keepalived-compatible VRRP v2/v3 instances;
//! - `sync`: connection sync between directors;
//! - `script_security`: who scripts run as, which are refused;
//! - `announce`: route health injection through BIRD (BGP, BFD);
//! - `agent`: `lvsd`, tying config, checkers, VRRP and the data path together;
//! - `adm`: `lvsadm`, the ipvsadm-compatible listing;
//! - `script`: how every configured script is started (one quoting rule).

pub mod adm;
pub mod agent;
pub mod announce;
pub mod check;
pub mod datapath;
pub mod netlink;
pub mod sched;
pub mod script;
pub mod script_security;
pub mod sync;
pub mod vrrp;

/// keepalived.conf parsing and linting.
pub use lvs_config as config;
