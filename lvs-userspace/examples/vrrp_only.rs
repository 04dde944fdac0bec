//! Runs only the VRRP side of a keepalived.conf (for lab tests until lvsd
//! carries it): `vrrp_only -f FILE [--stats FILE] [--hold-preempt SECS]`.
//!
//! `--hold-preempt SECS` holds the preemption gate for SECS seconds after
//! start (as lvsd does while connection sync fills a returning director).
//!
//! SIGTERM/SIGINT: graceful stop (priority 0). SIGHUP: reload. With
//! `--stats FILE` the instances' counters are written there as JSON every
//! 100 ms (atomically, via a rename).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use lvs_userspace::vrrp::{PreemptGate, Vrrp};
use tokio::signal::unix::{signal, SignalKind};

fn load(path: &std::path::Path) -> Result<lvs_config::Config> {
    let r = lvs_config::parse_file(path, &lvs_config::ParseOptions::default());
    for d in r.diagnostics.iter() {
        eprintln!("{d}");
    }
    if r.exit_code() == lvs_config::EXIT_CANNOT_RUN {
        bail!("{}: configuration cannot run", path.display());
    }
    Ok(r.config)
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let mut conf = None;
    let mut stats = None;
    let mut hold = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-f" => conf = args.next().map(PathBuf::from),
            "--stats" => stats = args.next().map(PathBuf::from),
            "--hold-preempt" => {
                let secs: f64 = args.next().context("--hold-preempt SECS")?.parse()?;
                hold = Some(Duration::from_secs_f64(secs));
            }
            _ => bail!("usage: vrrp_only -f FILE [--stats FILE] [--hold-preempt SECS]"),
        }
    }
    let conf = conf.context("-f FILE is required")?;
    let cfg = load(&conf)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let gate = PreemptGate::open();
    if let Some(d) = hold {
        gate.hold_until(std::time::Instant::now() + d);
    }
    let mut vrrp = Vrrp::start(&cfg, tx, gate).await?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match load(&conf) {
                Ok(c) => if let Err(e) = vrrp.reload(&c).await {
                    eprintln!("reload: {e}");
                },
                Err(e) => eprintln!("reload refused: {e:#}"),
            },
            Some(ev) = rx.recv() => {
                println!("EVENT {} {:?} -> {:?}", ev.instance, ev.prev, ev.state);
            }
            _ = tick.tick() => {
                if let Some(p) = &stats {
                    let tmp = p.with_extension("tmp");
                    std::fs::write(&tmp, serde_json::to_vec(&vrrp.stats())?)?;
                    std::fs::rename(&tmp, p)?;
                }
            }
        }
    }
    vrrp.shutdown().await;
    Ok(())
}
