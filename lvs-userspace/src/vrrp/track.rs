//! What an instance tracks and how it moves its priority: `track_script`
//! (with `vrrp_script NAME { script, interval, timeout, weight, rise, fall,
//! init_fail }`) and tracked interfaces (`track_interface`, the primary
//! interface, the VIPs' interfaces).
//!
//! Each script runs every `interval` in its own task. Its state starts
//! unknown: the first result decides (keepalived's `rise - 1` start), then
//! `rise` consecutive successes make it OK and `fall` consecutive failures
//! make it KO; `init_fail` starts it KO. Every tracked object has a weight:
//! weight 0 puts the instance in FAULT while the object is down (and, for
//! a script, while it has not run yet); otherwise a positive weight is
//! added to the priority while up, a negative one while down, and
//! `reverse` turns the direction round (keepalived's rules; the result
//! stays within 1..=254, an owner's 255 is not changed).

use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

/// One tracked script, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedScript {
    pub name: String,
    pub script: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub weight: i32,
    pub reverse: bool,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

/// One tracked interface, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedIf {
    pub name: String,
    /// 0: FAULT while down.
    pub weight: i32,
    pub reverse: bool,
}

/// The interfaces an instance tracks, as keepalived: `track_interface`
/// entries (with their weights), then the primary interface (unless
/// `dont_track_primary`) and every VIP's interface (unless `no_track`),
/// which are unweighted: FAULT when down, whatever weight was given.
pub fn tracked_interfaces(i: &lvs_config::VrrpInstance) -> Vec<TrackedIf> {
    let mut out: Vec<TrackedIf> = Vec::new();
    for t in &i.track_interface {
        merge_if(&mut out, &t.name, t.weight.unwrap_or(0), t.reverse);
    }
    if !i.dont_track_primary {
        merge_if(&mut out, &i.interface, 0, false);
    }
    for v in i
        .virtual_ipaddress
        .iter()
        .chain(&i.virtual_ipaddress_excluded)
    {
        let dev = v.dev.as_deref().unwrap_or(&i.interface);
        if v.no_track || (i.dont_track_primary && dev == i.interface) {
            continue;
        }
        merge_if(&mut out, dev, 0, false);
    }
    out
}

/// Adds a tracked interface; tracked twice, an unweighted (FAULT) entry
/// wins over a weighted one (keepalived's add_vrrp_to_interface).
pub fn merge_if(list: &mut Vec<TrackedIf>, name: &str, weight: i32, reverse: bool) {
    match list.iter_mut().find(|t| t.name == name) {
        Some(t) => {
            if t.weight != 0 {
                t.weight = weight;
                t.reverse = reverse;
            }
        }
        None => list.push(TrackedIf {
            name: name.to_string(),
            weight,
            reverse,
        }),
    }
}

/// Resolves an instance's `track_script` entries against the config.
pub fn resolve(
    cfg: &lvs_config::Config,
    i: &lvs_config::VrrpInstance,
) -> Result<Vec<TrackedScript>, String> {
    resolve_entries(cfg, &i.name, &i.track_script)
}

/// Resolves `track_script` entries (of an instance or a sync group named
/// `owner`) against the config.
pub fn resolve_entries(
    cfg: &lvs_config::Config,
    owner: &str,
    entries: &[lvs_config::TrackScript],
) -> Result<Vec<TrackedScript>, String> {
    let mut out = Vec::new();
    for t in entries {
        let s = cfg
            .vrrp_scripts
            .iter()
            .find(|s| s.name == t.name)
            .ok_or_else(|| format!("({owner}) track_script {}: no such vrrp_script", t.name))?;
        out.push(TrackedScript {
            name: s.name.clone(),
            script: s.script.clone(),
            interval: s.interval.max(Duration::from_millis(10)),
            timeout: s.timeout.unwrap_or(s.interval),
            weight: t.weight.unwrap_or(s.weight),
            reverse: if t.weight.is_some() {
                t.reverse
            } else {
                s.weight_reverse
            },
            rise: s.rise.max(1),
            fall: s.fall.max(1),
            init_fail: s.init_fail,
        });
    }
    Ok(out)
}

/// The live state of one tracked script.
#[derive(Clone, Debug)]
pub struct ScriptState {
    /// `None` until the first result (unless `init_fail`).
    pub ok: Option<bool>,
    streak: u32,
    /// Added by a reload: unknown does not hold a weight-0 script's
    /// instance in FAULT (keepalived's SCRIPT_INIT_STATE_INIT_RELOAD).
    reload: bool,
}

