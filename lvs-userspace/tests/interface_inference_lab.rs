//! A keepalived.conf with virtual servers and no vrrp_instance (keepalived
//! `-C` style: the VIPs are managed elsewhere) and no `--interface`: lvsd
//! attaches to the interface the kernel routes the real servers through,
//! says so, and forwards; a real server it cannot place (behind a gateway)
//! is refused by name and the failed start leaves nothing behind.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{load_every_client, lvsd_once, own_bin, wait_forwarding, Bpffs, Director};
use lvs_testkit::{Lab, LabSpec};

fn vs_only(reals: &[&str]) -> String {
    let mut s = String::from(
        "virtual_server 198.18.0.100 80 {\n lb_algo wrr\n lb_kind DR\n protocol TCP\n",
    );
    for r in reals {
        s += &format!(" real_server {r} 80 {{\n  weight 1\n }}\n");
    }
    s + "}\n"
}

/// A lab whose director holds the VIP already, as another manager left
/// it, and the bpffs lvsd pins in.
fn lab_holding_vip(real_servers: usize, clients: usize) -> Result<(Lab, Bpffs)> {
    let lab = Lab::create(LabSpec {
        director_holds_vip: true,
        ..LabSpec::sized(real_servers, clients)
    })?;
    let bpffs = Bpffs::mount(&lab)?;
    Ok((lab, bpffs))
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn without_vrrp_or_interface_lvsd_attaches_where_the_real_servers_are() -> Result<()> {
    let (lab, bpffs) = lab_holding_vip(3, 30)?;

    // A real server behind a gateway cannot be served by Direct Routing:
    // refused by name, nothing left behind.
    lab.exec_ok(
        lab.director_ns(0),
        &["ip", "route", "add", "198.19.5.0/24", "via", "198.18.0.11"],
    )?;
    let conf = lab.log_dir().join("gateway.conf");
    std::fs::write(&conf, vs_only(&["198.18.0.11", "198.19.5.5"]))?;
    let conf = conf.to_str().context("path")?;
    let (code, log) = lvsd_once(
        &lab,
        &[&["-f", conf][..], &bpffs.lab_instance_args()?].concat(),
    )?;
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("real server 198.19.5.5 is routed via the gateway 198.18.0.11 on bond0"),
        "{log}"
    );
    assert!(!bpffs.0.join("lab").exists(), "no pins left");

    // On-link real servers: bond0 is inferred, and lvsd forwards.
    let mut d = Director::new(
        &lab,
        &bpffs.0,
        &vs_only(&["198.18.0.11", "198.18.0.12", "198.18.0.13"]),
    )?;
    d.start()?;
    d.wait_log(
        "no vrrp_instance and no --interface: attaching the data path to bond0 (the kernel routes 198.18.0.11, 198.18.0.12, 198.18.0.13 through it)",
        Duration::from_secs(10),
    )?;
    wait_forwarding(&lab)?;
    let r = load_every_client(&lab, 2, 10)?;
    r.ensure_no_failures()?;
    r.ensure_weights(&[("rs1", 1), ("rs2", 1), ("rs3", 1)], 0.1)?;
    assert!(d.log().contains("XDP on bond0: attached"), "{}", d.log());
    Ok(())
}

/// A NAT service beside a DR one: `lvsd -t` says error (exit 4), lvsd runs
/// the DR service only and never programs the NAT one as DR.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_nat_service_is_an_error_and_is_not_forwarded() -> Result<()> {
    let (lab, bpffs) = lab_holding_vip(2, 10)?;
    let config = format!(
        "{}virtual_server 198.18.0.100 8080 {{\n lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 198.18.0.11 80 {{\n }}\n}}\n",
        vs_only(&["198.18.0.11", "198.18.0.12"])
    );
    let conf = lab.log_dir().join("nat.conf");
    std::fs::write(&conf, &config)?;
    let out = std::process::Command::new(own_bin("lvsd"))
        .args(["-t", "-f"])
        .arg(&conf)
        .output()?;
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains(
            "nat.conf:14:10: error: lb_kind NAT: virtual_server 198.18.0.100:8080 is not run"
        ),
        "{text}"
    );

    let d = Director::forwarding(&lab, &bpffs.0, &config)?;
    d.wait_log("virtual_server 198.18.0.100:8080", Duration::from_secs(5))?;
    let services = d.inspect()?.services()?;
    let ports: Vec<u16> = services.iter().map(|s| s.port).collect();
    assert_eq!(ports, vec![80], "only the DR service is programmed");
    Ok(())
}
