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

fn state_word(s: VrrpState) -> &'static str {
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
            "INSTANCE".to_string(),
            name.to_string(),
            state_word(state).to_string(),
            priority.to_string(),
        ];
        run(name, s, &extra);
    }
}
