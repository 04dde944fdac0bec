//! One rtnetlink request/response exchange on a fresh socket.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::NetlinkError;

/// Bound on any single wait for the kernel (it answers in microseconds; this
/// only keeps a wedged socket from hanging a caller forever).
const RECV_TIMEOUT_S: libc::time_t = 5;

static SEQ: AtomicU32 = AtomicU32::new(1);

/// What the caller wants back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A single answer message (e.g. RTM_GETLINK by index or name).
    Get,
    /// A multipart dump ending in NLMSG_DONE.
    Dump,
    /// A change with NLM_F_ACK: only an ACK (or an error) comes back.
    Ack,
}

/// Sends `msg` (with `extra_flags`, e.g. NLM_F_CREATE) and collects the
/// answers. Kernel errors come back as [`NetlinkError::Kernel`].
pub(super) fn request(
    op: &'static str,
    msg: RouteNetlinkMessage,
    kind: Kind,
    extra_flags: u16,
) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
    // A new socket per request: it lives in the calling thread's namespace.
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    set_recv_timeout(&sock)?;
    sock.set_ext_ack(true).ok();

    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut hdr = NetlinkHeader::default();
    hdr.flags = NLM_F_REQUEST
        | extra_flags
        | match kind {
            Kind::Get => 0,
            Kind::Dump => NLM_F_DUMP,
            Kind::Ack => NLM_F_ACK,
        };
    hdr.sequence_number = seq;
    let mut nl = NetlinkMessage::new(hdr, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    sock.send_to(&buf, &SocketAddr::new(0, 0), 0)?;

    let mut out = Vec::new();
    // Bounded: a dump of even a huge table is a few thousand datagrams.
    for _ in 0..100_000 {
        let (data, _) = sock.recv_from_full()?;
        if data.is_empty() {
            return Err(NetlinkError::Protocol("empty datagram"));
        }
        let mut off = 0;
        while off + 16 <= data.len() {
            let len = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap()) as usize;
            if len < 16 || off + len > data.len() {
                return Err(NetlinkError::Decode(format!("bad message length {len}")));
            }
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..off + len])
                .map_err(|e| NetlinkError::Decode(e.to_string()))?;
            off += (len + 3) & !3;
            if m.header.sequence_number != seq {
                continue; // not ours (cannot happen on a private socket)
            }
            match m.payload {
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => {
                    return match e.code {
                        None => Ok(out), // the ACK
                        Some(code) => Err(NetlinkError::Kernel {
                            op,
                            source: std::io::Error::from_raw_os_error(-code.get()),
                        }),
                    };
                }
                NetlinkPayload::InnerMessage(inner) => {
                    out.push(inner);
                    if kind == Kind::Get {
                        return Ok(out);
                    }
                }
                _ => {}
            }
        }
    }
    Err(NetlinkError::Protocol("dump did not end"))
}

fn set_recv_timeout(sock: &Socket) -> Result<(), NetlinkError> {
    let tv = libc::timeval {
        tv_sec: RECV_TIMEOUT_S,
        tv_usec: 0,
    };
    // SAFETY: the fd is a valid open socket owned by `sock`; we pass a
    // pointer to a properly initialised timeval and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}
