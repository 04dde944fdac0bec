//! Schedules computed in userspace, walked by the data path.
//!
//! The XDP program never runs a scheduler: it reads the next slot of a
//! precomputed sequence. For `wrr` that sequence is one full cycle of Linux
//! IPVS's weighted round robin (`net/netfilter/ipvs/ip_vs_wrr.c`): the
//! current weight `cw` starts at the maximum weight and steps down by the
//! gcd of the weights; at each step every server whose weight is at least
//! `cw` is picked, in list order. IPVS's list is the config reversed
//! (keepalived adds real servers in config order, IPVS adds each at the
//! head), so the datapath passes the weights reversed: a 2:3:3:2:2 pool
//! A B C D E (list E D C B A) is served C B E D C B A E D C B A, exactly
//! as IPVS serves it.
//!
//! The hashing schedulers (`sh`, `mh`, `dh`) are tables instead: the agent
//! builds the table IPVS builds for the same destinations
//! (`ip_vs_sh_reassign`, `ip_vs_mh_populate`, `ip_vs_dh_assign`), and the
//! data path indexes it with the kernel's hash of the packet (shared in
//! `lvs_common::hash`). `mh` uses ip_vs_mh's fixed hsiphash keys, so two
//! directors with the same real servers build the same table and pick the
//! same server for a client without talking to each other.

use lvs_common::hash::{mh_hash, MH_KEY1, MH_KEY2, MH_TABLE_BITS, MH_TABLE_SIZE, SH_TABLE_SIZE};
use thiserror::Error;

/// Scheduling algorithms the data path can walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Weighted round robin (IPVS `wrr`).
    Wrr,
    /// Round robin (IPVS `rr`): every server with weight > 0 once per cycle.
    Rr,
    /// Source hashing (IPVS `sh`): `port` = `sh-port`, `fallback` = `sh-fallback`.
    Sh { port: bool, fallback: bool },
    /// Maglev hashing (IPVS `mh`): `mh-port`, `mh-fallback`.
    Mh { port: bool, fallback: bool },
    /// Destination hashing (IPVS `dh`): by the VIP, so one server per VIP.
    Dh,
    /// Least connections (IPVS `lc`): least (active << 8) + inactive.
    Lc,
    /// Weighted least connections (IPVS `wlc`, keepalived's default).
    Wlc,
    /// Shortest expected delay (IPVS `sed`): least (active + 1) / weight.
    Sed,
    /// Never queue (IPVS `nq`): an idle server at once, else as sed.
    Nq,
    /// Weighted failover (IPVS `fo`): the first server of the highest weight.
    Fo,
    /// Overflow (IPVS `ovf`): the first server of the highest weight whose
    /// active connections do not exceed its weight.
    Ovf,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Wrr => "wrr",
            Algorithm::Rr => "rr",
            Algorithm::Sh { .. } => "sh",
            Algorithm::Mh { .. } => "mh",
            Algorithm::Dh => "dh",
            Algorithm::Lc => "lc",
            Algorithm::Wlc => "wlc",
            Algorithm::Sed => "sed",
            Algorithm::Nq => "nq",
            Algorithm::Fo => "fo",
            Algorithm::Ovf => "ovf",
        }
    }

    /// Picks by the data path's per-server connection counts.
    pub fn is_least_connections(self) -> bool {
        matches!(
            self,
            Algorithm::Lc
                | Algorithm::Wlc
                | Algorithm::Sed
                | Algorithm::Nq
                | Algorithm::Fo
                | Algorithm::Ovf
        )
    }

    /// A table indexed by a hash rather than a sequence walked in order.
    pub fn is_hashed(self) -> bool {
        matches!(
            self,
            Algorithm::Sh { .. } | Algorithm::Mh { .. } | Algorithm::Dh
        )
    }

    /// The scheduler flags ipvsadm prints after the name, in its words
    /// (`sh-fallback,sh-port`), or None.
    pub fn flags_text(self) -> Option<String> {
        let (prefix, port, fallback) = match self {
            Algorithm::Sh { port, fallback } => ("sh", port, fallback),
            Algorithm::Mh { port, fallback } => ("mh", port, fallback),
            _ => return None,
        };
        flag_words(prefix, fallback, port)
    }
}

