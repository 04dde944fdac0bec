//! One checker's task: a random first delay within `warmup`, then attempts
//! (each holding a permit of a shared semaphore, so a thousand real servers
//! never open a thousand sockets or scripts at once), the retry state
//! machine of [`super::state`], keepalived's log lines, and reports to the
//! manager. A task only ever waits for itself: a slow server slows its own
//! checker, no other.

use std::{
    hash::{BuildHasher, Hasher},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{debug, info, warn};

use super::{
    error::CheckError,
    fmt_rs, http, misc,
    spec::{CheckerSpec, Kind},
    state::{NextDelay, RetryState},
    tcp, RsKey,
};

/// What a checker tells the manager.
#[derive(Debug)]
pub(crate) enum Report {
    /// The checker's verdict (first, or a change).
    Verdict { up: bool, reason: String },
    /// A failed attempt (retried or not): for `last failure` in the states.
    Failure { reason: String },
    /// MISC_CHECK misc_dynamic: `Some(w)` after an exit 2..=255, `None`
    /// back to the configured weight.
    Weight(Option<u32>),
}

/// Manager-bound message from a checker.
#[derive(Debug)]
pub(crate) struct FromChecker {
    pub rs: RsKey,
    pub id: u64,
    pub report: Report,
}

pub(crate) struct Ctx {
    pub rs: RsKey,
    pub id: u64,
    pub spec: CheckerSpec,
    pub alpha: bool,
    pub ha_suspend: bool,
    pub out: mpsc::UnboundedSender<super::Msg>,
    pub permits: Arc<Semaphore>,
    pub suspended: watch::Receiver<bool>,
}

impl Ctx {
    fn send(&self, report: Report) {
        let _ = self.out.send(super::Msg::Checker(FromChecker {
            rs: self.rs.clone(),
            id: self.id,
            report,
        }));
    }
}

/// A random duration in `[0, max]`.
pub(crate) fn jitter(max: Duration, salt: u64) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(salt);
    let r = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    max.mul_f64(r)
}

