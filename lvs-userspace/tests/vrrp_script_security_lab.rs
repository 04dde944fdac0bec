//! Script security as keepalived's (issue 17 item 13): with `script_user
//! nobody` every script kind the VRRP side starts (notify_master, notify,
//! track_script, notify_fifo_script) runs as nobody, and with
//! `enable_script_security` a root-owned but world-writable notify script
//! is refused with keepalived's warning and never runs.
//!
//! Needs root, `ip`, `ethtool`, the `nobody` user.

mod vrrp_util;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use vrrp_util::*;

fn chmod(p: &std::path::Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn scripts_run_as_script_user_and_unsafe_ones_are_refused() {
    let lab = lab();
    let base = lab.log_dir().join("sec");
    let scripts = base.join("scripts");
    let out = base.join("out");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    chmod(lab.log_dir(), 0o755);
    chmod(&base, 0o755);
    chmod(&scripts, 0o755);
    chmod(&out, 0o777); // nobody writes its records here
    let uids = out.join("uids");
    let rec = scripts.join("rec.sh");
    std::fs::write(
        &rec,
        format!("#!/bin/sh\necho \"$1 $(id -u)\" >> {}\n", uids.display()),
    )
    .unwrap();
    chmod(&rec, 0o755);
    let bad = scripts.join("bad.sh");
    std::fs::write(
        &bad,
        format!("#!/bin/sh\necho \"bad $(id -u)\" >> {}\n", uids.display()),
    )
    .unwrap();
    chmod(&bad, 0o757); // root's, but anyone may rewrite it
    let r = rec.display();
    let top: &'static str = Box::leak(
        format!(
            "global_defs {{\n    script_user nobody\n    enable_script_security\n    \
             notify_fifo {fifo}\n    notify_fifo_script \"{r} fifo\"\n}}\n\
             vrrp_script chk {{\n    script \"{r} track\"\n    interval 1\n    weight 0\n}}\n",
            fifo = base.join("fifo").display()
        )
        .into_boxed_str(),
    );
    let extra: &'static str = Box::leak(
        format!(
            "    notify_master \"{r} notify_master\"\n    notify \"{r} notify\"\n    \
             notify_backup \"{} backup\"\n    track_script {{\n        chk\n    }}\n",
            bad.display()
        )
        .into_boxed_str(),
    );
    let m = start_ours(
        &lab,
        0,
        &Conf {
            top,
            extra,
            ..Conf::master()
        },
    );
    wait_master(&lab, 0, Duration::from_secs(10)).unwrap();
    let nobody = lvs_userspace::script_security::Policy::from_global(&lvs_config::GlobalDefs {
        script_user: Some("nobody".into()),
        ..Default::default()
    })
    .unwrap()
    .user
    .unwrap()
    .uid;
    let want = [
        format!("notify_master {nobody}"),
        format!("notify {nobody}"),
        format!("track {nobody}"),
        format!("fifo {nobody}"),
    ];
    let read = || std::fs::read_to_string(&uids).unwrap_or_default();
    let _ = lvs_testkit::wait_until(
        "every script kind's record",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || want.iter().all(|w| read().lines().any(|l| l == w)),
    );
    let text = read();
    println!("scripts ran as:\n{text}");
    for w in &want {
        assert!(text.lines().any(|l| l == w), "{w:?} not in:\n{text}");
    }
    assert!(!text.contains("bad"), "the unsafe script ran:\n{text}");
    assert!(
        !text.lines().any(|l| l.ends_with(" 0")),
        "a script ran as root:\n{text}"
    );
    wait_log(
        &m,
        &format!(
            "Unsafe permissions found for script '{}' - disabling.",
            bad.display()
        ),
        Duration::from_secs(1),
    );
    let _ = lab.kill(m.pid);
}
