//! RTM_{NEW,DEL,GET}ADDR for IPv4 addresses.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::sock::{request, Kind};
use super::{IfAddr, NetlinkError};

fn message(ifindex: u32, a: &IfAddr, full: bool) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = a.prefix_len;
    m.header.index = ifindex;
    m.header.scope = AddressScope::from(a.scope.unwrap_or(0));
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer, which
    // for a non point-to-point address is the same (iproute2 sends both).
    m.attributes
        .push(AddressAttribute::Local(IpAddr::V4(a.addr)));
    m.attributes
        .push(AddressAttribute::Address(IpAddr::V4(a.addr)));
    if full {
        if let Some(b) = a.brd {
            m.attributes.push(AddressAttribute::Broadcast(b));
        }
        if let Some(l) = &a.label {
            m.attributes.push(AddressAttribute::Label(l.clone()));
        }
    }
    m
}

/// Sends an address change (either family) and waits for the ack. `already`
/// is the errno meaning the interface is already as asked (EEXIST on add,
/// EADDRNOTAVAIL on delete), which is success.
pub(super) fn change(
    op: &'static str,
    msg: RouteNetlinkMessage,
    flags: u16,
    already: i32,
) -> Result<(), NetlinkError> {
    match request(op, msg, Kind::Ack, flags) {
        Ok(_) => Ok(()),
        Err(e) if e.errno() == Some(already) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The RTM_NEWADDR messages of `ifindex` in `family`, from one dump.
pub(super) fn dump(
    op: &'static str,
    family: AddressFamily,
    ifindex: u32,
) -> Result<Vec<AddressMessage>, NetlinkError> {
    let mut q = AddressMessage::default();
    q.header.family = family;
    let msgs = request(op, RouteNetlinkMessage::GetAddress(q), Kind::Dump, 0)?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(m)
                if m.header.index == ifindex && m.header.family == family =>
            {
                Some(m)
            }
            _ => None,
        })
        .collect())
}

/// Adds `a` to interface `ifindex`. Already present (EEXIST) is success.
pub fn addr_add(ifindex: u32, a: &IfAddr) -> Result<(), NetlinkError> {
    let m = RouteNetlinkMessage::NewAddress(message(ifindex, a, true));
    change("add address", m, NLM_F_CREATE | NLM_F_EXCL, libc::EEXIST)
}

/// Removes `a` (matched by address and prefix length) from `ifindex`.
/// Not present (EADDRNOTAVAIL) is success.
pub fn addr_del(ifindex: u32, a: &IfAddr) -> Result<(), NetlinkError> {
    // Label, brd and scope are left out: the kernel then matches on the
    // address and prefix only, which is what "remove this VIP" means.
    let m = RouteNetlinkMessage::DelAddress(message(ifindex, a, false));
    change("delete address", m, 0, libc::EADDRNOTAVAIL)
}

/// The IPv4 addresses of `ifindex`, in the kernel's order.
pub fn addrs(ifindex: u32) -> Result<Vec<IfAddr>, NetlinkError> {
    let mut out = Vec::new();
    for m in dump("list addresses", AddressFamily::Inet, ifindex)? {
        let mut local = None;
        let mut address = None;
        let mut a = IfAddr {
            addr: std::net::Ipv4Addr::UNSPECIFIED,
            prefix_len: m.header.prefix_len,
            brd: None,
            scope: Some(m.header.scope.into()),
            label: None,
        };
        for at in &m.attributes {
            match at {
                AddressAttribute::Local(IpAddr::V4(v)) => local = Some(*v),
                AddressAttribute::Address(IpAddr::V4(v)) => address = Some(*v),
                AddressAttribute::Broadcast(b) => a.brd = Some(*b),
                AddressAttribute::Label(l) => a.label = Some(l.clone()),
                _ => {}
            }
        }
        let Some(addr) = local.or(address) else {
            continue;
        };
        a.addr = addr;
        out.push(a);
    }
    Ok(out)
}
