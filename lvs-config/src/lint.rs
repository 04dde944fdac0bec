//! Whole-config checks: the mistakes real configs make, which keepalived
//! accepts silently but which break or weaken an lvs-xdp director.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use crate::capability::{self, Support};
use crate::diag::Diagnostics;
use crate::model::{Config, LbKind, VipEntry, VrrpInstance, VsAddr, VsgEntry};

/// Runs every whole-config check on the parsed model.
pub(crate) fn lint(diags: &mut Diagnostics, cfg: &Config) {
    brd(diags, cfg);
    vip_coverage(diags, cfg);
    forwarding(diags, cfg);
    references(diags, cfg);
    vrid_clash(diags, cfg);
    bgp_announce(diags, cfg);
}

fn net_of(a: Ipv4Addr, len: u8) -> (u32, u32) {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    (u32::from(a) & mask, mask)
}

/// `brd` must be the subnet's broadcast address.
fn brd(diags: &mut Diagnostics, cfg: &Config) {
    for vi in &cfg.vrrp_instances {
        for v in vi
            .virtual_ipaddress
            .iter()
            .chain(&vi.virtual_ipaddress_excluded)
        {
            let (IpAddr::V4(a), Some(b)) = (v.addr, v.brd) else {
                continue;
            };
            if v.prefix_len >= 31 {
                continue; // /31 and /32 have no broadcast address
            }
            let (net, mask) = net_of(a, v.prefix_len);
            let want = Ipv4Addr::from(net | !mask);
            if b != want {
                let span = v.brd_span.as_ref().unwrap_or(&v.span);
                diags
                    .warn(
                        span,
                        format!(
                            "brd {b} is not the broadcast address of {a}/{} (vrrp_instance {}); the broadcast address is {want}",
                            v.prefix_len, vi.name
                        ),
                    )
                    .help(format!("write `brd {want}`, or leave `brd` out"));
            }
        }
    }
}

/// Whether VIP entry `v` carries address `a`.
fn carries(v: &VipEntry, a: IpAddr) -> bool {
    v.addr == a
}

/// A VIP entry whose subnet holds `a` (for a hint).
fn same_subnet(insts: &[VrrpInstance], a: IpAddr) -> Option<(&VrrpInstance, &VipEntry)> {
    let IpAddr::V4(a4) = a else { return None };
    insts.iter().find_map(|vi| {
        vi.virtual_ipaddress.iter().find_map(|v| match v.addr {
            IpAddr::V4(v4) if net_of(v4, v.prefix_len).0 == net_of(a4, v.prefix_len).0 => {
                Some((vi, v))
            }
            _ => None,
        })
    })
}

/// Every virtual-server address should be a VIP of some vrrp_instance, or
/// failover does not move the service.
fn vip_coverage(diags: &mut Diagnostics, cfg: &Config) {
    if cfg.vrrp_instances.is_empty() || cfg.bgp_announce.is_some() {
        // No VRRP here, or the VIPs are announced over BGP (bgp_announce):
        // the addresses are not VRRP's to carry.
        return;
    }
    let covered = |a: IpAddr| {
        cfg.vrrp_instances.iter().any(|vi| {
            vi.virtual_ipaddress
                .iter()
                .chain(&vi.virtual_ipaddress_excluded)
                .any(|v| carries(v, a))
        })
    };
    let who = if cfg.vrrp_instances.len() == 1 {
        format!("vrrp_instance {}", cfg.vrrp_instances[0].name)
    } else {
        "any vrrp_instance".to_string()
    };
    for vs in &cfg.virtual_servers {
        let addrs: Vec<IpAddr> = match &vs.addr {
            VsAddr::Ip(a, _) => vec![*a],
            VsAddr::Fwmark(_) => continue,
            VsAddr::Group(g) => match cfg.virtual_server_group(g) {
                Some(g) => g
                    .entries
                    .iter()
                    .filter_map(|e| match e {
                        VsgEntry::Range { first, .. } => Some(*first),
                        VsgEntry::Fwmark { .. } => None,
                    })
                    .collect(),
                None => continue,
            },
        };
        for a in addrs {
            if covered(a) {
                continue;
            }
            let help = match same_subnet(&cfg.vrrp_instances, a) {
                Some((vi, v)) => format!(
                    "vrrp_instance {} carries {}/{}: add `{a}/{}{}` to its virtual_ipaddress, or correct the virtual_server address",
                    vi.name,
                    v.addr,
                    v.prefix_len,
                    v.prefix_len,
                    v.dev.as_ref().map(|d| format!(" dev {d}")).unwrap_or_default()
                ),
                None => format!("add `{a}` to the virtual_ipaddress of the vrrp_instance that should carry it"),
            };
            diags
                .warn(
                    &vs.addr_span,
                    format!("virtual_server address {a} is not carried by {who} (not in any virtual_ipaddress): it will not move on failover"),
                )
                .help(help);
        }
    }
}