/// ipvsadm's words for IP_VS_SVC_F_SCHED1 (fallback) and SCHED2 (port).
pub fn flag_words(prefix: &str, fallback: bool, port: bool) -> Option<String> {
    let mut words = Vec::new();
    if fallback {
        words.push(format!("{prefix}-fallback"));
    }
    if port {
        words.push(format!("{prefix}-port"));
    }
    (!words.is_empty()).then(|| words.join(","))
}

/// A destination as the hashing schedulers see it, in IPVS's list order
/// (`svc->destinations`: keepalived adds real servers in config order and
/// IPVS puts each new one at the head, so the list is the config reversed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashDest {
    /// IPv6 addresses are folded as IPVS folds them (`ipv6_fold`).
    pub addr: std::net::IpAddr,
    pub port: u16,
    /// Current weight: `sh` gives a destination this many buckets.
    pub weight: u32,
    /// IPVS `last_weight`, the last weight > 0 it had: `mh` builds its
    /// table from it, so quiescing (weight 0) a server moves nobody else.
    pub last_weight: u32,
}

/// The hashed table for `dests` as indexes into `dests`: IPVS's table for
/// the scheduler, empty when it would hold no destination.
pub fn table(algo: Algorithm, dests: &[HashDest]) -> Vec<usize> {
    match algo {
        Algorithm::Sh { .. } => sh_table(dests),
        Algorithm::Mh { .. } => mh_table(dests),
        Algorithm::Dh => dh_table(dests),
        _ => Vec::new(),
    }
}

/// `ip_vs_sh_reassign`: buckets in order, each destination filling as many
/// consecutive buckets as its weight (at least one, even at weight 0),
/// round and round the list until the 256 buckets are full.
fn sh_table(dests: &[HashDest]) -> Vec<usize> {
    if dests.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(SH_TABLE_SIZE as usize);
    let (mut d, mut count) = (0, 0u32);
    while out.len() < SH_TABLE_SIZE as usize {
        out.push(d);
        count += 1;
        if count >= dests[d].weight {
            d = (d + 1) % dests.len();
            count = 0;
        }
    }
    out
}

/// `ip_vs_dh_assign`: one bucket per destination, round robin, no weights.
fn dh_table(dests: &[HashDest]) -> Vec<usize> {
    if dests.is_empty() {
        return Vec::new();
    }
    (0..SH_TABLE_SIZE as usize)
        .map(|i| i % dests.len())
        .collect()
}

fn fls(x: u32) -> i32 {
    32 - x.leading_zeros() as i32
}

/// `ip_vs_mh_permutate` + `ip_vs_mh_populate`: each destination's
/// preference list is `offset + k·skip (mod size)` from two hsiphashes of
/// its address and port; destinations take turns (last_weight / gcd,
/// shifted so the largest fits MH_TABLE_BITS bits) claiming their next
/// free preferred slot until the table is full.
fn mh_table(dests: &[HashDest]) -> Vec<usize> {
    let size = MH_TABLE_SIZE;
    let g = dests
        .iter()
        .map(|d| d.last_weight)
        .filter(|&w| w > 0)
        .fold(0, gcd);
    if g < 1 {
        return Vec::new();
    }
    let mw = dests.iter().map(|d| d.last_weight).max().unwrap_or(0) / g;
    let rshift = (fls(mw) - MH_TABLE_BITS as i32).max(0) as u32;
    struct Setup {
        skip: u32,
        perm: u32,
        turns: u32,
    }
    let mut setup: Vec<Setup> = dests
        .iter()
        .map(|d| {
            let addr = hash_addr(d.addr);
            let offset = mh_hash(addr, d.port, MH_KEY1, 0) % size;
            let skip = mh_hash(addr, d.port, MH_KEY2, 0) % (size - 1) + 1;
            let lw = d.last_weight;
            let t = (lw / g) >> rshift;
            Setup {
                skip,
                perm: offset,
                turns: if t > 0 { t } else { (lw != 0) as u32 },
            }
        })
        .collect();
    let mut owner: Vec<Option<usize>> = vec![None; size as usize];
    let mut n = 0;
    let mut dt_count = 0;
    'fill: loop {
        let mut i = 0;
        while i < setup.len() {
            let ds = &mut setup[i];
            if ds.turns < 1 {
                i += 1;
                continue;
            }
            while owner[ds.perm as usize].is_some() {
                ds.perm += ds.skip;
                if ds.perm >= size {
                    ds.perm -= size;
                }
            }
            owner[ds.perm as usize] = Some(i);
            n += 1;
            if n == size {
                break 'fill;
            }
            dt_count += 1;
            if dt_count >= ds.turns {
                dt_count = 0;
                i += 1;
            }
        }
    }
    owner.into_iter().map(|o| o.expect("table full")).collect()
}