/// Success of one attempt.
struct Ok_ {
    /// HTTP: keepalived's words and the url path.
    http: Option<(&'static str, String)>,
    /// MISC_CHECK misc_dynamic weight.
    weight: Option<u32>,
}

async fn attempt(spec: &CheckerSpec) -> Result<Ok_, CheckError> {
    match (&spec.kind, &spec.conn) {
        (Kind::Tcp, Some(conn)) => tcp::check(conn).await.map(|()| Ok_ {
            http: None,
            weight: None,
        }),
        (Kind::Http(h), Some(conn)) => http::check(conn, h).await.map(|w| Ok_ {
            http: Some(w),
            weight: None,
        }),
        (Kind::Misc(m), _) => {
            let outcome = misc::run(m).await?;
            match misc::verdict(outcome, m.dynamic) {
                Ok(weight) => Ok(Ok_ { http: None, weight }),
                Err(_) if outcome == misc::Outcome::TimedOut => {
                    Err(CheckError::ScriptTimeout(m.timeout))
                }
                Err(why) => Err(CheckError::Script(why)),
            }
        }
        _ => Err(CheckError::Invalid(
            "checker without connection options".into(),
        )),
    }
}

pub(crate) async fn run(mut ctx: Ctx) {
    let spec = ctx.spec.clone();
    let c = &spec.common;
    let name = fmt_rs(ctx.rs.rs_addr, ctx.rs.proto, ctx.rs.rs_port);
    let vs = fmt_rs(ctx.rs.vs_addr, ctx.rs.proto, ctx.rs.vs_port);
    let kw = spec.keyword();
    let mut state = RetryState::new(c.retry, ctx.alpha);
    // keepalived: a random start within `warmup` (default delay_loop).
    tokio::time::sleep(jitter(c.warmup, ctx.id)).await;
    // MISC_CHECK: the last exit code, to report weight changes only.
    let mut last_weight: Option<Option<u32>> = None;
    loop {
        if ctx.ha_suspend && *ctx.suspended.borrow() {
            let _ = ctx.suspended.wait_for(|s| !*s).await;
        }
        let started = Instant::now();
        let result = {
            let _permit = ctx.permits.acquire().await;
            attempt(&spec).await
        };
        let was_up = state.up;
        let step = state.on_result(result.is_ok());
        match &result {
            Ok(ok) => {
                if let Kind::Misc(m) = &spec.kind {
                    if m.dynamic && last_weight != Some(ok.weight) {
                        // Exit 0 after a dynamic weight: back to the configured one.
                        if ok.weight.is_some() || last_weight.is_some() {
                            ctx.send(Report::Weight(ok.weight));
                        }
                        last_weight = Some(ok.weight);
                    }
                }
                if step.report == Some(true) {
                    match &spec.kind {
                        Kind::Tcp => info!("TCP connection to {name} success."),
                        Kind::Http(_) => {
                            if let Some((what, path)) = &ok.http {
                                info!("{what} success to {name} url({path})");
                            }
                            info!("Remote Web server {name} succeed on service.");
                        }
                        Kind::Misc(m) => {
                            info!(
                                "Misc check for [{name} VS {vs}] by [{}] succeeded.",
                                prog(&m.path)
                            )
                        }
                    }
                    ctx.send(Report::Verdict {
                        up: true,
                        reason: String::new(),
                    });
                }
            }
            Err(e) => {
                let reason = format!("{kw}: {e}");
                // Each failed attempt of an up checker is logged (keepalived
                // 1.x did; 2.x needs log_all_failures), later ones only with
                // log_all_failures.
                let loud = was_up || c.log_all_failures;
                match &spec.kind {
                    Kind::Tcp if loud => {
                        if matches!(e, CheckError::ConnectTimeout(_)) {
                            info!("TCP connection to {name} timeout.");
                        } else {
                            info!("TCP connection to {name} failed.");
                        }
                    }
                    Kind::Http(_) if loud => info!("{} server {name}.", http::failure_words(e)),
                    Kind::Misc(m) if loud && step.retrying.is_some() => {
                        let r = step.retrying.unwrap_or(0);
                        let msg = if r == 1 {
                            format!(", will do {} {}", c.retry, retries(c.retry))
                        } else {
                            format!(" on retry {}/{}", r - 1, c.retry)
                        };
                        info!(
                            "Misc check for [{name} VS {vs}] by [{}] failed{msg} ({e}).",
                            prog(&m.path)
                        );
                    }
                    _ => debug!("{kw} on service {name}: {e}"),
                }
                if let Kind::Misc(m) = &spec.kind {
                    if m.dynamic && step.report == Some(false) {
                        last_weight = None;
                    }
                }
                ctx.send(Report::Failure {
                    reason: reason.clone(),
                });
                if step.report == Some(false) {
                    let proto_kw = match &spec.kind {
                        Kind::Tcp => "TCP_CHECK",
                        Kind::Http(h) if h.tls => "SSL_CHECK",
                        Kind::Http(_) => "HTTP_CHECK",
                        Kind::Misc(_) => "MISC_CHECK",
                    };
                    match &spec.kind {
                        Kind::Misc(m) => {
                            let msg = if c.retry > 0 && was_up {
                                format!(" after {} {}", c.retry, retries(c.retry))
                            } else if c.retry == 0 {
                                " with retry disabled".into()
                            } else {
                                String::new()
                            };
                            warn!(
                                "Misc check for [{name} VS {vs}] by [{}] failed{msg} ({e}).",
                                prog(&m.path)
                            );
                        }
                        _ if c.retry > 0 && was_up => warn!(
                            "{proto_kw} on service {name} failed after {} retries.",
                            c.retry
                        ),
                        _ => warn!("{proto_kw} on service {name} failed."),
                    }
                    ctx.send(Report::Verdict { up: false, reason });
                }
            }
        }
        let delay = match step.next {
            NextDelay::Loop => c.delay_loop,
            NextDelay::Retry => c.delay_before_retry,
        };
        // A script's period runs from its start (keepalived's misc checker);
        // a connect's from its end.
        let delay = match spec.kind {
            Kind::Misc(_) => delay.saturating_sub(started.elapsed()),
            _ => delay,
        };
        tokio::time::sleep(delay).await;
    }
}

/// The program of a `misc_path` (keepalived logs its `args[0]`).
fn prog(path: &str) -> &str {
    path.split_whitespace().next().unwrap_or(path)
}

fn retries(n: u32) -> &'static str {
    if n == 1 {
        "retry"
    } else {
        "retries"
    }
}
