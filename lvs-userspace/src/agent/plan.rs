//! From a keepalived config to what the data path should serve: the
//! virtual servers lvs-xdp can run (IPv4 and IPv6, TCP/UDP, Direct Routing), each with
//! its real servers in config order (IPVS's list order, so wrr picks the
//! same sequence keepalived+IPVS would). What cannot run is reported once.

use std::net::{IpAddr, Ipv4Addr};

use lvs_config::{Config, Granularity, LbKind, Protocol, VsAddr, VsgEntry};

use crate::{check::fmt_rs, sched::Algorithm};

/// A virtual service's identity. Shown as keepalived names it in logs:
/// `[198.18.0.100]:tcp:80`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId {
    pub vip: IpAddr,
    pub port: u16,
    pub proto: Protocol,
}

/// A real server's identity within its service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RealId {
    pub addr: IpAddr,
    pub port: u16,
}

/// A real server of a service: the reconciler's key for what it knows at
/// run time. Shown as keepalived names a real server (with the service's
/// protocol): `[198.18.0.11]:tcp:80`; `.service` shows the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RealKey {
    pub service: ServiceId,
    pub real: RealId,
}

impl ServiceId {
    pub fn real(self, real: RealId) -> RealKey {
        RealKey {
            service: self,
            real,
        }
    }
}

impl std::fmt::Display for ServiceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&fmt_rs(self.vip, self.proto, self.port))
    }
}

impl std::fmt::Display for RealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.real;
        f.write_str(&fmt_rs(r.addr, self.service.proto, r.port))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedReal {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    /// On failure keep it with weight 0 instead of removing it.
    pub inhibit_on_failure: bool,
    /// Checkers decide whether it is up; without any it is always up.
    pub checked: bool,
    /// keepalived's `alpha`: start down until the first successful check.
    pub alpha: bool,
    /// The real-server port its checkers report under (see
    /// [`PlannedService::checked_as`]): `port`, or for a group's real
    /// server without a port, the group's first port.
    pub check_port: u16,
    /// IPVS connection thresholds (`uthreshold`, `lthreshold`; 0 = none).
    pub uthreshold: u32,
    pub lthreshold: u32,
}

