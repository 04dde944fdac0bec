//! The VRRP state machine (RFC 5798 §6.4, RFC 3768 §6.4), pure: inputs are
//! validated adverts and the clock, outputs are [`Action`]s the instance
//! task carries out. Log lines follow keepalived's wording.

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info};

/// An instance's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum VrrpState {
    Init,
    Backup,
    Master,
    Fault,
}

impl std::fmt::Display for VrrpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VrrpState::Init => "INIT",
            VrrpState::Backup => "BACKUP",
            VrrpState::Master => "MASTER",
            VrrpState::Fault => "FAULT",
        })
    }
}

/// What the machine needs to know about its instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineParams {
    pub name: String,
    pub version: u8,
    /// 1..=255 (255 = address owner: straight to MASTER).
    pub priority: u8,
    /// Our advertisement interval.
    pub adver_int: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// `state MASTER`: take over after one advert interval when no master
    /// is heard (an owner, priority 255, takes over at once).
    pub init_master: bool,
}

/// What the instance task must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one advert with this priority.
    Send(u8),
    /// Add the VIPs and start the gratuitous ARP bursts.
    TakeVips,
    /// Remove the VIPs.
    DropVips,
    /// One burst of gratuitous ARPs for the VIPs (while MASTER).
    Garp,
    /// The state changed (for events, notify, stats).
    Changed { prev: VrrpState, state: VrrpState },
    /// [`Machine::wants_master`] changed (sync group members report it).
    WantMaster,
}

/// The essentials of a valid advert.
#[derive(Clone, Copy, Debug)]
pub struct Heard {
    pub src: IpAddr,
    pub priority: u8,
    pub adver_int: Duration,
}

#[derive(Debug)]
pub struct Machine {
    pub p: MachineParams,
    pub state: VrrpState,
    /// Our primary address (ties at equal priority go to the higher one).
    pub local_ip: IpAddr,
    /// v3: the master's interval as last heard; v2: ours.
    master_adver_int: Duration,
    master_down_at: Option<Instant>,
    advert_at: Option<Instant>,
    /// preempt_delay: when a lower-priority master may be preempted.
    preempt_at: Option<Instant>,
    /// The [`super::PreemptGate`]: no MASTER by preemption before this.
    preempt_hold: Option<Instant>,
    /// "delaying preemption" logged for the current hold.
    hold_logged: bool,
    pub master_ip: Option<IpAddr>,
    /// A `vrrp_sync_group` member: MASTER only when the group says so.
    pub grouped: bool,
    /// Grouped BACKUP whose master-down timer ran out (keepalived's
    /// wantstate MASTER).
    pub wants_master: bool,
    /// Left MASTER because a VIP was removed (the group brings the
    /// others back quickly too).
    pub left_quick: bool,
}

impl Machine {
    pub fn new(p: MachineParams, local_ip: IpAddr) -> Self {
        Machine {
            master_adver_int: p.adver_int,
            p,
            state: VrrpState::Init,
            local_ip,
            master_down_at: None,
            advert_at: None,
            preempt_at: None,
            preempt_hold: None,
            hold_logged: false,
            master_ip: None,
            grouped: false,
            wants_master: false,
            left_quick: false,
        }
    }

    /// Whether the preemption gate is held at `now`.
    pub fn preempt_held(&self, now: Instant) -> bool {
        self.preempt_hold.is_some_and(|d| now < d)
    }

    /// The preemption gate changed: held until `until`, or open (`None`).
    /// Nothing happens at once: a held gate keeps a BACKUP from preempting
    /// a lower-priority master; once open, the next lower-priority advert
    /// is discarded as usual and the master-down timer takes over.
    pub fn set_preempt_hold(&mut self, now: Instant, until: Option<Instant>) {
        let was = self.preempt_held(now);
        self.preempt_hold = until;
        let held = self.preempt_held(now);
        if was && !held {
            info!("({}) preemption no longer delayed", self.p.name);
        }
        if held != was {
            self.hold_logged = false;
        }
    }

    /// Logs the delay once per hold.
    fn log_hold(&mut self) {
        if !self.hold_logged {
            self.hold_logged = true;
            info!(
                "({}) delaying preemption: connection sync in progress",
                self.p.name
            );
        }
    }

