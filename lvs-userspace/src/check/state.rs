//! Pure decisions: a checker's retry state machine (keepalived's
//! `retry`/`delay_before_retry`/`alpha` semantics, as in check_tcp.c's
//! epilog) and the quorum/hysteresis rule of ipwrapper.c. No I/O here, so
//! every transition is unit-tested.

/// What to wait before the next attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextDelay {
    /// A regular check: `delay_loop`.
    Loop,
    /// A retry of a failed attempt: `delay_before_retry`.
    Retry,
}

/// What one attempt's result did to the checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// `Some(up)` when the checker's verdict is new: its first result, or a
    /// change.
    pub report: Option<bool>,
    pub next: NextDelay,
    /// A failure that will be retried (keepalived logs it only with
    /// `log_all_failures`): the retry number, 1-based.
    pub retrying: Option<u32>,
}

/// One checker's state.
///
/// A checker starts up (the real server is presumed alive) unless `alpha`,
/// which starts it down. While up, a failed attempt is retried `retry` times
/// `delay_before_retry` apart; the `retry + 1`-th consecutive failure makes it
/// down. While down, one success brings it up and failures are not retried.
/// Every result (success or final failure) waits `delay_loop`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryState {
    pub up: bool,
    pub has_run: bool,
    pub retry_it: u32,
    pub retry: u32,
}

impl RetryState {
    pub fn new(retry: u32, alpha: bool) -> Self {
        RetryState {
            up: !alpha,
            has_run: false,
            retry_it: 0,
            retry,
        }
    }

    /// A checker started with lvsd: its retries count as spent, so the
    /// first failure decides (keepalived check_data.c: "For non alpha mode,
    /// one failure is enough initially"). A success resets them as usual.
    pub fn at_start(retry: u32, alpha: bool) -> Self {
        RetryState {
            retry_it: retry,
            ..RetryState::new(retry, alpha)
        }
    }

    pub fn on_result(&mut self, success: bool) -> Step {
        let first = !self.has_run;
        self.has_run = true;
        if success {
            self.retry_it = 0;
            let report = (first || !self.up).then_some(true);
            self.up = true;
            return Step {
                report,
                next: NextDelay::Loop,
                retrying: None,
            };
        }
        if self.up {
            if self.retry_it < self.retry {
                self.retry_it += 1;
                // Not a verdict yet: the first-ever result waits for the retries too.
                self.has_run = !first;
                return Step {
                    report: None,
                    next: NextDelay::Retry,
                    retrying: Some(self.retry_it),
                };
            }
            self.retry_it = 0;
            self.up = false;
            return Step {
                report: Some(false),
                next: NextDelay::Loop,
                retrying: None,
            };
        }
        // Already down (alpha or a previous failure): nothing to retry.
        Step {
            report: first.then_some(false),
            next: NextDelay::Loop,
            retrying: None,
        }
    }
}

