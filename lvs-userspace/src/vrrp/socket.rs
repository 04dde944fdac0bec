//! The raw IP protocol 112 socket of one instance.
//!
//! `IP_HDRINCL`: we write the IPv4 header ourselves (TTL 255, TOS 0xc0, the
//! source address the v3 checksum's pseudo-header was computed with), as
//! keepalived does. The socket is bound to the instance's interface, joins
//! the multicast group there (unless unicast), does not loop its own
//! multicast back, and receives every protocol-112 datagram arriving on the
//! interface, IP header included.
//!
//! IPv6 (RFC 5798 §5.1.2): a raw `AF_INET6` socket: the kernel writes the
//! header, we pick the source (the interface's link-local address, or
//! `unicast_src_ip`) with `IPV6_PKTINFO` per message and compute the
//! checksum ourselves, so a forged or damaged advert reaches us and is
//! counted rather than dropped unseen by the kernel. The hop limit (255
//! both ways) and the destination come back as ancillary data.

use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::packet::IPPROTO_VRRP;

pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    /// IPv6: the interface (scope of link-local destinations and of
    /// `IPV6_PKTINFO`).
    v6_ifindex: Option<u32>,
}

use super::packet::Rx6;

/// A raw socket of `domain` for protocol 112 (VRRP), bound to `ifname`.
fn raw_vrrp_socket(domain: Domain, ifname: &str) -> std::io::Result<Socket> {
    let s = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_VRRP as i32)))?;
    s.bind_device(Some(ifname.as_bytes()))?;
    Ok(s)
}

impl VrrpSocket {
    /// Opens the socket in the calling thread's network namespace.
    /// `group`: the multicast group to join, `None` for unicast.
    pub fn open(ifname: &str, ifindex: u32, group: Option<Ipv4Addr>) -> std::io::Result<Self> {
        let s = raw_vrrp_socket(Domain::IPV4, ifname)?;
        s.set_header_included_v4(true)?;
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
        Ok(VrrpSocket {
            fd,
            v6_ifindex: None,
        })
    }

    /// The IPv6 socket of an instance on `ifindex`; `group`: ff02::12 (or
    /// `None` for unicast).
    pub fn open6(ifname: &str, ifindex: u32, group: Option<Ipv6Addr>) -> std::io::Result<Self> {
        let s = raw_vrrp_socket(Domain::IPV6, ifname)?;
        s.set_multicast_loop_v6(false)?;
        s.set_multicast_hops_v6(255)?;
        s.set_unicast_hops_v6(255)?;
        s.set_multicast_if_v6(ifindex)?;
        let fd = s.as_raw_fd();
        for opt in [libc::IPV6_RECVHOPLIMIT, libc::IPV6_RECVPKTINFO] {
            let on: libc::c_int = 1;
            // SAFETY: valid fd; `on` is a live c_int of the size passed.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_IPV6,
                    opt,
                    &on as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if let Some(g) = group {
            s.join_multicast_v6(&g, ifindex)?;
        }
        s.set_recv_buffer_size(256 * 1024).ok();
        s.set_nonblocking(true)?;
        // SAFETY: as in `open`.
        let fd = unsafe { AsyncFd::register(s) }.map_err(std::io::Error::from)?;
        Ok(VrrpSocket {
            fd,
            v6_ifindex: Some(ifindex),
        })
    }

    /// Receives one IPv6 message (the VRRP message alone) with its source,
    /// destination and hop limit.
    pub async fn recv6(&self, buf: &mut [u8]) -> std::io::Result<(usize, Rx6)> {
        loop {
            let mut g = self.fd.readable().await?;
            match g.try_io(|s| recvmsg6(s.get_ref().as_raw_fd(), buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one VRRP message over IPv6 from `src` to `dst`, out of the
    /// instance's interface.
    pub fn send6(&self, msg: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> std::io::Result<()> {
        let ifindex = self.v6_ifindex.unwrap_or(0);
        let link_scoped =
            dst.segments()[0] & 0xffc0 == 0xfe80 || dst.segments()[0] & 0xff0f == 0xff02;
        let to = SocketAddrV6::new(dst, 0, 0, if link_scoped { ifindex } else { 0 });
        let to = SockAddr::from(to);
        // SAFETY: in6_pktinfo is plain old data.
        let mut info: libc::in6_pktinfo = unsafe { std::mem::zeroed() };
        info.ipi6_addr.s6_addr = src.octets();
        info.ipi6_ifindex = ifindex;
        let mut cbuf = [0u64; 8]; // aligned room for one in6_pktinfo cmsg
        let mut iov = libc::iovec {
            iov_base: msg.as_ptr() as *mut libc::c_void,
            iov_len: msg.len(),
        };
        // SAFETY: msghdr is plain old data; every pointer set below stays
        // valid (locals of this frame) until sendmsg returns.
        let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
        mh.msg_name = to.as_ptr() as *mut libc::c_void;
        mh.msg_namelen = to.len();
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        // SAFETY: CMSG_SPACE is a pure size computation.
        mh.msg_controllen =
            unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::in6_pktinfo>() as u32) } as _;
        // SAFETY: the control buffer is large enough for one cmsg of that
        // size (checked by the assert) and aligned for cmsghdr.
        unsafe {
            assert!(mh.msg_controllen as usize <= std::mem::size_of_val(&cbuf));
            let c = libc::CMSG_FIRSTHDR(&mh);
            (*c).cmsg_level = libc::IPPROTO_IPV6;
            (*c).cmsg_type = libc::IPV6_PKTINFO;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::in6_pktinfo>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::in6_pktinfo, info);
        }
        // SAFETY: valid fd and msghdr (see above); the kernel only reads.
        let rc = unsafe { libc::sendmsg(self.fd.get_ref().as_raw_fd(), &mh, 0) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one datagram: IPv4 with its header, IPv6 the message with
    /// what came beside it.
    pub async fn recv_any(&self, buf: &mut [u8]) -> std::io::Result<(usize, Option<Rx6>)> {
        if self.v6_ifindex.is_some() {
            let (n, rx) = self.recv6(buf).await?;
            Ok((n, Some(rx)))
        } else {
            Ok((self.recv(buf).await?, None))
        }
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

/// One `recvmsg` on an IPv6 raw socket: the message into `buf`, the source
/// from the address, the destination and hop limit from ancillary data.
fn recvmsg6(fd: i32, buf: &mut [u8]) -> std::io::Result<(usize, Rx6)> {
    // SAFETY: sockaddr_in6 is plain old data.
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain old data; the pointers set below are locals
    // of this frame, valid until recvmsg returns.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_name = &mut from as *mut libc::sockaddr_in6 as *mut libc::c_void;
    mh.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    mh.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: valid fd and msghdr; the kernel writes within the lengths.
    let n = unsafe { libc::recvmsg(fd, &mut mh, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut rx = Rx6 {
        src: Ipv6Addr::from(from.sin6_addr.s6_addr),
        dst: Ipv6Addr::UNSPECIFIED,
        hop_limit: None,
    };
    // SAFETY: walking the control messages the kernel wrote, with the
    // libc macros, within msg_controllen; data is read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IPV6 {
                if (*c).cmsg_type == libc::IPV6_HOPLIMIT {
                    let h = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                    rx.hop_limit = u8::try_from(h).ok();
                } else if (*c).cmsg_type == libc::IPV6_PKTINFO {
                    let i =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::in6_pktinfo);
                    rx.dst = Ipv6Addr::from(i.ipi6_addr.s6_addr);
                }
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    Ok((n as usize, rx))
}
