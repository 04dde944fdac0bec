//! Warm start: a director that starts asks the others for their tables
//! ("bulk sync") and holds VRRP preemption until they have arrived, so a
//! returning master takes over with every connection its peer forwards.
//!
//! A pure state machine, driven by the agent: it says when to (re)send the
//! request and when the transfer is complete. Every director that hears
//! the request answers with all of its live connections and templates in
//! numbered datagrams and a closing `BulkDone` naming their count, so the
//! requester can tell a complete answer from a lossy one (and ask again).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    time::{Duration, Instant},
};

/// Without an answer, ask again after this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Requests before concluding nobody is there (or a lossy answer is final).
pub const MAX_ATTEMPTS: u32 = 3;
/// After the first complete answer, how long other peers may still start
/// theirs (every peer answers; duplicates are harmless).
pub const SETTLE: Duration = Duration::from_millis(300);
/// A peer that stops sending mid-answer for this long is counted as lossy.
pub const STALL: Duration = Duration::from_secs(3);

#[derive(Clone, Debug, Default)]
struct Peer {
    seen: BTreeSet<u32>,
    entries: u64,
    /// (datagrams, entries) announced by its BulkDone.
    done: Option<(u32, u32)>,
    last: Option<Instant>,
}

impl Peer {
    fn complete(&self) -> bool {
        self.done
            .is_some_and(|(datagrams, _)| self.seen.len() as u32 == datagrams)
    }
}

/// How a bulk sync ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkReport {
    /// Peers whose answer arrived whole.
    pub peers: usize,
    /// Entries received in the answers.
    pub entries: u64,
    pub duration: Duration,
    /// False: nobody answered, or answers stayed lossy after MAX_ATTEMPTS.
    pub complete: bool,
    pub attempts: u32,
}

/// What the agent should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BulkAction {
    /// Multicast a BulkRequest with this id.
    Request(u32),
    /// Done: release the preemption gate.
    Finished(BulkReport),
}

#[derive(Debug)]
pub struct BulkSync {
    request: u32,
    started: Instant,
    sent: Instant,
    attempts: u32,
    peers: BTreeMap<Ipv4Addr, Peer>,
    first_complete: Option<Instant>,
    finished: bool,
    next_id: u32,
}

impl BulkSync {
    /// Starts a bulk sync; the first action is the request to send.
    pub fn start(now: Instant, id: u32) -> (Self, BulkAction) {
        let b = BulkSync {
            request: id,
            started: now,
            sent: now,
            attempts: 1,
            peers: BTreeMap::new(),
            first_complete: None,
            finished: false,
            next_id: id.wrapping_add(1),
        };
        (b, BulkAction::Request(id))
    }

