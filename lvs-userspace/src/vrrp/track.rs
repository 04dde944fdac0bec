//! `track_script` (with `vrrp_script NAME { script, interval, timeout,
//! weight, rise, fall, init_fail }`): each script runs every `interval` in
//! its own task; `rise` consecutive successes make it OK, `fall`
//! consecutive failures make it KO. A script with weight 0 puts the
//! instance in FAULT while KO; otherwise a positive weight is added to the
//! priority while OK, a negative one while KO (keepalived's rules; the
//! result stays within 1..=254, an owner's 255 is not changed).

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
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

/// Resolves an instance's `track_script` entries against the config.
pub fn resolve(
    cfg: &lvs_config::Config,
    i: &lvs_config::VrrpInstance,
) -> Result<Vec<TrackedScript>, String> {
    let mut out = Vec::new();
    for t in &i.track_script {
        let s = cfg
            .vrrp_scripts
            .iter()
            .find(|s| s.name == t.name)
            .ok_or_else(|| format!("({}) track_script {}: no such vrrp_script", i.name, t.name))?;
        out.push(TrackedScript {
            name: s.name.clone(),
            script: s.script.clone(),
            interval: s.interval.max(Duration::from_millis(10)),
            timeout: s.timeout.unwrap_or(s.interval),
            weight: t.weight.unwrap_or(s.weight),
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
    pub ok: bool,
    streak: u32,
}

impl ScriptState {
    pub fn new(s: &TrackedScript) -> Self {
        ScriptState {
            ok: !s.init_fail,
            streak: 0,
        }
    }

    /// Feeds one run's result; returns true when OK/KO flipped.
    pub fn feed(&mut self, s: &TrackedScript, success: bool) -> bool {
        if success == self.ok {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let need = if success { s.rise } else { s.fall };
        if self.streak >= need {
            self.ok = success;
            self.streak = 0;
            return true;
        }
        false
    }
}

/// Effective priority and whether a weight-0 script is KO.
pub fn effective(base: u8, scripts: &[TrackedScript], states: &[ScriptState]) -> (u8, bool) {
    let mut prio = base as i32;
    let mut fault = false;
    for (s, st) in scripts.iter().zip(states) {
        match (s.weight, st.ok) {
            (0, false) => fault = true,
            (w, true) if w > 0 => prio += w,
            (w, false) if w < 0 => prio += w,
            _ => {}
        }
    }
    if base == 255 {
        return (255, fault);
    }
    (prio.clamp(1, 254) as u8, fault)
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
        let child = crate::script::command(&s.script, &[])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
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
            rise,
            fall,
            init_fail: false,
        }
    }

    #[test]
    fn rise_fall_and_weights() {
        let s = ts(-150, 2, 3);
        let mut st = ScriptState::new(&s);
        assert!(!st.feed(&s, false) && !st.feed(&s, false));
        assert!(st.feed(&s, false), "third failure flips");

        assert_eq!(
            effective(200, std::slice::from_ref(&s), std::slice::from_ref(&st)),
            (50, false)
        );
        assert!(!st.feed(&s, true));
        assert!(st.feed(&s, true));
        assert_eq!(
            effective(200, std::slice::from_ref(&s), std::slice::from_ref(&st)),
            (200, false)
        );
        let up = ts(100, 1, 1);
        assert_eq!(
            effective(200, std::slice::from_ref(&up), &[ScriptState::new(&up)]),
            (254, false)
        );
        let f = ts(0, 1, 1);
        let mut fs = ScriptState::new(&f);
        fs.feed(&f, false);
        assert_eq!(effective(100, &[f], &[fs]), (100, true));
    }
}
