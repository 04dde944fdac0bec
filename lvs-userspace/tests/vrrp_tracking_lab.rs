//! `vrrp_track_process` and `notify_fifo` in the lab: the master tracks a
//! process (weight 0: FAULT without quorum); killing it moves the VIP to
//! the backup, starting it again brings it back; every transition is a
//! line in keepalived's format on the notify FIFO.
//!
//! Needs root, `ip`, `ethtool`, `sleep`.

mod vrrp_util;

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use vrrp_util::*;

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn track_process_quorum_and_notify_fifo() {
    let lab = lab();
    // A process only this test runs: full command line with a parameter.
    let marker = format!("1001.{}", std::process::id());
    let sleeper = || {
        lab.spawn(lab.director_ns(0), &["/bin/sleep", &marker])
            .expect("sleep")
    };
    let s1 = sleeper();
    let fifo = lab.log_dir().join("notify.fifo");
    let top = leak(format!(
        "global_defs {{\n    notify_fifo {}\n}}\n\
         vrrp_track_process chk_proc {{\n    process /bin/sleep {marker}\n    quorum 1\n}}\n",
        fifo.display()
    ));
    let (m, b) = start_master_then_backup(
        &lab,
        &Conf {
            top,
            extra: "    track_process {\n        chk_proc\n    }\n",
            ..Conf::master()
        },
        &Conf::backup(),
        Peer::Ours,
    );
    std::thread::sleep(Duration::from_secs(1));

    let _ = lab.kill(s1);
    wait_fault_takeover(
        &lab,
        Duration::from_secs(4),
        &m,
        "Quorum lost for tracked process chk_proc",
    );
    assert!(
        priority_zero_received(&b) >= 1,
        "no priority 0 from the FAULT"
    );

    let s2 = sleeper();
    wait_takeover(
        &lab,
        0,
        Duration::from_secs(8),
        &m,
        "Quorum gained for tracked process chk_proc",
    );

    // The FIFO (opened read-write by the speaker, so nothing waited for
    // us) holds every transition.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("the notify fifo exists");
    // The line comes right after the VIPs: read until it is there.
    let mut text = String::new();
    let _ = lvs_testkit::wait_until(
        "the last MASTER line",
        Duration::from_secs(2),
        Duration::from_millis(20),
        || {
            let mut buf = vec![0u8; 4096];
            let n = f.read(&mut buf).unwrap_or(0);
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            text.trim_end().ends_with("MASTER 200")
        },
    );
    println!("notify fifo:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "INSTANCE \"VI_1\" BACKUP 200",
        "INSTANCE \"VI_1\" MASTER 200",
        "INSTANCE \"VI_1\" FAULT 200",
    ] {
        assert!(lines.contains(&want), "{want:?} not in {lines:?}");
    }
    let last_master = lines.iter().rposition(|l| l.contains("MASTER")).unwrap();
    let fault = lines.iter().position(|l| l.contains("FAULT")).unwrap();
    assert!(last_master > fault, "{lines:?}");
    let _ = lab.kill(s2);
    stop_all(&lab, &[&m, &b]);
    assert!(!fifo.exists(), "the FIFO we created is removed at exit");
}

/// `track_file` (weight 0): a non-zero value in the file is FAULT, the
/// backup takes over; 0 again brings the master back. `init_file` writes
/// the starting value.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn track_file_value_moves_the_vip() {
    let lab = lab();
    let state = lab.log_dir().join("vrrp.state");
    let top = leak(format!(
        "track_file chk_file {{\n    file {}\n    weight 0\n    init_file 0 overwrite\n}}\n",
        state.display()
    ));
    let (m, b) = start_fast_pair(&lab, top, "    track_file {\n        chk_file\n    }\n");
    // Written at the master's start; 0 lets it hold the VIP.
    assert_eq!(std::fs::read_to_string(&state).unwrap().trim(), "0");
    std::fs::write(&state, "1\n").unwrap();
    wait_fault_takeover(
        &lab,
        Duration::from_secs(3),
        &m,
        "(VI_1) tracked file chk_file now 1",
    );
    std::fs::write(&state, "0\n").unwrap();
    wait_master(&lab, 0, Duration::from_secs(4)).unwrap();
    stop_all(&lab, &[&m, &b]);
}
