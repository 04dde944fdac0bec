//! The preemption gate: a shared switch that keeps every VRRP instance from
//! taking MASTER by preemption while it is held (e.g. while connection sync
//! is still filling a returning director's tables, so a failback does not
//! reset established connections).
//!
//! Held, an instance still takes over when no master is heard at all (its
//! master-down timer runs out): the gate delays a failback, it never leaves
//! a VIP unowned. The decision itself lives in the pure state machine
//! ([`super::state::Machine::set_preempt_hold`]); this is only the handle.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

/// A cheap, cloneable handle; every clone shares one gate.
#[derive(Clone, Debug)]
pub struct PreemptGate {
    /// `None`: open; `Some(deadline)`: held until `deadline` (or until
    /// [`PreemptGate::release`], whichever comes first).
    tx: Arc<watch::Sender<Option<Instant>>>,
}

impl Default for PreemptGate {
    fn default() -> Self {
        Self::open()
    }
}

impl PreemptGate {
    /// A gate that is not held.
    pub fn open() -> Self {
        let (tx, _) = watch::channel(None);
        PreemptGate { tx: Arc::new(tx) }
    }

    /// Holds preemption until `deadline` at the latest.
    pub fn hold_until(&self, deadline: Instant) {
        self.tx.send_replace(Some(deadline));
    }

    /// Lets preemption proceed (at the next lower-priority advert).
    pub fn release(&self) {
        self.tx.send_replace(None);
    }

    /// Whether preemption is held at `now`.
    pub fn is_held(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now < d)
    }

    /// The hold's deadline, if held (it may already have passed).
    pub fn deadline(&self) -> Option<Instant> {
        *self.tx.borrow()
    }

    /// Change notifications for an instance task.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<Instant>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hold_release_and_deadline() {
        let g = PreemptGate::open();
        let now = Instant::now();
        assert!(!g.is_held(now));
        let shared = g.clone();
        shared.hold_until(now + Duration::from_secs(10));
        assert!(g.is_held(now));
        assert!(!g.is_held(now + Duration::from_secs(10)), "deadline passed");
        let rx = g.subscribe();
        g.release();
        assert!(rx.has_changed().unwrap());
        assert!(!shared.is_held(now));
    }
}
