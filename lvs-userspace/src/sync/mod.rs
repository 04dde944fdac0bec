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

pub mod bulk;
mod recv;
pub mod wire;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddrV4},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use lvs_common::{
    tcp, Ipv6Words, SyncEvent, SyncEvent6, SYNC_CONN, SYNC_CONN6, SYNC_TEMPLATE, SYNC_TEMPLATE6,
};
use serde::{Deserialize, Serialize};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use thiserror::Error;
use tokio::{
    io::unix::AsyncFd,
    net::UdpSocket,
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracing::{info, warn};

use crate::datapath::{
    desired::{addr6_of, addr_of},
    read::IdMap,
};
pub use wire::{Entry, Message, MsgType};

/// IPVS's sync multicast group and port.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
pub const PORT: u16 = 8848;
/// Datagrams of a bulk answer sent back to back before a 1 ms pause: about
/// 0.9 M entries a second, which neither floods the sync link nor overruns
/// the receiver's socket buffer while it writes its maps.
const BULK_BURST: usize = 16;

#[derive(Debug, Error)]
pub enum SyncError {
    #[error("sync socket on {ifname}: {source}")]
    Socket {
        ifname: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where and as what to sync: keepalived's `lvs_sync_daemon_interface` (in
/// a vrrp_instance; syncid = its virtual_router_id) or the global
/// `lvs_sync_daemon IF [INSTANCE] [id N] [port N] [ttl N] [group ADDR]`.
#[derive(Clone, Debug)]
pub struct SyncSetup {
    pub ifname: String,
    pub ifindex: u32,
    pub syncid: u8,
    pub group: Ipv4Addr,
    pub port: u16,
    pub ttl: u8,
    /// Shared key: every datagram carries an HMAC-SHA256 under it, and only
    /// such datagrams are accepted.
    pub key: Option<Arc<Vec<u8>>>,
}

impl SyncSetup {
    pub fn new(ifname: String, ifindex: u32, syncid: u8) -> Self {
        SyncSetup {
            ifname,
            ifindex,
            syncid,
            group: GROUP,
            port: PORT,
            ttl: 1,
            key: None,
        }
    }
    fn key(&self) -> Option<&[u8]> {
        self.key.as_deref().map(Vec::as_slice)
    }
}

/// Counters and the last bulk sync, for the status file and /metrics.
#[derive(Debug, Default)]
pub struct SyncCounters {
    pub sent_entries: AtomicU64,
    pub received_entries: AtomicU64,
    pub rejected_datagrams: AtomicU64,
    pub bulk: Mutex<BulkStatus>,
}

/// The state of this director's own bulk sync (warm start).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BulkStatus {
    /// "requesting", "done", "cold" (nobody answered) or "" (sync off).
    pub state: String,
    pub entries: u64,
    pub peers: u64,
    pub duration_ms: u64,
    pub finished_unix_s: u64,
    /// Bulk answers this director sent to others.
    pub answers_sent: u64,
}

/// What the sender is asked to send besides the data path's events.
#[derive(Debug)]
pub enum Outgoing {
    /// Periodic re-send of long-lived connections.
    Updates(Vec<Entry>),
    /// "Send me your tables".
    BulkRequest(u32),
    /// The answer to a request: paced, numbered, closed by BulkDone.
    BulkAnswer { request: u32, entries: Vec<Entry> },
}

/// What the receiver passes on to the agent.
#[derive(Debug)]
pub enum Incoming {
    Updates(Vec<Entry>),
    BulkRequest {
        from: Ipv4Addr,
        request: u32,
    },
    BulkEntries {
        from: Ipv4Addr,
        request: u32,
        seq: u32,
        entries: Vec<Entry>,
    },
    BulkDone {
        from: Ipv4Addr,
        request: u32,
        datagrams: u32,
        total: u32,
    },
}

fn socket_err(setup: &SyncSetup) -> impl Fn(std::io::Error) -> SyncError + '_ {
    move |source| SyncError::Socket {
        ifname: setup.ifname.clone(),
        source,
    }
}

/// What a data-path event says, in either family: the wire entry's
/// fields still by local id.
pub struct Event {
    pub kind: u8,
    pub state: u32,
    pub service: u32,
    pub backend: u32,
    /// The client (a connection) or the masked client (a template).
    pub client: IpAddr,
    pub cport: u16,
}

/// `Event::$name` for one family's `sync_events` record: its two kinds and
/// how it turns an address into an `IpAddr` (the records differ only there).
macro_rules! event_of {
    ($name:ident, $record:ty, $conn:ident, $template:ident, $addr:expr) => {
        pub fn $name(ev: &$record) -> Option<Self> {
            let (client, cport, kind) = match ev.kind {
                $conn => (
                    ($addr)(&ev.key.src_be),
                    u16::from_be(ev.key.sport_be),
                    wire::KIND_CONN,
                ),
                $template => (($addr)(&ev.client_be), 0, wire::KIND_TEMPLATE),
                _ => return None,
            };
            Some(Event {
                kind,
                state: ev.state,
                service: ev.service,
                backend: ev.backend,
                client,
                cport,
            })
        }
    };
}

impl Event {
    event_of!(of, SyncEvent, SYNC_CONN, SYNC_TEMPLATE, |a: &u32| {
        IpAddr::from(addr_of(*a))
    });
    event_of!(
        of6,
        SyncEvent6,
        SYNC_CONN6,
        SYNC_TEMPLATE6,
        |a: &Ipv6Words| { IpAddr::from(addr6_of(a)) }
    );

    /// The wire entry, by address (None: an id this director no longer
    /// has, or a family mix that cannot be).
    pub fn entry(&self, ids: &IdMap) -> Option<Entry> {
        let svc = ids.services.get(&self.service)?;
        let (rs, rsport) = *ids.backends.get(&self.backend)?;
        let vip = svc.vip();
        if vip.is_ipv6() != self.client.is_ipv6() || vip.is_ipv6() != rs.is_ipv6() {
            return None;
        }
        Some(Entry {
            kind: self.kind,
            proto: svc.proto(),
            state: self.state as u8,
            client: self.client,
            cport: self.cport,
            vip,
            vport: u16::from_be(svc.port_be()),
            rs,
            rsport,
        })
    }
}

/// Turns a `sync_events` record (either family's) into a wire entry.
fn entry_of_record(item: &[u8], ids: &IdMap) -> Option<Entry> {
    let kind = u32::from_ne_bytes(item.get(..4)?.try_into().ok()?);
    let ev = if kind == SYNC_CONN6 || kind == SYNC_TEMPLATE6 {
        if item.len() < std::mem::size_of::<SyncEvent6>() {
            return None;
        }
        // SAFETY: the program writes whole SyncEvent6s under these kinds;
        // the length is checked and the read is unaligned-safe.
        Event::of6(&unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<SyncEvent6>()) })
    } else {
        if item.len() < std::mem::size_of::<SyncEvent>() {
            return None;
        }
        // SAFETY: as above, for SyncEvent.
        Event::of(&unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<SyncEvent>()) })
    }?;
    ev.entry(ids)
}

