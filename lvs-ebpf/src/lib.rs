//! The XDP Direct-Routing data path, as small inline steps.
//!
//! Each step returns `Result<T, Verdict>`: `Ok` to continue with the next
//! step, `Err` to stop with a verdict (an XDP action and the reason counted
//! in `verdicts`). `datapath::run` chains them with `?`, Katran-style.
#![no_std]
// Atomic adds on counters shared by all CPUs (conn_counts.rs).
#![allow(internal_features)]
#![feature(core_intrinsics)]

pub mod conn_counts;
pub mod conntrack;
pub mod datapath;
pub mod family;
pub mod flow_cache;
pub mod forward;
pub mod frag;
pub mod icmp;
pub mod icmp6;
pub mod lc_tree;
pub mod maps;
pub mod parse;
pub mod schedule;
pub mod stats;
pub mod sync;
pub mod verdict;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program that could reach this: every index is
    // bounds-checked before use, so no panic path survives optimisation.
    loop {}
}
