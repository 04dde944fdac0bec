//! What a step returns to stop the pipeline.

use aya_ebpf::bindings::xdp_action;
use lvs_common::verdict as reason;

/// An XDP action plus the reason it is counted under in `verdicts`.
#[derive(Clone, Copy)]
pub struct Verdict {
    pub action: u32,
    pub reason: u32,
}

impl Verdict {
    #[inline(always)]
    pub const fn pass(reason: u32) -> Self {
        Verdict {
            action: xdp_action::XDP_PASS,
            reason,
        }
    }
    #[inline(always)]
    pub const fn drop(reason: u32) -> Self {
        Verdict {
            action: xdp_action::XDP_DROP,
            reason,
        }
    }
    pub const TX: Verdict = Verdict {
        action: xdp_action::XDP_TX,
        reason: reason::TX,
    };
    pub const REDIRECT: Verdict = Verdict {
        action: xdp_action::XDP_REDIRECT,
        reason: reason::REDIRECT,
    };
    pub const NO_TX_PORT: Verdict = Verdict {
        action: xdp_action::XDP_ABORTED,
        reason: reason::DROP_NO_TX_PORT,
    };
}

/// A step's result: continue with `T` or stop with a verdict.
pub type Step<T> = Result<T, Verdict>;
