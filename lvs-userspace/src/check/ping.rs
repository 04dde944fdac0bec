//! PING_CHECK: one ICMP (or ICMPv6) echo request, success when its echo
//! reply arrives within `connect_timeout` (keepalived check_ping.c).
//!
//! keepalived uses an ICMP datagram socket (`SOCK_DGRAM`, `IPPROTO_ICMP`:
//! the kernel picks the echo id and matches replies) and widens
//! `net.ipv4.ping_group_range` to be allowed one. We never touch that
//! sysctl: the datagram socket is tried first and, when the group range
//! refuses it (EACCES, the default "1 0" of a new namespace), a raw ICMP
//! socket is used instead (lvsd runs as root), connected to the target so
//! the kernel only hands us its packets, and replies are matched by id and
//! sequence. Nothing is shelled out.

use std::{
    io::Read,
    net::{IpAddr, SocketAddr},
    os::fd::AsRawFd,
    sync::atomic::{AtomicU16, Ordering},
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::{error::CheckError, spec::Conn};

/// Payload length of an echo request (keepalived's `ICMP_BUFSIZE`).
const PAYLOAD: usize = 128;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

static SEQ: AtomicU16 = AtomicU16::new(1);

/// RFC 1071 Internet checksum.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type, code, checksum, id, sequence, payload.
fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 8 + PAYLOAD];
    p[0] = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    if !v6 {
        // ICMPv6's checksum covers a pseudo-header: the kernel computes it
        // for raw and datagram sockets alike. ICMPv4's is ours on raw ones.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `pkt` (ICMP header first) is the reply to our request.
/// `id` is `None` on datagram sockets, where the kernel owns the id.
pub fn is_reply(pkt: &[u8], v6: bool, id: Option<u16>, seq: u16) -> bool {
    let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    pkt.len() >= 8
        && pkt[0] == want
        && id.is_none_or(|id| pkt[4..6] == id.to_be_bytes())
        && pkt[6..8] == seq.to_be_bytes()
}

fn open(conn: &Conn) -> Result<(Socket, bool), CheckError> {
    let (domain, proto) = match conn.target.ip() {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => Ok((s, false)),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            Socket::new(domain, Type::RAW, Some(proto))
                .map(|s| (s, true))
                .map_err(CheckError::Socket)
        }
        Err(e) => Err(CheckError::Socket(e)),
    }
}

/// One PING_CHECK attempt.
pub async fn check(conn: &Conn) -> Result<(), CheckError> {
    let v6 = conn.target.is_ipv6();
    let (sock, raw) = open(conn)?;
    sock.set_nonblocking(true).map_err(CheckError::Socket)?;
    if let Some(dev) = &conn.bind_if {
        sock.bind_device(Some(dev.as_bytes()))
            .map_err(CheckError::Socket)?;
    }
    if let Some(mark) = conn.fwmark {
        sock.set_mark(mark).map_err(CheckError::Socket)?;
    }
    if let Some(b) = conn.bind {
        sock.bind(&SocketAddr::new(b.ip(), 0).into())
            .map_err(|source| CheckError::Bind { addr: b, source })?;
    }
    let target = SocketAddr::new(conn.target.ip(), 0);
    sock.connect(&target.into()).map_err(CheckError::Connect)?;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    // On a raw socket the id is ours: this process's, like ping(8).
    let id = raw.then(|| (std::process::id() as u16) ^ (sock.as_raw_fd() as u16));
    let req = echo_request(v6, id.unwrap_or(0), seq);
    // SAFETY: the socket owns its descriptor, which nothing else closes or
    // replaces while the AsyncFd holds it.
    let fd = unsafe { AsyncFd::register(sock) }.map_err(|e| CheckError::Socket(e.into()))?;
    let exchange = async {
        loop {
            let mut g = fd.writable().await.map_err(CheckError::Send)?;
            match g.try_io(|s| s.get_ref().send(&req)) {
                Ok(r) => {
                    r.map_err(CheckError::Send)?;
                    break;
                }
                Err(_would_block) => continue,
            }
        }
        let mut buf = [0u8; 1500];
        loop {
            let mut g = fd.readable().await.map_err(CheckError::Read)?;
            let n = match g.try_io(|s| (&mut s.get_ref()).read(&mut buf)) {
                Ok(r) => r.map_err(CheckError::Read)?,
                Err(_would_block) => continue,
            };
            let pkt = &buf[..n];
            // A raw IPv4 socket hands over the IP header too.
            let pkt = if raw && !v6 {
                let ihl = usize::from(pkt.first().map_or(0, |b| b & 0x0f)) * 4;
                pkt.get(ihl..).unwrap_or(&[])
            } else {
                pkt
            };
            if is_reply(pkt, v6, id, seq) {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout(conn.connect_timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(CheckError::ConnectTimeout(conn.connect_timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_a_valid_checksum() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(p[0], 8);
        assert_eq!(checksum(&p), 0);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn replies_are_matched_by_type_id_and_sequence() {
        let mut r = echo_request(false, 9, 3);
        r[0] = ECHO_REPLY_V4;
        assert!(is_reply(&r, false, Some(9), 3));
        assert!(is_reply(&r, false, None, 3));
        assert!(!is_reply(&r, false, Some(8), 3));
        assert!(!is_reply(&r, false, Some(9), 4));
        assert!(!is_reply(&r, true, Some(9), 3));
        assert!(!is_reply(&r[..7], false, None, 3));
    }
}
