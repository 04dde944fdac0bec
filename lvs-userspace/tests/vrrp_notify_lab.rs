//! notify_master / notify_stop / notify scripts run on transitions with
//! keepalived's arguments (`INSTANCE VI_1 MASTER 200`).
//!
//! Needs root, `ip`, `ethtool`.

mod vrrp_util;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use vrrp_util::*;

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn notify_scripts_follow_transitions() {
    let lab = lab();
    let out = lab.log_dir().join("notify.out");
    let script = lab.log_dir().join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", out.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = script.display();
    let extra: &'static str = Box::leak(
        format!(
            "    notify_master \"{s} master-only\"\n    notify_stop \"{s} stop-only\"\n    notify {s}\n"
        )
        .into_boxed_str(),
    );
    let sp = start_ours(
        &lab,
        0,
        &Conf {
            extra,
            ..Conf::master().v3("0.1")
        },
    );
    wait_master(&lab, 0, Duration::from_secs(5)).unwrap();
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    lvs_testkit::wait_until(
        "notify lines for MASTER",
        Duration::from_secs(3),
        Duration::from_millis(20),
        || read().contains("INSTANCE VI_1 MASTER 200") && read().contains("master-only"),
    )
    .unwrap();
    assert!(read().contains("INSTANCE VI_1 BACKUP 200"), "{}", read());
    let _ = lab.kill(sp.pid); // SIGTERM: graceful stop
    lvs_testkit::wait_until(
        "notify lines for STOP",
        Duration::from_secs(3),
        Duration::from_millis(20),
        || read().contains("INSTANCE VI_1 STOP 200") && read().contains("stop-only"),
    )
    .unwrap();
    println!("notify output:\n{}", read());
}
