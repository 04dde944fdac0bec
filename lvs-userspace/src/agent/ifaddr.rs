//! What VRRP does to the host when it becomes MASTER: add the virtual
//! addresses (rtnetlink RTM_NEWADDR with prefix, broadcast, scope and
//! label, as `virtual_ipaddress` says) and announce them with gratuitous
//! ARP (AF_PACKET). Written against the kernel ABI directly: a handful of
//! fixed-layout messages.

use std::{io, net::Ipv4Addr};

/// A `virtual_ipaddress` entry, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    pub brd: Option<Ipv4Addr>,
    /// RT_SCOPE_* (0 universe, 253 link, 254 host).
    pub scope: u8,
    pub label: Option<String>,
    pub ifindex: u32,
}

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const NLMSG_ERROR: u16 = 2;

fn push_attr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// One rtnetlink request, waiting for its ACK. Errors the caller expects
/// (EEXIST on add, EADDRNOTAVAIL on delete) come back as io errors.
fn request(msg_type: u16, flags: u16, vip: &Vip) -> io::Result<()> {
    let mut body = Vec::with_capacity(64);
    // struct ifaddrmsg
    body.push(libc::AF_INET as u8);
    body.push(vip.prefix_len);
    body.push(0); // flags
    body.push(vip.scope);
    body.extend_from_slice(&vip.ifindex.to_ne_bytes());
    push_attr(&mut body, IFA_LOCAL, &vip.addr.octets());
    push_attr(&mut body, IFA_ADDRESS, &vip.addr.octets());
    if let Some(b) = vip.brd {
        push_attr(&mut body, IFA_BROADCAST, &b.octets());
    }
    if let Some(l) = &vip.label {
        let mut z = l.as_bytes().to_vec();
        z.push(0);
        push_attr(&mut body, IFA_LABEL, &z);
    }
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&msg_type.to_ne_bytes());
    msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
    msg.extend_from_slice(&body);

    // SAFETY: a plain netlink socket, owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: a zeroed sockaddr_nl addresses the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: msg and kernel outlive the call; lengths are theirs.
    let sent = unsafe {
        libc::sendto(
            raw,
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 4096];
    // SAFETY: buf is ours and its length is passed.
    let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    if n >= 20 && u16::from_ne_bytes([buf[4], buf[5]]) == NLMSG_ERROR {
        let errno = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if errno != 0 {
            return Err(io::Error::from_raw_os_error(-errno));
        }
    }
    Ok(())
}

/// Adds the address; already there is fine.
pub fn add(vip: &Vip) -> io::Result<()> {
    match request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, vip) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        other => other,
    }
}

/// Removes the address; already gone is fine.
pub fn del(vip: &Vip) -> io::Result<()> {
    match request(RTM_DELADDR, 0, vip) {
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
        other => other,
    }
}

/// A gratuitous ARP request for `vip` from `mac`, broadcast out of its
/// interface, as keepalived sends them: neighbours update their caches.
pub fn gratuitous_arp(vip: &Vip, mac: [u8; 6]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(42);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&[0x08, 0x06]); // ARP
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&vip.addr.octets());
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&vip.addr.octets());
    // SAFETY: a raw packet socket, owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            (libc::ETH_P_ARP as u16).to_be() as i32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: a zeroed sockaddr_ll, then filled.
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
    to.sll_ifindex = vip.ifindex as i32;
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: frame and `to` outlive the call.
    let rc = unsafe {
        libc::sendto(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&to as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