impl ScriptState {
    pub fn new(s: &TrackedScript) -> Self {
        ScriptState {
            ok: s.init_fail.then_some(false),
            streak: 0,
            reload: false,
        }
    }

    /// A script added to a running instance by a reload.
    pub fn on_reload(s: &TrackedScript) -> Self {
        ScriptState {
            reload: true,
            ..ScriptState::new(s)
        }
    }

    /// Feeds one run's result; returns true when the state changed (the
    /// first result always changes it).
    pub fn feed(&mut self, s: &TrackedScript, success: bool) -> bool {
        let Some(ok) = self.ok else {
            self.ok = Some(success);
            return true;
        };
        if success == ok {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let need = if success { s.rise } else { s.fall };
        if self.streak >= need {
            self.ok = Some(success);
            self.streak = 0;
            return true;
        }
        false
    }
}

/// What one tracked object does to its instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    /// Weight 0 and down: FAULT.
    Fault,
    /// Weight 0 and not known yet (a script that has not run): FAULT
    /// until it has (keepalived's `num_script_init`).
    Init,
    Add(i32),
}

/// keepalived's rule for one tracked object with `weight` (and
/// `reverse`) whose state is `up` (`None`: unknown).
pub fn effect(weight: i32, reverse: bool, up: Option<bool>) -> Effect {
    let m = if reverse { -1 } else { 1 };
    match (weight, up) {
        (0, None) => Effect::Init,
        (0, Some(up)) if up == reverse => Effect::Fault,
        (0, Some(_)) | (_, None) => Effect::None,
        (w, Some(true)) if w > 0 => Effect::Add(w * m),
        (w, Some(false)) if w < 0 => Effect::Add(w * m),
        _ => Effect::None,
    }
}

/// Effective priority and whether the instance must be in FAULT, from
/// the effects of everything it tracks.
pub fn effective(base: u8, effects: impl IntoIterator<Item = Effect>) -> (u8, bool) {
    let mut prio = base as i32;
    let mut fault = false;
    for e in effects {
        match e {
            Effect::Fault | Effect::Init => fault = true,
            Effect::Add(w) => prio += w,
            Effect::None => {}
        }
    }
    if base == 255 {
        return (255, fault);
    }
    (prio.clamp(1, 254) as u8, fault)
}

/// The effects of an instance's scripts.
pub fn script_effects<'a>(
    scripts: &'a [TrackedScript],
    states: &'a [ScriptState],
) -> impl Iterator<Item = Effect> + 'a {
    scripts
        .iter()
        .zip(states)
        .map(|(s, st)| match effect(s.weight, s.reverse, st.ok) {
            Effect::Init if st.reload => Effect::None,
            e => e,
        })
}

