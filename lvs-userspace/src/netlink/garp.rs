//! Gratuitous ARP, in the request form keepalived sends: an ARP request
//! broadcast from the VIP's owner, sender = target = the VIP, so every host
//! on the segment updates (or creates) its entry for the VIP.

use std::net::Ipv4Addr;

use super::NetlinkError;

const ETH_P_ARP: u16 = 0x0806;

/// The 42-byte Ethernet frame of a gratuitous ARP request for `ip` from `mac`.
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]); // to everyone
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // htype Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // ptype IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // op request
    f[22..28].copy_from_slice(&mac); // sender hw
    f[28..32].copy_from_slice(&ip.octets()); // sender ip
    f[32..38].copy_from_slice(&[0xff; 6]); // target hw: broadcast, as keepalived
    f[38..42].copy_from_slice(&ip.octets()); // target ip = sender ip
    f
}

/// Sends one gratuitous ARP for `ip` from `mac` out of `ifindex` through an
/// `AF_PACKET` raw socket (needs CAP_NET_RAW).
pub fn send_garp(ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> Result<(), NetlinkError> {
    send_frame(ifindex, ETH_P_ARP, [0xff; 6], &garp_frame(mac, ip))
}

/// Sends one whole Ethernet frame out of `ifindex` through an `AF_PACKET`
/// raw socket (needs CAP_NET_RAW).
pub(super) fn send_frame(
    ifindex: u32,
    ethertype: u16,
    dst_mac: [u8; 6],
    frame: &[u8],
) -> Result<(), NetlinkError> {
    // SAFETY: plain socket(2) call; the returned fd is checked and owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            0, // protocol 0: send only, receive nothing
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: `fd` is a fresh valid descriptor nobody else owns; OwnedFd
    // closes it on every path.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ethertype.to_be();
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&dst_mac);
    // SAFETY: valid fd; frame and sockaddr pointers are valid for the sizes
    // passed; the kernel only reads them.
    let rc = unsafe {
        libc::sendto(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            frame.as_ptr() as *const libc::c_void,
            frame.len(),
            0,
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}
