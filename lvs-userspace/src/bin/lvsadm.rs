//! `lvsadm`: ipvsadm's listings of an lvs-xdp data path, read from its
//! pinned maps, so it works whether `lvsd` runs or not.

use std::{net::SocketAddrV4, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{bail, Context, Result};
use clap::Parser;
use lvs_userspace::{
    adm::{self, Format, Select, Snapshot},
    agent::status::{self, Status},
    datapath::{pins::DEFAULT_ROOT, Inspector, Proto},
};

#[derive(Debug, Parser)]
#[command(
    name = "lvsadm",
    version,
    about = "ipvsadm-compatible listing of an lvs-xdp data path"
)]
struct Args {
    /// List the virtual server table (-L / -l).
    #[arg(short = 'L', long = "list", visible_short_alias = 'l')]
    list: bool,
    /// Numeric output (always: lvsadm never resolves names).
    #[arg(short = 'n', long = "numeric")]
    numeric: bool,
    /// List the connection table.
    #[arg(short = 'c', long = "connection")]
    connection: bool,
    /// Counters (Conns, InPkts, OutPkts, InBytes, OutBytes).
    #[arg(long)]
    stats: bool,
    /// Rates over --interval (CPS, InPPS, OutPPS, InBPS, OutBPS).
    #[arg(long)]
    rate: bool,
    /// Exact numbers, not K/M/G.
    #[arg(long)]
    exact: bool,
    /// Persistence: how many clients are pinned to each real server.
    #[arg(long = "persistent-conn")]
    persistent_conn: bool,
    /// Only this TCP service (VIP:port).
    #[arg(short = 't', long = "tcp-service")]
    tcp_service: Option<SocketAddrV4>,
    /// Only this UDP service (VIP:port).
    #[arg(short = 'u', long = "udp-service")]
    udp_service: Option<SocketAddrV4>,
    /// The TCP, TCP FIN and UDP timeouts.
    #[arg(long)]
    timeout: bool,
    /// The table as ipvsadm-restore input.
    #[arg(short = 'S', long = "save")]
    save: bool,
    /// Health-check state of every real server (from lvsd's status file).
    #[arg(long)]
    health: bool,
    /// VRRP instances: state, priority, master, adverts seen and rejected.
    #[arg(long)]
    vrrp: bool,
    /// The connection-sync daemon, as `ipvsadm -L --daemon` shows it.
    #[arg(long)]
    daemon: bool,
    /// lvsd's status file (default /run/lvs-xdp/<instance>/status.json).
    #[arg(long = "status-file")]
    status_file: Option<PathBuf>,
    /// JSON instead of columns.
    #[arg(long)]
    json: bool,
    /// Seconds between the two samples of --rate.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// The instance (lvsd --instance).
    #[arg(long, default_value = "default")]
    instance: String,
    /// The bpffs directory holding the instances (lvsd --bpffs).
    #[arg(long, default_value = DEFAULT_ROOT)]
    bpffs: PathBuf,
}

fn agent_status(args: &Args) -> Result<Status> {
    let path = args
        .status_file
        .clone()
        .unwrap_or_else(|| status::default_path(&args.instance));
    Status::read(&path).with_context(|| {
        format!(
            "reading {} (written every second by a running lvsd --instance {})",
            path.display(),
            args.instance
        )
    })
}

fn run(args: Args) -> Result<String> {
    let _ = args.numeric;
    if args.health || args.vrrp || args.daemon {
        let st = agent_status(&args)?;
        if args.json {
            return Ok(serde_json::to_string_pretty(&st)? + "\n");
        }
        return Ok(if args.health {
            adm::health(&st)
        } else if args.vrrp {
            adm::vrrp(&st)
        } else {
            adm::daemon(&st)
        });
    }
    let inspector = Inspector::open(&args.bpffs, &args.instance)
        .with_context(|| format!("instance {} under {}", args.instance, args.bpffs.display()))?;
    let snap = Snapshot::take(&inspector)?;
    if args.json {
        return Ok(adm::json(&snap) + "\n");
    }
    if args.timeout {
        return Ok(adm::timeout(&snap));
    }
    if args.save {
        return Ok(adm::save(&snap));
    }
    if args.connection {
        return Ok(adm::conns(&snap));
    }
    let select = match (args.tcp_service, args.udp_service) {
        (Some(a), None) => Some(Select {
            proto: Proto::Tcp,
            vip: *a.ip(),
            port: a.port(),
        }),
        (None, Some(a)) => Some(Select {
            proto: Proto::Udp,
            vip: *a.ip(),
            port: a.port(),
        }),
        (None, None) => None,
        (Some(_), Some(_)) => bail!("give -t or -u, not both"),
    };
    let f = Format {
        stats: args.stats,
        rate: args.rate,
        exact: args.exact,
        persistent_conn: args.persistent_conn,
    };
    if args.rate {
        std::thread::sleep(Duration::from_secs_f64(args.interval.max(0.1)));
        let now = Snapshot::take(&inspector)?;
        return Ok(adm::list(
            &now,
            f,
            select,
            Some(&snap),
            args.interval.max(0.1),
        ));
    }
    let _ = args.list;
    Ok(adm::list(&snap, f, select, None, 1.0))
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lvsadm: {e:#}");
            ExitCode::from(1)
        }
    }
}
