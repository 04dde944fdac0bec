//! `--rate`: per-second rates between two snapshots. IPVS shows estimator
//! averages (a 2 s EWMA in the kernel); we have no estimator in the data
//! path, so `lvsadm --rate` samples the counters twice over `--interval` and
//! prints the difference per second — the same unit (connections, packets
//! and bytes per second), a plainer average.

use lvs_common::Stats;
use serde::Serialize;

/// ipvsadm's rate columns. DR sees no reply traffic: Out* are 0, as they
/// are with IPVS in DR mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

impl Rates {
    /// From the counters `now` and `secs` seconds `before` (None: the
    /// service or real server is new, everything counted happened since).
    pub fn between(now: &Stats, before: Option<&Stats>, secs: f64) -> Rates {
        let b = before.copied().unwrap_or_default();
        let secs = if secs > 0.0 { secs } else { 1.0 };
        // Counters only grow; a reset (agent re-created the map) reads as 0.
        let per_s = |x: u64, y: u64| (x.saturating_sub(y) as f64 / secs).round() as u64;
        Rates {
            cps: per_s(now.conns, b.conns),
            inpps: per_s(now.packets, b.packets),
            outpps: 0,
            inbps: per_s(now.bytes, b.bytes),
            outbps: 0,
        }
    }

    pub fn columns(&self) -> [u64; 5] {
        [self.cps, self.inpps, self.outpps, self.inbps, self.outbps]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_second_and_rounded() {
        let s = |conns, packets, bytes| Stats {
            packets,
            bytes,
            conns,
        };
        let r = Rates::between(&s(10, 300, 30_000), Some(&s(4, 100, 10_000)), 2.0);
        assert_eq!(
            r,
            Rates {
                cps: 3,
                inpps: 100,
                outpps: 0,
                inbps: 10_000,
                outbps: 0
            }
        );
        // A counter that went backwards (map re-created) is 0, not a wrap.
        assert_eq!(Rates::between(&s(1, 1, 1), Some(&s(5, 5, 5)), 1.0).cps, 0);
    }
}
