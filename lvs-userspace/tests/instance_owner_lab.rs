//! One lvsd per instance: a second one on a running instance is refused at
//! once (naming the running pid) and the first keeps forwarding; a stopping
//! owner (`--keep-datapath`, the upgrade path) is waited for and its data
//! path taken over without losing a connection; a start that fails leaves
//! no pins, directories, mounts or XDP programs behind.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::{net::Ipv4Addr, path::Path, time::Duration};

use anyhow::{Context, Result};
use common::{
    ensure_same_servers, keep_alive_clients, lvsd_once, own_bin, wait_forwarding, Bpffs, Director,
};
use lvs_testkit::{Lab, LabSpec};

/// The lab, and the bpffs lvsd pins in.
fn lab() -> Result<(Lab, Bpffs)> {
    let lab = Lab::create(LabSpec::sized(2, 20))?;
    let bpffs = Bpffs::mount(&lab)?;
    Ok((lab, bpffs))
}

fn config() -> String {
    "vrrp_instance VI_1 {\n state MASTER\n interface bond0\n virtual_router_id 20\n priority 200\n advert_int 1\n virtual_ipaddress {\n  198.18.0.100/16 dev bond0\n }\n}\nvirtual_server 198.18.0.100 80 {\n lb_algo wrr\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  weight 1\n }\n real_server 198.18.0.12 80 {\n  weight 1\n }\n}\n".into()
}

/// The config above in the lab's log directory as `name`.
fn config_file(lab: &Lab, name: &str) -> Result<String> {
    let conf = lab.log_dir().join(name);
    std::fs::write(&conf, config())?;
    Ok(conf.to_str().context("path")?.to_owned())
}

/// `lvsd -f CONF` on our bpffs (plus `extra`) run to its end in director
/// 0's namespace: its exit code and log.
fn lvsd_once_with(
    lab: &Lab,
    bpffs: &Bpffs,
    conf: &str,
    extra: &[&str],
) -> Result<(Option<i32>, String)> {
    lvsd_once(
        lab,
        &[&["-f", conf][..], &bpffs.lab_instance_args()?, extra].concat(),
    )
}