/// lvs-xdp forwards by Direct Routing only (the capability table refuses
/// NAT and TUN: an error, the service is not run); with DR the real server
/// gets the virtual server's port.
/// keepalived's spelling of a forwarding method.
fn method(k: LbKind) -> &'static str {
    match k {
        LbKind::Dr => "DR",
        LbKind::Nat => "NAT",
        LbKind::Tun => "TUN",
    }
}

fn forwarding(diags: &mut Diagnostics, cfg: &Config) {
    for vs in &cfg.virtual_servers {
        if let Some(Support::Refused(why)) =
            capability::lookup("virtual_server", "lb_kind", Some(method(vs.lb_kind)))
        {
            let span = vs.lb_kind_span.as_ref().unwrap_or(&vs.span);
            diags
                .error(
                    span,
                    format!(
                        "lb_kind {}: virtual_server {} is not run: {why}",
                        method(vs.lb_kind),
                        vs.addr
                    ),
                )
                .help("write `lb_kind DR`; real servers must hold the VIP on lo with arp_ignore=1, arp_announce=2");
        }
        let vs_port = match vs.addr {
            VsAddr::Ip(_, port) => port,
            _ => 0,
        };
        if let VsAddr::Group(g) = &vs.addr {
            // keepalived warns (and keeps going) when a group entry's port
            // is not the real server's: with DR the packet keeps its port.
            for e in cfg
                .virtual_server_group(g)
                .map(|g| g.entries.as_slice())
                .unwrap_or_default()
            {
                let VsgEntry::Range {
                    span, first, port, ..
                } = e
                else {
                    continue;
                };
                // IPVS refuses a real server of the other family for DR
                // (keepalived logs the kernel's refusal per entry); the
                // frame keeps its IP header, so lvs-xdp cannot either.
                if let Some(rs) = vs
                    .real_servers
                    .iter()
                    .find(|rs| rs.addr.is_ipv6() != first.is_ipv6())
                {
                    diags
                        .error(
                            span,
                            format!(
                                "virtual server group {g} entry {first} and real server {} are of different address families: with Direct Routing that real server cannot serve this entry",
                                rs.addr
                            ),
                        )
                        .help("put the IPv4 and IPv6 entries in separate virtual_server_groups, each with real servers of its family");
                }
                for rs in &vs.real_servers {
                    if rs.lb_kind != LbKind::Nat && rs.port != 0 && rs.port != *port {
                        let keep = if *port == 0 {
                            "an entry without a port serves every port, and packets keep theirs"
                                .to_string()
                        } else {
                            format!("with lb_kind DR packets keep port {port}")
                        };
                        diags
                            .warn(
                                span,
                                format!(
                                    "virtual server group {g} entry {first} port {port} and real server {} port {} ports don't match: {keep}",
                                    rs.addr, rs.port
                                ),
                            )
                            .help(format!("give the entry port {}", rs.port));
                    }
                }
            }
        }
        for rs in &vs.real_servers {
            let refused = capability::lookup("real_server", "lvs_method", Some(method(rs.lb_kind)));
            if let (true, Some(Support::Refused(why))) = (rs.lb_kind != vs.lb_kind, refused) {
                let span = rs.lb_kind_span.as_ref().unwrap_or(&rs.span);
                diags
                    .error(
                        span,
                        format!(
                            "lvs_method {}: real_server {} is not run: {why}",
                            method(rs.lb_kind),
                            rs.addr
                        ),
                    )
                    .help("write `lvs_method DR`");
            }
            if rs.lb_kind == LbKind::Dr && vs_port != 0 && rs.port != vs_port {
                // keepalived resets the port to the virtual server's (its
                // checkers then connect there); lvs-xdp keeps it for the
                // checkers (README: deliberate differences).
                diags
                    .warn(
                        &rs.span,
                        format!(
                            "virtual server {} and real server {} port {} ports don't match: with lb_kind DR packets keep port {vs_port}; keepalived resets the real server to port {vs_port} (its checkers then connect there), lvs-xdp's checkers use port {}",
                            vs.addr, rs.addr, rs.port, rs.port
                        ),
                    )
                    .help(format!("write `real_server {} {vs_port}`", rs.addr));
            }
        }
    }
}