impl PlannedReal {
    pub fn id(&self) -> RealId {
        RealId {
            addr: self.addr,
            port: self.port,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedService {
    pub id: ServiceId,
    pub algo: Algorithm,
    /// The scheduler name as configured (for listings).
    pub lb_algo: String,
    /// Persistence timeout (s) and granularity (a netmask for an IPv4
    /// service, a prefix length for an IPv6 one).
    pub persistence: Option<(u32, Granularity)>,
    pub reals: Vec<PlannedReal>,
    /// Used when no real server is up (or quorum is not met).
    pub sorry_server: Option<RealId>,
    pub quorum: u32,
    pub hysteresis: u32,
    /// Run when the alive weight reaches quorum + hysteresis / drops below
    /// quorum − hysteresis (keepalived's `quorum_up` / `quorum_down`).
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    /// The service the checkers report under: itself, or for every service
    /// of a `virtual_server_group`, the group's first (keepalived checks a
    /// group's real servers once, for all its services).
    pub checked_as: ServiceId,
    /// keepalived's `omega`: at shutdown, run `quorum_down` if quorum is up
    /// (and the real servers' `notify_down`, which the checkers do).
    pub omega: bool,
    /// keepalived's `ops` (IPVS `IP_VS_SVC_F_ONEPACKET`) on a UDP service:
    /// every datagram is scheduled on its own.
    pub one_packet: bool,
}

/// The plan, and why parts of the config are left out.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub services: Vec<PlannedService>,
    pub skipped: Vec<String>,
}

/// "IPv4" or "IPv6", for messages.
fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Builds the plan. Never fails: unsupported pieces are skipped with a reason.
pub fn plan(cfg: &Config) -> Plan {
    let mut out = Plan::default();
    for vs in &cfg.virtual_servers {
        let what = format!("virtual_server {} ({})", vs.addr, vs.span);
        // Every (VIP, port) the virtual server serves.
        let endpoints: Vec<(IpAddr, u16)> = match &vs.addr {
            VsAddr::Ip(a, p) => vec![(*a, *p)],
            VsAddr::Fwmark(_) => {
                out.skipped.push(format!(
                    "{what}: fwmark services are not supported (the XDP program runs before \
                     netfilter sets any mark): list the addresses and ports instead"
                ));
                continue;
            }
            VsAddr::Group(name) => match group_endpoints(cfg, name, &what, &mut out.skipped) {
                Some(e) => e,
                None => continue,
            },
        };
        let (all_ports, endpoints): (Vec<_>, Vec<_>) =
            endpoints.into_iter().partition(|(_, port)| *port == 0);
        if !all_ports.is_empty() {
            // lvs-config refuses these; the data path has no catch-all port.
            out.skipped.push(format!(
                "{what}: all-ports (port 0) services are not supported"
            ));
        }
        if endpoints.is_empty() {
            continue;
        }
        let proto = vs.protocol;
        if proto == Protocol::Sctp {
            out.skipped.push(format!("{what}: SCTP is not supported"));
            continue;
        }
        if vs.lb_kind != LbKind::Dr {
            // The capability table refuses it (`lvsd -t`: an error, exit 4).
            out.skipped.push(format!(
                "{what}: not run: lb_kind {:?} is not Direct Routing, the only method lvsd forwards by",
                vs.lb_kind
            ).replace("Nat", "NAT").replace("Tun", "TUN"));
            continue;
        }
        // keepalived's flag words set IPVS's scheduler bits: SCHED1 is
        // the hash schedulers' fallback, SCHED2 their port (`sh-*` words
        // count for sh only, `mh-*` for mh only, as keepalived reads them).
        let has = |words: &[&str]| vs.lb_flags.iter().any(|f| words.contains(&f.as_str()));
        let algo_name = vs.lb_algo.as_str();
        let fallback = has(&["flag-1"]) || has(&[&format!("{algo_name}-fallback")]);
        let hash_port = has(&["flag-2"]) || has(&[&format!("{algo_name}-port")]);
        let algo = match vs.lb_algo.as_str() {
            "rr" => Algorithm::Rr,
            "wrr" => Algorithm::Wrr,
            "sh" => Algorithm::Sh {
                port: hash_port,
                fallback,
            },
            "mh" => Algorithm::Mh {
                port: hash_port,
                fallback,
            },
            "dh" => Algorithm::Dh,
            "lc" => Algorithm::Lc,
            "wlc" => Algorithm::Wlc,
            "sed" => Algorithm::Sed,
            "nq" => Algorithm::Nq,
            "fo" => Algorithm::Fo,
            "ovf" => Algorithm::Ovf,
            other => {
                out.skipped.push(format!(
                    "{what}: lb_algo {other} is not supported by lvs-xdp yet: scheduled as wrr (new connections are spread by weight only, ignoring the servers' load and locality)"
                ));
                Algorithm::Wrr
            }
        };
        // IPVS applies one-packet scheduling to UDP only.
        let one_packet = has(&["ops"]) && proto == Protocol::Udp;
        // Per client unless a granularity of the service's family is given.
        let persistence = |vip: IpAddr| {
            vs.persistence_timeout.map(|t| {
                let g = match (vip, vs.persistence_granularity) {
                    (IpAddr::V4(_), Some(g @ Granularity::V4Mask(_))) => g,
                    (IpAddr::V6(_), Some(g @ Granularity::V6Prefix(_))) => g,
                    (IpAddr::V4(_), _) => Granularity::V4Mask(Ipv4Addr::BROADCAST),
                    (IpAddr::V6(_), _) => Granularity::V6Prefix(128),
                };
                (t, g)
            })
        };
        let first_port = endpoints[0].1;
        // Direct Routing forwards the client's packet unchanged: a real
        // server of the other family can never receive it.
        let families: std::collections::BTreeSet<bool> =
            endpoints.iter().map(|(a, _)| a.is_ipv4()).collect();
        let mut reals = Vec::new();
        for rs in &vs.real_servers {
            let addr = rs.addr;
            if !families.contains(&addr.is_ipv4()) {
                out.skipped.push(format!(
                    "{}: error: real_server {addr} is {} and {what} is {}: Direct Routing cannot forward between address families; not run",
                    rs.span,
                    family(addr),
                    family(endpoints[0].0)
                ));
                continue;
            }
            if rs.lb_kind != LbKind::Dr {
                out.skipped.push(format!(
                    "real_server {addr} ({}): only lb_kind DR is supported",
                    rs.span
                ));
                continue;
            }
            reals.push(PlannedReal {
                addr,
                port: rs.port,
                weight: rs.weight,
                inhibit_on_failure: rs.inhibit_on_failure,
                checked: !rs.checkers.is_empty(),
                alpha: rs.alpha,
                check_port: if rs.port == 0 { first_port } else { rs.port },
                uthreshold: rs.uthreshold.unwrap_or(0),
                lthreshold: rs.lthreshold.unwrap_or(0),
            });
        }
        let sorry_server = vs.sorry_server.as_ref().and_then(|s| {
            if families.contains(&s.addr.is_ipv4()) {
                Some(RealId {
                    addr: s.addr,
                    port: s.port,
                })
            } else {
                out.skipped.push(format!(
                    "{}: error: sorry_server {} is {} and {what} is {}: Direct Routing cannot forward between address families; not used",
                    s.span,
                    s.addr,
                    family(s.addr),
                    family(endpoints[0].0)
                ));
                None
            }
        });
        let checked_as = ServiceId {
            vip: endpoints[0].0,
            port: endpoints[0].1,
            proto,
        };
        for (addr, port) in endpoints {
            // A group's real server without a port serves each service on
            // the service's port (Direct Routing keeps the port).
            let reals = reals
                .iter()
                .filter(|r| r.addr.is_ipv4() == addr.is_ipv4())
                .map(|r| PlannedReal {
                    port: if r.port == 0 { port } else { r.port },
                    ..r.clone()
                })
                .collect();
            let sorry_server = sorry_server.filter(|s| s.addr.is_ipv4() == addr.is_ipv4());
            let persistence = persistence(addr);
            out.services.push(PlannedService {
                id: ServiceId {
                    vip: addr,
                    port,
                    proto,
                },
                algo,
                lb_algo: vs.lb_algo.clone(),
                persistence,
                reals,
                sorry_server,
                quorum: vs.quorum,
                hysteresis: vs.hysteresis,
                quorum_up: vs.quorum_up.clone(),
                quorum_down: vs.quorum_down.clone(),
                checked_as,
                omega: vs.omega,
                one_packet,
            });
        }
    }
    out
}

/// The (VIP, port)s of a `virtual_server_group`, in config order: each
/// `ADDR[-LAST] PORT` entry is every address of the range on that port.
/// `None` (and a reason) when the group is unknown or serves nothing here.
fn group_endpoints(
    cfg: &Config,
    name: &str,
    what: &str,
    skipped: &mut Vec<String>,
) -> Option<Vec<(IpAddr, u16)>> {
    let Some(g) = cfg.virtual_server_group(name) else {
        skipped.push(format!("{what}: no virtual_server_group `{name}`"));
        return None;
    };
    let mut out = Vec::new();
    for e in &g.entries {
        match e {
            VsgEntry::Range {
                first, last, port, ..
            } => {
                let (a, b) = match (first, last) {
                    (IpAddr::V4(a), IpAddr::V4(b)) => {
                        (u32::from(*a) as u128, u32::from(*b) as u128)
                    }
                    (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(*a), u128::from(*b)),
                    _ => {
                        skipped.push(format!(
                            "{what}: group {name} entry {first}-{last}: the two ends are of different address families"
                        ));
                        continue;
                    }
                };
                let at = |x: u128| -> IpAddr {
                    if first.is_ipv4() {
                        IpAddr::V4(Ipv4Addr::from(x as u32))
                    } else {
                        IpAddr::V6(std::net::Ipv6Addr::from(x))
                    }
                };
                {
                    for x in a..=b {
                        // A /8 entry must not make 16 M services: stop at
                        // what the data path holds.
                        if out.len() >= lvs_common::MAX_SERVICES as usize {
                            skipped.push(format!(
                                "{what}: group {name} has more than {} services (the data \
                                 path's limit); entries from {} on are left out",
                                lvs_common::MAX_SERVICES,
                                at(x)
                            ));
                            return Some(out);
                        }
                        let ep = (at(x), *port);
                        if !out.contains(&ep) {
                            out.push(ep);
                        }
                    }
                }
            }
            VsgEntry::Fwmark { mark, .. } => skipped.push(format!(
                "{what}: group {name} entry fwmark {mark}: fwmark services are not supported \
                 (the XDP program runs before netfilter sets any mark): list the addresses \
                 and ports instead"
            )),
        }
    }
    if out.is_empty() {
        skipped.push(format!("{what}: group {name} has no address entries"));
        return None;
    }
    Some(out)
}

/// The planned real servers that a checker verdict on `checked` applies
/// to: the real server of that service itself, or of every service of its
/// group.
pub fn checked_reals(plan: &Plan, checked: RealKey) -> Vec<RealKey> {
    let mut out = Vec::new();
    for s in plan
        .services
        .iter()
        .filter(|s| s.checked_as == checked.service)
    {
        for r in &s.reals {
            if r.addr == checked.real.addr && r.check_port == checked.real.port {
                out.push(s.id.real(r.id()));
            }
        }
    }
    out
}

/// The plan's identity of a checked real server (TCP/UDP, the real
/// server of the service's family).
pub fn key_of(rs: &crate::check::RsKey) -> Option<RealKey> {
    let (vip, addr) = (rs.vs_addr, rs.rs_addr);
    if vip.is_ipv4() != addr.is_ipv4() || rs.proto == Protocol::Sctp {
        return None;
    }
    let service = ServiceId {
        vip,
        port: rs.vs_port,
        proto: rs.proto,
    };
    Some(service.real(RealId {
        addr,
        port: rs.rs_port,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_serves_every_address_and_port_and_shares_checks() {
        let text = "virtual_server_group G {\n 198.18.0.100-103 80\n 198.18.0.100-103 8080\n fwmark 3\n}\n\
            virtual_server group G {\n lb_algo rr\n lb_kind DR\n protocol TCP\n\
            real_server 198.18.0.11 {\n  TCP_CHECK {\n  }\n }\n real_server 198.18.0.12 8080 {\n }\n}\n\
            virtual_server fwmark 5 {\n lb_algo rr\n lb_kind DR\n real_server 198.18.0.11 80 {\n }\n}\n";
        let r = lvs_config::parse_str("g.conf", text, &Default::default());
        // The only errors: the two fwmark items, refused (exit 4; the rest runs).
        assert!(
            r.diagnostics
                .iter()
                .filter(|d| d.severity != lvs_config::Severity::Warning)
                .all(|d| d.message.contains("fwmark services are not supported")),
            "{}",
            r.diagnostics
        );
        assert_eq!(r.exit_code(), 4);
        let p = plan(&r.config);
        let ids: Vec<(IpAddr, u16)> = p.services.iter().map(|s| (s.id.vip, s.id.port)).collect();
        let want: Vec<(IpAddr, u16)> = [80, 8080]
            .iter()
            .flat_map(|&port| (100..=103).map(move |l| (Ipv4Addr::new(198, 18, 0, l).into(), port)))
            .collect();
        assert_eq!(ids, want);
        let first = ServiceId {
            vip: Ipv4Addr::new(198, 18, 0, 100).into(),
            port: 80,
            proto: Protocol::Tcp,
        };
        assert!(p.services.iter().all(|s| s.checked_as == first));
        // Without a port, a real server serves each service's port.
        assert!(p
            .services
            .iter()
            .all(|s| s.reals[0].port == s.id.port && s.reals[1].port == 8080));
        // One verdict on the first service reaches all eight.
        let rs = RealId {
            addr: Ipv4Addr::new(198, 18, 0, 11).into(),
            port: 80,
        };
        assert_eq!(checked_reals(&p, first.real(rs)).len(), 8);
        // fwmark: left out, saying why.
        assert_eq!(
            p.skipped
                .iter()
                .filter(|s| s.contains("fwmark") && s.contains("before netfilter"))
                .count(),
            2,
            "{:?}",
            p.skipped
        );
    }

    #[test]
    fn schedulers_and_their_flags_as_keepalived_reads_them() {
        let conf = |algo: &str, flags: &str| {
            format!(
                "virtual_server 198.18.0.1 80 {{\n lb_algo {algo}\n {flags}\n lb_kind DR\n protocol TCP\n real_server 198.18.0.2 80 {{\n weight 1\n }}\n}}\n"
            )
        };
        let algo_of = |algo: &str, flags: &str| {
            let r = lvs_config::parse_str("t.conf", &conf(algo, flags), &Default::default());
            plan(&r.config).services[0].algo
        };
        assert_eq!(
            algo_of("sh", "sh-port\n sh-fallback"),
            Algorithm::Sh {
                port: true,
                fallback: true
            }
        );
        // flag-1/flag-2 are the same bits; mh-* words do not apply to sh.
        assert_eq!(
            algo_of("mh", "flag-2\n sh-fallback"),
            Algorithm::Mh {
                port: true,
                fallback: false
            }
        );
        assert_eq!(
            algo_of("mh", "mh-fallback"),
            Algorithm::Mh {
                port: false,
                fallback: true
            }
        );
        for (name, algo) in [
            ("dh", Algorithm::Dh),
            ("lc", Algorithm::Lc),
            ("wlc", Algorithm::Wlc),
            ("sed", Algorithm::Sed),
            ("nq", Algorithm::Nq),
            ("fo", Algorithm::Fo),
            ("ovf", Algorithm::Ovf),
            ("lblc", Algorithm::Wrr),
        ] {
            assert_eq!(algo_of(name, ""), algo, "{name}");
        }
    }

    #[test]
    fn ops_is_one_packet_scheduling_for_udp_only() {
        let one_packet = |proto: &str| {
            let text = format!(
                "virtual_server 198.18.0.1 53 {{\n lb_algo rr\n ops\n lb_kind DR\n protocol {proto}\n real_server 198.18.0.2 53 {{\n }}\n}}\n"
            );
            let r = lvs_config::parse_str("t.conf", &text, &Default::default());
            plan(&r.config).services[0].one_packet
        };
        assert!(one_packet("UDP"));
        // IPVS applies IP_VS_SVC_F_ONEPACKET to UDP datagrams only.
        assert!(!one_packet("TCP"));
    }

    #[test]
    fn seed_plans_one_persistent_wrr_service_with_five_reals() {
        let text = include_str!("../../../lvs-config/tests/configs/seed.conf");
        let r = lvs_config::parse_str("seed.conf", text, &Default::default());
        let p = plan(&r.config);
        assert_eq!(p.services.len(), 1);
        let s = &p.services[0];
        assert_eq!(
            s.id,
            ServiceId {
                vip: Ipv4Addr::new(222, 211, 74, 42).into(),
                port: 80,
                proto: Protocol::Tcp
            }
        );
        assert_eq!(s.id.to_string(), "[222.211.74.42]:tcp:80");
        assert_eq!(s.algo, Algorithm::Wrr);
        assert_eq!(
            s.persistence,
            Some((120, Granularity::V4Mask(Ipv4Addr::BROADCAST)))
        );
        let w: Vec<u32> = s.reals.iter().map(|r| r.weight).collect();
        assert_eq!(w, [2, 3, 3, 2, 2]);
        assert!(s.reals.iter().all(|r| r.checked));
    }

    #[test]
    fn ipv6_virtual_servers_are_planned_and_family_mixes_refused() {
        let text = "virtual_server 198.18.0.100 80 {\n lb_algo wrr\n lb_kind DR\n protocol TCP\n\
            real_server 198.18.0.11 80 {\n weight 2\n }\n}\n\
            virtual_server 2001:2::100 80 {\n lb_algo wrr\n lb_kind DR\n protocol TCP\n\
            persistence_timeout 60\n persistence_granularity 64\n\
            real_server 2001:2::11 80 {\n weight 2\n }\n\
            real_server 198.18.0.12 80 {\n weight 3\n }\n\
            sorry_server 2001:2::99 80\n}\n";
        let r = lvs_config::parse_str("v6.conf", text, &Default::default());
        let p = plan(&r.config);
        assert_eq!(p.services.len(), 2, "{:?}", p.skipped);
        let v6 = &p.services[1];
        let vip: IpAddr = "2001:2::100".parse().unwrap();
        assert_eq!(v6.id.vip, vip);
        assert_eq!(v6.id.to_string(), "[2001:2::100]:tcp:80");
        assert_eq!(v6.persistence, Some((60, Granularity::V6Prefix(64))));
        let reals: Vec<IpAddr> = v6.reals.iter().map(|r| r.addr).collect();
        assert_eq!(reals, ["2001:2::11".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            v6.sorry_server.map(|s| s.addr),
            Some("2001:2::99".parse().unwrap())
        );
        // The IPv4 real server of the IPv6 service: an error at its line
        // (lvs-config drops it, in keepalived's words; the plan would
        // refuse it too, see `family_mix_left_in_the_model_is_refused`).
        let diags = r.diagnostics.to_string();
        assert!(
            diags.lines().any(|l| l.starts_with("v6.conf:18:")
                && l.contains("198.18.0.12")
                && l.contains("don't match")),
            "{diags}"
        );
    }

    #[test]
    fn family_mix_left_in_the_model_is_refused() {
        let text = "virtual_server 2001:2::100 80 {\n lb_algo wrr\n lb_kind DR\n protocol TCP\n\
            real_server 2001:2::11 80 {\n }\n}\n";
        let mut r = lvs_config::parse_str("mix.conf", text, &Default::default());
        // As if a model slipped a real server of the other family through.
        let mut rs = r.config.virtual_servers[0].real_servers[0].clone();
        rs.addr = "198.18.0.12".parse().unwrap();
        r.config.virtual_servers[0].real_servers.push(rs);
        let p = plan(&r.config);
        assert_eq!(p.services[0].reals.len(), 1);
        assert!(
            p.skipped.iter().any(|s| s.starts_with("mix.conf:5:")
                && s.contains("error")
                && s.contains("198.18.0.12")
                && s.contains("address families")),
            "{:?}",
            p.skipped
        );
    }
}
