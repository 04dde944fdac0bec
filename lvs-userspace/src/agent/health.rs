//! Health checks of the agent: keepalived's TCP_CHECK, with its options and
//! retry semantics, one task per real server, feeding the reconciler.
//!
//! A real server is declared down after `retry + 1` failed connects
//! (`delay_before_retry` apart), so it leaves the schedule within
//! `delay_loop + connect_timeout × (retry + 1) + delay_before_retry × retry`;
//! one successful connect brings it back. HTTP_GET, SSL_GET and MISC_CHECK
//! are probed by TCP connect to their connect port for now (said once in the
//! log): a dead server is still caught, a wrong answer is not yet.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use lvs_config::{Checker, Config, Protocol, VsAddr};
use tokio::{net::TcpSocket, sync::mpsc, task::JoinHandle};
use tracing::{info, warn};

use super::plan::{fmt_service, RealId, ServiceId};
use crate::datapath::Proto;

/// A checker's verdict on a real server.
#[derive(Clone, Debug)]
pub struct HealthEvent {
    pub service: ServiceId,
    pub real: RealId,
    pub up: bool,
    pub reason: String,
}

/// What one probe does; a change restarts the real server's checker.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ProbeSpec {
    target: SocketAddr,
    bind: Option<SocketAddr>,
    connect_timeout: Duration,
    retry: u32,
    delay_before_retry: Duration,
    delay_loop: Duration,
    alpha: bool,
    kind: String,
}

type Key = (ServiceId, RealId);

/// The running checkers, by real server.
pub struct Health {
    tasks: BTreeMap<Key, (Vec<ProbeSpec>, Vec<JoinHandle<()>>)>,
    events: mpsc::Sender<HealthEvent>,
}

impl Health {
    pub fn new(events: mpsc::Sender<HealthEvent>) -> Self {
        Health {
            tasks: BTreeMap::new(),
            events,
        }
    }

    /// Starts, keeps or stops checkers to match the config: an unchanged
    /// checker keeps running with its state (a reload does not re-probe).
    pub fn reconcile(&mut self, cfg: &Config) {
        let wanted = specs(cfg);
        self.tasks.retain(|key, (specs, handles)| {
            let keep = wanted.get(key) == Some(specs);
            if !keep {
                handles.iter().for_each(JoinHandle::abort);
            }
            keep
        });
        for (key, specs) in wanted {
            if self.tasks.contains_key(&key) {
                continue;
            }
            let (service, real) = key;
            let handles = specs
                .iter()
                .map(|spec| {
                    info!(
                        "Activating healthchecker for service {} for VS {}",
                        fmt_service(real.0, real.1, service.2),
                        fmt_service(service.0, service.1, service.2)
                    );
                    tokio::spawn(probe_loop(spec.clone(), key, self.events.clone()))
                })
                .collect();
            self.tasks.insert(key, (specs, handles));
        }
    }

    /// The checker kinds running for a real server.
    pub fn kinds(&self, key: &(ServiceId, RealId)) -> Vec<String> {
        self.tasks
            .get(key)
            .map(|(specs, _)| specs.iter().map(|s| s.kind.clone()).collect())
            .unwrap_or_default()
    }

    pub fn shutdown(&mut self) {
        for (_, (_, handles)) in std::mem::take(&mut self.tasks) {
            handles.iter().for_each(JoinHandle::abort);
        }
    }
}

