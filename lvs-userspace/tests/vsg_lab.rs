//! `virtual_server_group` through lvsd and the XDP data path: a group of a
//! range of 4 VIPs on 2 ports (`198.18.0.100-103 80`, `… 8080`) is 8
//! services, each forwarded round robin to both real servers; the real
//! servers' checkers run once for the group (`Activating healthchecker` per
//! real server, not per service), and a stopped server leaves all 8 (its
//! `notify_down` runs once); with `omega`, stopping lvsd runs the
//! `notify_down` of the server still up and the `quorum_down` of the group.
//! `lvsd -t` names the `fwmark` entry it leaves out, and why.
//!
//! Needs root, `ip`, `ethtool`, `lvs-lab-httpd`.

mod check_util;
mod common;

use std::{
    net::{Ipv4Addr, SocketAddrV4},
    time::Duration,
};

use anyhow::{ensure, Context, Result};
use check_util::{sorted_lines, write_script};
use common::{Bpffs, Director};
use lvs_testkit::{http_get, wait_until, Lab, LabSpec};

const PORTS: [u16; 2] = [80, 8080];

fn vips() -> Vec<Ipv4Addr> {
    (100..=103).map(|l| Ipv4Addr::new(198, 18, 0, l)).collect()
}

fn config(notify: &str) -> String {
    format!(
        "\
virtual_server_group WEB {{
    198.18.0.100-103 80
    198.18.0.100-103 8080
}}
virtual_server group WEB {{
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    omega
    quorum_down \"{notify} quorum_down\"
    real_server 198.18.0.11 {{
        notify_down \"{notify} down rs1\"
        TCP_CHECK {{
            connect_timeout 1
            retry 0
            warmup 0
        }}
    }}
    real_server 198.18.0.12 {{
        notify_down \"{notify} down rs2\"
        TCP_CHECK {{
            connect_timeout 1
            retry 0
            warmup 0
        }}
    }}
}}
"
    )
}

/// The bodies (real-server names) of `n` requests to `vip:port`.
fn answers(lab: &Lab, vip: Ipv4Addr, port: u16, n: usize) -> Result<Vec<String>> {
    let client = lab.client_addrs()[0];
    lab.run_in_netns(lab.client_ns(), || {
        (0..n)
            .map(|_| {
                http_get(client, SocketAddrV4::new(vip, port), Duration::from_secs(2))
                    .map(|b| b.trim().to_string())
            })
            .collect::<Result<Vec<_>>>()
    })?
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_group_of_4_vips_and_2_ports_forwards_8_services() -> Result<()> {
    let lab = Lab::create(LabSpec {
        vips: vips(),
        ..LabSpec::sized(2, 1)
    })?;
    // The second port: another lvs-lab-httpd in each real server.
    for i in 0..2 {
        lab.spawn_httpd(
            lab.real_server_ns(i),
            &lab.real_server_name(i),
            &["0.0.0.0:8080"],
        )?;
    }
    let notify_log = lab.log_dir().join("notify.log");
    let notify = lab.log_dir().join("notify.sh");
    write_script(
        &notify,
        &format!("echo \"$*\" >> {}\n", notify_log.display()),
    )?;
    let config = config(&notify.display().to_string());
    let notified = || sorted_lines(&notify_log);
    let bpffs = Bpffs::mount(&lab)?;
    let mut d = Director::new(&lab, &bpffs.0, &config)?;
    d.extra_args = vec!["--interface".into(), lab.director_if().into()];
    d.start()?;
    let names = [lab.real_server_name(0), lab.real_server_name(1)];
    wait_until(
        "all 8 services forwarding",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || {
            vips().iter().all(|v| {
                PORTS
                    .iter()
                    .all(|p| answers(&lab, *v, *p, 1).is_ok_and(|a| a.len() == 1))
            })
        },
    )
    .with_context(|| d.log())?;
    for vip in vips() {
        for port in PORTS {
            let a = answers(&lab, vip, port, 4)?;
            println!("{vip}:{port} → {a:?}");
            for n in &names {
                ensure!(a.contains(n), "{vip}:{port}: rr should reach {n}: {a:?}");
            }
        }
    }
    let log = d.log();
    // One checker per real server for the whole group.
    let activating = log.matches("Activating healthchecker for service").count();
    ensure!(activating == 2, "{activating} checkers started:\n{log}");
    ensure!(
        log.contains("Adding service [198.18.0.11]:tcp:8080 to VS [198.18.0.103]:tcp:8080"),
        "{log}"
    );

    // rs2 stops answering on port 80 (its checker's port): it leaves all 8.
    lab.stop_real_server_httpd(1)?;
    d.wait_log_count("Removing service [198.18.0.12]", 8, Duration::from_secs(6))?;
    for vip in vips() {
        for port in PORTS {
            let a = answers(&lab, vip, port, 3)?;
            ensure!(
                a.iter().all(|b| *b == names[0]),
                "{vip}:{port}: only {} should answer: {a:?}",
                names[0]
            );
        }
    }
    // rs2's notify_down ran once: one checker for the whole group.
    wait_until(
        "notify_down rs2",
        Duration::from_secs(3),
        Duration::from_millis(50),
        || notified() == ["down rs2"],
    )
    .with_context(|| format!("{:?}", notified()))?;
    // omega: stopping runs rs1's notify_down (still up) and the group's
    // quorum_down (quorum still up), once each.
    d.stop()?;
    ensure!(
        notified() == ["down rs1", "down rs2", "quorum_down"],
        "{:?}",
        notified()
    );

    // fwmark: lvsd -t says what it leaves out and why.
    let conf = lab.log_dir().join("fwmark.conf");
    std::fs::write(
        &conf,
        config.replace(
            "198.18.0.100-103 8080\n",
            "198.18.0.100-103 8080\n    fwmark 7\n",
        ),
    )?;
    let (_, text) = common::lvsd_test_config(&conf)?;
    ensure!(
        text.contains("fwmark.conf:4:5:")
            && text.contains("fwmark 7: fwmark services are not supported")
            && text.contains("runs before netfilter"),
        "{text}"
    );
    Ok(())
}