    pub fn request(&self) -> u32 {
        self.request
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    /// A BulkEntries datagram of `n` entries arrived.
    pub fn on_entries(&mut self, now: Instant, from: Ipv4Addr, request: u32, seq: u32, n: usize) {
        if self.finished || request != self.request {
            return;
        }
        let p = self.peers.entry(from).or_default();
        if p.seen.insert(seq) {
            p.entries += n as u64;
        }
        p.last = Some(now);
    }

    /// A BulkDone arrived.
    pub fn on_done(
        &mut self,
        now: Instant,
        from: Ipv4Addr,
        request: u32,
        datagrams: u32,
        total: u32,
    ) {
        if self.finished || request != self.request {
            return;
        }
        let p = self.peers.entry(from).or_default();
        p.done = Some((datagrams, total));
        p.last = Some(now);
        if p.complete() && self.first_complete.is_none() {
            self.first_complete = Some(now);
        }
    }

    fn report(&self, now: Instant, complete: bool) -> BulkReport {
        BulkReport {
            peers: self.peers.values().filter(|p| p.complete()).count(),
            entries: self.peers.values().map(|p| p.entries).sum(),
            duration: now.duration_since(self.started),
            complete,
            attempts: self.attempts,
        }
    }

    fn finish(&mut self, now: Instant, complete: bool) -> Option<BulkAction> {
        self.finished = true;
        Some(BulkAction::Finished(self.report(now, complete)))
    }

    fn retry(&mut self, now: Instant, fresh: bool) -> Option<BulkAction> {
        if self.attempts >= MAX_ATTEMPTS {
            let any = self.peers.values().any(|p| p.complete());
            return self.finish(now, any);
        }
        self.attempts += 1;
        self.sent = now;
        if fresh {
            // Answers to the old id are ignored from here on.
            self.request = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            self.peers.clear();
            self.first_complete = None;
        }
        Some(BulkAction::Request(self.request))
    }

    /// Called periodically (every 100 ms is plenty).
    pub fn on_timer(&mut self, now: Instant) -> Option<BulkAction> {
        if self.finished {
            return None;
        }
        if self.peers.is_empty() {
            if now.duration_since(self.sent) >= RETRY_AFTER {
                if self.attempts >= MAX_ATTEMPTS {
                    return self.finish(now, false); // nobody there: start cold
                }
                return self.retry(now, false);
            }
            return None;
        }
        let stalled =
            |p: &Peer| !p.complete() && p.last.is_some_and(|t| now.duration_since(t) >= STALL);
        if self
            .peers
            .values()
            .any(|p| p.done.is_some() && !p.complete())
            || self.peers.values().any(stalled)
        {
            // Something was lost: ask everyone again (entries are idempotent).
            return self.retry(now, true);
        }
        match self.first_complete {
            Some(t) if now.duration_since(t) >= SETTLE => {
                if self.peers.values().all(Peer::complete) {
                    self.finish(now, true)
                } else {
                    None // another peer is still answering
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The report the timer at `at` finishes with (panics if it does not).
    fn finished_at(b: &mut BulkSync, at: Instant) -> BulkReport {
        match b.on_timer(at) {
            Some(BulkAction::Finished(r)) => r,
            other => panic!("not finished at the timer: {other:?}"),
        }
    }

    #[test]
    fn a_whole_answer_finishes_after_the_settle_time() {
        let t0 = Instant::now();
        let (mut b, first) = BulkSync::start(t0, 7);
        assert_eq!(first, BulkAction::Request(7));
        for seq in 0..3 {
            b.on_entries(t0 + ms(10), A, 7, seq, 58);
        }
        b.on_done(t0 + ms(11), A, 7, 3, 174);
        assert_eq!(b.on_timer(t0 + ms(100)), None, "others may still answer");
        let r = finished_at(&mut b, t0 + ms(400));
        assert!(r.complete);
        assert_eq!((r.peers, r.entries, r.attempts), (1, 174, 1));
        assert!(b.finished());
        assert_eq!(b.on_timer(t0 + ms(500)), None);
    }

    #[test]
    fn a_lossy_answer_is_asked_again_with_a_new_id() {
        let t0 = Instant::now();
        let (mut b, _) = BulkSync::start(t0, 7);
        b.on_entries(t0, A, 7, 0, 58);
        b.on_done(t0, A, 7, 2, 100); // datagram 1 lost
        assert_eq!(b.on_timer(t0 + ms(100)), Some(BulkAction::Request(8)));
        b.on_entries(t0 + ms(200), A, 7, 1, 42); // late, old id: ignored
        b.on_entries(t0 + ms(200), A, 8, 0, 58);
        b.on_entries(t0 + ms(200), A, 8, 1, 42);
        b.on_done(t0 + ms(200), A, 8, 2, 100);
        let r = finished_at(&mut b, t0 + ms(600));
        assert!(r.complete);
        assert_eq!((r.entries, r.attempts), (100, 2));
    }

    #[test]
    fn nobody_answering_ends_cold_after_the_retries() {
        let t0 = Instant::now();
        let (mut b, _) = BulkSync::start(t0, 1);
        assert_eq!(b.on_timer(t0 + ms(500)), None);
        assert_eq!(b.on_timer(t0 + ms(1000)), Some(BulkAction::Request(1)));
        assert_eq!(b.on_timer(t0 + ms(2000)), Some(BulkAction::Request(1)));
        let r = finished_at(&mut b, t0 + ms(3000));
        assert!(!r.complete);
        assert_eq!(r.peers, 0);
    }

    #[test]
    fn waits_for_every_peer_that_started_answering() {
        let t0 = Instant::now();
        let (mut b, _) = BulkSync::start(t0, 3);
        b.on_entries(t0, A, 3, 0, 10);
        b.on_done(t0, A, 3, 1, 10);
        b.on_entries(t0 + ms(100), B, 3, 0, 58);
        assert_eq!(b.on_timer(t0 + ms(400)), None, "B is still answering");
        b.on_entries(t0 + ms(450), B, 3, 1, 5);
        b.on_done(t0 + ms(450), B, 3, 2, 63);
        let r = finished_at(&mut b, t0 + ms(500));
        assert!(r.complete);
        assert_eq!((r.peers, r.entries), (2, 73));
    }
}
