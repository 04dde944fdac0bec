//! `lvsadm`: ipvsadm's listings of an lvs-xdp data path, read from its
//! pinned maps, so it works whether `lvsd` runs or not.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use anyhow::{bail, Context, Result};
use clap::Parser;
use lvs_userspace::{
    adm::{
        self,
        cli::Args,
        json,
        status::{status_path, Status},
        Format, Select, Snapshot,
    },
    datapath::{Inspector, Protocol},
};

fn agent_status(args: &Args) -> Result<Status> {
    let path = args
        .status_file
        .clone()
        .unwrap_or_else(|| status_path(&args.instance));
    Status::read(&path).with_context(|| {
        format!(
            "reading {} (written every second by a running lvsd --instance {})",
            path.display(),
            args.instance
        )
    })
}

fn select(args: &Args) -> Result<Option<Select>> {
    let sel = |proto, a: SocketAddr| Select {
        proto,
        vip: a.ip(),
        port: a.port(),
    };
    Ok(match (args.tcp_service, args.udp_service) {
        (Some(a), None) => Some(sel(Protocol::Tcp, a)),
        (None, Some(a)) => Some(sel(Protocol::Udp, a)),
        (None, None) => None,
        (Some(_), Some(_)) => bail!("give -t or -u, not both"),
    })
}

fn run(args: Args) -> Result<String> {
    // ipvsadm's own refusal ("options conflicts in the list command").
    if ((args.connection || args.timeout || args.daemon) && (args.stats || args.rate))
        || ((args.timeout || args.daemon) && args.persistent_conn)
    {
        bail!("options conflicts in the list command");
    }
    if args.health || args.vrrp || args.daemon {
        let st = agent_status(&args)?;
        if args.json {
            let v = if args.health {
                serde_json::to_value(&st.health)?
            } else if args.vrrp {
                serde_json::to_value(&st.vrrp)?
            } else {
                serde_json::to_value(&st.sync)?
            };
            return Ok(json::to_text(&v));
        }
        return Ok(if args.health {
            adm::health(&st)
        } else if args.vrrp {
            adm::vrrp(&st)
        } else {
            adm::daemon(&st)
        });
    }
    // The error names the pin directory and asks whether lvsd runs.
    let inspector = Inspector::open(&args.bpffs, &args.instance)?;
    let select = select(&args)?;
    let take = |state: &_| {
        if args.connection {
            Snapshot::take(state)
        } else {
            Snapshot::take_services(state)
        }
    };
    let snap = take(&inspector)?;
    let f = Format {
        stats: args.stats,
        rate: args.rate,
        exact: args.exact,
        persistent_conn: args.persistent_conn,
        thresholds: args.thresholds,
    };
    if args.save {
        return Ok(if args.json {
            json::to_text(&json::services(&snap, select, None))
        } else {
            adm::save(&snap)
        });
    }
    if args.connection {
        return Ok(if args.json {
            json::to_text(&json::conns(&snap, select))
        } else {
            adm::conns(&snap, f, select)
        });
    }
    if args.timeout {
        return Ok(if args.json {
            json::to_text(&json::timeout(&snap))
        } else {
            adm::timeout(&snap)
        });
    }
    if args.rate {
        let secs = args.interval.max(0.1);
        std::thread::sleep(Duration::from_secs_f64(secs));
        let now = take(&inspector)?;
        return Ok(if args.json {
            json::to_text(&json::services(&now, select, Some((&snap, secs))))
        } else {
            adm::list(&now, f, select, Some((&snap, secs)))?
        });
    }
    if args.json {
        return Ok(json::to_text(&json::services(&snap, select, None)));
    }
    Ok(adm::list(&snap, f, select, None)?)
}

fn main() -> ExitCode {
    let args = Args::parse();
    // -L, -n and --sort change nothing: listing, numeric and sorted is all
    // lvsadm does.
    let _ = (args.list, args.numeric, args.sort);
    match run(args) {
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
