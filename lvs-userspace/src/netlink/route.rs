//! RTM_GETROUTE with RTM_F_FIB_MATCH: the routing-table entry the kernel
//! would use for an address (what `ip route get fibmatch ADDR` prints).

use std::net::Ipv4Addr;

use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::sock::{request, Kind};
use super::NetlinkError;

/// How the kernel routes one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteTo {
    /// On a directly connected network, out of this interface.
    OnLink { oif: u32 },
    /// Through a router.
    Gateway { oif: Option<u32>, gateway: Ipv4Addr },
    /// More than one next hop (ECMP): the interfaces, in kernel order.
    Multipath { oifs: Vec<u32> },
    /// An address of this host.
    Local,
    /// Unreachable, prohibited, blackhole, or no route.
    None,
}

/// The FIB entry matching `dst` in the calling thread's namespace.
pub fn route_to(dst: Ipv4Addr) -> Result<RouteTo, NetlinkError> {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.destination_prefix_length = 32;
    m.header.table = RouteHeader::RT_TABLE_UNSPEC;
    m.header.flags = RouteFlags::FibMatch;
    m.attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(dst)));
    let msgs = match request("get route", RouteNetlinkMessage::GetRoute(m), Kind::Get, 0) {
        Ok(m) => m,
        // ENETUNREACH / EHOSTUNREACH: no route at all.
        Err(e) if matches!(e.errno(), Some(libc::ENETUNREACH | libc::EHOSTUNREACH)) => {
            return Ok(RouteTo::None)
        }
        Err(e) => return Err(e),
    };
    let Some(RouteNetlinkMessage::NewRoute(r)) = msgs.into_iter().next() else {
        return Err(NetlinkError::Protocol("no RTM_NEWROUTE in answer"));
    };
    Ok(classify(&r))
}

fn classify(r: &RouteMessage) -> RouteTo {
    match r.header.kind {
        RouteType::Unicast => {}
        RouteType::Local | RouteType::Broadcast => return RouteTo::Local,
        _ => return RouteTo::None,
    }
    let mut oif = None;
    let mut gateway = None;
    for a in &r.attributes {
        match a {
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(*g),
            RouteAttribute::MultiPath(hops) if hops.len() > 1 => {
                return RouteTo::Multipath {
                    oifs: hops.iter().map(|h| h.interface_index).collect(),
                }
            }
            RouteAttribute::MultiPath(hops) => {
                if let Some(h) = hops.first() {
                    oif = Some(h.interface_index);
                    for a in &h.attributes {
                        if let RouteAttribute::Gateway(RouteAddress::Inet(g)) = a {
                            gateway = Some(*g);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    match (gateway, oif) {
        (Some(gateway), oif) => RouteTo::Gateway { oif, gateway },
        (None, Some(oif)) => RouteTo::OnLink { oif },
        (None, None) => RouteTo::None,
    }
}
