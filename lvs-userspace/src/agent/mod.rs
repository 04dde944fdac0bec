//! `lvsd`: reads a keepalived.conf, runs the checkers and VRRP, and keeps
//! the XDP data path in step through one reconciler that owns the maps.
//!
//! One tokio runtime; the checkers and VRRP instances are tasks that send
//! messages; only the main loop touches the data path. SIGHUP reloads by
//! diff (unchanged services keep flows, counters and checker state; an
//! invalid file is refused and the old config keeps running); SIGTERM and
//! SIGINT stop cleanly (the data path is removed unless --keep-datapath).

pub mod announce;
pub mod cli;
pub mod conn_sync;
pub mod interfaces;
mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod plan;
pub mod reconcile;
pub mod status;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, Result};
use clap::Parser;
use lvs_config::{Config, ParseOptions, ParseResult, Severity, EXIT_CANNOT_RUN};
use tracing::{error, info, warn};

use self::cli::Args;
use crate::datapath::{self, owner::InstanceLock};

/// `lvsd`'s main: exit codes follow keepalived's.
pub fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args);

    if args.flush {
        // Never under a running lvsd's feet.
        let _lock = match InstanceLock::acquire(&args.bpffs, &args.instance, Duration::ZERO) {
            Ok(l) => l,
            Err(e) => {
                error!("flush: {e}");
                return ExitCode::from(1);
            }
        };
        return match datapath::flush_instance(&args.bpffs, &args.instance) {
            Ok(()) => {
                info!(
                    "flushed instance {} under {}",
                    args.instance,
                    args.bpffs.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                error!("flush: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(ns) = &args.netns {
        // Before any thread exists, so every runtime thread is in it.
        if let Err(e) = enter_netns(ns) {
            error!("net_namespace {ns}: {e:#}");
            return ExitCode::from(EXIT_CANNOT_RUN as u8);
        }
    }

    let parsed = load_config(&args.use_file, args.config_id.as_deref());
    if args.config_test {
        for d in parsed.diagnostics.iter() {
            eprintln!("{d}");
        }
        let code = parsed.exit_code();
        if code == 0 {
            eprintln!("{}: configuration OK", args.use_file.display());
        }
        return ExitCode::from(code as u8);
    }
    log_diagnostics(&parsed);
    if parsed.exit_code() == EXIT_CANNOT_RUN {
        error!(
            "{}: configuration cannot run, exiting",
            args.use_file.display()
        );
        return ExitCode::from(EXIT_CANNOT_RUN as u8);
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args, parsed.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(args: &Args) {
    let default = if args.log_detail { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LVSD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_config(path: &Path, config_id: Option<&str>) -> ParseResult {
    let opts = match config_id {
        Some(id) => ParseOptions::with_config_id(id),
        None => ParseOptions::default(),
    };
    lvs_config::parse_file(path, &opts)
}

fn log_diagnostics(parsed: &ParseResult) {
    for d in parsed.diagnostics.iter() {
        match d.severity {
            Severity::Warning => warn!("{d}"),
            Severity::Error | Severity::Fatal => error!("{d}"),
        }
    }
}

fn enter_netns(name: &str) -> Result<()> {
    let path = PathBuf::from("/run/netns").join(name);
    let f = std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: a valid namespace fd; setns affects only this (single) thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setns");
    }
    Ok(())
}

/// Signals first, then the agent's start, its loop, and its stop.
async fn run(args: Args, cfg: Config) -> Result<()> {
    let mut signals = lifecycle::Signals::install()?;
    let mut agent = lifecycle::Agent::start(args, cfg).await?;
    agent.serve(&mut signals).await;
    agent.stop().await
}
