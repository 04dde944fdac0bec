//! `notify_master` / `notify_backup` / `notify_fault` / `notify_stop` and
//! `notify` scripts, started by [`crate::script`]'s rule (words with quotes,
//! executed without a shell unless the line needs one); `notify` gets
//! `INSTANCE <name> <MASTER|BACKUP|FAULT|STOP> <priority>` appended. Scripts
//! run in the background and are reaped; a script that cannot be started is
//! logged.

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

pub(crate) fn state_word(s: VrrpState) -> &'static str {
    match s {
        VrrpState::Master => "MASTER",
        VrrpState::Backup => "BACKUP",
        VrrpState::Fault => "FAULT",
        VrrpState::Init => "STOP",
    }
}

fn run(name: &str, line: &str, extra: &[String]) {
    if let Err(e) = crate::script::spawn_reaped(line, extra) {
        warn!("({name}) cannot run notify script {line}: {e}");
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
