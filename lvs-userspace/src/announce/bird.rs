//! BIRD 2 as lvsd drives it: the configuration lvsd writes (pure), and what
//! `birdc show protocols` / `show bfd sessions` say about the sessions.
//!
//! The VIPs are routes of one static protocol (`blackhole`: BIRD has no
//! kernel protocol here, so nothing reaches the director's own FIB), exported
//! to every BGP neighbor with this director as next hop. A change is a new
//! file and `birdc configure`: BIRD re-reads it and withdraws or announces
//! only what changed; sessions stay up.

use std::{collections::BTreeSet, fmt::Write as _, net::Ipv4Addr};

use lvs_config::BgpAnnounce;
use serde::{Deserialize, Serialize};

/// The static protocol holding the announced VIPs.
pub const STATIC_PROTO: &str = "lvsd_vips";
/// The BFD protocol.
pub const BFD_PROTO: &str = "lvsd_bfd";

/// BIRD's name of the BGP protocol for a neighbor (identifiers only).
pub fn bgp_proto_name(addr: Ipv4Addr) -> String {
    format!("bgp_{}", addr.to_string().replace('.', "_"))
}

/// The whole BIRD configuration for `vips` announced.
pub fn render(a: &BgpAnnounce, vips: &BTreeSet<Ipv4Addr>) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# Written by lvsd from bgp_announce ({}); lvsd rewrites it on every change.",
        a.span
    );
    c += "log stderr all;\n";
    if let Some(id) = a.router_id {
        let _ = writeln!(c, "router id {id};");
    }
    // BGP's direct sessions need the interfaces' addresses.
    c += "protocol device { scan time 10; }\n";
    if a.bfd {
        let ms = a.bfd_interval.as_millis().max(1);
        let _ = writeln!(
            c,
            "protocol bfd {BFD_PROTO} {{\n  interface \"*\" {{ min rx interval {ms} ms; min tx interval {ms} ms; multiplier {}; }};\n}}",
            a.bfd_multiplier
        );
    }
    let _ = writeln!(c, "protocol static {STATIC_PROTO} {{\n  ipv4;");
    for v in vips {
        let _ = writeln!(c, "  route {v}/32 blackhole;");
    }
    c += "}\n";
    let keepalive = (a.hold_time / 3).max(1);
    for n in &a.neighbors {
        let _ = writeln!(
            c,
            "protocol bgp {} {{\n  local as {};\n  neighbor {} as {};\n  hold time {}; keepalive time {keepalive};\n  \
             connect delay time 1; connect retry time 1; error wait time 1, 5;\n  bfd {};\n  \
             ipv4 {{ import none; export where proto = \"{STATIC_PROTO}\"; next hop self; }};\n}}",
            bgp_proto_name(n.addr),
            a.local_as,
            n.addr,
            n.remote_as,
            a.hold_time,
            if a.bfd { "on" } else { "off" },
        );
    }
    c
}

/// One neighbor's sessions as BIRD reports them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NeighborStatus {
    pub addr: Ipv4Addr,
    pub remote_as: u32,
    /// BGP: `Established`, `Active`, `Connect`, … (BIRD's info column), or
    /// `down`/`unknown`.
    pub bgp: String,
    /// BFD: `Up`, `Down`, `Init`, `AdminDown`, or empty without BFD.
    pub bfd: String,
}

impl NeighborStatus {
    pub fn established(&self) -> bool {
        self.bgp == "Established"
    }
}

/// BGP state per protocol name from `birdc show protocols`:
///
/// ```text
/// Name       Proto      Table      State  Since         Info
/// bgp_198_18_0_250 BGP  ---        up     01:23:35.494  Established
/// ```
pub fn parse_protocols(out: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 4 && w[1] == "BGP" {
            // Info is the 6th column when present; else the state.
            let info = w.get(5).copied().unwrap_or(w[3]);
            v.push((w[0].to_string(), info.to_string()));
        }
    }
    v
}

/// BFD state per neighbor address from `birdc show bfd sessions`:
///
/// ```text
/// IP address                Interface  State      Since         Interval  Timeout
/// 198.18.0.250              eth0       Up         01:23:35.493    0.100    0.300
/// ```
pub fn parse_bfd_sessions(out: &str) -> Vec<(Ipv4Addr, String)> {
    out.lines()
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            let addr = w.first()?.parse().ok()?;
            Some((addr, w.get(2)?.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> BgpAnnounce {
        let r = lvs_config::parse_str(
            "a.conf",
            "bgp_announce {\n daemon bird\n local_as 65001\n router_id 198.18.0.2\n neighbor 198.18.0.250 as 65000\n}\n",
            &Default::default(),
        );
        r.config.bgp_announce.unwrap()
    }

    #[test]
    fn config_announces_each_vip_to_each_neighbor_with_bfd() {
        let vips = [Ipv4Addr::new(198, 18, 0, 100)].into_iter().collect();
        let c = render(&block(), &vips);
        assert!(c.contains("router id 198.18.0.2;"));
        assert!(c.contains("route 198.18.0.100/32 blackhole;"));
        assert!(c.contains("protocol bgp bgp_198_18_0_250 {"));
        assert!(c.contains("neighbor 198.18.0.250 as 65000;"));
        assert!(c.contains("local as 65001;"));
        assert!(c.contains("bfd on;"));
        assert!(c.contains("min rx interval 100 ms"));
        // Withdrawn: the static protocol is empty, the sessions stay.
        let c = render(&block(), &BTreeSet::new());
        assert!(!c.contains("route "));
        assert!(c.contains("protocol bgp bgp_198_18_0_250 {"));
    }

    #[test]
    fn birdc_output_is_read() {
        let p = "BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\n\
                 device1    Device     ---        up     01:23:23.276  \n\
                 lvsd_vips  Static     master4    up     01:23:23.276  \n\
                 bgp_198_18_0_250 BGP        ---        start  01:23:23.276  Active        Socket: Connection refused\n\
                 bgp_198_18_0_251 BGP        ---        up     01:23:35.494  Established   \n";
        assert_eq!(
            parse_protocols(p),
            [
                ("bgp_198_18_0_250".to_string(), "Active".to_string()),
                ("bgp_198_18_0_251".to_string(), "Established".to_string())
            ]
        );
        let b = "BIRD 2.0.12 ready.\nlvsd_bfd:\nIP address                Interface  State      Since         Interval  Timeout\n\
                 198.18.0.250              eth0       Up         01:23:35.493    0.100    0.300\n";
        assert_eq!(
            parse_bfd_sessions(b),
            [(Ipv4Addr::new(198, 18, 0, 250), "Up".to_string())]
        );
    }
}
