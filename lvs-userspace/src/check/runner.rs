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
    dns,
    error::CheckError,
    file, fmt_rs, http, misc, ping, smtp,
    spec::{CheckerSpec, Kind},
    state::{NextDelay, RetryState},
    tcp, udp, RsKey,
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
    /// FILE_CHECK: added to the configured weight (may be negative).
    Offset(i64),
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
    /// Started with lvsd (or with its real server): the first failure
    /// decides. `false` for a checker added to a running real server.
    pub fresh: bool,
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

impl Ok_ {
    fn plain() -> Ok_ {
        Ok_ {
            http: None,
            weight: None,
        }
    }
}

async fn attempt(spec: &CheckerSpec) -> Result<Ok_, CheckError> {
    let plain = |r: Result<(), CheckError>| r.map(|()| Ok_::plain());
    match (&spec.kind, &spec.conn) {
        (Kind::Tcp, Some(conn)) => plain(tcp::check(conn).await),
        (Kind::Ping, Some(conn)) => plain(ping::check(conn).await),
        (Kind::Udp(u), Some(conn)) => plain(udp::check(conn, u).await),
        (Kind::Dns(d), Some(conn)) => plain(dns::check(conn, d).await),
        (Kind::Smtp(m), Some(conn)) => plain(smtp::check(conn, m).await),
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

/// keepalived's word for a checker in "… socket bind failed. Rescheduling.".
fn socket_word(kind: &Kind) -> &'static str {
    match kind {
        Kind::Tcp => "TCP",
        Kind::Http(_) => "WEB",
        Kind::Ping => "ICMP",
        Kind::Udp(_) | Kind::Dns(_) => "UDP",
        Kind::Smtp(_) => "SMTP_CHECK",
        Kind::Misc(_) | Kind::File(_) => "MISC",
    }
}

pub(crate) async fn run(mut ctx: Ctx) {
    let spec = ctx.spec.clone();
    if let Kind::File(f) = &spec.kind {
        return run_file(&ctx, f).await;
    }
    let c = &spec.common;
    let name = fmt_rs(ctx.rs.rs_addr, ctx.rs.proto, ctx.rs.rs_port);
    let vs = fmt_rs(ctx.rs.vs_addr, ctx.rs.proto, ctx.rs.vs_port);
    let kw = spec.keyword();
    // keepalived sets the retries as spent at start: a server dead when
    // lvsd starts leaves after one failed check (check_data.c).
    let mut state = if ctx.fresh {
        RetryState::at_start(c.retry, ctx.alpha)
    } else {
        RetryState::new(c.retry, ctx.alpha)
    };
    // keepalived: a random start within `warmup` (default delay_loop).
    tokio::time::sleep(jitter(c.warmup, ctx.id)).await;
    // MISC_CHECK: the last exit code, to report weight changes only.
    let mut last_weight: Option<Option<u32>> = None;
    // The local error last logged (logged once until it changes or clears).
    let mut local_error: Option<String> = None;
    loop {
        if ctx.ha_suspend && *ctx.suspended.borrow() {
            let _ = ctx.suspended.wait_for(|s| !*s).await;
        }
        let started = Instant::now();
        let result = {
            let _permit = ctx.permits.acquire().await;
            attempt(&spec).await
        };
        if let Err(e) = &result {
            if e.is_local() {
                // Not the server's fault: log once, keep its state, retry
                // after delay_loop.
                let text = e.to_string();
                if local_error.as_ref() != Some(&text) {
                    warn!(
                        "{} socket bind failed. Rescheduling. ({kw} of {name}: {e})",
                        socket_word(&spec.kind)
                    );
                    local_error = Some(text);
                }
                tokio::time::sleep(c.delay_loop).await;
                continue;
            }
        }
        local_error = None;
        let was_up = state.up;
        let had_run = state.has_run;
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
                        Kind::Ping => info!("ICMP connection to {name} success."),
                        Kind::Udp(_) => info!("UDP connection to {name} success."),
                        Kind::Smtp(_) => info!("Remote SMTP server {name} succeed on service."),
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
                        // keepalived's DNS_CHECK logs no success line.
                        Kind::Dns(_) | Kind::File(_) => {}
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
                let last = step.report == Some(false);
                let after = if c.retry > 0 && was_up && had_run && last {
                    format!(" after {} {}", c.retry, retries(c.retry))
                } else {
                    String::new()
                };
                match &spec.kind {
                    Kind::Tcp if loud => {
                        if matches!(e, CheckError::ConnectTimeout(_)) {
                            info!("TCP connection to {name} timeout.");
                        } else {
                            info!("TCP connection to {name} failed.");
                        }
                    }
                    Kind::Ping if loud => {
                        if matches!(e, CheckError::ConnectTimeout(_)) {
                            info!("ICMP connection to address {name} timeout.");
                        } else {
                            info!("ICMP connection to {name} of {vs} failed.");
                        }
                    }
                    Kind::Udp(_) if loud => {
                        if matches!(e, CheckError::ReplyMismatch) {
                            info!("UDP check to {name} reply data mismatch.");
                        } else {
                            info!("UDP connection to {name} failed.");
                        }
                    }
                    // keepalived logs these on the last failure, or each
                    // with log_all_failures.
                    Kind::Dns(_) if (loud && c.log_all_failures) || last => {
                        info!("DNS_CHECK ({name}) {}{after}", dns_words(e))
                    }
                    Kind::Smtp(_) if (loud && c.log_all_failures) || last => {
                        info!("SMTP_CHECK {}", smtp_words(e))
                    }
                    Kind::Http(_) if loud => {
                        if matches!(e, CheckError::Tls(_)) {
                            // Tell a TLS mismatch from a dead server.
                            info!("{} server {name}: {e}.", http::failure_words(e))
                        } else {
                            info!("{} server {name}.", http::failure_words(e))
                        }
                    }
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
                ctx.send(Report::Failure {
                    reason: reason.clone(),
                });
                if last {
                    if let Kind::Misc(m) = &spec.kind {
                        // keepalived resets a misc_dynamic weight when the
                        // server goes down, so a later exit 0 restores the
                        // configured weight.
                        if m.dynamic && matches!(last_weight, Some(Some(_))) {
                            ctx.send(Report::Weight(None));
                        }
                        last_weight = None;
                    }
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
                        // Logged above, with keepalived's words.
                        Kind::Dns(_) | Kind::Smtp(_) => {}
                        Kind::Ping if !after.is_empty() => warn!(
                            "ICMP CHECK on service {name} of {vs} failed after {} retries.",
                            c.retry
                        ),
                        Kind::Ping => warn!("ICMP CHECK on service {name} failed."),
                        kind => {
                            let proto_kw = match kind {
                                Kind::Http(h) if h.tls => "SSL_CHECK",
                                Kind::Http(_) => "HTTP_CHECK",
                                Kind::Udp(_) => "UDP_CHECK",
                                _ => "TCP_CHECK",
                            };
                            if after.is_empty() {
                                warn!("{proto_kw} on service {name} failed.")
                            } else {
                                warn!(
                                    "{proto_kw} on service {name} failed after {} retries.",
                                    c.retry
                                )
                            }
                        }
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

/// keepalived's DNS_CHECK wording (`dns_final` callers).
fn dns_words(e: &CheckError) -> String {
    match e {
        CheckError::ReadTimeout(_) => "read timeout from socket".into(),
        CheckError::Read(e) => format!(
            "failed to read socket; errno {} ({e})",
            e.raw_os_error().unwrap_or(0)
        ),
        CheckError::Send(_) => "failed to write socket.".into(),
        CheckError::Connect(_) => "connection error.".into(),
        other => other.to_string(),
    }
}

/// keepalived's SMTP_CHECK wording (`smtp_final` callers).
fn smtp_words(e: &CheckError) -> String {
    e.to_string()
}

/// FILE_CHECK: the state follows the file; known at once (keepalived marks
/// it as run, without alpha or retries).
async fn run_file(ctx: &Ctx, f: &super::spec::FileSpec) {
    let name = fmt_rs(ctx.rs.rs_addr, ctx.rs.proto, ctx.rs.rs_port);
    let vs = fmt_rs(ctx.rs.vs_addr, ctx.rs.proto, ctx.rs.vs_port);
    if let Err(e) = file::init(f) {
        warn!("track_file {}: init_file {}: {e}", f.name, f.path);
    }
    let path = std::path::PathBuf::from(&f.path);
    let watch = file::Watch::new(&path);
    let mut last: Option<file::FileState> = None;
    let mut value = 0;
    loop {
        match file::read_value(&path) {
            Some(v) => value = v,
            None => {
                if last.is_none() {
                    info!("Invalid number read from {} - ignoring", f.path);
                }
            }
        }
        let now = file::state(value, f.weight, f.reverse);
        if last != Some(now) {
            match now {
                file::FileState::Fault => {
                    if last.is_some() || !ctx.alpha {
                        info!("({name} of {vs}): tracked file {} now FAULT state", f.name);
                    }
                    ctx.send(Report::Offset(0));
                    let reason = format!("FILE_CHECK: {}", CheckError::FileFault(f.name.clone()));
                    ctx.send(Report::Failure {
                        reason: reason.clone(),
                    });
                    ctx.send(Report::Verdict { up: false, reason });
                }
                file::FileState::Up(offset) => {
                    if last == Some(file::FileState::Fault) {
                        info!(
                            "({name} of {vs}): tracked file {} leaving FAULT state",
                            f.name
                        );
                    }
                    if last.is_some() && offset != 0 {
                        info!(
                            "({name} of {vs}): tracked file {} value {value}: weight offset {offset}",
                            f.name
                        );
                    }
                    ctx.send(Report::Offset(offset));
                    if !matches!(last, Some(file::FileState::Up(_))) {
                        ctx.send(Report::Verdict {
                            up: true,
                            reason: String::new(),
                        });
                    }
                }
            }
            last = Some(now);
        }
        match &watch {
            Some(w) => {
                let _ = tokio::time::timeout(file::POLL, w.changed()).await;
            }
            None => tokio::time::sleep(file::POLL).await,
        }
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
