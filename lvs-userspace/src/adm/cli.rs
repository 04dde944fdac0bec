//! `lvsadm`'s command line: ipvsadm's listing options. Here rather than in
//! the binary so the man page and completions are generated from it.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;

use crate::datapath::pins::DEFAULT_ROOT;

#[derive(Debug, Parser)]
#[command(
    name = "lvsadm",
    version,
    about = "ipvsadm-compatible listing of an lvs-xdp data path",
    after_help = "lvsadm only lists: the table is lvsd's (keepalived.conf), not edited by hand."
)]
pub struct Args {
    /// List the virtual server table (-L / -l; the default).
    #[arg(short = 'L', long = "list", visible_short_alias = 'l')]
    pub list: bool,
    /// Numeric output (always: lvsadm never resolves names).
    #[arg(short = 'n', long = "numeric")]
    pub numeric: bool,
    /// List the connection table (and persistence templates).
    #[arg(short = 'c', long = "connection")]
    pub connection: bool,
    /// Counters (Conns, InPkts, OutPkts, InBytes, OutBytes).
    #[arg(long)]
    pub stats: bool,
    /// Rates over --interval (CPS, InPPS, OutPPS, InBPS, OutBPS).
    #[arg(long)]
    pub rate: bool,
    /// Exact numbers, not K/M/G.
    #[arg(short = 'X', long)]
    pub exact: bool,
    /// Persistence: how many clients are pinned to each real server.
    #[arg(long = "persistent-conn")]
    pub persistent_conn: bool,
    /// Connection thresholds (Uthreshold, Lthreshold) of each real server.
    #[arg(long)]
    pub thresholds: bool,
    /// Sorted output (the default; accepted for ipvsadm compatibility).
    #[arg(long)]
    pub sort: bool,
    /// Only this TCP service (VIP:port).
    #[arg(short = 't', long = "tcp-service", value_name = "VIP:PORT")]
    pub tcp_service: Option<SocketAddr>,
    /// Only this UDP service (VIP:port).
    #[arg(short = 'u', long = "udp-service", value_name = "VIP:PORT")]
    pub udp_service: Option<SocketAddr>,
    /// The TCP, TCP FIN and UDP timeouts.
    #[arg(long)]
    pub timeout: bool,
    /// The connection-sync daemon, as `ipvsadm -L --daemon` shows it.
    #[arg(long)]
    pub daemon: bool,
    /// The table as ipvsadm-restore input.
    #[arg(short = 'S', long = "save")]
    pub save: bool,
    /// Health-check state of every real server (from lvsd's status file).
    #[arg(long)]
    pub health: bool,
    /// VRRP instances: state, priority, master, adverts seen and rejected.
    #[arg(long)]
    pub vrrp: bool,
    /// lvsd's status file (default `/run/lvs-xdp/<instance>/status.json`).
    #[arg(long = "status-file", value_name = "PATH")]
    pub status_file: Option<PathBuf>,
    /// JSON instead of columns (every listing).
    #[arg(long)]
    pub json: bool,
    /// Seconds between the two samples of --rate.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub interval: f64,
    /// The instance (lvsd --instance).
    #[arg(long, default_value = "default")]
    pub instance: String,
    /// The bpffs directory holding the instances (lvsd --bpffs).
    #[arg(long, default_value = DEFAULT_ROOT, value_name = "DIR")]
    pub bpffs: PathBuf,
}
