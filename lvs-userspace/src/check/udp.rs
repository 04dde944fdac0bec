//! UDP_CHECK and the datagram side of DNS_CHECK (keepalived check_udp.c,
//! layer4.c `udp_bind_connect` / `udp_socket_state`): a connected UDP
//! socket with `IP_RECVERR`, one datagram sent, then within
//! `connect_timeout`:
//! - an ICMP error (port unreachable…) is a failure;
//! - a reply is a success, if `require_reply` data is set it must match
//!   (and its length lie in `min_reply_length..=max_reply_length`);
//! - silence is a success unless `require_reply` is set.

use tokio::net::UdpSocket;

use super::{
    error::CheckError,
    spec::{Conn, UdpSpec},
};

/// A connected UDP socket as the checker's connection options say.
pub async fn connect(conn: &Conn) -> Result<UdpSocket, CheckError> {
    let domain = if conn.target.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
        .map_err(CheckError::Socket)?;
    sock.set_nonblocking(true).map_err(CheckError::Socket)?;
    // ICMP errors come back as errors on recv (keepalived sets IP_RECVERR).
    set_recverr(&sock, conn.target.is_ipv4()).map_err(CheckError::Socket)?;
    if let Some(mark) = conn.fwmark {
        sock.set_mark(mark).map_err(CheckError::Socket)?;
    }
    if let Some(dev) = &conn.bind_if {
        sock.bind_device(Some(dev.as_bytes()))
            .map_err(CheckError::Socket)?;
    }
    if let Some(b) = conn.bind {
        sock.bind(&b.into())
            .map_err(|source| CheckError::Bind { addr: b, source })?;
    }
    let sock = UdpSocket::from_std(sock.into()).map_err(CheckError::Socket)?;
    sock.connect(conn.target)
        .await
        .map_err(CheckError::Connect)?;
    Ok(sock)
}

fn set_recverr(sock: &socket2::Socket, v4: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    let (level, name) = if v4 {
        (libc::SOL_IP, libc::IP_RECVERR)
    } else {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    };
    // SAFETY: setsockopt on a socket we own, with a pointer to a c_int that
    // lives across the call and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// keepalived's `check_udp_reply`: length bounds, then the first
/// `min(len, pattern)` octets compared outside the wildcard nibbles.
pub fn reply_matches(spec: &UdpSpec, reply: &[u8]) -> bool {
    if reply.len() < spec.min_reply_len || reply.len() > spec.max_reply_len {
        return false;
    }
    let Some(p) = &spec.reply else { return true };
    reply
        .iter()
        .zip(p.bytes.iter().zip(&p.mask))
        .all(|(r, (b, m))| (r ^ b) & !m == 0)
}

/// One UDP_CHECK attempt.
pub async fn check(conn: &Conn, spec: &UdpSpec) -> Result<(), CheckError> {
    let sock = connect(conn).await?;
    sock.send(&spec.payload).await.map_err(CheckError::Send)?;
    let mut buf = vec![0u8; spec.max_reply_len + 1];
    match tokio::time::timeout(conn.connect_timeout, sock.recv(&mut buf)).await {
        Err(_) if spec.require_reply => Err(CheckError::ReadTimeout(conn.connect_timeout)),
        Err(_) => Ok(()),
        Ok(Err(e)) => Err(CheckError::Read(e)),
        Ok(Ok(n)) if spec.require_reply && !reply_matches(spec, &buf[..n]) => {
            Err(CheckError::ReplyMismatch)
        }
        Ok(Ok(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvs_config::HexPattern;

    fn spec(reply: Option<&str>, min: usize, max: usize) -> UdpSpec {
        UdpSpec {
            payload: vec![0; 32],
            require_reply: true,
            reply: reply.and_then(|r| HexPattern::parse(r, true)),
            min_reply_len: min,
            max_reply_len: max,
        }
    }

    #[test]
    fn reply_data_with_wildcards() {
        let s = spec(Some("de ax 0x"), 0, 255);
        assert!(reply_matches(&s, &[0xde, 0xa7, 0x05, 0xff]));
        assert!(!reply_matches(&s, &[0xdf, 0xa7, 0x05]));
        assert!(!reply_matches(&s, &[0xde, 0xa7, 0x15]));
        // Only the shorter of reply and pattern is compared (keepalived).
        assert!(reply_matches(&s, &[0xde]));
    }

    #[test]
    fn reply_length_bounds() {
        let s = spec(None, 2, 4);
        assert!(!reply_matches(&s, &[1]));
        assert!(reply_matches(&s, &[1, 2]));
        assert!(!reply_matches(&s, &[1, 2, 3, 4, 5]));
    }
}