/// keepalived's quorum decision (ipwrapper.c `update_quorum_state`): with
/// quorum up, it is lost when the alive weight drops below
/// `quorum - hysteresis` (or to 0); with quorum down, it is gained when the
/// alive weight reaches `quorum + hysteresis`. At start, pass
/// `previously_up = false`: quorum is up iff the weight reaches
/// `quorum + hysteresis` (keepalived's `set_quorum_states`).
pub fn quorum_state(
    alive_weight_sum: u32,
    quorum: u32,
    hysteresis: u32,
    previously_up: bool,
) -> bool {
    let sum = u64::from(alive_weight_sum);
    if previously_up {
        let threshold = u64::from(quorum.saturating_sub(hysteresis));
        !(sum == 0 || sum < threshold)
    } else {
        sum >= u64::from(quorum) + u64::from(hysteresis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_checker_goes_down_after_retry_plus_one_failures() {
        let mut s = RetryState::new(2, false);
        assert_eq!(s.on_result(true).report, Some(true));
        let a = s.on_result(false);
        assert_eq!(
            (a.report, a.next, a.retrying),
            (None, NextDelay::Retry, Some(1))
        );
        let b = s.on_result(false);
        assert_eq!(
            (b.report, b.next, b.retrying),
            (None, NextDelay::Retry, Some(2))
        );
        let c = s.on_result(false);
        assert_eq!((c.report, c.next), (Some(false), NextDelay::Loop));
        // Down: failures are not retried, not reported again.
        let d = s.on_result(false);
        assert_eq!((d.report, d.next), (None, NextDelay::Loop));
        // One success is enough.
        assert_eq!(s.on_result(true).report, Some(true));
        assert_eq!(s.on_result(true).report, None);
    }

    #[test]
    fn a_success_between_failures_resets_the_retries() {
        let mut s = RetryState::new(1, false);
        s.on_result(true);
        assert_eq!(s.on_result(false).report, None);
        assert_eq!(s.on_result(true).report, None);
        assert_eq!(s.on_result(false).report, None);
        assert_eq!(s.on_result(false).report, Some(false));
    }

    #[test]
    fn retry_zero_fails_at_once() {
        let mut s = RetryState::new(0, false);
        s.on_result(true);
        assert_eq!(s.on_result(false).report, Some(false));
    }

    #[test]
    fn first_result_is_reported_after_its_retries() {
        let mut s = RetryState::new(1, false);
        assert_eq!(s.on_result(false).report, None);
        assert!(!s.has_run);
        assert_eq!(s.on_result(false).report, Some(false));
        let mut s = RetryState::new(1, false);
        assert_eq!(s.on_result(false).report, None);
        assert_eq!(s.on_result(true).report, Some(true));
    }

    #[test]
    fn at_start_the_first_failure_decides() {
        let mut s = RetryState::at_start(3, false);
        assert_eq!(s.on_result(false).report, Some(false));
        assert!(!s.up);
        // Back up, then the retries apply again.
        let mut s = RetryState::at_start(3, false);
        assert_eq!(s.on_result(true).report, Some(true));
        for i in 1..=3 {
            let st = s.on_result(false);
            assert_eq!((st.report, st.retrying), (None, Some(i)));
        }
        assert_eq!(s.on_result(false).report, Some(false));
        let mut s = RetryState::at_start(3, true);
        assert_eq!(s.on_result(false).report, Some(false));
    }

    #[test]
    fn alpha_starts_down_first_failure_is_final() {
        let mut s = RetryState::new(3, true);
        assert!(!s.up);
        assert_eq!(s.on_result(false).report, Some(false));
        assert_eq!(s.on_result(false).report, None);
        assert_eq!(s.on_result(true).report, Some(true));
        let mut s = RetryState::new(3, true);
        assert_eq!(s.on_result(true).report, Some(true));
    }

    #[test]
    fn quorum_without_hysteresis() {
        assert!(quorum_state(1, 1, 0, false));
        assert!(!quorum_state(0, 1, 0, false));
        assert!(!quorum_state(0, 1, 0, true));
        assert!(quorum_state(3, 3, 0, true));
        assert!(!quorum_state(2, 3, 0, true));
        // Quorum 0: up as long as something is alive (keepalived drops it at 0).
        assert!(quorum_state(0, 0, 0, false));
        assert!(!quorum_state(0, 0, 0, true));
    }

    #[test]
    fn quorum_with_hysteresis() {
        // quorum 5, hysteresis 2: gained at 7, lost below 3.
        assert!(!quorum_state(6, 5, 2, false));
        assert!(quorum_state(7, 5, 2, false));
        assert!(quorum_state(3, 5, 2, true));
        assert!(quorum_state(6, 5, 2, true));
        assert!(!quorum_state(2, 5, 2, true));
        // Hysteresis above quorum: lost only at 0.
        assert!(quorum_state(1, 2, 5, true));
        assert!(!quorum_state(0, 2, 5, true));
        assert!(!quorum_state(6, 2, 5, false));
        assert!(quorum_state(7, 2, 5, false));
    }
}
