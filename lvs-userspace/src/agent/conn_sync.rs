//! The agent's side of connection sync: starts the sender and receiver,
//! writes what peers send into the maps, answers their bulk requests with
//! this director's tables, and runs its own warm start — a bulk request at
//! start-up while VRRP preemption is held, released when the answers are
//! in (or the hold's bound passes).

use std::{
    path::Path,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use lvs_config::Config;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{reconcile::Reconciler, status};
use crate::{
    netlink,
    sync::{
        self,
        bulk::{BulkAction, BulkSync},
        Incoming, Outgoing, SyncCounters, SyncSetup,
    },
    vrrp::PreemptGate,
};

/// Where to sync: keepalived 2.x's global `lvs_sync_daemon IF [INSTANCE]
/// [id N] [port N] [ttl N] [group ADDR]` (syncid: `id`, else INSTANCE's
/// virtual_router_id, else 0), or the older `lvs_sync_daemon_interface` in
/// a vrrp_instance (syncid: its virtual_router_id).
pub fn setup(cfg: &Config, key_file: Option<&Path>) -> Result<Option<SyncSetup>> {
    let (ifname, syncid, port, ttl, group) = if let Some(d) = &cfg.global.lvs_sync_daemon {
        let vrid = d.instance.as_ref().and_then(|name| {
            cfg.vrrp_instances
                .iter()
                .find(|v| &v.name == name)
                .map(|v| v.virtual_router_id)
        });
        (
            d.interface.clone(),
            d.syncid.or(vrid).unwrap_or(0),
            d.port,
            d.ttl,
            d.group,
        )
    } else if let Some(v) = cfg
        .vrrp_instances
        .iter()
        .find(|v| v.lvs_sync_daemon_interface.is_some())
    {
        (
            v.lvs_sync_daemon_interface.clone().unwrap_or_default(),
            v.virtual_router_id,
            None,
            None,
            None,
        )
    } else {
        return Ok(None);
    };
    let link = netlink::link_by_name(&ifname)
        .with_context(|| format!("lvs_sync_daemon interface {ifname}"))?;
    let mut s = SyncSetup::new(ifname, link.index, syncid);
    s.port = port.unwrap_or(s.port);
    s.ttl = ttl.unwrap_or(s.ttl);
    s.group = group.unwrap_or(s.group);
    if let Some(path) = key_file {
        let key =
            std::fs::read(path).with_context(|| format!("--sync-key-file {}", path.display()))?;
        let key: Vec<u8> = key.trim_ascii().to_vec();
        anyhow::ensure!(
            !key.is_empty(),
            "--sync-key-file {} is empty",
            path.display()
        );
        s.key = Some(Arc::new(key));
    }
    Ok(Some(s))
}

/// The running sync: channels to the sender and from the receiver, the
/// counters, and the warm start while it lasts.
pub struct ConnSync {
    setup: SyncSetup,
    outgoing: mpsc::Sender<Outgoing>,
    incoming: mpsc::Receiver<Incoming>,
    counters: Arc<SyncCounters>,
    bulk: Option<BulkSync>,
    gate: PreemptGate,
}

impl ConnSync {
    /// Turns the data path's sync events on and starts sender and receiver.
    pub fn start(setup: SyncSetup, rec: &mut Reconciler, gate: PreemptGate) -> Result<Self> {
        rec.datapath_mut().set_sync(true)?;
        let ring = rec
            .datapath_mut()
            .take_sync_events()
            .context("sync ring already taken")?;
        let (ids_tx, ids_rx) = tokio::sync::watch::channel(Default::default());
        rec.publish_ids(ids_tx);
        let counters = Arc::new(SyncCounters::default());
        let (out_tx, out_rx) = mpsc::channel(64);
        sync::spawn_sender(setup.clone(), ring, ids_rx, out_rx, counters.clone())?;
        let (in_tx, in_rx) = mpsc::channel(4096);
        sync::spawn_receiver(setup.clone(), in_tx, counters.clone())?;
        info!(
            "Starting connection sync on {} (syncid {}, {}:{}{})",
            setup.ifname,
            setup.syncid,
            setup.group,
            setup.port,
            if setup.key.is_some() {
                ", HMAC-SHA256"
            } else {
                ""
            }
        );
        Ok(ConnSync {
            setup,
            outgoing: out_tx,
            incoming: in_rx,
            counters,
            bulk: None,
            gate,
        })
    }

    /// Warm start: ask the peers for their tables, holding preemption
    /// until they are in or `hold` has passed.
    pub fn warm_start(&mut self, hold: Duration) {
        let now = Instant::now();
        self.gate.hold_until(now + hold);
        let id = request_id();
        let (bulk, action) = BulkSync::start(now, id);
        self.bulk = Some(bulk);
        if let Ok(mut b) = self.counters.bulk.lock() {
            b.state = "requesting".into();
        }
        info!(
            "connection sync: asking peers for their connections (bulk request {id:08x}); preemption held for at most {} s",
            hold.as_secs_f32()
        );
        self.act(action);
    }

    /// The next message from the receiver (pending forever once it ended).
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.incoming.recv().await
    }

    /// Applies one message from a peer.
    pub fn handle(&mut self, msg: Incoming, rec: &mut Reconciler) {
        let now = Instant::now();
        match msg {
            Incoming::Updates(entries) => {
                rec.apply_synced(&entries);
            }
            Incoming::BulkEntries {
                from,
                request,
                seq,
                entries,
            } => {
                rec.apply_synced(&entries);
                if let Some(b) = self.bulk.as_mut() {
                    b.on_entries(now, from, request, seq, entries.len());
                }
            }
            Incoming::BulkDone {
                from,
                request,
                datagrams,
                total,
            } => {
                if let Some(b) = self.bulk.as_mut() {
                    b.on_done(now, from, request, datagrams, total);
                }
            }
            Incoming::BulkRequest { from, request } => {
                if self.bulk.as_ref().is_some_and(|b| b.request() == request) {
                    return; // our own, looped back by another path
                }
                match rec.bulk_entries() {
                    Ok(entries) => {
                        info!(
                            "connection sync: {from} asks for our tables (bulk request {request:08x}): sending {} entries",
                            entries.len()
                        );
                        let _ = self
                            .outgoing
                            .try_send(Outgoing::BulkAnswer { request, entries });
                    }
                    Err(e) => warn!("connection sync: listing connections for {from}: {e:#}"),
                }
            }
        }
    }

    /// Drives the warm start (call every 100 ms or so).
    pub fn on_timer(&mut self) {
        let now = Instant::now();
        let Some(action) = self.bulk.as_mut().and_then(|b| b.on_timer(now)) else {
            if self.gate.deadline().is_some() && !self.gate.is_held(now) {
                // The bound passed first: say so once, stop asking.
                if self.bulk.as_ref().is_some_and(|b| !b.finished()) {
                    warn!("connection sync: bulk sync not finished within the preemption hold; VRRP may preempt now");
                    self.bulk = None;
                    if let Ok(mut b) = self.counters.bulk.lock() {
                        b.state = "timed out".into();
                    }
                }
                self.gate.release();
            }
            return;
        };
        self.act(action);
    }

    fn act(&mut self, action: BulkAction) {
        match action {
            BulkAction::Request(id) => {
                let _ = self.outgoing.try_send(Outgoing::BulkRequest(id));
            }
            BulkAction::Finished(r) => {
                if r.complete {
                    info!(
                        "connection sync: bulk sync done: {} entries from {} peer(s) in {} ms; preemption allowed",
                        r.entries,
                        r.peers,
                        r.duration.as_millis()
                    );
                } else if r.peers == 0 && r.entries == 0 {
                    info!("connection sync: no peer answered the bulk request; starting with empty tables");
                } else {
                    warn!(
                        "connection sync: bulk sync incomplete after {} requests ({} entries); preemption allowed",
                        r.attempts, r.entries
                    );
                }
                if let Ok(mut b) = self.counters.bulk.lock() {
                    b.state = if r.complete {
                        "done".into()
                    } else if r.entries == 0 {
                        "cold".into()
                    } else {
                        "incomplete".into()
                    };
                    b.entries = r.entries;
                    b.peers = r.peers as u64;
                    b.duration_ms = r.duration.as_millis() as u64;
                    b.finished_unix_s = status::now_unix_s();
                }
                self.gate.release();
            }
        }
    }

    /// Re-sends long-lived connections so peers do not time them out.
    pub fn resend(&self, rec: &Reconciler) {
        match rec.resend_entries() {
            Ok(entries) if !entries.is_empty() => {
                let _ = self.outgoing.try_send(Outgoing::Updates(entries));
            }
            Ok(_) => {}
            Err(e) => warn!("connection sync: listing connections: {e:#}"),
        }
    }

    /// For the status file (`lvsadm --daemon`) and /metrics.
    pub fn status(&self) -> status::SyncStatus {
        let c = &self.counters;
        status::SyncStatus {
            interface: self.setup.ifname.clone(),
            syncid: self.setup.syncid,
            group: format!("{}:{}", self.setup.group, self.setup.port),
            sent_entries: c.sent_entries.load(Ordering::Relaxed),
            received_entries: c.received_entries.load(Ordering::Relaxed),
            rejected_datagrams: c.rejected_datagrams.load(Ordering::Relaxed),
            bulk: c.bulk.lock().map(|b| b.clone()).unwrap_or_default(),
        }
    }
}

/// The longest preempt_delay of the config's instances.
pub fn hold_bound(cfg: &Config, default: Duration) -> Duration {
    cfg.vrrp_instances
        .iter()
        .map(|v| v.preempt_delay)
        .fold(default, Duration::max)
}

fn request_id() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ d.as_secs() as u32)
        .unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
}
