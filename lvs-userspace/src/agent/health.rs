//! Health checks of the agent: keepalived's TCP_CHECK, HTTP_GET, SSL_GET and
//! MISC_CHECK with their options and retry semantics, one task per checker,
//! feeding the reconciler. A real server with several checkers is up only
//! while all of them are.
//!
//! A checker fails after `retry + 1` failed attempts (`delay_before_retry`
//! apart), so a dead server leaves the schedule within
//! `delay_loop + connect_timeout × (retry + 1) + delay_before_retry × retry`;
//! one success brings it back.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use lvs_config::{Checker, Config, Protocol, VsAddr};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{info, warn};

use super::{
    plan::{fmt_service, RealId, ServiceId},
    probe::{self, Probe, UrlSpec},
};
use crate::datapath::Proto;

/// A verdict on a real server (of one checker, or of all of them once
/// folded by [`Health::fold`]).
#[derive(Clone, Debug)]
pub struct HealthEvent {
    pub service: ServiceId,
    pub real: RealId,
    /// Which checker of the real server (index in config order).
    pub checker: usize,
    pub up: bool,
    /// MISC_CHECK `misc_dynamic`: the weight its exit code asks for.
    pub weight: Option<u32>,
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
    probe: Probe,
}

type Key = (ServiceId, RealId);

/// The running checkers, by real server.
pub struct Health {
    tasks: BTreeMap<Key, (Vec<ProbeSpec>, Vec<JoinHandle<()>>)>,
    events: mpsc::Sender<HealthEvent>,
    /// Each checker's last verdict, per real server.
    verdicts: BTreeMap<Key, Vec<Option<bool>>>,
}

impl Health {
    pub fn new(events: mpsc::Sender<HealthEvent>) -> Self {
        Health {
            tasks: BTreeMap::new(),
            events,
            verdicts: BTreeMap::new(),
        }
    }

    /// Folds one checker's verdict into the real server's: up only while
    /// every checker says up. Returns the real server's verdict when it
    /// changes (or is first known), or a new dynamic weight.
    pub fn fold(&mut self, ev: HealthEvent) -> Option<HealthEvent> {
        let key = (ev.service, ev.real);
        let n = self.tasks.get(&key).map(|(s, _)| s.len()).unwrap_or(1);
        let slots = self.verdicts.entry(key).or_insert_with(|| vec![None; n]);
        if slots.len() != n {
            *slots = vec![None; n];
        }
        let before = fold_all(slots);
        if let Some(slot) = slots.get_mut(ev.checker) {
            *slot = Some(ev.up);
        }
        let after = fold_all(slots);
        if after != before || (ev.weight.is_some() && ev.up) {
            after.map(|up| HealthEvent { up, ..ev })
        } else {
            None
        }
    }

