//! An ECMP router for active-active labs: FRR (zebra, bgpd, bfdd) in the
//! routed client's router namespace (see `Lab::add_routed_client`), peering
//! with every director over BGP with BFD, installing up to 8 equal-cost
//! paths with an L4 multipath hash (`fib_multipath_hash_policy=1`).
//!
//! The daemons run in the foreground as the lab's children with their own
//! config, sockets and pid files under the lab's log directory; FRR drops
//! privileges to its `frr` user, which owns that directory.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::topology::Lab;
use crate::{netns, wait_until, Pid};

/// The router's AS in the lab.
pub const ROUTER_AS: u32 = 65000;

/// What the router peers with.
#[derive(Clone, Debug)]
pub struct EcmpRouterSpec {
    /// BGP neighbors (the directors' addresses), all in `peer_as`.
    pub peers: Vec<Ipv4Addr>,
    pub peer_as: u32,
    /// BFD transmit/receive interval; detection = 3 × this.
    pub bfd_interval: Duration,
}

/// The running FRR router.
pub struct EcmpRouter {
    ns: String,
    dir: PathBuf,
    pids: Vec<Pid>,
}

const FRR_DIR: &str = "/usr/lib/frr";

impl EcmpRouter {
    /// Starts zebra, bfdd and bgpd in the lab's router namespace (made by
    /// `add_routed_client` first) and waits until bgpd runs.
    pub fn start(lab: &Lab, spec: &EcmpRouterSpec) -> Result<EcmpRouter> {
        let ns = lab
            .router_ns()
            .context("add_routed_client first: FRR runs in its router")?
            .to_owned();
        ensure!(
            PathBuf::from(FRR_DIR).join("bgpd").exists(),
            "FRR is not installed ({FRR_DIR}/bgpd): cargo xtask setup installs it"
        );
        netns::run_in(&ns, || {
            netns::write_sysctl("net.ipv4.fib_multipath_hash_policy", "1")
        })??;
        let dir = lab.log_dir().join("frr");
        std::fs::create_dir_all(dir.join("vty"))?;
        crate::process::run_ok(
            &["chown", "-R", "frr:frr", dir.to_str().context("path")?],
            None,
            Duration::from_secs(10),
        )?;
        let ms = spec.bfd_interval.as_millis();
        std::fs::write(dir.join("zebra.conf"), "hostname lab-router\n")?;
        std::fs::write(
            dir.join("bfdd.conf"),
            format!(
                "bfd\n profile fast\n  transmit-interval {ms}\n  receive-interval {ms}\n  detect-multiplier 3\n !\n!\n"
            ),
        )?;
        let mut bgp = format!(
            "router bgp {ROUTER_AS}\n bgp router-id {}\n no bgp ebgp-requires-policy\n timers bgp 1 3\n",
            crate::ROUTER_ADDR
        );
        for p in &spec.peers {
            bgp += &format!(
                " neighbor {p} remote-as {}\n neighbor {p} timers connect 1\n neighbor {p} bfd profile fast\n",
                spec.peer_as
            );
        }
        bgp += " address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n!\n";
        std::fs::write(dir.join("bgpd.conf"), bgp)?;
        crate::process::run_ok(
            &["chown", "-R", "frr:frr", dir.to_str().context("path")?],
            None,
            Duration::from_secs(10),
        )?;

        let d = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let (zserv, vty) = (d("zserv.api"), d("vty"));
        let daemon = |name: &str, extra: &[String]| -> Vec<String> {
            let mut v = vec![
                format!("{FRR_DIR}/{name}"),
                "-f".into(),
                d(&format!("{name}.conf")),
                "-i".into(),
                d(&format!("{name}.pid")),
                "-z".into(),
                zserv.clone(),
                "--vty_socket".into(),
                vty.clone(),
                "-P".into(),
                "0".into(),
                "--log".into(),
                "stdout".into(),
            ];
            v.extend(extra.iter().cloned());
            v
        };
        let mut r = EcmpRouter {
            ns: ns.clone(),
            dir: dir.clone(),
            pids: Vec::new(),
        };
        let spawn = |argv: Vec<String>| -> Result<Pid> {
            let a: Vec<&str> = argv.iter().map(String::as_str).collect();
            lab.spawn(&ns, &a)
        };
        // A daemon is ready once the file it creates in `dir` is there.
        let wait_for = |what: &str, file: &str| {
            wait_until(
                what,
                Duration::from_secs(10),
                Duration::from_millis(20),
                || dir.join(file).exists(),
            )
        };
        r.pids.push(spawn(daemon("zebra", &[]))?);
        wait_for("zebra's API socket", "zserv.api")?;
        r.pids
            .push(spawn(daemon("bfdd", &["--bfdctl".into(), d("bfdd.sock")]))?);
        r.pids.push(spawn(daemon("bgpd", &[]))?);
        wait_for("bgpd running", "bgpd.pid")?;
        for p in &r.pids {
            ensure!(
                lab.is_running(*p),
                "an FRR daemon exited at start: see {}",
                dir.display()
            );
        }
        Ok(r)
    }

    /// The next hops the router's kernel FIB uses for `dst`/32 (empty when
    /// no BGP route is installed).
    pub fn next_hops(&self, lab: &Lab, dst: Ipv4Addr) -> Result<Vec<Ipv4Addr>> {
        let out = lab.exec_ok(&self.ns, &["ip", "route", "show", &format!("{dst}/32")])?;
        let mut hops = parse_via(&out);
        // A nexthop group shows as `nhid N` alone on some iproute2 versions.
        if hops.is_empty() {
            if let Some(id) = out.split_whitespace().skip_while(|w| *w != "nhid").nth(1) {
                let g = lab.exec_ok(&self.ns, &["ip", "nexthop", "show", "id", id])?;
                for member in g
                    .split_whitespace()
                    .skip_while(|w| *w != "group")
                    .nth(1)
                    .unwrap_or("")
                    .split('/')
                {
                    let m = member.split(',').next().unwrap_or("");
                    if !m.is_empty() {
                        let o = lab.exec_ok(&self.ns, &["ip", "nexthop", "show", "id", m])?;
                        hops.extend(parse_via(&o));
                    }
                }
                if hops.is_empty() {
                    hops = parse_via(&g);
                }
            }
        }
        hops.sort();
        hops.dedup();
        Ok(hops)
    }

    /// The router's namespace.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Directory of FRR's configs, sockets and pid files.
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    /// The daemons' pids (the lab stops them on teardown).
    pub fn pids(&self) -> &[Pid] {
        &self.pids
    }
}

fn parse_via(text: &str) -> Vec<Ipv4Addr> {
    let w: Vec<&str> = text.split_whitespace().collect();
    w.windows(2)
        .filter(|p| p[0] == "via")
        .filter_map(|p| p[1].parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipath_routes_are_read() {
        let t = "198.18.0.100 nhid 20 proto bgp metric 20 \n\tnexthop via 198.18.0.2 dev eth0 weight 1 \n\tnexthop via 198.18.0.3 dev eth0 weight 1 \n";
        assert_eq!(
            parse_via(t),
            [Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 3)]
        );
    }
}