/// Whether director 0's bond0 has an XDP program attached.
fn xdp_on_director(lab: &Lab) -> Result<bool> {
    let out = lab.exec_ok(lab.director_ns(0), &["ip", "-d", "link", "show", "bond0"])?;
    Ok(out.contains("xdp"))
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_second_lvsd_on_a_running_instance_is_refused_and_the_first_keeps_forwarding() -> Result<()> {
    let (lab, bpffs) = lab()?;
    let mut d = Director::new(&lab, &bpffs.0, &config())?;
    let first = d.start()?;
    wait_forwarding(&lab)?;
    let conf = config_file(&lab, "second.conf")?;
    let (code, log) = lvsd_once_with(&lab, &bpffs, &conf, &[])?;
    assert_ne!(code, Some(0), "second lvsd must fail: {log}");
    assert!(
        log.contains(&format!("in use by lvsd (pid {})", first.0)),
        "names the running pid {}: {log}",
        first.0
    );
    assert!(lab.is_running(first), "first lvsd still runs");
    // Its pins are untouched and it still forwards.
    let inst = d.inspect()?;
    assert_eq!(inst.services()?.len(), 1);
    wait_forwarding(&lab)?;
    // `--flush` of a running instance is refused too.
    let (code, log) = lvsd_once(
        &lab,
        &[
            "--flush",
            "--bpffs",
            bpffs.0.to_str().context("path")?,
            "--instance",
            "lab",
        ],
    )?;
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("in use by lvsd"), "{log}");
    wait_forwarding(&lab)?;
    d.signal(libc::SIGTERM)?;
    d.wait_log("Stopped lvsd", Duration::from_secs(10))?;
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn keep_datapath_hand_over_waits_for_the_stopping_agent_and_keeps_connections() -> Result<()> {
    let (lab, bpffs) = lab()?;
    let mut old = Director::new(&lab, &bpffs.0, &config())?;
    old.extra_args = vec!["--keep-datapath".into()];
    old.start()?;
    wait_forwarding(&lab)?;
    old.wait_log("(VI_1) Entering MASTER STATE", Duration::from_secs(10))?;
    let clients: Vec<Ipv4Addr> = lab.client_addrs()[..10].to_vec();
    let mut conns = keep_alive_clients(&lab, &clients)?;

    // The upgrade: stop the old agent and start the new one at once; the
    // new one must wait for the old one rather than refuse or race it.
    old.signal(libc::SIGTERM)?;
    old.wait_log("Stopping (SIGTERM)", Duration::from_secs(5))?;
    let mut new = Director::new(&lab, &bpffs.0, &config())?;
    new.extra_args = vec!["--keep-datapath".into()];
    new.start()?;
    old.wait_log("Stopped lvsd", Duration::from_secs(10))?;
    new.wait_log("re-adopting the running data path", Duration::from_secs(15))?;
    new.wait_log(
        "took over the running program's link",
        Duration::from_secs(5),
    )?;
    ensure_same_servers(&lab, &mut conns, "after the hand-over")?;
    new.wait_log("(VI_1) Entering MASTER STATE", Duration::from_secs(10))?;
    wait_forwarding(&lab)?;
    ensure_same_servers(&lab, &mut conns, "with the new agent MASTER")?;
    Ok(())
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_failed_start_leaves_no_pins_mounts_or_xdp_behind() -> Result<()> {
    let (lab, bpffs) = lab()?;
    let conf = config_file(&lab, "failing.conf")?;

    // bond0 attaches, nosuch0 does not exist: the start fails after
    // pinning maps and a link.
    let (code, log) = lvsd_once_with(
        &lab,
        &bpffs,
        &conf,
        &["--interface", "bond0", "--interface", "nosuch0"],
    )?;
    assert_ne!(code, Some(0), "{log}");
    assert!(
        log.contains("nosuch0"),
        "names the missing interface: {log}"
    );
    assert!(
        !bpffs.0.join("lab").exists(),
        "no pin directory left: {:?}",
        std::fs::read_dir(bpffs.0.join("lab")).map(|d| d.count())
    );
    assert!(!xdp_on_director(&lab)?, "no XDP program left on bond0");

    // A bpffs root that does not exist yet, outside /sys: lvsd mounts one
    // there (it runs in the root mount namespace with --netns) and must
    // unmount and remove it again when it cannot start.
    let fresh = format!("/run/lvs-test-fresh-{}", lab.prefix().trim_end_matches('-'));
    let lvsd = own_bin("lvsd");
    let out = std::process::Command::new(&lvsd)
        .args([
            "-n",
            "-l",
            "-f",
            &conf,
            "--bpffs",
            &fresh,
            "--instance",
            "lab",
        ])
        .args(["--netns", lab.director_ns(0), "--xdp-mode", "generic"])
        .args(["--interface", "nosuch0"])
        .output()?;
    let log = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{log}");
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    let mounted = mounts.contains(&format!(" {fresh} "));
    if mounted {
        let _ = std::process::Command::new("umount").arg(&fresh).status();
    }
    let left = Path::new(&fresh).exists();
    let _ = std::fs::remove_dir_all(&fresh);
    assert!(!mounted, "bpffs at {fresh} unmounted: {log}");
    assert!(!left, "{fresh} removed: {log}");
    assert!(!xdp_on_director(&lab)?, "no XDP program left on bond0");

    // And the instance starts cleanly afterwards.
    let _d = Director::forwarding(&lab, &bpffs.0, &config())?;
    Ok(())
}

/// The lock itself, deterministically: a running owner is refused at once
/// with its pid; a stopping one is waited for, and the waiter gets the
/// directory the owner left (or a fresh one if the owner removed it).
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn the_instance_lock_refuses_a_running_owner_and_waits_for_a_stopping_one() -> Result<()> {
    use lvs_userspace::datapath::owner::{read_owner, InstanceLock, OwnerError};
    use std::time::Instant;

    // Only for its per-run bpffs (cleaned up however the test ends).
    let lab = Lab::create(LabSpec::sized(1, 1))?;
    let bpffs = Bpffs::mount(&lab)?;
    let root = bpffs.0.clone();
    let pid = std::process::id().to_string();

    let mut first = InstanceLock::acquire(&root, "lab", Duration::from_secs(5))?;
    first.started();
    let owner = read_owner(&root.join("lab")).context("owner link")?;
    assert_eq!((owner.pid.as_str(), owner.stopping), (pid.as_str(), false));
    let t = Instant::now();
    match InstanceLock::acquire(&root, "lab", Duration::from_secs(5)) {
        Err(OwnerError::Running { pid: p, .. }) => assert_eq!(p, pid),
        Err(e) => panic!("wrong refusal: {e}"),
        Ok(_) => panic!("a second owner was let in"),
    }
    assert!(t.elapsed() < Duration::from_secs(1), "refused at once");

    // Stopping, and gone after 1 s: the waiter gets in then, not before.
    first.mark_stopping();
    assert!(read_owner(&root.join("lab")).context("owner")?.stopping);
    let t = Instant::now();
    let waiter = std::thread::spawn({
        let root = root.clone();
        move || InstanceLock::acquire(&root, "lab", Duration::from_secs(10))
    });
    std::thread::sleep(Duration::from_secs(1));
    // The stopping owner removes its data path (a stop without
    // --keep-datapath) and exits.
    std::fs::remove_dir_all(root.join("lab"))?;
    drop(first);
    let mut second = waiter.join().expect("waiter thread")?;
    second.started();
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "waited {waited:?}"
    );
    assert!(root.join("lab").is_dir(), "a fresh directory");
    let owner = read_owner(&root.join("lab")).context("owner link")?;
    assert!(!owner.stopping);
    drop(second);
    Ok(())
}