/// Sends what the data path reports, plus what the agent asks for (re-sends
/// of long-lived connections, bulk requests and answers), until `outgoing`
/// closes.
pub fn spawn_sender(
    setup: SyncSetup,
    ring: RingBuf<MapData>,
    ids: watch::Receiver<Arc<IdMap>>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    counters: Arc<SyncCounters>,
) -> Result<JoinHandle<()>, SyncError> {
    let sock =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(socket_err(&setup))?;
    sock.bind_device(Some(setup.ifname.as_bytes()))
        .map_err(socket_err(&setup))?;
    // Bound to the device, multicast goes out of it without a route.
    sock.set_multicast_ttl_v4(setup.ttl as u32)
        .map_err(socket_err(&setup))?;
    sock.set_multicast_loop_v4(false)
        .map_err(socket_err(&setup))?;
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.set_nonblocking(true).map_err(socket_err(&setup))?;
    let udp = Arc::new(UdpSocket::from_std(sock.into()).map_err(socket_err(&setup))?);
    // SAFETY: the ring buffer owns its fd for as long as the AsyncFd owns
    // the ring; nothing else closes or replaces it meanwhile.
    let mut ring = unsafe { AsyncFd::register(ring) }
        .map_err(|e| socket_err(&setup)(std::io::Error::other(e.to_string())))?;
    let dest = SocketAddrV4::new(setup.group, setup.port);
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
                        out.extend(entry_of_record(&item, &ids));
                    }
                    out
                }
                more = outgoing.recv() => match more {
                    Some(Outgoing::Updates(v)) => v,
                    Some(Outgoing::BulkRequest(request)) => {
                        let m = Message { kind: MsgType::BulkRequest, request, ..Message::update(setup.syncid, vec![]) };
                        send(&udp, &setup, dest, &wire::encode_one(&m, setup.key())).await;
                        continue;
                    }
                    Some(Outgoing::BulkAnswer { request, entries }) => {
                        // Its own task: a million entries must not hold up
                        // the updates of new connections.
                        tokio::spawn(send_bulk(udp.clone(), setup.clone(), dest, request, entries, counters.clone()));
                        continue;
                    }
                    None => break,
                },
            };
            counters
                .sent_entries
                .fetch_add(entries.len() as u64, Ordering::Relaxed);
            for gram in wire::encode(setup.syncid, &entries, setup.key()) {
                send(&udp, &setup, dest, &gram).await;
            }
        }
    }))
}

async fn send(udp: &UdpSocket, setup: &SyncSetup, dest: SocketAddrV4, gram: &[u8]) {
    if let Err(e) = udp.send_to(gram, dest).await {
        warn!("connection sync: sending on {}: {e}", setup.ifname);
    }
}

