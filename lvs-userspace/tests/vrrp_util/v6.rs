//! IPv6 helpers of the VRRP lab tests: IPv6 turned on (without DAD) in
//! the lab's directors and client, link-local addresses, the IPv6 VIP's
//! presence. (The instance's config, starting it, the VIP's checks and
//! `ping -6` are [`Family::V6`]'s.)

use std::net::Ipv6Addr;
use std::time::Duration;

use lvs_testkit::Lab;
use lvs_userspace::netlink::{self, IfAddr6};

use super::*;

pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x100);
pub const CLIENT6: &str = "2001:2::50";

/// IPv6 on for `ifname` in `ns`: no DAD (link-local usable at once), then
/// enabled (the kernel makes the link-local address), plus `addr`/64.
pub fn enable_ipv6(lab: &Lab, ns: &str, ifname: &str, addr: &str) {
    let name = ifname.to_string();
    lab.run_in_netns(ns, move || {
        for (k, v) in [
            ("net.ipv6.conf.all.accept_dad".to_string(), "0"),
            (format!("net.ipv6.conf.{name}.accept_dad"), "0"),
            ("net.ipv6.conf.all.disable_ipv6".to_string(), "0"),
            (format!("net.ipv6.conf.{name}.disable_ipv6"), "0"),
        ] {
            lvs_testkit::netns::write_sysctl(&k, v).unwrap();
        }
    })
    .unwrap();
    lab.ip_batch(ns, &format!("addr add {addr}/64 dev {ifname} nodad\n"))
        .expect("IPv6 address");
}

/// IPv6 on the two directors' bond0 (2001:2::2 and ::3) and the client's
/// eth0 ([`CLIENT6`]), once their link-local addresses exist.
pub fn enable_ipv6_lab(lab: &Lab) {
    for d in 0..2 {
        let addr = Family::V6.director_addr(d);
        enable_ipv6(lab, lab.director_ns(d), "bond0", &addr);
    }
    enable_ipv6(lab, lab.client_ns(), "eth0", CLIENT6);
    wait_for("link-local addresses", Duration::from_secs(5), || {
        link_local(lab, 0).is_some() && link_local(lab, 1).is_some()
    });
}

pub fn lab6() -> Lab {
    let lab = lab();
    enable_ipv6_lab(&lab);
    lab
}

/// The link-local address of `ifname` in `ns`, once it exists.
pub fn link_local_in(lab: &Lab, ns: &str, ifname: &str) -> Option<Ipv6Addr> {
    let ifname = ifname.to_string();
    lab.run_in_netns(ns, move || {
        let l = netlink::link_by_name(&ifname).unwrap();
        netlink::addrs6(l.index)
            .unwrap()
            .into_iter()
            .find(IfAddr6::is_link_local)
            .map(|a| a.addr)
    })
    .unwrap()
}

/// Director `dir`'s link-local address on bond0.
pub fn link_local(lab: &Lab, dir: usize) -> Option<Ipv6Addr> {
    link_local_in(lab, lab.director_ns(dir), "bond0")
}

/// The IPv6 VIP on director `dir`'s bond0, if present.
pub fn vip6_on(lab: &Lab, dir: usize) -> Option<IfAddr6> {
    on_bond0(lab, dir, |index| {
        netlink::addrs6(index)
            .unwrap()
            .into_iter()
            .find(|a| a.addr == VIP6)
    })
}