/// Runs script `idx` forever, sending `(idx, success)` after each run.
pub async fn run(idx: usize, s: TrackedScript, iname: String, tx: mpsc::Sender<(usize, bool)>) {
    if s.script.trim().is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(s.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut cmd = crate::script::command(&s.script, &[]);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn();
        let ok = match child {
            Ok(mut c) => match tokio::time::timeout(s.timeout, c.wait()).await {
                Ok(Ok(st)) => st.success(),
                Ok(Err(_)) => false,
                Err(_) => {
                    info!("({iname}) Script `{}` timed out", s.name);
                    let _ = c.kill().await;
                    false
                }
            },
            Err(e) => {
                warn!("({iname}) cannot run script `{}`: {e}", s.name);
                false
            }
        };
        if tx.send((idx, ok)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(weight: i32, rise: u32, fall: u32) -> TrackedScript {
        TrackedScript {
            name: "chk".into(),
            script: "/bin/true".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            weight,
            reverse: false,
            rise,
            fall,
            init_fail: false,
        }
    }

    #[test]
    fn rise_fall_and_weights() {
        let s = ts(-150, 2, 3);
        let mut st = ScriptState::new(&s);
        assert_eq!(st.ok, None, "unknown until the first result");
        assert!(st.feed(&s, true), "the first result decides");
        assert!(!st.feed(&s, false) && !st.feed(&s, false));
        assert!(st.feed(&s, false), "third failure flips");
        let eff = |s: &TrackedScript, st: &ScriptState| {
            effective(
                200,
                script_effects(std::slice::from_ref(s), std::slice::from_ref(st)),
            )
        };
        assert_eq!(eff(&s, &st), (50, false));
        assert!(!st.feed(&s, true));
        assert!(st.feed(&s, true));
        assert_eq!(eff(&s, &st), (200, false));
        let up = ts(100, 1, 1);
        let mut ust = ScriptState::new(&up);
        assert_eq!(
            eff(&up, &ust),
            (200, false),
            "no weight before the first run"
        );
        ust.feed(&up, true);
        assert_eq!(eff(&up, &ust), (254, false));
        let f = ts(0, 1, 1);
        let mut fs = ScriptState::new(&f);
        assert_eq!(eff(&f, &fs), (200, true), "weight 0 holds FAULT until run");
        fs.feed(&f, true);
        assert_eq!(eff(&f, &fs), (200, false));
        fs.feed(&f, false);
        assert_eq!(eff(&f, &fs), (200, true));
        // init_fail: KO from the start, `rise` successes to come up.
        let mut i = ts(0, 2, 1);
        i.init_fail = true;
        let mut is = ScriptState::new(&i);
        assert_eq!(is.ok, Some(false));
        assert!(!is.feed(&i, true) && is.feed(&i, true));
    }

    #[test]
    fn reverse_weights() {
        assert_eq!(effect(10, false, Some(true)), Effect::Add(10));
        assert_eq!(effect(10, true, Some(true)), Effect::Add(-10));
        assert_eq!(effect(10, true, Some(false)), Effect::None);
        assert_eq!(effect(-10, false, Some(false)), Effect::Add(-10));
        assert_eq!(effect(-10, true, Some(false)), Effect::Add(10));
        assert_eq!(effect(0, false, Some(false)), Effect::Fault);
        assert_eq!(
            effect(0, true, Some(true)),
            Effect::Fault,
            "reverse: FAULT while up"
        );
        assert_eq!(effect(0, true, Some(false)), Effect::None);
        assert_eq!(effect(-10, false, None), Effect::None);
    }

    #[test]
    fn which_interfaces_are_tracked() {
        let text = "vrrp_instance VI_1 {\n interface bond0\n virtual_router_id 1\n \
            track_interface {\n  eth1 weight -20\n  bond0 weight 10\n  eth3 weight 5 reverse\n }\n \
            virtual_ipaddress {\n  198.18.0.100/16\n  198.18.3.1/24 dev eth2\n  198.18.4.1/24 dev eth4 no_track\n }\n}\n";
        let r = lvs_config::parse_str("t.conf", text, &lvs_config::ParseOptions::default());
        let i = &r.config.vrrp_instances[0];
        let t = tracked_interfaces(i);
        let w: Vec<(&str, i32, bool)> = t
            .iter()
            .map(|t| (t.name.as_str(), t.weight, t.reverse))
            .collect();
        assert_eq!(
            w,
            vec![
                ("eth1", -20, false),
                ("bond0", 0, false),
                ("eth3", 5, true),
                ("eth2", 0, false)
            ]
        );
    }
}

/// One tracked `vrrp_track_process`, resolved with the instance's weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedProcess {
    pub p: lvs_config::TrackProcess,
    pub weight: i32,
    pub reverse: bool,
}

/// Resolves `track_process` entries (of an instance or a sync group named
/// `owner`); an entry without a weight takes the process's.
pub fn resolve_processes(
    cfg: &lvs_config::Config,
    owner: &str,
    entries: &[lvs_config::TrackScript],
) -> Result<Vec<TrackedProcess>, String> {
    entries
        .iter()
        .map(|t| {
            let p = cfg
                .vrrp_track_processes
                .iter()
                .find(|p| p.name == t.name)
                .ok_or_else(|| {
                    format!(
                        "({owner}) track_process {}: no such vrrp_track_process",
                        t.name
                    )
                })?;
            Ok(TrackedProcess {
                p: p.clone(),
                weight: t.weight.unwrap_or(p.weight),
                reverse: if t.weight.is_some() {
                    t.reverse
                } else {
                    p.weight_reverse
                },
            })
        })
        .collect()
}

/// Whether a process (its `comm`, and its `/proc/PID/cmdline`: argv
/// NUL-separated) is one `tp` counts, as keepalived's read_procs and
/// check_params.
pub fn process_matches(tp: &lvs_config::TrackProcess, comm: &str, cmdline: &[u8]) -> bool {
    use lvs_config::ParamMatch;
    let params: &[u8] = if tp.full_command {
        let end = cmdline
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(cmdline.len());
        if &cmdline[..end] != tp.process.as_bytes() {
            return false;
        }
        cmdline.get(end + 1..).unwrap_or(&[])
    } else {
        if comm != tp.process {
            return false;
        }
        &[]
    };
    if tp.param_match == ParamMatch::None {
        return true;
    }
    // keepalived keeps the configured parameters as "p1\0p2\0".
    let want: Vec<u8> = tp
        .params
        .iter()
        .flat_map(|p| p.bytes().chain(std::iter::once(0)))
        .collect();
    match tp.param_match {
        ParamMatch::Exact => params == want.as_slice(),
        ParamMatch::Partial => params.starts_with(&want),
        ParamMatch::Initial => want.is_empty() || params.starts_with(&want[..want.len() - 1]),
        ParamMatch::None => true,
    }
}

/// How many running (not zombie) processes each of `procs` counts, from
/// one read of /proc.
pub fn count_processes(procs: &[&lvs_config::TrackProcess]) -> Vec<u32> {
    let mut counts = vec![0u32; procs.len()];
    if procs.is_empty() {
        return counts;
    }
    let need_cmdline = procs.iter().any(|p| p.full_command);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return counts;
    };
    for ent in dir.flatten() {
        let name = ent.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "PID (comm) S ...": comm may itself contain ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if open >= close || stat[close + 1..].trim_start().starts_with('Z') {
            continue;
        }
        let comm = &stat[open + 1..close];
        let cmdline = if need_cmdline {
            std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
        } else {
            Vec::new()
        };
        for (i, p) in procs.iter().enumerate() {
            if process_matches(p, comm, &cmdline) {
                counts[i] += 1;
            }
        }
    }
    counts
}