/// Sends a bulk answer: numbered datagrams, paced, then BulkDone.
async fn send_bulk(
    udp: Arc<UdpSocket>,
    setup: SyncSetup,
    dest: SocketAddrV4,
    request: u32,
    entries: Vec<Entry>,
    counters: Arc<SyncCounters>,
) {
    let mut seq = 0u32;
    for chunk in wire::split(&entries) {
        let m = Message {
            kind: MsgType::BulkEntries,
            request,
            seq,
            ..Message::update(setup.syncid, chunk)
        };
        send(&udp, &setup, dest, &wire::encode_one(&m, setup.key())).await;
        seq += 1;
        if (seq as usize).is_multiple_of(BULK_BURST) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let done = Message {
        kind: MsgType::BulkDone,
        request,
        seq,
        total: entries.len() as u32,
        ..Message::update(setup.syncid, vec![])
    };
    // Three times: a lost BulkDone would cost the requester a retry.
    for _ in 0..3 {
        send(&udp, &setup, dest, &wire::encode_one(&done, setup.key())).await;
    }
    counters
        .sent_entries
        .fetch_add(entries.len() as u64, Ordering::Relaxed);
    if let Ok(mut b) = counters.bulk.lock() {
        b.answers_sent += 1;
    }
    info!(
        "connection sync: answered bulk request {request:08x} with {} entries in {seq} datagrams",
        entries.len()
    );
}

/// Listens for the other directors and passes what they send on. Accepts
/// only datagrams that arrived on the sync interface, were sent to the sync
/// group, carry the TTL they were sent with and come from an address on
/// the interface's own subnets (and, with a key, carry its HMAC); every
/// other one is counted and logged once per reason.
pub fn spawn_receiver(
    setup: SyncSetup,
    to_agent: mpsc::Sender<Incoming>,
    counters: Arc<SyncCounters>,
) -> Result<JoinHandle<()>, SyncError> {
    let sock =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(socket_err(&setup))?;
    sock.set_reuse_address(true).map_err(socket_err(&setup))?;
    sock.bind_device(Some(setup.ifname.as_bytes()))
        .map_err(socket_err(&setup))?;
    sock.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, setup.port).into())
        .map_err(socket_err(&setup))?;
    sock.join_multicast_v4_n(&setup.group, &InterfaceIndexOrAddress::Index(setup.ifindex))
        .map_err(socket_err(&setup))?;
    // Room for a bulk answer in flight while the agent writes its maps.
    let _ = sock.set_recv_buffer_size(8 << 20);
    recv::enable_ancillary(&sock).map_err(socket_err(&setup))?;
    sock.set_nonblocking(true).map_err(socket_err(&setup))?;
    let udp = UdpSocket::from_std(sock.into()).map_err(socket_err(&setup))?;
    Ok(tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
        let mut onlink = recv::OnLink::new(setup.ifindex);
        loop {
            let Ok(got) = recv::recv(&udp, &mut buf).await else {
                break;
            };
            let verdict = recv::check(&got, &setup, &mut onlink)
                .and_then(|()| {
                    wire::decode(&buf[..got.len], setup.key()).map_err(|e| e.to_string())
                })
                .and_then(|m| {
                    if m.syncid == setup.syncid {
                        Ok(m)
                    } else {
                        Err(format!("syncid {} (ours is {})", m.syncid, setup.syncid))
                    }
                });
            let m = match verdict {
                Ok(m) => m,
                Err(reason) => {
                    counters.rejected_datagrams.fetch_add(1, Ordering::Relaxed);
                    let count = rejected.entry(reason.clone()).or_default();
                    *count += 1;
                    if *count == 1 {
                        warn!(
                            "connection sync: rejected a datagram from {}: {reason}",
                            got.from
                        );
                    }
                    continue;
                }
            };
            counters
                .received_entries
                .fetch_add(m.entries.len() as u64, Ordering::Relaxed);
            let from = got.from;
            let msg = match m.kind {
                MsgType::Update => Incoming::Updates(m.entries),
                MsgType::BulkRequest => Incoming::BulkRequest {
                    from,
                    request: m.request,
                },
                MsgType::BulkEntries => Incoming::BulkEntries {
                    from,
                    request: m.request,
                    seq: m.seq,
                    entries: m.entries,
                },
                MsgType::BulkDone => Incoming::BulkDone {
                    from,
                    request: m.request,
                    datagrams: m.seq,
                    total: m.total,
                },
            };
            if to_agent.send(msg).await.is_err() {
                break;
            }
        }
    }))
}

/// Whether a synced connection is worth re-sending periodically: the
/// long-lived ones, which would otherwise time out on the other director.
pub fn worth_resending(state: u32) -> bool {
    state == tcp::ESTABLISHED || state == tcp::STATE_UDP
}
