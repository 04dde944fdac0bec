//! The kernel neighbour tables (ARP for IPv4, NDP for IPv6).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::sock::{request, Kind};
use super::{link_by_index, NetlinkError};

/// Every usable entry of `ifindex`'s neighbour tables (both families),
/// from one dump. REACHABLE, STALE, DELAY, PROBE, PERMANENT and NOARP
/// entries count (a STALE entry still has a valid address, the kernel just
/// has not confirmed it lately); INCOMPLETE and FAILED do not.
pub fn neighbours(
    ifindex: u32,
) -> Result<std::collections::HashMap<IpAddr, [u8; 6]>, NetlinkError> {
    let mut q = NeighbourMessage::default();
    // AF_UNSPEC: the kernel dumps every neighbour table, ARP and NDP.
    q.header.family = AddressFamily::Unspec;
    let msgs = request(
        "list neighbours",
        RouteNetlinkMessage::GetNeighbour(q),
        Kind::Dump,
        0,
    )?;
    let mut out = std::collections::HashMap::new();
    for m in msgs {
        let RouteNetlinkMessage::NewNeighbour(m) = m else {
            continue;
        };
        let usable = matches!(
            m.header.state,
            NeighbourState::Reachable
                | NeighbourState::Stale
                | NeighbourState::Delay
                | NeighbourState::Probe
                | NeighbourState::Permanent
                | NeighbourState::Noarp
        );
        if m.header.ifindex != ifindex || !usable {
            continue;
        }
        let dst = m.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(d)) => Some(IpAddr::V4(*d)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(d)) => Some(IpAddr::V6(*d)),
            _ => None,
        });
        let mac = m.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(b) if b.len() == 6 => {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(b);
                Some(mac)
            }
            _ => None,
        });
        if let (Some(d), Some(mac)) = (dst, mac) {
            out.insert(d, mac);
        }
    }
    Ok(out)
}

/// The resolved MAC of `ip` on `ifindex`, or `None` if the kernel has no
/// usable entry (see [`neighbours`] for which states count).
pub fn neighbour(ifindex: u32, ip: impl Into<IpAddr>) -> Result<Option<[u8; 6]>, NetlinkError> {
    Ok(neighbours(ifindex)?.get(&ip.into()).copied())
}

/// Makes the kernel resolve `ip` on `ifindex`.
///
/// Chosen method: one empty UDP datagram to `ip:9` (discard) from a socket
/// bound to the interface (`SO_BINDTODEVICE`). Routing it needs the
/// neighbour, so the kernel creates an INCOMPLETE entry and sends an ARP
/// request (IPv6: a neighbour solicitation) out of that interface; the
/// reply makes the entry REACHABLE and a
/// later [`neighbour`] finds it. The datagram itself is queued behind the
/// resolution and then harmlessly discarded (or answered with ICMP port
/// unreachable). This needs no extra privilege beyond CAP_NET_RAW for the
/// bind-to-device and works in any namespace the calling thread is in.
pub fn solicit(ifindex: u32, ip: impl Into<IpAddr>) -> Result<(), NetlinkError> {
    let ip = ip.into();
    let link = link_by_index(ifindex)?;
    let sock = UdpSocket::bind(if ip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
    let name = link.name.as_bytes();
    // SAFETY: valid socket fd; `name` points to `name.len()` readable bytes
    // (the kernel copies at most IFNAMSIZ and does not need a terminator
    // when the length is given).
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr() as *const libc::c_void,
            name.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    match sock.send_to(&[], SocketAddr::new(ip, 9)) {
        Ok(_) => Ok(()),
        // A neighbour that already failed answers EHOSTUNREACH at once; the
        // request still went out (or will be retried by the kernel).
        Err(e) if e.raw_os_error() == Some(libc::EHOSTUNREACH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