/// The live state of one tracked process: quorum, and a change waiting
/// for its fork/terminate delay.
#[derive(Clone, Debug)]
pub struct ProcessState {
    pub have_quorum: bool,
    pending: Option<(bool, tokio::time::Instant)>,
}

impl ProcessState {
    pub fn new(t: &TrackedProcess, running: u32) -> Self {
        ProcessState {
            have_quorum: quorum(&t.p, running),
            pending: None,
        }
    }

    /// Feeds a count; returns true when the quorum flipped (after the
    /// delay: `fork_delay` to gain it, `terminate_delay` to lose it).
    pub fn feed(&mut self, t: &TrackedProcess, running: u32, now: tokio::time::Instant) -> bool {
        let q = quorum(&t.p, running);
        if q == self.have_quorum {
            self.pending = None;
            return false;
        }
        let since = match self.pending {
            Some((p, since)) if p == q => since,
            _ => {
                self.pending = Some((q, now));
                now
            }
        };
        let delay = if q {
            t.p.fork_delay
        } else {
            t.p.terminate_delay
        };
        if now.duration_since(since) >= delay {
            self.have_quorum = q;
            self.pending = None;
            return true;
        }
        false
    }
}

fn quorum(p: &lvs_config::TrackProcess, running: u32) -> bool {
    running >= p.quorum && running <= p.quorum_max
}

#[cfg(test)]
mod process_tests {
    use super::*;
    use lvs_config::{ParamMatch, TrackProcess};

    fn tp(process: &str, params: &[&str], m: ParamMatch, full: bool) -> TrackProcess {
        let r = lvs_config::parse_str(
            "t.conf",
            "vrrp_track_process x {\n process sshd\n}\n",
            &lvs_config::ParseOptions::default(),
        );
        let mut t = r.config.vrrp_track_processes[0].clone();
        t.process = process.into();
        t.params = params.iter().map(|s| s.to_string()).collect();
        t.param_match = m;
        t.full_command = full;
        t
    }