/// Names used before/without being defined.
fn references(diags: &mut Diagnostics, cfg: &Config) {
    for vi in &cfg.vrrp_instances {
        for t in &vi.track_script {
            if !cfg.vrrp_scripts.iter().any(|s| s.name == t.name) {
                diags
                    .warn(
                        &t.span,
                        format!(
                            "track_script `{}` of vrrp_instance {} names no vrrp_script; ignored",
                            t.name, vi.name
                        ),
                    )
                    .help(format!("define `vrrp_script {} {{ script ... }}`", t.name));
            }
        }
    }
    for g in &cfg.vrrp_sync_groups {
        for name in &g.group {
            if cfg.vrrp_instance(name).is_none() {
                diags
                    .error(
                        &g.span,
                        format!(
                            "vrrp_sync_group {} names `{name}`, which is no vrrp_instance",
                            g.name
                        ),
                    )
                    .help("check the instance name");
            }
        }
    }
    for vs in &cfg.virtual_servers {
        if let VsAddr::Group(gname) = &vs.addr {
            if cfg.virtual_server_group(gname).is_none() {
                diags
                    .error(
                        &vs.addr_span,
                        format!(
                            "virtual_server group `{gname}`: no virtual_server_group of that name"
                        ),
                    )
                    .help(format!(
                        "define `virtual_server_group {gname} {{ ADDRESS PORT }}`"
                    ));
            }
        }
    }
}

/// Two instances with one virtual_router_id on one interface fight.
fn vrid_clash(diags: &mut Diagnostics, cfg: &Config) {
    let mut seen: HashMap<(&str, u8, bool), &VrrpInstance> = HashMap::new();
    for vi in &cfg.vrrp_instances {
        let v6 = vi.ipv6;
        if let Some(prev) = seen.insert((vi.interface.as_str(), vi.virtual_router_id, v6), vi) {
            diags
                .error(
                    &vi.span,
                    format!(
                    "vrrp_instance {} uses virtual_router_id {} on {} like vrrp_instance {} ({})",
                    vi.name, vi.virtual_router_id, vi.interface, prev.name, prev.span
                ),
                )
                .help("give each instance on an interface its own virtual_router_id");
        }
    }
}

/// Whole-config checks of `bgp_announce`: something to announce, and no
/// VIP that VRRP moves as well.
fn bgp_announce(diags: &mut Diagnostics, cfg: &Config) {
    let Some(a) = &cfg.bgp_announce else { return };
    if cfg.virtual_servers.is_empty() {
        diags.warn(&a.span, "`bgp_announce` has no virtual_server to announce");
    }
    for vs in &cfg.virtual_servers {
        let VsAddr::Ip(addr, _) = vs.addr else {
            continue;
        };
        for vi in &cfg.vrrp_instances {
            if let Some(v) = vi.virtual_ipaddress.iter().find(|v| v.addr == addr) {
                diags
                    .warn(
                        &v.span,
                        format!(
                            "{addr} is announced over BGP (bgp_announce) and also held by vrrp_instance {}: \
                            the router sends it to every director either way",
                            vi.name
                        ),
                    )
                    .help(format!(
                        "remove {addr} from the virtual_ipaddress of {}",
                        vi.name
                    ));
            }
        }
    }
}
