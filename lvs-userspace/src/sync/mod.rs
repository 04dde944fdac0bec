//! Connection sync between directors, so a takeover keeps established
//! connections (and persistence) instead of resetting them.
//!
//! The data path reports new connections, state changes and new templates
//! in a ring buffer (`sync_events`); the sender turns ids into addresses
//! and multicasts them (UDP 224.0.0.81:8848, IPVS's sync group) out of the
//! `lvs_sync_daemon_interface`; every director also listens and hands what
//! it hears to its reconciler, which writes it into its own `conns` and
//! `persist` maps. Unlike IPVS there is no master/backup role to switch: a
//! director only speaks about connections it forwards, so whichever is
//! MASTER is the one talking, and nothing has to change on failover (the
//! role switch is where the seed's sync daemons used to wedge).

pub mod wire;

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddrV4},
    sync::Arc,
};

use aya::maps::{MapData, RingBuf};
use lvs_common::{tcp, SyncEvent, SYNC_CONN, SYNC_TEMPLATE};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use thiserror::Error;
use tokio::{
    io::unix::AsyncFd,
    net::UdpSocket,
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracing::{debug, warn};

use crate::datapath::{desired::addr_of, read::IdMap};
pub use wire::Entry;

/// IPVS's sync multicast group and port.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
pub const PORT: u16 = 8848;

#[derive(Debug, Error)]
pub enum SyncError {
    #[error("sync socket on {ifname}: {source}")]
    Socket {
        ifname: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where and as what to sync (`lvs_sync_daemon_interface`, `syncid` =
/// the VRRP instance's virtual_router_id, as keepalived does).
#[derive(Clone, Debug)]
pub struct SyncSetup {
    pub ifname: String,
    pub ifindex: u32,
    pub syncid: u8,
}

fn socket_err(setup: &SyncSetup) -> impl Fn(std::io::Error) -> SyncError + '_ {
    move |source| SyncError::Socket {
        ifname: setup.ifname.clone(),
        source,
    }
}

/// Turns a data-path event into a wire entry, by address.
pub fn entry_of(ev: &SyncEvent, ids: &IdMap) -> Option<Entry> {
    let svc = ids.services.get(&ev.service)?;
    let (rs, rsport) = *ids.backends.get(&ev.backend)?;
    let (client, cport, kind) = match ev.kind {
        SYNC_CONN => (
            addr_of(ev.key.src_be),
            u16::from_be(ev.key.sport_be),
            wire::KIND_CONN,
        ),
        SYNC_TEMPLATE => (addr_of(ev.client_be), 0, wire::KIND_TEMPLATE),
        _ => return None,
    };
    Some(Entry {
        kind,
        proto: svc.proto,
        state: ev.state as u8,
        client,
        cport,
        vip: addr_of(svc.addr_be),
        vport: u16::from_be(svc.port_be),
        rs,
        rsport,
    })
}

/// Sends what the data path reports, plus what the reconciler asks to
/// resend (long-lived connections, periodically), until `resend` closes.
pub fn spawn_sender(
    setup: SyncSetup,
    ring: RingBuf<MapData>,
    ids: watch::Receiver<Arc<IdMap>>,
    mut resend: mpsc::Receiver<Vec<Entry>>,
) -> Result<JoinHandle<()>, SyncError> {
    let sock =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(socket_err(&setup))?;
    sock.bind_device(Some(setup.ifname.as_bytes()))
        .map_err(socket_err(&setup))?;
    // Bound to the device, multicast goes out of it without a route.
    sock.set_multicast_ttl_v4(1).map_err(socket_err(&setup))?;
    sock.set_multicast_loop_v4(false)
        .map_err(socket_err(&setup))?;
    sock.set_nonblocking(true).map_err(socket_err(&setup))?;
    let udp = UdpSocket::from_std(sock.into()).map_err(socket_err(&setup))?;
    // SAFETY: the ring buffer owns its fd for as long as the AsyncFd owns
    // the ring; nothing else closes or replaces it meanwhile.
    let mut ring = unsafe { AsyncFd::register(ring) }
        .map_err(|e| socket_err(&setup)(std::io::Error::other(e.to_string())))?;
    let dest = SocketAddrV4::new(GROUP, PORT);
    Ok(tokio::spawn(async move {
        loop {
            let entries: Vec<Entry> = tokio::select! {
                ready = ring.readable_mut() => {
                    let Ok(mut guard) = ready else { break };
                    // Clear first, then drain: an event written while we
                    // drain raises readiness again instead of being missed.
                    guard.clear_ready();
                    let ids = ids.borrow().clone();
                    let mut out = Vec::new();
                    let ring = guard.get_inner_mut();
                    while let Some(item) = ring.next() {
                        if item.len() >= std::mem::size_of::<SyncEvent>() {
                            // SAFETY: the program writes whole SyncEvents; the
                            // length is checked and the read is unaligned-safe.
                            let ev: SyncEvent = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
                            if let Some(e) = entry_of(&ev, &ids) {
                                out.push(e);
                            }
                        }
                    }
                    out
                }
                more = resend.recv() => match more {
                    Some(v) => v,
                    None => break,
                },
            };
            for gram in wire::encode(setup.syncid, &entries) {
                if let Err(e) = udp.send_to(&gram, dest).await {
                    warn!("connection sync: sending on {}: {e}", setup.ifname);
                }
            }
        }
    }))
}

/// Listens for the other directors and passes what they send on.
pub fn spawn_receiver(
    setup: SyncSetup,
    to_reconciler: mpsc::Sender<Vec<Entry>>,
) -> Result<JoinHandle<()>, SyncError> {
    let sock =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(socket_err(&setup))?;
    sock.set_reuse_address(true).map_err(socket_err(&setup))?;
    sock.bind_device(Some(setup.ifname.as_bytes()))
        .map_err(socket_err(&setup))?;
    sock.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT).into())
        .map_err(socket_err(&setup))?;
    sock.join_multicast_v4_n(&GROUP, &InterfaceIndexOrAddress::Index(setup.ifindex))
        .map_err(socket_err(&setup))?;
    sock.set_nonblocking(true).map_err(socket_err(&setup))?;
    let udp = UdpSocket::from_std(sock.into()).map_err(socket_err(&setup))?;
    Ok(tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
        loop {
            let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                break;
            };
            match wire::decode(&buf[..n]) {
                Ok((id, entries)) if id == setup.syncid => {
                    if to_reconciler.send(entries).await.is_err() {
                        break;
                    }
                }
                Ok((id, _)) => {
                    debug!(
                        "connection sync: ignoring syncid {id} from {from} (ours is {})",
                        setup.syncid
                    );
                }
                Err(e) => {
                    let count = rejected.entry(e.to_string()).or_default();
                    *count += 1;
                    if *count == 1 {
                        warn!("connection sync: rejected a datagram from {from}: {e}");
                    }
                }
            }
        }
    }))
}

/// Whether a synced connection is worth re-sending periodically: the
/// long-lived ones, which would otherwise time out on the other director.
pub fn worth_resending(state: u32) -> bool {
    state == tcp::ESTABLISHED || state == tcp::STATE_UDP
}
