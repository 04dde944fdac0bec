//! Receiving sync datagrams with what the kernel knows about them (the
//! TTL they arrived with, the address they were sent to), and the checks
//! that make a datagram from off the link or from a stranger count as one.

use std::{
    net::Ipv4Addr,
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use socket2::Socket;
use tokio::{io::Interest, net::UdpSocket};

use super::SyncSetup;

/// A received datagram's length and envelope.
pub struct Received {
    pub len: usize,
    pub from: Ipv4Addr,
    pub ttl: Option<u8>,
    /// The destination address of the IP header (the group, for multicast).
    pub dst: Option<Ipv4Addr>,
}

/// Asks the kernel for IP_TTL and IP_PKTINFO with every datagram.
pub fn enable_ancillary(sock: &Socket) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    for opt in [libc::IP_RECVTTL, libc::IP_PKTINFO] {
        // SAFETY: setsockopt with a valid fd and a c_int option value.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                opt,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The next datagram, with its TTL and destination address.
pub async fn recv(udp: &UdpSocket, buf: &mut [u8]) -> std::io::Result<Received> {
    udp.async_io(Interest::READABLE, || recvmsg(udp.as_raw_fd(), buf))
        .await
}

fn recvmsg(fd: i32, buf: &mut [u8]) -> std::io::Result<Received> {
    // SAFETY: all-zero sockaddr_in and msghdr are valid initial values.
    let mut from: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64s: the control buffer must be aligned for cmsghdr.
    let mut control = [0u64; 16];
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: every pointer in `msg` points at a live buffer of the length
    // given, owned by this frame; the call is non-blocking (the socket is).
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut ttl = None;
    let mut dst = None;
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within
    // msg_controllen; each payload is read unaligned at its declared type.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_TTL) => {
                    let v: libc::c_int = std::ptr::read_unaligned(data.cast());
                    ttl = u8::try_from(v).ok();
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                    dst = Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)));
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Received {
        len: n as usize,
        from: Ipv4Addr::from(u32::from_be(from.sin_addr.s_addr)),
        ttl,
        dst,
    })
}

/// The sync interface's subnets, re-read now and then (addresses change).
pub struct OnLink {
    ifindex: u32,
    nets: Vec<(Ipv4Addr, u8)>,
    read_at: Option<Instant>,
}

impl OnLink {
    pub fn new(ifindex: u32) -> Self {
        OnLink {
            ifindex,
            nets: Vec::new(),
            read_at: None,
        }
    }

    fn refresh(&mut self) {
        if self
            .read_at
            .is_some_and(|t| t.elapsed() < Duration::from_secs(5))
        {
            return;
        }
        self.read_at = Some(Instant::now());
        if let Ok(addrs) = crate::netlink::addrs(self.ifindex) {
            self.nets = addrs.iter().map(|a| (a.addr, a.prefix_len)).collect();
        }
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        self.nets.iter().any(|&(net, len)| {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len.min(32) as u32)
            };
            u32::from(net) & mask == u32::from(ip) & mask
        })
    }

    /// Whether `ip` is on one of the interface's subnets.
    pub fn has(&mut self, ip: Ipv4Addr) -> bool {
        if self.read_at.is_none() || !self.contains(ip) {
            self.refresh();
        }
        self.contains(ip)
    }
}

/// The envelope checks; the reason is logged once per kind.
pub fn check(got: &Received, setup: &SyncSetup, onlink: &mut OnLink) -> Result<(), String> {
    if got.dst != Some(setup.group) {
        return Err(format!(
            "sent to {}, not to the sync group {}",
            got.dst.map(|d| d.to_string()).unwrap_or_else(|| "?".into()),
            setup.group
        ));
    }
    if got.ttl != Some(setup.ttl) {
        return Err(format!(
            "TTL {} (sync datagrams are sent with TTL {}: this one crossed a router)",
            got.ttl.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
            setup.ttl
        ));
    }
    if !onlink.has(got.from) {
        return Err(format!(
            "source {} is not on a subnet of {}",
            got.from, setup.ifname
        ));
    }
    Ok(())
}
