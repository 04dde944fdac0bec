//! `lvsd`'s command line: keepalived's options where they make sense, and
//! ours for the data path.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum XdpModeArg {
    /// Native (driver) mode, falling back to generic with a warning.
    #[default]
    Auto,
    Native,
    Generic,
}

#[derive(Debug, Parser)]
#[command(
    name = "lvsd",
    version,
    about = "keepalived-compatible director: VRRP, health checks and an XDP Direct-Routing data path",
    long_about = "lvsd reads a keepalived.conf and does what keepalived does with IPVS in \
Direct Routing mode, with an XDP program in place of IPVS: it runs the vrrp_instances \
(VRRP v2/v3, interoperable with keepalived), the real servers' health checkers, quorum \
and sorry servers, and connection sync, and keeps the data path's pinned BPF maps in step. \
Run lvsd -t first: it lists what it runs, what it accepts but ignores and what it refuses."
)]
pub struct Args {
    /// Configuration file (keepalived.conf syntax).
    #[arg(
        short = 'f',
        long = "use-file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    pub use_file: PathBuf,
    /// Check the configuration and exit: 0 ok, 4 errors but would run, 3 cannot run.
    #[arg(short = 't', long = "config-test")]
    pub config_test: bool,
    /// Stay in the foreground (lvsd never forks; accepted for keepalived compatibility).
    #[arg(short = 'n', long = "dont-fork")]
    pub dont_fork: bool,
    /// Log to the console (lvsd always logs to stderr; accepted for compatibility).
    #[arg(short = 'l', long = "log-console")]
    pub log_console: bool,
    /// Detailed logs (debug level).
    #[arg(short = 'D', long = "log-detail")]
    pub log_detail: bool,
    /// PID file.
    #[arg(short = 'p', long = "pid")]
    pub pid: Option<PathBuf>,
    /// Config id for `@id` conditional lines (default: the short host name).
    #[arg(short = 'i', long = "config-id")]
    pub config_id: Option<String>,
    /// Run the VRRP side only (no checkers, no data path).
    #[arg(short = 'P', long = "vrrp", conflicts_with = "check")]
    pub vrrp: bool,
    /// Run the checkers and the data path only (no VRRP).
    #[arg(short = 'C', long = "check")]
    pub check: bool,

    /// Interface(s) to attach the data path to (default: the vrrp_instances' interfaces).
    #[arg(long = "interface")]
    pub interface: Vec<String>,
    /// bpffs directory holding the pinned instances.
    #[arg(long, default_value = crate::datapath::pins::DEFAULT_ROOT)]
    pub bpffs: PathBuf,
    /// Instance name: one pin directory, one set of maps.
    #[arg(long, default_value = "default")]
    pub instance: String,
    /// XDP attach mode.
    #[arg(long = "xdp-mode", value_enum, default_value_t = XdpModeArg::Auto)]
    pub xdp_mode: XdpModeArg,
    /// On SIGTERM/SIGINT leave the data path forwarding (for an upgrade): a
    /// new lvsd re-adopts it without dropping a flow.
    #[arg(long = "keep-datapath")]
    pub keep_datapath: bool,
    /// Detach and remove the pinned data path of --instance, then exit.
    #[arg(long)]
    pub flush: bool,
    /// Established connections the table holds (when it is created), on
    /// any number of CPUs. Memory: see README, "Sizing".
    #[arg(long = "conn-table-size", default_value_t = lvs_common::DEFAULT_CONN_TABLE_SIZE)]
    pub conn_table_size: u32,
    /// Each CPU's share of the half-open table: new flows wait there for
    /// the client's second packet, so SYN floods never reach the
    /// connection table. A handshake survives share / (SYNs per second on
    /// its CPU) seconds of flood.
    #[arg(long = "half-open-size", default_value_t = lvs_common::DEFAULT_HALF_OPEN_PER_CPU)]
    pub half_open_per_cpu: u32,
    /// IPVS's expire_nodest_conn: reschedule the packets of a connection
    /// whose real server went down (TCP ones are then reset by the new
    /// server). Default, as IPVS: drop them, so a health-check flap only
    /// stalls its connections.
    #[arg(long = "expire-nodest-conn")]
    pub expire_nodest_conn: bool,
    /// IPVS's expire_quiescent_template: a persistence template naming a
    /// real server at weight 0 (drained, or failed with
    /// inhibit_on_failure) no longer binds its clients to it.
    #[arg(long = "expire-quiescent-template")]
    pub expire_quiescent_template: bool,
    /// Connection sync: a file holding a shared key; every sync datagram
    /// then carries an HMAC-SHA256 under it and only such are accepted.
    #[arg(long = "sync-key-file")]
    pub sync_key_file: Option<PathBuf>,
    /// Connection sync: the longest a starting director holds VRRP
    /// preemption while it receives its peers' tables (seconds; a
    /// vrrp_instance's `preempt_delay`, if longer, wins).
    #[arg(long = "sync-hold", default_value_t = 10)]
    pub sync_hold_s: u64,
    /// Seconds a real server removed by a reload keeps its connections
    /// (weight 0) before it is deleted.
    #[arg(long = "drain-timeout", default_value_t = 60)]
    pub drain_timeout: u64,
    /// Where to write the status `lvsadm --health/--vrrp/--daemon` read
    /// (default /run/lvs-xdp/<instance>/status.json).
    #[arg(long = "status-file")]
    pub status_file: Option<std::path::PathBuf>,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    #[arg(long)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Enter this network namespace first (keepalived's `net_namespace`).
    #[arg(long)]
    pub netns: Option<String>,
}
