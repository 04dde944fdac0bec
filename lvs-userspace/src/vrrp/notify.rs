//! `notify_master` / `notify_backup` / `notify_fault` / `notify_stop` and
//! `notify` scripts, run as keepalived runs them: the script line is split
//! into words (single and double quotes group words) and executed directly,
//! without a shell; `notify` gets `INSTANCE <name> <MASTER|BACKUP|FAULT|STOP>
//! <priority>` appended. Scripts run in the background and are reaped; a
//! script that cannot be started is logged.

use tracing::warn;

use super::state::VrrpState;

/// The scripts of one instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifyScripts {
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
    pub any: Option<String>,
}

impl NotifyScripts {
    /// Without the scripts `enable_script_security` refuses.
    pub fn secure(mut self) -> Self {
        for s in [
            &mut self.master,
            &mut self.backup,
            &mut self.fault,
            &mut self.stop,
            &mut self.any,
        ] {
            if s.as_deref()
                .is_some_and(|l| !crate::script_security::allowed(l))
            {
                *s = None;
            }
        }
        self
    }
}

impl From<&lvs_config::Notify> for NotifyScripts {
    fn from(n: &lvs_config::Notify) -> Self {
        NotifyScripts {
            master: n.master.clone(),
            backup: n.backup.clone(),
            fault: n.fault.clone(),
            stop: n.stop.clone(),
            any: n.any.clone(),
        }
    }
}

/// Splits a script line into words; quotes group, and are removed.
pub fn split_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

pub(crate) fn state_word(s: VrrpState) -> &'static str {
    match s {
        VrrpState::Master => "MASTER",
        VrrpState::Backup => "BACKUP",
        VrrpState::Fault => "FAULT",
        VrrpState::Init => "STOP",
    }
}

fn run(name: &str, line: &str, extra: &[String]) {
    let mut words = split_words(line);
    words.extend(extra.iter().cloned());
    let Some((prog, args)) = words.split_first() else {
        return;
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args).stdin(std::process::Stdio::null());
    crate::script_security::apply(&mut cmd);
    match cmd.spawn() {
        Ok(mut child) => {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => warn!("({name}) cannot run notify script {prog}: {e}"),
    }
}

/// Runs the scripts for entering `state` (Init = stopped).
pub fn notify(scripts: &NotifyScripts, name: &str, state: VrrpState, priority: u8) {
    notify_as(scripts, "INSTANCE", name, state, priority)
}

/// A `vrrp_sync_group`'s scripts: `notify` gets `GROUP <name> <state> 0`.
pub fn notify_group(scripts: &NotifyScripts, name: &str, state: VrrpState) {
    notify_as(scripts, "GROUP", name, state, 0)
}

fn notify_as(scripts: &NotifyScripts, kind: &str, name: &str, state: VrrpState, priority: u8) {
    let specific = match state {
        VrrpState::Master => &scripts.master,
        VrrpState::Backup => &scripts.backup,
        VrrpState::Fault => &scripts.fault,
        VrrpState::Init => &scripts.stop,
    };
    if let Some(s) = specific {
        run(name, s, &[]);
    }
    if let Some(s) = &scripts.any {
        let extra = [
            kind.to_string(),
            name.to_string(),
            state_word(state).to_string(),
            priority.to_string(),
        ];
        run(name, s, &extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"/bin/x.sh "a b" c 'd e'"#),
            vec!["/bin/x.sh", "a b", "c", "d e"]
        );
        assert_eq!(
            split_words("\"/bin/x.sh master\""),
            vec!["/bin/x.sh master"]
        );
        assert!(split_words("  ").is_empty());
    }
}