/// The probes every checked real server of the plan's services needs.
fn specs(cfg: &Config) -> BTreeMap<Key, Vec<ProbeSpec>> {
    let mut out = BTreeMap::new();
    let mut warned = std::collections::BTreeSet::new();
    for vs in &cfg.virtual_servers {
        let (VsAddr::Ip(IpAddr::V4(vip), vport), Some(proto)) = (
            &vs.addr,
            match vs.protocol {
                Protocol::Tcp => Some(Proto::Tcp),
                Protocol::Udp => Some(Proto::Udp),
                Protocol::Sctp => None,
            },
        ) else {
            continue;
        };
        for rs in &vs.real_servers {
            let IpAddr::V4(addr) = rs.addr else { continue };
            let mut probes = Vec::new();
            for c in &rs.checkers {
                let common = match c {
                    Checker::Tcp(t) => &t.common,
                    Checker::Http(h) | Checker::Ssl(h) => &h.common,
                    other => {
                        if warned.insert(other.kind().to_owned()) {
                            warn!(
                                "{} is not supported yet: real servers it checks count as up",
                                other.kind()
                            );
                        }
                        continue;
                    }
                };
                if !matches!(c, Checker::Tcp(_)) && warned.insert(c.kind().to_owned()) {
                    warn!(
                        "{} is checked by a TCP connect to its port for now (status codes and digests are not verified yet)",
                        c.kind()
                    );
                }
                let Some(conn) = &common.conn else { continue };
                let ip = conn.connect_ip.unwrap_or(rs.addr);
                let port = conn.connect_port.unwrap_or(rs.port);
                probes.push(ProbeSpec {
                    target: SocketAddr::new(ip, port),
                    bind: conn
                        .bindto
                        .map(|b| SocketAddr::new(b, conn.bind_port.unwrap_or(0))),
                    connect_timeout: conn.connect_timeout,
                    retry: common.retry,
                    delay_before_retry: common.delay_before_retry,
                    delay_loop: common.delay_loop,
                    alpha: common.alpha,
                    kind: c.kind().to_owned(),
                });
            }
            if !probes.is_empty() {
                out.insert(((*vip, *vport, proto), (addr, rs.port)), probes);
            }
        }
    }
    out
}

/// One connect attempt.
async fn probe(spec: &ProbeSpec) -> std::io::Result<()> {
    let sock = if spec.target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(b) = spec.bind {
        sock.bind(b)?;
    }
    match tokio::time::timeout(spec.connect_timeout, sock.connect(spec.target)).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timeout",
        )),
    }
}

/// A spread-out first check, so a thousand real servers do not probe in
/// lockstep: a fraction of delay_loop derived from the server's identity.
fn jitter(key: &Key, delay_loop: Duration) -> Duration {
    let ((vip, vport, _), (addr, port)) = *key;
    let h =
        (u32::from(vip) ^ u32::from(addr).rotate_left(7) ^ ((vport as u32) << 16 | port as u32))
            .wrapping_mul(0x9E37_79B1);
    delay_loop.mul_f64((h >> 8) as f64 / (1u32 << 24) as f64)
}

async fn probe_loop(spec: ProbeSpec, key: Key, events: mpsc::Sender<HealthEvent>) {
    let (service, real) = key;
    let rs = fmt_service(real.0, real.1, Proto::Tcp);
    // The first result is always reported: the reconciler may hold another
    // opinion (a restarted checker after a reload, `alpha`).
    let mut up: Option<bool> = None;
    let mut was_up = !spec.alpha;
    tokio::time::sleep(jitter(&key, spec.delay_loop).min(Duration::from_secs(1))).await;
    loop {
        let mut result = probe(&spec).await;
        let mut attempts = 1;
        while result.is_err() && attempts <= spec.retry {
            if was_up {
                warn!("TCP connection to {rs} failed.");
            }
            tokio::time::sleep(spec.delay_before_retry).await;
            result = probe(&spec).await;
            attempts += 1;
        }
        let ok = result.is_ok();
        if Some(ok) != up {
            let first = up.is_none();
            up = Some(ok);
            was_up = ok;
            let reason = match &result {
                Ok(()) => {
                    if !first {
                        info!("TCP connection to {rs} success.");
                    }
                    String::new()
                }
                Err(e) => {
                    warn!("TCP connection to {rs} failed.");
                    warn!("Check on service {rs} failed after {} retries.", spec.retry);
                    format!("{} to {} failed: {e}", spec.kind, spec.target)
                }
            };
            let ev = HealthEvent {
                service,
                real,
                up: ok,
                reason,
            };
            if events.send(ev).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(spec.delay_loop).await;
    }
}
