//! The raw IP protocol 112 socket of one instance.
//!
//! `IP_HDRINCL`: we write the IPv4 header ourselves (TTL 255, TOS 0xc0, the
//! source address the v3 checksum's pseudo-header was computed with), as
//! keepalived does. The socket is bound to the instance's interface, joins
//! the multicast group there (unless unicast), does not loop its own
//! multicast back, and receives every protocol-112 datagram arriving on the
//! interface, IP header included.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::packet::IPPROTO_VRRP;

pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
}

impl VrrpSocket {
    /// Opens the socket in the calling thread's network namespace.
    /// `group`: the multicast group to join, `None` for unicast.
    pub fn open(ifname: &str, ifindex: u32, group: Option<Ipv4Addr>) -> std::io::Result<Self> {
        let s = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(IPPROTO_VRRP as i32)),
        )?;
        s.set_header_included_v4(true)?;
        s.bind_device(Some(ifname.as_bytes()))?;
        s.set_multicast_loop_v4(false)?;
        s.set_multicast_ttl_v4(255)?;
        s.set_ttl_v4(255)?;
        if let Some(g) = group {
            s.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(ifindex))?;
        }
        s.set_recv_buffer_size(256 * 1024).ok();
        s.set_nonblocking(true)?;
        // SAFETY: `s` is a valid open socket, moved into the AsyncFd which
        // owns it until drop; socket2's as_raw_fd always returns that fd.
        let fd = unsafe { AsyncFd::register(s) }.map_err(std::io::Error::from)?;
        Ok(VrrpSocket { fd })
    }

    /// Receives one datagram (IP header included).
    pub async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut g = self.fd.readable().await?;
            match g.try_io(|s| s.get_ref().read(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends a full IPv4 datagram to `dst`.
    pub fn send(&self, pkt: &[u8], dst: Ipv4Addr) -> std::io::Result<()> {
        let to = SockAddr::from(SocketAddrV4::new(dst, 0));
        self.fd.get_ref().send_to(pkt, &to)?;
        Ok(())
    }
}