    /// v2: (256 − prio)/256 s; v3: (256 − prio) × Master_Adver_Interval / 256.
    pub fn skew_time(&self) -> Duration {
        let k = 256 - self.p.priority as u32;
        if self.p.version == 3 {
            self.master_adver_int * k / 256
        } else {
            Duration::from_secs(1) * k / 256
        }
    }

    /// 3 × Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_int * 3 + self.skew_time()
    }

    /// When [`Machine::on_timer`] must be called next.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            VrrpState::Master => self.advert_at,
            VrrpState::Backup => self.master_down_at,
            _ => None,
        }
    }

    fn set(&mut self, state: VrrpState, out: &mut Vec<Action>) {
        let prev = self.state;
        self.state = state;
        out.push(Action::Changed { prev, state });
    }

    fn enter_backup(&mut self, now: Instant, out: &mut Vec<Action>, why: &str) {
        let was_master = self.state == VrrpState::Master;
        self.advert_at = None;
        // preempt_delay starts again at the next lower-priority advert.
        self.preempt_at = None;
        self.wants_master = false;
        self.left_quick = false;
        self.master_down_at = Some(now + self.master_down_interval());
        if was_master {
            out.push(Action::DropVips);
        }
        info!("({}) Entering BACKUP STATE{why}", self.p.name);
        self.set(VrrpState::Backup, out);
    }

    fn enter_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        info!("({}) Transition to MASTER STATE", self.p.name);
        out.push(Action::Send(self.p.priority));
        info!("({}) Entering MASTER STATE", self.p.name);
        out.push(Action::TakeVips);
        self.master_down_at = None;
        self.advert_at = Some(now + self.p.adver_int);
        self.master_ip = Some(self.local_ip);
        self.master_adver_int = self.p.adver_int;
        self.wants_master = false;
        self.left_quick = false;
        self.set(VrrpState::Master, out);
    }

    /// The master-down timer ran out (or we may preempt): MASTER, or, in
    /// a sync group, ask the group and keep waiting.
    fn timeout_to_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.grouped {
            if !self.wants_master {
                info!("({}) Receive advertisement timeout", self.p.name);
                self.wants_master = true;
                out.push(Action::WantMaster);
            }
            self.master_down_at = Some(now + self.master_down_interval());
            return;
        }
        info!("({}) Receive advertisement timeout", self.p.name);
        self.enter_master(now, out);
    }

    /// The sync group takes this member to MASTER.
    pub fn force_master(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == VrrpState::Backup {
            self.enter_master(now, &mut out);
        }
        out
    }

    /// The sync group takes this member from MASTER to BACKUP (no
    /// priority 0: the group's other director takes over by its timers);
    /// `quick`: try MASTER again after the skew time.
    pub fn force_backup(&mut self, now: Instant, quick: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == VrrpState::Master {
            self.enter_backup(now, &mut out, "");
        }
        if quick && self.state == VrrpState::Backup {
            self.master_down_at = Some(now + self.skew_time());
        }
        out
    }

    /// v2: 1/256 s; v3: Master_Adver_Interval / 256 (keepalived's
    /// VRRP_TIMER_SKEW_MIN).
    fn skew_min(&self) -> Duration {
        if self.p.version == 3 {
            self.master_adver_int / 256
        } else {
            Duration::from_secs(1) / 256
        }
    }

    /// Startup (RFC: the Startup event in Initialize).
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let wants_master = self.p.priority == 255 || self.p.init_master;
        if self.grouped {
            // The group decides; an owner asks at once.
            self.enter_backup(now, &mut out, " (init)");
            if self.p.priority == 255 && !self.preempt_held(now) {
                self.master_down_at = Some(now);
            } else if wants_master {
                self.master_down_at = Some(now + self.master_adver_int + self.skew_min());
            }
        } else if wants_master && self.preempt_held(now) {
            // Wait for the current master's adverts like any backup; if
            // none comes, the master-down timer still takes over.
            self.log_hold();
            self.enter_backup(now, &mut out, " (init)");
        } else if self.p.priority == 255 {
            self.enter_master(now, &mut out);
        } else {
            self.enter_backup(now, &mut out, " (init)");
            if wants_master {
                // One interval to hear whether another master is there.
                self.master_down_at = Some(now + self.master_adver_int + self.skew_min());
            }
        }
        out
    }

    /// Timers: master-down expiry in BACKUP, advert in MASTER.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            VrrpState::Backup if self.master_down_at.is_some_and(|t| now >= t) => {
                self.timeout_to_master(now, &mut out);
            }
            VrrpState::Master if self.advert_at.is_some_and(|t| now >= t) => {
                out.push(Action::Send(self.p.priority));
                self.advert_at = Some(now + self.p.adver_int);
            }
            _ => {}
        }
        out
    }

    /// A valid advert for our VRID.
    pub fn on_advert(&mut self, now: Instant, h: Heard) -> Vec<Action> {
        let mut out = Vec::new();
        let name = self.p.name.clone();
        match self.state {
            VrrpState::Backup => {
                if h.priority == 0 {
                    // The master is leaving: take over after Skew_Time.
                    info!("({name}) Backup received priority 0 advertisement");
                    self.master_down_at = Some(now + self.skew_time());
                    return out;
                }
                let lower = h.priority < self.p.priority;
                if !lower && self.preempt_at.take().is_some() {
                    debug!("({name}) stop preempt delay");
                }
                if lower && self.p.preempt {
                    let delay = !self.p.preempt_delay.is_zero();
                    if delay && self.preempt_at.is_none() {
                        // keepalived: the delay runs from the first
                        // lower-priority advert; until then we accept it.
                        debug!("({name}) start preempt delay ({:?})", self.p.preempt_delay);
                        self.preempt_at = Some(now + self.p.preempt_delay);
                    } else if delay && self.preempt_at.is_some_and(|t| now < t) {
                        // Still delaying: accept below.
                    } else if self.preempt_held(now) {
                        self.log_hold();
                    } else {
                        info!(
                            "({name}) received lower priority ({}) advert from {} - discarding",
                            h.priority, h.src
                        );
                        self.master_ip = Some(h.src);
                        // Let the master-down timer run out: we take over.
                        return out;
                    }
                }
                if self.p.version == 3 {
                    if self.master_adver_int != h.adver_int {
                        info!(
                            "({name}) advertisement interval changed: mine={} milli-sec, rcved={} milli-sec",
                            self.master_adver_int.as_millis(),
                            h.adver_int.as_millis()
                        );
                    }
                    self.master_adver_int = h.adver_int;
                }
                self.master_ip = Some(h.src);
                self.master_down_at = Some(now + self.master_down_interval());
                if self.wants_master {
                    // A master is there after all (keepalived: wantstate
                    // BACKUP).
                    self.wants_master = false;
                    out.push(Action::WantMaster);
                }
            }
            VrrpState::Master => {
                if h.priority == 0 {
                    // Another master is leaving: answer at once so backups
                    // see us (RFC 5798 6.4.3).
                    out.push(Action::Send(self.p.priority));
                    self.advert_at = Some(now + self.p.adver_int);
                    return out;
                }
                let higher = h.priority > self.p.priority
                    || (h.priority == self.p.priority && h.src > self.local_ip);
                if higher {
                    info!(
                        "({name}) Master received advert from {} with higher priority {}, ours {}",
                        h.src, h.priority, self.p.priority
                    );
                    if self.p.version == 3 {
                        self.master_adver_int = h.adver_int;
                    }
                    self.master_ip = Some(h.src);
                    self.enter_backup(now, &mut out, "");
                } else {
                    info!(
                        "({name}) Received advert from {} with lower priority {}, ours {}, forcing new election",
                        h.src, h.priority, self.p.priority
                    );
                    out.push(Action::Send(self.p.priority));
                    // After a split brain the segment's ARP caches may point
                    // at the other (now yielding) master: re-announce the
                    // VIPs (keepalived's garp_lower_prio_repeat).
                    out.push(Action::Garp);
                    self.advert_at = Some(now + self.p.adver_int);
                }
            }
            _ => {}
        }
        out
    }

    /// Graceful stop: a MASTER sends priority 0 and drops its VIPs.
    pub fn shutdown(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == VrrpState::Master {
            out.push(Action::Send(0));
            out.push(Action::DropVips);
        }
        info!("({}) Stopped", self.p.name);
        self.master_down_at = None;
        self.advert_at = None;
        self.set(VrrpState::Init, &mut out);
        out
    }

    /// A tracked interface or weight-0 script failed (FAULT) or everything
    /// is fine again (→ BACKUP).
    pub fn set_fault(&mut self, now: Instant, fault: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if fault && self.state != VrrpState::Fault {
            if self.state == VrrpState::Master {
                // Priority 0: the backup takes over after its skew time,
                // not after the whole master-down interval.
                out.push(Action::Send(0));
                out.push(Action::DropVips);
            }
            info!("({}) Entering FAULT STATE", self.p.name);
            self.master_down_at = None;
            self.advert_at = None;
            self.preempt_at = None;
            self.set(VrrpState::Fault, &mut out);
        } else if !fault && self.state == VrrpState::Fault {
            self.master_adver_int = self.p.adver_int;
            self.enter_backup(now, &mut out, "");
            if self.p.priority == 255 || self.p.init_master {
                // An owner (or `state MASTER`) waits one interval for a
                // master that took over meanwhile before taking back.
                self.master_down_at = Some(now + self.p.adver_int + self.skew_time());
            }
        }
        out
    }

    /// One of our VIPs was removed from its interface while we are MASTER
    /// (`ip addr flush`, a network reload): as keepalived, leave MASTER,
    /// and unless another master shows up within the skew time, take over
    /// again, adding the addresses back and announcing them.
    pub fn on_vip_removed(&mut self, now: Instant, addr: IpAddr) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state != VrrpState::Master {
            return out;
        }
        info!("({}) VIP {addr} was removed while MASTER", self.p.name);
        self.enter_backup(now, &mut out, "");
        self.master_down_at = Some(now + self.skew_time());
        self.left_quick = true;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn m(prio: u8, version: u8, adv_ms: u64, preempt: bool) -> Machine {
        Machine::new(
            MachineParams {
                name: "VI_1".into(),
                version,
                priority: prio,
                adver_int: Duration::from_millis(adv_ms),
                preempt,
                preempt_delay: Duration::ZERO,
                init_master: false,
            },
            Ipv4Addr::new(198, 18, 0, 3).into(),
        )
    }

    fn heard(prio: u8, adv_ms: u64) -> Heard {
        Heard {
            src: Ipv4Addr::new(198, 18, 0, 2).into(),
            priority: prio,
            adver_int: Duration::from_millis(adv_ms),
        }
    }

    #[test]
    fn timers() {
        let b = m(100, 2, 1000, true);
        // 3 s + 156/256 s
        assert_eq!(b.master_down_interval(), Duration::from_micros(3_609_375));
        let b3 = m(100, 3, 100, true);
        assert_eq!(b3.master_down_interval(), Duration::from_nanos(360_937_500));
    }

    #[test]
    fn backup_takes_over_and_yields() {
        let t0 = Instant::now();
        let mut b = m(100, 2, 1000, true);
        let a = b.start(t0);
        assert_eq!(b.state, VrrpState::Backup);
        assert!(a.contains(&Action::Changed {
            prev: VrrpState::Init,
            state: VrrpState::Backup
        }));
        // Heard the master: no takeover before the down interval.
        b.on_advert(t0 + Duration::from_secs(1), heard(200, 1000));
        assert!(b.on_timer(t0 + Duration::from_secs(4)).is_empty());
        let a = b.on_timer(t0 + Duration::from_millis(4700));
        assert_eq!(b.state, VrrpState::Master);
        assert!(a.contains(&Action::TakeVips) && a.contains(&Action::Send(100)));
        // Higher priority returns: yield.
        let a = b.on_advert(t0 + Duration::from_secs(5), heard(200, 1000));
        assert_eq!(b.state, VrrpState::Backup);
        assert!(a.contains(&Action::DropVips));
        // Priority 0: takeover after skew only.
        let t = t0 + Duration::from_secs(6);
        b.on_advert(t, heard(0, 1000));
        assert_eq!(b.deadline(), Some(t + b.skew_time()));
    }

    #[test]
    fn preempt_and_nopreempt() {
        let t0 = Instant::now();
        let mut hi = m(200, 2, 1000, true);
        hi.start(t0);
        let a = hi.on_advert(t0, heard(100, 1000));
        assert!(a.is_empty(), "lower priority advert is discarded");
        hi.on_timer(t0 + Duration::from_secs(4));
        assert_eq!(hi.state, VrrpState::Master);

        let mut np = m(200, 2, 1000, false);
        np.start(t0);
        for s in 0..10 {
            np.on_advert(t0 + Duration::from_secs(s), heard(100, 1000));
            np.on_timer(t0 + Duration::from_secs(s) + Duration::from_millis(500));
        }
        assert_eq!(
            np.state,
            VrrpState::Backup,
            "nopreempt keeps the lower master"
        );
    }

    #[test]
    fn owner_and_shutdown() {
        let mut o = m(255, 3, 100, true);
        o.start(Instant::now());
        assert_eq!(o.state, VrrpState::Master);
        let a = o.shutdown();
        assert_eq!(a[0], Action::Send(0));
        assert!(a.contains(&Action::DropVips));
    }

    #[test]
    fn master_tie_break_and_v3_interval() {
        let t0 = Instant::now();
        let mut x = m(100, 3, 100, true);
        x.start(t0);
        x.on_timer(t0 + Duration::from_secs(1));
        assert_eq!(x.state, VrrpState::Master);
        // Equal priority from a lower address: we stay and re-advertise.
        let a = x.on_advert(t0, heard(100, 100));
        assert_eq!(a, vec![Action::Send(100), Action::Garp]);
        // A higher priority master with a 1 s interval: our down timer scales.
        x.on_advert(t0, heard(150, 1000));
        assert_eq!(x.state, VrrpState::Backup);
        assert!(x.master_down_interval() > Duration::from_secs(3));
    }

    fn held_until(x: &mut Machine, t: Instant) {
        x.set_preempt_hold(t, Some(t + Duration::from_secs(30)));
    }

    #[test]
    fn held_gate_keeps_backup_under_lower_master() {
        let t0 = Instant::now();
        let mut hi = m(200, 2, 1000, true);
        held_until(&mut hi, t0);
        hi.start(t0);
        // A lower master keeps advertising: accepted while held.
        for s in 0..10 {
            let t = t0 + Duration::from_secs(s);
            assert!(hi.on_advert(t, heard(100, 1000)).is_empty());
            hi.on_timer(t + Duration::from_millis(900));
            assert_eq!(hi.state, VrrpState::Backup, "held: no preemption at {s} s");
        }
        // Released: the next lower advert is discarded, the down timer
        // (from the last accepted advert) takes over.
        let t = t0 + Duration::from_secs(10);
        hi.set_preempt_hold(t, None);
        hi.on_advert(t, heard(100, 1000));
        let a = hi.on_timer(t0 + Duration::from_secs(9) + hi.master_down_interval());
        assert_eq!(hi.state, VrrpState::Master);
        assert!(a.contains(&Action::TakeVips));
    }

    #[test]
    fn held_gate_deadline_passes() {
        let t0 = Instant::now();
        let mut hi = m(200, 2, 1000, true);
        hi.set_preempt_hold(t0, Some(t0 + Duration::from_secs(5)));
        hi.start(t0);
        for s in 0..5 {
            hi.on_advert(t0 + Duration::from_secs(s), heard(100, 1000));
        }
        assert!(hi.preempt_held(t0 + Duration::from_millis(4999)));
        assert!(!hi.preempt_held(t0 + Duration::from_secs(5)));
        // Past the deadline the lower advert is discarded again.
        hi.on_advert(t0 + Duration::from_secs(5), heard(100, 1000));
        hi.on_timer(t0 + Duration::from_secs(4) + hi.master_down_interval());
        assert_eq!(hi.state, VrrpState::Master);
    }

    #[test]
    fn held_gate_never_leaves_the_vip_unowned() {
        let t0 = Instant::now();
        let mut b = m(200, 2, 1000, true);
        held_until(&mut b, t0);
        b.start(t0);
        // No master at all: take over at master-down expiry, held or not.
        b.on_timer(t0 + b.master_down_interval());
        assert_eq!(b.state, VrrpState::Master);
        // Priority 0 from a leaving master while held: takeover after skew.
        let mut c = m(150, 2, 1000, true);
        held_until(&mut c, t0);
        c.start(t0);
        c.on_advert(t0, heard(200, 1000));
        c.on_advert(t0 + Duration::from_secs(1), heard(0, 1000));
        c.on_timer(t0 + Duration::from_secs(1) + c.skew_time());
        assert_eq!(c.state, VrrpState::Master);
    }

    #[test]
    fn held_gate_owner_and_state_master_start_as_backup() {
        let t0 = Instant::now();
        let mut o = m(255, 2, 1000, true);
        held_until(&mut o, t0);
        let a = o.start(t0);
        assert_eq!(o.state, VrrpState::Backup);
        assert!(!a.contains(&Action::TakeVips));
        o.on_advert(t0 + Duration::from_secs(1), heard(100, 1000));
        o.on_timer(t0 + Duration::from_secs(4));
        assert_eq!(o.state, VrrpState::Backup, "the owner waits too");
        o.set_preempt_hold(t0 + Duration::from_secs(4), None);
        o.on_advert(t0 + Duration::from_secs(4), heard(100, 1000));
        o.on_timer(t0 + Duration::from_secs(4) + o.master_down_interval());
        assert_eq!(o.state, VrrpState::Master);

        let mut s = m(150, 2, 1000, true);
        s.p.init_master = true;
        held_until(&mut s, t0);
        s.start(t0);
        assert_eq!(s.state, VrrpState::Backup);
        assert_eq!(s.deadline(), Some(t0 + s.master_down_interval()));
    }

    #[test]
    fn state_master_takes_over_after_one_interval() {
        let t0 = Instant::now();
        let mut s = m(150, 2, 1000, true);
        s.p.init_master = true;
        s.start(t0);
        assert_eq!(s.state, VrrpState::Backup);
        let at = t0 + Duration::from_secs(1) + Duration::from_secs(1) / 256;
        assert_eq!(s.deadline(), Some(at));
        s.on_timer(at);
        assert_eq!(s.state, VrrpState::Master);
    }

    fn master_at(x: &mut Machine, t0: Instant) {
        x.start(t0);
        x.on_timer(t0 + x.master_down_interval());
        assert_eq!(x.state, VrrpState::Master);
    }

    #[test]
    fn vip_removed_under_master_recovers() {
        let t0 = Instant::now();
        let mut x = m(200, 2, 1000, true);
        master_at(&mut x, t0);
        let t = t0 + Duration::from_secs(10);
        let a = x.on_vip_removed(t, Ipv4Addr::new(198, 18, 0, 100).into());
        assert_eq!(x.state, VrrpState::Backup);
        assert!(a.contains(&Action::DropVips), "the other VIPs go too");
        assert!(!a.contains(&Action::Send(0)), "no priority 0: we come back");
        // Back after the skew time (0.22 s at priority 200), VIPs re-added.
        assert_eq!(x.deadline(), Some(t + x.skew_time()));
        let a = x.on_timer(t + x.skew_time());
        assert_eq!(x.state, VrrpState::Master);
        assert!(a.contains(&Action::TakeVips) && a.contains(&Action::Send(200)));
        // Heard nothing of it while BACKUP: nothing to do.
        let mut b = m(100, 2, 1000, true);
        b.start(t0);
        assert!(b
            .on_vip_removed(t0, Ipv4Addr::new(198, 18, 0, 100).into())
            .is_empty());
    }

    #[test]
    fn vip_removed_yields_to_a_master_that_shows_up() {
        let t0 = Instant::now();
        let mut x = m(100, 2, 1000, true);
        master_at(&mut x, t0);
        let t = t0 + Duration::from_secs(10);
        x.on_vip_removed(t, Ipv4Addr::new(198, 18, 0, 100).into());
        x.on_advert(t + Duration::from_millis(100), heard(150, 1000));
        assert!(x.on_timer(t + x.skew_time()).is_empty());
        assert_eq!(x.state, VrrpState::Backup);
    }

    #[test]
    fn master_to_fault_sends_priority_0() {
        let t0 = Instant::now();
        let mut x = m(200, 2, 1000, true);
        master_at(&mut x, t0);
        let a = x.set_fault(t0, true);
        assert_eq!(a[0], Action::Send(0), "{a:?}");
        assert!(a.contains(&Action::DropVips));
        assert_eq!(x.state, VrrpState::Fault);
        // BACKUP → FAULT sends nothing.
        let mut b = m(100, 2, 1000, true);
        b.start(t0);
        let a = b.set_fault(t0, true);
        assert!(!a.iter().any(|a| matches!(a, Action::Send(_))), "{a:?}");
    }

    #[test]
    fn leaving_fault_waits_for_a_master() {
        let t0 = Instant::now();
        let mut b = m(100, 2, 1000, true);
        b.start(t0);
        b.set_fault(t0, true);
        b.set_fault(t0 + Duration::from_secs(5), false);
        assert_eq!(b.state, VrrpState::Backup);
        assert_eq!(
            b.deadline(),
            Some(t0 + Duration::from_secs(5) + b.master_down_interval())
        );
        // The owner waits one interval plus skew, not the full interval.
        let mut o = m(255, 2, 1000, true);
        o.start(t0);
        o.set_fault(t0, true);
        let t = t0 + Duration::from_secs(5);
        o.set_fault(t, false);
        assert_eq!(o.state, VrrpState::Backup);
        assert_eq!(
            o.deadline(),
            Some(t + Duration::from_secs(1) + o.skew_time())
        );
        o.on_timer(t + Duration::from_secs(1) + o.skew_time());
        assert_eq!(o.state, VrrpState::Master);
    }

    /// Preempts after preempt_delay, counted from the first lower advert,
    /// every time (not once per process).
    #[test]
    fn preempt_delay_every_time() {
        let mut t = Instant::now();
        let mut hi = m(200, 2, 1000, true);
        hi.p.preempt_delay = Duration::from_secs(10);
        hi.start(t);
        for round in 0..3 {
            // A lower master advertises every second: preemption only
            // once 10 s have passed since the first of its adverts.
            let first = t;
            let mut took = None;
            for s in 0..30 {
                let now = first + Duration::from_secs(s);
                hi.on_advert(now, heard(100, 1000));
                hi.on_timer(now + Duration::from_millis(999));
                if hi.state == VrrpState::Master {
                    took = Some(s);
                    break;
                }
            }
            let took = took.expect("preempted");
            assert!(
                (10..=14).contains(&took),
                "round {round}: took over after {took} s"
            );
            // A higher master comes: yield; the next round starts afresh.
            t = first + Duration::from_secs(took + 1);
            hi.on_advert(t, heard(250, 1000));
            assert_eq!(hi.state, VrrpState::Backup);
            t += Duration::from_secs(1);
        }
    }

    #[test]
    fn preempt_delay_stops_on_equal_or_higher() {
        let t0 = Instant::now();
        let mut hi = m(200, 2, 1000, true);
        hi.p.preempt_delay = Duration::from_secs(5);
        hi.start(t0);
        hi.on_advert(t0, heard(100, 1000)); // starts the delay
        hi.on_advert(t0 + Duration::from_secs(3), heard(200, 1000)); // clears it
                                                                     // Lower again at 6 s: a fresh 5 s delay, no takeover at 6–10 s.
        for s in 6..11 {
            hi.on_advert(t0 + Duration::from_secs(s), heard(100, 1000));
            hi.on_timer(t0 + Duration::from_secs(s) + Duration::from_millis(999));
            assert_eq!(hi.state, VrrpState::Backup, "at {s} s");
        }
        hi.on_advert(t0 + Duration::from_secs(11), heard(100, 1000));
        hi.on_timer(t0 + Duration::from_secs(10) + hi.master_down_interval());
        assert_eq!(hi.state, VrrpState::Master);
    }

    #[test]
    fn grouped_member_asks_the_group() {
        let t0 = Instant::now();
        let mut x = m(200, 2, 1000, true);
        x.grouped = true;
        x.start(t0);
        let a = x.on_timer(t0 + x.master_down_interval());
        assert_eq!(x.state, VrrpState::Backup, "waits for the group");
        assert_eq!(a, vec![Action::WantMaster]);
        assert!(x.wants_master);
        // Another timeout while waiting: no second report.
        assert!(x.on_timer(t0 + x.master_down_interval() * 2).is_empty());
        let a = x.force_master(t0 + Duration::from_secs(8));
        assert!(a.contains(&Action::TakeVips));
        assert_eq!(x.state, VrrpState::Master);
        let a = x.force_backup(t0 + Duration::from_secs(9), false);
        assert!(a.contains(&Action::DropVips) && !a.contains(&Action::Send(0)));
        assert_eq!(x.state, VrrpState::Backup);
        // A master heard while wanting: no longer wants.
        x.on_timer(t0 + Duration::from_secs(20));
        assert!(x.wants_master);
        let a = x.on_advert(t0 + Duration::from_secs(21), heard(250, 1000));
        assert_eq!(a, vec![Action::WantMaster]);
        assert!(!x.wants_master);
    }
}
