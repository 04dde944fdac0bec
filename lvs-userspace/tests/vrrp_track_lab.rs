//! track_script: a failing script with a negative weight lowers the
//! master's priority below the backup's (the backup takes over) and its
//! recovery lets the master preempt back; a weight-0 script puts the
//! instance in FAULT.
//!
//! Needs root, `ip`, `ethtool`.

mod vrrp_util;

use std::path::Path;
use std::time::Duration;

use vrrp_util::*;

/// A `vrrp_script` `name` (every 0.2 s, with `params`) that fails while
/// `flag` exists.
fn failing_while(name: &str, flag: &Path, params: &str) -> String {
    format!(
        "vrrp_script {name} {{\n    script \"/usr/bin/test ! -e {}\"\n    interval 0.2\n    \
         {params}\n}}\n",
        flag.display()
    )
}

/// Makes the script of `flag` fail (creates it) or succeed (removes it).
fn fail(flag: &Path, failing: bool) {
    if failing {
        std::fs::write(flag, "").unwrap();
    } else {
        std::fs::remove_file(flag).unwrap();
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn track_script_weight_and_fault() {
    let lab = lab();
    let flag = lab.log_dir().join("down.flag");
    let fault_flag = lab.log_dir().join("fault.flag");
    let top = leak(
        failing_while("chk_down", &flag, "weight -150\n    fall 1\n    rise 1")
            + &failing_while("chk_fault", &fault_flag, "weight 0"),
    );
    let track = "    track_script {\n        chk_down\n        chk_fault\n    }\n";
    let (m, b) = start_fast_pair(&lab, top, track);

    // chk_down fails: 200 - 150 = 50 < 100: the backup takes over.
    fail(&flag, true);
    wait_takeover(
        &lab,
        1,
        Duration::from_secs(3),
        &m,
        "Changing effective priority from 200 to 50",
    );
    // Recovers: the master preempts back.
    fail(&flag, false);
    wait_master(&lab, 0, Duration::from_secs(3)).unwrap();

    // chk_fault (weight 0) fails: FAULT, VIP gone, the backup takes over.
    fail(&fault_flag, true);
    wait_log(&m, "(VI_1) Entering FAULT STATE", Duration::from_secs(3));
    wait_master(&lab, 1, Duration::from_secs(3)).unwrap();
    fail(&fault_flag, false);
    wait_master(&lab, 0, Duration::from_secs(3)).unwrap();
    stop_all(&lab, &[&m, &b]);
}