/// Longest schedule one service may have (slots in `rings`).
pub const MAX_SCHEDULE_LEN: usize = 1 << 16;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SchedError {
    #[error("weights {weights_sum} / gcd {gcd} need a {len}-slot schedule, more than the {max} allowed: use smaller or more divisible weights")]
    TooLong {
        weights_sum: u64,
        gcd: u32,
        len: u64,
        max: usize,
    },
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One cycle of the schedule for servers with these weights (in list
/// order): the indexes of the servers, in the order they are picked.
/// Weight 0 servers (quiescent) never appear; no server → empty schedule.
pub fn schedule(algo: Algorithm, weights: &[u32]) -> Result<Vec<usize>, SchedError> {
    match algo {
        Algorithm::Rr => Ok((0..weights.len()).filter(|&i| weights[i] > 0).collect()),
        Algorithm::Wrr => wrr_cycle(weights),
        // Tables, not sequences: see `table`.
        _ => Ok(Vec::new()),
    }
}

fn wrr_cycle(weights: &[u32]) -> Result<Vec<usize>, SchedError> {
    let max = weights.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return Ok(Vec::new());
    }
    let step = weights.iter().copied().filter(|&w| w > 0).fold(0, gcd);
    let sum: u64 = weights.iter().map(|&w| w as u64).sum();
    let len = sum / step as u64;
    if len > MAX_SCHEDULE_LEN as u64 {
        return Err(SchedError::TooLong {
            weights_sum: sum,
            gcd: step,
            len,
            max: MAX_SCHEDULE_LEN,
        });
    }
    let mut out = Vec::with_capacity(len as usize);
    let mut cw = max;
    while cw > 0 {
        out.extend((0..weights.len()).filter(|&i| weights[i] >= cw));
        cw -= step.min(cw);
    }
    Ok(out)
}

/// The 32-bit host-order value IPVS's hash schedulers hash for an address:
/// the IPv4 address itself, an IPv6 address folded (`addr_fold`).
pub fn hash_addr(addr: std::net::IpAddr) -> u32 {
    match addr {
        std::net::IpAddr::V4(a) => u32::from(a),
        std::net::IpAddr::V6(a) => u32::from_be(lvs_common::hash::ipv6_fold(
            &lvs_common::hash::ipv6_words(a.octets()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_pool_is_served_in_ipvs_order() {
        // The seed's A B C D E (2:3:3:2:2) as IPVS lists them: E D C B A.
        let s = schedule(Algorithm::Wrr, &[2, 2, 3, 3, 2]).unwrap();
        let names: String = s.iter().map(|&i| ['E', 'D', 'C', 'B', 'A'][i]).collect();
        assert_eq!(names, "CBEDCBAEDCBA");
    }

    #[test]
    fn gcd_steps_and_quiescent_servers() {
        // gcd 2: cw = 4, 2.
        assert_eq!(schedule(Algorithm::Wrr, &[4, 2, 0]).unwrap(), vec![0, 0, 1]);
        assert_eq!(
            schedule(Algorithm::Wrr, &[0, 0]).unwrap(),
            Vec::<usize>::new()
        );
        assert_eq!(schedule(Algorithm::Rr, &[5, 0, 1]).unwrap(), vec![0, 2]);
    }

    #[test]
    fn schedule_length_is_bounded() {
        let weights = vec![65535, 65534, 3];
        assert!(matches!(
            schedule(Algorithm::Wrr, &weights),
            Err(SchedError::TooLong { .. })
        ));
    }
}
