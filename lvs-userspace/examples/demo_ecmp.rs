//! `cargo xtask demo --ecmp`: three active directors behind an ECMP router.
//!
//! An FRR router (BGP multipath, BFD, L4 hash) with clients behind it;
//! three directors, each running lvsd with `bgp_announce` (BIRD beside it)
//! and `lb_algo mh`; three real servers. Prints the router's three next
//! hops, `lvsadm --daemon`, how 300 long-lived connections spread over
//! directors and real servers, and what happens to them and to a stream of
//! short requests when one director's lvsd is killed -9, comes back, loses
//! its link, gets it back and stops gracefully. The same scenario as the
//! `ecmp_lab` test; everything is torn down at the end.

#[path = "../tests/common/mod.rs"]
mod common;

fn main() -> anyhow::Result<()> {
    common::ecmp::scenario(&|line| println!("{line}"))
}
