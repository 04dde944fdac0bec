//! rtnetlink notifications: link state changes and IPv4 address removals,
//! as they happen (keepalived's netlink reflector), so VRRP reacts to a
//! flushed VIP or a lost carrier without polling.

use std::net::IpAddr;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::LinkFlags;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use tokio::io::unix::AsyncFd;

use super::NetlinkError;

/// RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR (rtnetlink.h's
/// legacy group bits).
const GROUPS: u32 = 0x1 | 0x10 | 0x100;

/// One notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// An interface changed (or vanished: `operational` false).
    Link { index: u32, operational: bool },
    /// An IPv4 or IPv6 address was removed from an interface.
    AddrRemoved { index: u32, addr: IpAddr },
    /// Notifications were lost (receive buffer overrun): re-read the state.
    Overrun,
}

/// A socket subscribed to link and IPv4 address notifications of the
/// calling thread's network namespace.
pub struct Monitor {
    fd: AsyncFd<Socket>,
}

impl Monitor {
    /// Must be called inside a tokio runtime.
    pub fn open() -> Result<Monitor, NetlinkError> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, GROUPS))?;
        sock.set_non_blocking(true)?;
        // SAFETY: `sock` is a valid open socket, moved into the AsyncFd
        // which owns it until drop; netlink-sys's as_raw_fd always returns
        // that same fd.
        let fd = unsafe { AsyncFd::register(sock) }.map_err(std::io::Error::from)?;
        Ok(Monitor { fd })
    }

    /// The next batch of notifications (never empty).
    pub async fn next(&mut self) -> Vec<NetEvent> {
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return vec![NetEvent::Overrun];
            };
            match guard.try_io(|s| s.get_ref().recv_from_full()) {
                Err(_would_block) => continue,
                Ok(Ok((data, _))) => {
                    let evs = decode(&data);
                    if !evs.is_empty() {
                        return evs;
                    }
                }
                // ENOBUFS: the kernel dropped notifications for us.
                Ok(Err(_)) => return vec![NetEvent::Overrun],
            }
        }
    }
}

/// Decodes one datagram of notifications; what is not understood is
/// skipped.
pub fn decode(data: &[u8]) -> Vec<NetEvent> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= data.len() {
        let len = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        if len < 16 || off + len > data.len() {
            break;
        }
        let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..off + len]);
        off += (len + 3) & !3;
        let Ok(NetlinkMessage {
            payload: NetlinkPayload::InnerMessage(m),
            ..
        }) = m
        else {
            continue;
        };
        match m {
            RouteNetlinkMessage::NewLink(l) => out.push(NetEvent::Link {
                index: l.header.index,
                operational: l.header.flags.contains(LinkFlags::Up)
                    && l.header.flags.contains(LinkFlags::LowerUp),
            }),
            RouteNetlinkMessage::DelLink(l) => out.push(NetEvent::Link {
                index: l.header.index,
                operational: false,
            }),
            RouteNetlinkMessage::DelAddress(a) => {
                let addr = a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Local(v) => Some(*v),
                    // IPv6 notifications carry IFA_ADDRESS only.
                    AddressAttribute::Address(v @ IpAddr::V6(_)) => Some(*v),
                    _ => None,
                });
                if let Some(addr) = addr {
                    out.push(NetEvent::AddrRemoved {
                        index: a.header.index,
                        addr,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_skipped() {
        assert!(decode(&[]).is_empty());
        assert!(decode(&[0xff; 15]).is_empty());
        let mut bad = vec![0u8; 32];
        bad[0] = 200; // length past the end
        assert!(decode(&bad).is_empty());
        bad[0] = 32; // right length, nonsense type
        assert!(decode(&bad).is_empty());
    }

    /// The kernel's RTM_DELADDR for an IPv6 address carries IFA_ADDRESS
    /// only (no IFA_LOCAL): it must still be seen as a removal.
    #[test]
    fn ipv6_address_removal() {
        use netlink_packet_core::NetlinkHeader;
        use netlink_packet_route::address::AddressMessage;
        use netlink_packet_route::AddressFamily;
        let vip: std::net::Ipv6Addr = "2001:2::100".parse().unwrap();
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet6;
        m.header.index = 7;
        m.header.prefix_len = 64;
        m.attributes
            .push(AddressAttribute::Address(IpAddr::V6(vip)));
        let mut msg = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)),
        );
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut buf);
        assert_eq!(
            decode(&buf),
            vec![NetEvent::AddrRemoved {
                index: 7,
                addr: IpAddr::V6(vip)
            }]
        );
    }
}
