//! RTM_GETLINK: interfaces by name or index.

use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

use super::sock::{request, Kind};
use super::{Link, NetlinkError};

/// The interface called `name` in the calling thread's namespace.
pub fn link_by_name(name: &str) -> Result<Link, NetlinkError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    get(m).map_err(|e| match e.errno() {
        Some(libc::ENODEV) => NetlinkError::NoSuchLink(name.to_string()),
        _ => e,
    })
}

/// The interface with index `index`.
pub fn link_by_index(index: u32) -> Result<Link, NetlinkError> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    get(m).map_err(|e| match e.errno() {
        Some(libc::ENODEV) => NetlinkError::NoSuchLink(format!("index {index}")),
        _ => e,
    })
}

/// Whether interface `index` is up and has carrier (`IFF_UP` and
/// `IFF_LOWER_UP`): what VRRP needs to work on it.
pub fn link_operational(index: u32) -> Result<bool, NetlinkError> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    let msgs = request("get link", RouteNetlinkMessage::GetLink(m), Kind::Get, 0)?;
    match msgs.into_iter().next() {
        Some(RouteNetlinkMessage::NewLink(l)) => {
            Ok(l.header.flags.contains(LinkFlags::Up)
                && l.header.flags.contains(LinkFlags::LowerUp))
        }
        _ => Err(NetlinkError::Protocol("no RTM_NEWLINK in answer")),
    }
}

/// Every interface of the namespace.
pub fn links() -> Result<Vec<Link>, NetlinkError> {
    let msgs = request(
        "list links",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        Kind::Dump,
        0,
    )?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(to_link(&l)),
            _ => None,
        })
        .collect())
}

fn get(m: LinkMessage) -> Result<Link, NetlinkError> {
    let msgs = request("get link", RouteNetlinkMessage::GetLink(m), Kind::Get, 0)?;
    match msgs.into_iter().next() {
        Some(RouteNetlinkMessage::NewLink(l)) => Ok(to_link(&l)),
        _ => Err(NetlinkError::Protocol("no RTM_NEWLINK in answer")),
    }
}

fn to_link(l: &LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        name: String::new(),
        mac: [0; 6],
        up: l.header.flags.contains(LinkFlags::Up),
        mtu: 0,
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(b) if b.len() == 6 => link.mac.copy_from_slice(b),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            _ => {}
        }
    }
    link
}
