//! The seed-shaped lab with our data path on the director, shared by the
//! lab tests and the demo (`examples/demo.rs` includes this file).
#![allow(dead_code)]

use std::{net::Ipv4Addr, path::PathBuf};

use anyhow::{Context, Result};
use lvs_testkit::{Lab, LabSpec};
use lvs_userspace::{
    datapath::{
        self, AttachMode, Attached, Datapath, DesiredBackend, DesiredService, DesiredState,
        NextHop, Options, Persistence, Proto,
    },
    sched::Algorithm,
};

/// The seed's weights: real servers .36–.40.
pub const SEED_WEIGHTS: [u32; 5] = [2, 3, 3, 2, 2];

pub fn seed_spec(client_addrs: usize) -> LabSpec {
    LabSpec {
        directors: 1,
        director_if: "bond0".into(),
        director_holds_vip: true,
        real_servers: SEED_WEIGHTS.len(),
        client_addrs,
        second_client_net: true,
        ..LabSpec::default()
    }
}

/// A binary of this package (tests get the path from cargo; the demo
/// looks next to itself, in target/<profile>/).
pub fn own_bin(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!("CARGO_BIN_EXE_{name}")) {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    for d in [dir, dir.parent().unwrap_or(dir)] {
        if d.join(name).is_file() {
            return d.join(name);
        }
    }
    PathBuf::from(name)
}

/// The desired state of the seed's virtual server in the lab.
pub fn seed_service(lab: &Lab, ifindex: u32, persistence: Option<u32>) -> DesiredState {
    let backends = SEED_WEIGHTS
        .iter()
        .enumerate()
        .map(|(i, &weight)| DesiredBackend {
            addr: lab.real_server_addr(i),
            port: lab.spec().service_port,
            weight,
            alive: true,
            next_hop: NextHop {
                mac: lab.real_server_mac(i),
                src_mac: lab.director_mac(0),
                ifindex,
            },
        })
        .collect();
    DesiredState {
        services: vec![DesiredService {
            vip: lab.vip(),
            port: lab.spec().service_port,
            proto: Proto::Tcp,
            algo: Algorithm::Wrr,
            persistence: persistence.map(|timeout_s| Persistence {
                timeout_s,
                netmask: Ipv4Addr::BROADCAST,
            }),
            sloppy: false,
            backends,
        }],
    }
}

/// Loads the data path inside director 0's namespace, attaches it to the
/// director interface and applies the seed service. In native mode the
/// bridge-side peer gets an XDP_PASS program first (veth needs one to
/// receive XDP_TX frames).
pub fn program_director(
    lab: &Lab,
    mode: AttachMode,
    opts: &Options,
    persistence: Option<u32>,
) -> Result<(Datapath, Attached)> {
    if mode != AttachMode::Generic {
        let (sw, peer) = lab.director_peer(0);
        let pass = own_bin("lvs-xdp-pass");
        lab.spawn_with(
            sw,
            &[pass.to_str().context("path")?, peer],
            lvs_testkit::process::SpawnOutput::Log,
            Some(("attached", std::time::Duration::from_secs(10))),
        )?;
    }
    let ifname = lab.director_if().to_owned();
    lab.run_in_netns(lab.director_ns(0), || -> Result<(Datapath, Attached)> {
        let mut dp = Datapath::open(opts).context("open datapath")?;
        let attached = dp.attach(&ifname, mode).context("attach")?;
        let ifindex = datapath::ifindex(&ifname)?;
        dp.apply(&seed_service(lab, ifindex, persistence))?;
        Ok((dp, attached))
    })?
}