    #[test]
    fn matching_as_keepalived() {
        let cmd = b"/usr/sbin/nginx\0-g\0daemon off;\0";
        assert!(process_matches(
            &tp("nginx", &[], ParamMatch::None, false),
            "nginx",
            cmd
        ));
        assert!(!process_matches(
            &tp("nginx", &[], ParamMatch::None, false),
            "nginx2",
            cmd
        ));
        let full = |p: &[&str], m| tp("/usr/sbin/nginx", p, m, true);
        assert!(process_matches(&full(&[], ParamMatch::None), "nginx", cmd));
        assert!(process_matches(
            &full(&["-g", "daemon off;"], ParamMatch::Exact),
            "x",
            cmd
        ));
        assert!(!process_matches(
            &full(&["-g"], ParamMatch::Exact),
            "x",
            cmd
        ));
        assert!(process_matches(
            &full(&["-g"], ParamMatch::Partial),
            "x",
            cmd
        ));
        assert!(process_matches(
            &full(&["-g", "daemon"], ParamMatch::Initial),
            "x",
            cmd
        ));
        assert!(!process_matches(
            &full(&["-g", "daemon"], ParamMatch::Partial),
            "x",
            cmd
        ));
        assert!(process_matches(
            &full(&[], ParamMatch::Exact),
            "x",
            b"/usr/sbin/nginx\0"
        ));
    }

    #[test]
    fn quorum_and_delays() {
        let mut p = tp("x", &[], ParamMatch::None, false);
        p.quorum = 2;
        p.quorum_max = 3;
        p.terminate_delay = Duration::from_secs(2);
        let t = TrackedProcess {
            p,
            weight: 0,
            reverse: false,
        };
        let t0 = tokio::time::Instant::now();
        let mut st = ProcessState::new(&t, 2);
        assert!(st.have_quorum);
        assert!(!st.feed(&t, 1, t0), "lost only after terminate_delay");
        assert!(!st.feed(&t, 1, t0 + Duration::from_secs(1)));
        assert!(st.feed(&t, 1, t0 + Duration::from_secs(2)));
        assert!(!st.have_quorum);
        assert!(
            st.feed(&t, 3, t0 + Duration::from_secs(3)),
            "gained at once"
        );
        assert!(!st.feed(&t, 3, t0 + Duration::from_secs(4)));
        assert!(
            !st.feed(&t, 4, t0 + Duration::from_secs(5)),
            "above quorum_max"
        );
        assert!(st.feed(&t, 4, t0 + Duration::from_secs(7)));
    }
}

/// One tracked `track_file`, resolved with the instance's weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedFile {
    pub name: String,
    pub path: String,
    pub weight: i32,
    pub reverse: bool,
    pub init_file: Option<(i64, bool)>,
}

/// Resolves `track_file` entries (of an instance or a sync group named
/// `owner`); an entry without a weight takes the file's (default 1). An
/// unknown name is skipped with keepalived's warning.
pub fn resolve_files(
    cfg: &lvs_config::Config,
    owner: &str,
    entries: &[lvs_config::TrackScript],
) -> Vec<TrackedFile> {
    entries
        .iter()
        .filter_map(|t| {
            let Some(f) = cfg.track_file(&t.name) else {
                warn!("({owner}) track file {} not found, ignoring...", t.name);
                return None;
            };
            Some(TrackedFile {
                name: f.name.clone(),
                path: f.file.clone(),
                weight: t.weight.unwrap_or(f.weight),
                reverse: if t.weight.is_some() {
                    t.reverse
                } else {
                    f.weight_reverse
                },
                init_file: f.init_file,
            })
        })
        .collect()
}

/// keepalived's rule for a VRRP instance tracking a file holding `value`
/// (trackers/track_file.c): weight 0: a non-zero value is FAULT (`reverse`:
/// zero is); otherwise `value × weight` (negated by `reverse`), within
/// -254..=253, is added to the priority, and -254 is FAULT.
pub fn file_effect(value: i64, weight: i32, reverse: bool) -> Effect {
    if weight == 0 {
        return if (value != 0) != reverse {
            Effect::Fault
        } else {
            Effect::None
        };
    }
    let m = if reverse { -1 } else { 1 };
    let status = value
        .saturating_mul(i64::from(weight))
        .saturating_mul(m)
        .clamp(-254, 253);
    if status == -254 {
        Effect::Fault
    } else {
        Effect::Add(status as i32)
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn file_values_as_keepalived() {
        assert_eq!(file_effect(0, 0, false), Effect::None);
        assert_eq!(file_effect(3, 0, false), Effect::Fault);
        assert_eq!(file_effect(0, 0, true), Effect::Fault);
        assert_eq!(file_effect(5, 1, false), Effect::Add(5));
        assert_eq!(file_effect(5, -10, false), Effect::Add(-50));
        assert_eq!(file_effect(5, 10, true), Effect::Add(-50));
        assert_eq!(file_effect(-300, 1, false), Effect::Fault);
        assert_eq!(file_effect(1000, 1, false), Effect::Add(253));
    }
}
