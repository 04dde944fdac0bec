//! Shared test helpers: a compact, stable text summary of a parse.

#![allow(dead_code)]

use std::fmt::Write;
use std::path::{Path, PathBuf};

use lvs_config::{Checker, Config, ParseResult, Severity};

pub fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs")
}

/// Asserts that one of `r`'s diagnostics, written `file:line:col:
/// severity: message`, starts with `prefix`; shows them all if none does.
pub fn assert_diag_starts(r: &ParseResult, prefix: &str) {
    let all: Vec<String> = r.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(
        all.iter().any(|m| m.starts_with(prefix)),
        "no diagnostic starts with {prefix:?}:\n{all:#?}"
    );
}

/// Asserts that `r` has a diagnostic of severity `at_least` or worse at
/// `line:col` whose message contains `needle`.
#[track_caller]
pub fn assert_diag_at(r: &ParseResult, at_least: Severity, line: u32, col: u32, needle: &str) {
    assert!(
        r.diagnostics.iter().any(|d| d.severity >= at_least
            && d.span.line == line
            && d.span.col == col
            && d.message.contains(needle)),
        "no {at_least} {needle:?} at {line}:{col} in:\n{}",
        r.diagnostics
    );
}

/// The configuration files in `dir` (not the `.expected`/`.options`
/// companions nor notes), sorted.
pub fn config_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("configs dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !n.ends_with(".expected") && !n.ends_with(".options") && !n.ends_with(".md")
        })
        .collect();
    v.sort();
    v
}

fn secs(d: std::time::Duration) -> String {
    let s = format!("{}.{:06}", d.as_secs(), d.subsec_micros());
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}s")
}

/// The model as a few lines of text.
pub fn summary(c: &Config) -> String {
    let mut o = String::new();
    let g = &c.global;
    if g.span.is_some() {
        let _ = writeln!(
            o,
            "global router_id={:?} emails={:?} smtp={:?}",
            g.router_id, g.notification_email, g.smtp_server
        );
    }
    for s in &c.vrrp_scripts {
        let _ = writeln!(
            o,
            "vrrp_script {} script={:?} interval={}{} weight={} rise={} fall={}",
            s.name,
            s.script,
            secs(s.interval),
            s.timeout
                .map(|t| format!(" timeout={}", secs(t)))
                .unwrap_or_default(),
            s.weight,
            s.rise,
            s.fall
        );
    }
    for s in &c.vrrp_sync_groups {
        let _ = writeln!(o, "vrrp_sync_group {} group={:?}", s.name, s.group);
    }
    for v in &c.vrrp_instances {
        let _ = writeln!(
            o,
            "vrrp_instance {} state={:?} if={} vrid={} prio={} advert={} version={:?} preempt={} auth={:?} garp_delay={}",
            v.name,
            v.state,
            v.interface,
            v.virtual_router_id,
            v.priority,
            secs(v.advert_int),
            v.version,
            v.preempt,
            v.authentication.as_ref().map(|a| (a.ty, a.pass.clone())),
            secs(v.garp_master_delay)
        );
        for vip in &v.virtual_ipaddress {
            let _ = writeln!(
                o,
                "  vip {}/{} brd={:?} dev={:?} label={:?}",
                vip.addr, vip.prefix_len, vip.brd, vip.dev, vip.label
            );
        }
        for t in &v.track_script {
            let _ = writeln!(o, "  track_script {} weight={:?}", t.name, t.weight);
        }
        for t in &v.track_interface {
            let _ = writeln!(o, "  track_interface {} weight={:?}", t.name, t.weight);
        }
    }
    for g in &c.virtual_server_groups {
        let entries: Vec<String> = g
            .entries
            .iter()
            .map(|e| match e {
                lvs_config::VsgEntry::Range {
                    first, last, port, ..
                } if first == last => format!("{first}:{port}"),
                lvs_config::VsgEntry::Range {
                    first, last, port, ..
                } => format!("{first}-{last}:{port}"),
                lvs_config::VsgEntry::Fwmark { mark, .. } => format!("fwmark {mark}"),
            })
            .collect();
        let _ = writeln!(o, "virtual_server_group {} {}", g.name, entries.join(" "));
    }
    for vs in &c.virtual_servers {
        let _ = writeln!(
            o,
            "virtual_server {} {:?} {} {:?} delay_loop={} persistence={:?}{}",
            vs.addr,
            vs.protocol,
            vs.lb_algo,
            vs.lb_kind,
            secs(vs.delay_loop),
            vs.persistence_timeout,
            if (vs.quorum, vs.hysteresis) == (1, 0) {
                String::new()
            } else {
                format!(" quorum={} hysteresis={}", vs.quorum, vs.hysteresis)
            }
        );
        for rs in &vs.real_servers {
            let _ = writeln!(
                o,
                "  real_server {} {} weight={} {:?} inhibit={}",
                rs.addr, rs.port, rs.weight, rs.lb_kind, rs.inhibit_on_failure
            );
            for ck in &rs.checkers {
                let _ = write!(o, "    {}", ck.kind());
                if let Some(cm) = ck.common() {
                    let _ = write!(
                        o,
                        " retry={} dbr={} delay_loop={}",
                        cm.policy.retry,
                        secs(cm.policy.delay_before_retry),
                        secs(cm.policy.delay_loop)
                    );
                    if let Some(co) = &cm.conn {
                        let _ = write!(
                            o,
                            " timeout={} port={:?} ip={:?}",
                            secs(co.connect_timeout),
                            co.connect_port,
                            co.connect_ip
                        );
                    }
                }
                match ck {
                    Checker::Http(h) | Checker::Ssl(h) => {
                        for u in &h.urls {
                            let _ = write!(o, " url={}:{:?}:{:?}", u.path, u.digest, u.status_code);
                        }
                    }
                    Checker::Misc(m) => {
                        let _ = write!(o, " path={:?}", m.path);
                    }
                    _ => {}
                }
                let _ = writeln!(o);
            }
        }
    }
    o
}

/// Diagnostics and summary, with the configs directory stripped from paths.
pub fn render(r: &ParseResult) -> String {
    let dir = format!("{}/", configs_dir().display());
    let bare = configs_dir().display().to_string();
    let mut o = String::new();
    let _ = writeln!(o, "exit {}", r.exit_code());
    for d in &r.diagnostics {
        let _ = writeln!(o, "{}", d.to_string().replace(&dir, "").replace(&bare, "."));
    }
    let _ = writeln!(o, "--");
    o.push_str(&summary(&r.config).replace(&dir, "").replace(&bare, "."));
    o
}