    /// Starts, keeps or stops checkers to match the config: an unchanged
    /// checker keeps running with its state (a reload does not re-probe).
    pub fn reconcile(&mut self, cfg: &Config) {
        let wanted = specs(cfg);
        let verdicts = &mut self.verdicts;
        self.tasks.retain(|key, (specs, handles)| {
            let keep = wanted.get(key) == Some(specs);
            if !keep {
                handles.iter().for_each(JoinHandle::abort);
                verdicts.remove(key);
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
                .enumerate()
                .map(|(i, spec)| {
                    info!(
                        "Activating healthchecker for service {} for VS {}",
                        fmt_service(real.0, real.1, service.2),
                        fmt_service(service.0, service.1, service.2)
                    );
                    tokio::spawn(probe_loop(spec.clone(), key, i, self.events.clone()))
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
                let (common, probe) = match c {
                    Checker::Tcp(t) => (&t.common, Probe::Tcp),
                    Checker::Http(h) | Checker::Ssl(h) => (
                        &h.common,
                        Probe::Http {
                            urls: h
                                .urls
                                .iter()
                                .map(|u| UrlSpec {
                                    path: u.path.clone(),
                                    digest: u.digest.clone(),
                                    status: u.status_code.clone(),
                                    virtualhost: u.virtualhost.clone().or(h.virtualhost.clone()),
                                })
                                .collect(),
                            tls: matches!(c, Checker::Ssl(_)),
                            sni: h.enable_sni.then(|| h.sni_name.clone()).flatten(),
                            protocol: h.http_protocol.clone().unwrap_or_else(|| "HTTP/1.0".into()),
                        },
                    ),
                    Checker::Misc(m) => (
                        &m.common,
                        Probe::Misc {
                            path: m.path.clone(),
                            timeout: m.timeout.unwrap_or(m.common.delay_loop),
                            dynamic: m.dynamic,
                        },
                    ),
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
                let (target, bind, connect_timeout) = match &common.conn {
                    Some(conn) => (
                        SocketAddr::new(
                            conn.connect_ip.unwrap_or(rs.addr),
                            conn.connect_port.unwrap_or(rs.port),
                        ),
                        conn.bindto
                            .map(|b| SocketAddr::new(b, conn.bind_port.unwrap_or(0))),
                        conn.connect_timeout,
                    ),
                    None => (SocketAddr::new(rs.addr, rs.port), None, common.delay_loop),
                };
                probes.push(ProbeSpec {
                    target,
                    bind,
                    connect_timeout,
                    retry: common.retry,
                    delay_before_retry: common.delay_before_retry,
                    delay_loop: common.delay_loop,
                    alpha: common.alpha,
                    kind: c.kind().to_owned(),
                    probe,
                });
            }
            if !probes.is_empty() {
                out.insert(((*vip, *vport, proto), (addr, rs.port)), probes);
            }
        }
    }
    out
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

async fn probe_loop(spec: ProbeSpec, key: Key, checker: usize, events: mpsc::Sender<HealthEvent>) {
    let (service, real) = key;
    let rs = fmt_service(real.0, real.1, service.2);
    let attempt = || probe::attempt(&spec.probe, spec.target, spec.bind, spec.connect_timeout);
    let fail_line = |e: &probe::ProbeError| match spec.probe {
        Probe::Tcp => format!("TCP connection to {rs} failed."),
        Probe::Http { .. } => format!("{} on service {rs} failed: {e}.", spec.kind),
        Probe::Misc { .. } => format!("Misc check for [{}] failed: {e}.", spec.target),
    };
    // The first result is always reported: the reconciler may hold another
    // opinion (a restarted checker after a reload, `alpha`).
    let mut up: Option<bool> = None;
    let mut weight: Option<u32> = None;
    let mut was_up = !spec.alpha;
    tokio::time::sleep(jitter(&key, spec.delay_loop).min(Duration::from_secs(1))).await;
    loop {
        let mut result = attempt().await;
        let mut attempts = 1;
        while result.is_err() && attempts <= spec.retry {
            if let (true, Err(e)) = (was_up, &result) {
                warn!("{}", fail_line(e));
            }
            tokio::time::sleep(spec.delay_before_retry).await;
            result = attempt().await;
            attempts += 1;
        }
        let ok = result.is_ok();
        let new_weight = result.as_ref().ok().copied().flatten();
        if Some(ok) != up || (ok && new_weight.is_some() && new_weight != weight) {
            let first = up.is_none();
            up = Some(ok);
            was_up = ok;
            weight = new_weight;
            let reason = match &result {
                Ok(_) => {
                    if !first {
                        match spec.probe {
                            Probe::Tcp => info!("TCP connection to {rs} success."),
                            _ => info!("{} on service {rs} succeeded.", spec.kind),
                        }
                    }
                    String::new()
                }
                Err(e) => {
                    warn!("{}", fail_line(e));
                    warn!("Check on service {rs} failed after {} retries.", spec.retry);
                    format!("{} to {} failed: {e}", spec.kind, spec.target)
                }
            };
            let ev = HealthEvent {
                service,
                real,
                checker,
                up: ok,
                weight,
                reason,
            };
            if events.send(ev).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(spec.delay_loop).await;
    }
}

fn fold_all(slots: &[Option<bool>]) -> Option<bool> {
    if slots.iter().any(|s| *s == Some(false)) {
        Some(false)
    } else if slots.iter().all(|s| s.is_some()) {
        Some(true)
    } else {
        None
    }
}
