//! notify_master / notify_stop / notify scripts run on transitions with
//! keepalived's arguments (`INSTANCE VI_1 MASTER 200`).
//!
//! Needs root, `ip`, `ethtool`.

mod vrrp_util;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use lvs_testkit::Lab;
use vrrp_util::*;

/// An executable script in the lab's logs that appends its arguments as a
/// line to a file: (the script, the file).
fn recording_script(lab: &Lab) -> (PathBuf, PathBuf) {
    let out = lab.log_dir().join("notify.out");
    let script = lab.log_dir().join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", out.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, out)
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn notify_scripts_follow_transitions() {
    let lab = lab();
    let (script, out) = recording_script(&lab);
    let s = script.display();
    let extra = leak(format!(
        "    notify_master \"{s} master-only\"\n    notify_stop \"{s} stop-only\"\n    notify {s}\n"
    ));
    let conf = Conf {
        extra,
        ..Conf::master().v3("0.1")
    };
    let sp = start_master(&lab, 0, &conf, Peer::Ours);
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    // The generic `notify` line of a state and its own script's.
    let wait_lines = |state: &str, own: &str| {
        let generic = format!("INSTANCE VI_1 {state} 200");
        wait_for(
            &format!("notify lines for {state}"),
            Duration::from_secs(3),
            || read().contains(&generic) && read().contains(own),
        )
    };
    wait_lines("MASTER", "master-only");
    assert!(read().contains("INSTANCE VI_1 BACKUP 200"), "{}", read());
    let _ = lab.kill(sp.pid); // SIGTERM: graceful stop
    wait_lines("STOP", "stop-only");
    println!("notify output:\n{}", read());
}
