//! A UDP datagram larger than the MTU through the VIP: the client's kernel
//! sends it as IPv4 fragments; IPVS would reassemble and forward it, lvsd
//! forwards the first fragment as its flow's packets and the later ones
//! after it, and the real server reassembles. Before, the fragments went
//! to the director's own kernel, which answered "port unreachable".
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::{net::UdpSocket, time::Duration};

use anyhow::{ensure, Context, Result};
use common::{wait_forwarding, Bpffs, Director};
use lvs_testkit::{responder_path, Lab, LabSpec, SpawnOutput};

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn a_udp_datagram_larger_than_the_mtu_reaches_a_real_server_whole() -> Result<()> {
    let lab = Lab::create(LabSpec::sized(2, 10))?;
    let cfg = "vrrp_instance VI_1 {\n state MASTER\n interface bond0\n virtual_router_id 20\n priority 200\n virtual_ipaddress {\n  198.18.0.100/16 dev bond0\n }\n}\n\
         virtual_server 198.18.0.100 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n real_server 198.18.0.12 80 {\n }\n}\n\
         virtual_server 198.18.0.100 7 {\n lb_algo rr\n lb_kind DR\n protocol UDP\n real_server 198.18.0.11 7 {\n }\n real_server 198.18.0.12 7 {\n }\n}\n";
    // UDP echo on the VIP (on the real servers' lo): replies come from it.
    let bin = responder_path()?;
    let bin = bin.to_string_lossy().into_owned();
    for i in 0..2 {
        let name = format!("echo{}", i + 1);
        lab.spawn_with(
            lab.real_server_ns(i),
            &[&bin, "--name", &name, "--udp-echo", "198.18.0.100:7"],
            SpawnOutput::Log,
            Some(("READY", Duration::from_secs(5))),
        )?;
    }
    let bpffs = Bpffs::mount(&lab)?;
    let mut d = Director::new(&lab, &bpffs.0, cfg)?;
    d.start()?;
    wait_forwarding(&lab)?;

    // 4000 bytes: three fragments on the lab's 1500-byte links.
    let answered = lab.run_in_netns(lab.client_ns(), || -> Result<usize> {
        let mut answered = 0;
        for (n, addr) in lab.client_addrs().iter().enumerate() {
            let sock = UdpSocket::bind((*addr, 0))?;
            sock.connect(("198.18.0.100", 7))?;
            sock.set_read_timeout(Some(Duration::from_secs(2)))?;
            let payload: Vec<u8> = (0..4000).map(|i| (i * 7 + n) as u8).collect();
            sock.send(&payload)?;
            let mut buf = vec![0u8; 8192];
            let got = sock
                .recv(&mut buf)
                .with_context(|| format!("client {addr}: no echo of the 4000-byte datagram"))?;
            ensure!(
                buf[..got] == payload[..],
                "client {addr}: {got} bytes came back, not the datagram"
            );
            answered += 1;
        }
        Ok(answered)
    })??;
    ensure!(answered == 10);
    let v = d.inspect()?.verdicts()?;
    eprintln!(
        "fragments: {answered} datagrams of 4000 bytes echoed; {} later fragments without a first passed",
        v[lvs_common::verdict::PASS_FRAGMENT as usize]
    );
    Ok(())
}
