//! RTM_{NEW,DEL,GET}ADDR for IPv6 addresses (VRRP's IPv6 VIPs).

use std::net::{IpAddr, Ipv6Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::addr::{change, dump};
use super::NetlinkError;

/// One IPv6 address of an interface (what `ip -6 addr` shows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr6 {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
    /// Added without duplicate address detection (`IFA_F_NODAD`), as
    /// keepalived adds its IPv6 VIPs: a VIP that moves must answer at
    /// once, not after a second of DAD in which it is "tentative".
    pub nodad: bool,
}

impl IfAddr6 {
    pub fn is_link_local(&self) -> bool {
        self.addr.segments()[0] & 0xffc0 == 0xfe80
    }
}

fn message(ifindex: u32, a: &IfAddr6) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet6;
    m.header.prefix_len = a.prefix_len;
    m.header.index = ifindex;
    m.header.scope = AddressScope::Universe;
    if a.nodad {
        m.header.flags = AddressHeaderFlags::Nodad;
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    m.attributes
        .push(AddressAttribute::Local(IpAddr::V6(a.addr)));
    m.attributes
        .push(AddressAttribute::Address(IpAddr::V6(a.addr)));
    m
}

/// Adds `a` to interface `ifindex`. Already present (EEXIST) is success.
pub fn addr6_add(ifindex: u32, a: &IfAddr6) -> Result<(), NetlinkError> {
    let m = RouteNetlinkMessage::NewAddress(message(ifindex, a));
    change(
        "add IPv6 address",
        m,
        NLM_F_CREATE | NLM_F_EXCL,
        libc::EEXIST,
    )
}

/// Removes `a` from `ifindex`. Not present (EADDRNOTAVAIL) is success.
pub fn addr6_del(ifindex: u32, a: &IfAddr6) -> Result<(), NetlinkError> {
    let plain = IfAddr6 {
        nodad: false,
        ..a.clone()
    };
    let m = RouteNetlinkMessage::DelAddress(message(ifindex, &plain));
    change("delete IPv6 address", m, 0, libc::EADDRNOTAVAIL)
}

/// The IPv6 addresses of `ifindex`, in the kernel's order (`nodad` as the
/// kernel reports the flag).
pub fn addrs6(ifindex: u32) -> Result<Vec<IfAddr6>, NetlinkError> {
    let mut out = Vec::new();
    for m in dump("list IPv6 addresses", AddressFamily::Inet6, ifindex)? {
        let mut addr = None;
        let mut nodad = m.header.flags.contains(AddressHeaderFlags::Nodad);
        for at in &m.attributes {
            match at {
                AddressAttribute::Local(IpAddr::V6(v)) => addr = Some(*v),
                AddressAttribute::Address(IpAddr::V6(v)) if addr.is_none() => addr = Some(*v),
                AddressAttribute::Flags(f) => nodad = f.contains(AddressFlags::Nodad),
                _ => {}
            }
        }
        if let Some(addr) = addr {
            out.push(IfAddr6 {
                addr,
                prefix_len: m.header.prefix_len,
                nodad,
            });
        }
    }
    Ok(out)
}
