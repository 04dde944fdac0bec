//! Which interfaces the data path attaches to: `--interface`, else the
//! `vrrp_instance`s' interfaces, else (keepalived `-C` style, VIPs managed
//! elsewhere) the interfaces the kernel routes the real servers through,
//! plus any interface already holding a VIP (where clients' frames arrive).
//!
//! Inference refuses what it cannot decide: a real server routed through a
//! gateway (Direct Routing needs it on a directly connected network), over
//! several next hops (ECMP: which link?), or not at all.

use std::{collections::BTreeSet, net::Ipv4Addr};

use anyhow::{bail, Result};
use lvs_config::Config;
use tracing::info;

use super::plan::Plan;
use crate::netlink::{self, RouteTo};

/// The interfaces to attach to, by the rules above; logs an inference.
pub fn datapath_interfaces(given: &[String], cfg: &Config, plan: &Plan) -> Result<Vec<String>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let mut out: Vec<String> = Vec::new();
    for v in &cfg.vrrp_instances {
        if !out.contains(&v.interface) {
            out.push(v.interface.clone());
        }
    }
    if !out.is_empty() {
        return Ok(out);
    }
    let reals = real_servers(plan);
    let routes = reals
        .iter()
        .map(|a| Ok((*a, netlink::route_to(*a)?)))
        .collect::<Result<Vec<_>>>()?;
    let name = |i: u32| {
        netlink::link_by_index(i)
            .map(|l| l.name)
            .unwrap_or_else(|_| format!("ifindex {i}"))
    };
    let mut ifaces = infer(&routes, name)?;
    for (vip, ifname) in vips_held(plan) {
        if !ifaces.iter().any(|(i, _)| *i == ifname) {
            ifaces.push((ifname, vec![vip]));
        }
    }
    for (ifname, why) in &ifaces {
        let why: Vec<String> = why.iter().map(Ipv4Addr::to_string).collect();
        info!(
            "no vrrp_instance and no --interface: attaching the data path to {ifname} (the kernel routes {} through it)",
            why.join(", ")
        );
    }
    Ok(ifaces.into_iter().map(|(i, _)| i).collect())
}

/// Every IPv4 real server and sorry server, once each, in config order
/// (routes are looked up for IPv4; an IPv6-only config names its
/// interface with `--interface` or a `vrrp_instance`).
fn real_servers(plan: &Plan) -> Vec<Ipv4Addr> {
    let mut seen = BTreeSet::new();
    plan.services
        .iter()
        .flat_map(|s| {
            s.reals
                .iter()
                .map(|r| r.addr)
                .chain(s.sorry_server.map(|sorry| sorry.addr))
        })
        .filter_map(|a| match a {
            std::net::IpAddr::V4(a) => Some(a),
            std::net::IpAddr::V6(_) => None,
        })
        .filter(|a| seen.insert(*a))
        .collect()
}

/// VIPs already configured on an interface of this host (by whatever
/// manages them), with that interface.
fn vips_held(plan: &Plan) -> Vec<(Ipv4Addr, String)> {
    let vips: BTreeSet<Ipv4Addr> = plan
        .services
        .iter()
        .filter_map(|s| match s.id.vip {
            std::net::IpAddr::V4(a) => Some(a),
            std::net::IpAddr::V6(_) => None,
        })
        .collect();
    let Ok(links) = netlink::links() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for l in links.iter().filter(|l| l.name != "lo") {
        for a in netlink::addrs(l.index).unwrap_or_default() {
            if vips.contains(&a.addr) {
                out.push((a.addr, l.name.clone()));
            }
        }
    }
    out
}

/// The pure part: interfaces (with the real servers routed through each,
/// in first-seen order) from each real server's route, or why not.
fn infer(
    routes: &[(Ipv4Addr, RouteTo)],
    name: impl Fn(u32) -> String,
) -> Result<Vec<(String, Vec<Ipv4Addr>)>> {
    if routes.is_empty() {
        bail!(
            "no interface for the data path: no vrrp_instance, no --interface and no real server to infer one from"
        );
    }
    let mut out: Vec<(String, Vec<Ipv4Addr>)> = Vec::new();
    for (rs, route) in routes {
        let oif = match route {
            RouteTo::OnLink { oif } => *oif,
            // A real server on this host (a local sorry server): no link.
            RouteTo::Local => continue,
            RouteTo::Gateway { oif, gateway } => bail!(
                "cannot infer the data path's interface: real server {rs} is routed via the gateway {gateway}{}, and Direct Routing needs real servers on a directly connected network; give --interface",
                oif.map(|i| format!(" on {}", name(i))).unwrap_or_default()
            ),
            RouteTo::Multipath { oifs } => {
                let names: Vec<String> = oifs.iter().map(|i| name(*i)).collect();
                bail!(
                    "cannot infer the data path's interface: real server {rs} is routed over several next hops ({}); give --interface",
                    names.join(", ")
                )
            }
            RouteTo::None => bail!(
                "cannot infer the data path's interface: no route to real server {rs}; give --interface"
            ),
        };
        let ifname = name(oif);
        match out.iter_mut().find(|(i, _)| *i == ifname) {
            Some((_, list)) => list.push(*rs),
            None => out.push((ifname, vec![*rs])),
        }
    }
    if out.is_empty() {
        bail!("no interface for the data path: every real server is an address of this host; give --interface");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(i: u32) -> String {
        format!("eth{i}")
    }

    fn a(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, last)
    }

    #[test]
    fn on_link_real_servers_give_their_interfaces() {
        let routes = [
            (a(11), RouteTo::OnLink { oif: 2 }),
            (a(12), RouteTo::OnLink { oif: 2 }),
            (a(13), RouteTo::OnLink { oif: 3 }),
            (a(1), RouteTo::Local),
        ];
        let got = infer(&routes, name).unwrap();
        assert_eq!(
            got,
            vec![
                ("eth2".to_owned(), vec![a(11), a(12)]),
                ("eth3".to_owned(), vec![a(13)])
            ]
        );
    }

    #[test]
    fn gateways_multipath_and_no_route_are_refused_by_name() {
        let gw = [(
            a(11),
            RouteTo::Gateway {
                oif: Some(2),
                gateway: a(1),
            },
        )];
        let e = infer(&gw, name).unwrap_err().to_string();
        assert!(
            e.contains("198.18.0.11") && e.contains("gateway 198.18.0.1 on eth2"),
            "{e}"
        );
        let ecmp = [(a(11), RouteTo::Multipath { oifs: vec![2, 3] })];
        let e = infer(&ecmp, name).unwrap_err().to_string();
        assert!(e.contains("several next hops (eth2, eth3)"), "{e}");
        let none = [(a(11), RouteTo::None)];
        let e = infer(&none, name).unwrap_err().to_string();
        assert!(e.contains("no route to real server 198.18.0.11"), "{e}");
        let e = infer(&[], name).unwrap_err().to_string();
        assert!(e.contains("no real server"), "{e}");
    }
}
