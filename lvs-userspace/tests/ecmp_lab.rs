//! Active-active directors behind an ECMP router. An FRR router (zebra,
//! bgpd, bfdd; `maximum-paths 8`, L4 multipath hash) has clients behind it;
//! three directors each run lvsd with `bgp_announce`, so lvsd runs BIRD
//! beside itself and announces the VIP over BGP with BFD; the router
//! installs three equal-cost next hops. Every director schedules with `mh`
//! (the same Maglev table everywhere, sloppy for mid-stream segments), so a
//! flow that ECMP moves to another director keeps its real server.
//!
//! With 300 long-lived connections streaming and a stream of short
//! requests: one director's lvsd is killed -9 (BIRD dies with it; its data
//! path keeps forwarding), brought back; its link is cut (BFD), restored;
//! it stops gracefully (withdraw, then drain). No established connection
//! breaks; short requests are delayed at most for the detection time; the
//! graceful stop fails none.
//!
//! Needs root, `ip`, `ethtool`, FRR and BIRD 2 (`cargo xtask setup`).

mod common;

use anyhow::Result;

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn three_directors_behind_ecmp_lose_and_regain_one_without_breaking_connections() -> Result<()> {
    common::ecmp::scenario(&|line| eprintln!("{line}"))
}
