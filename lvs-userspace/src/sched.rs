//! Schedules computed in userspace, walked by the data path.
//!
//! The XDP program never runs a scheduler: it reads the next slot of a
//! precomputed sequence. For `wrr` that sequence is one full cycle of Linux
//! IPVS's weighted round robin (`net/netfilter/ipvs/ip_vs_wrr.c`): the
//! current weight `cw` starts at the maximum weight and steps down by the
//! gcd of the weights; at each step every server whose weight is at least
//! `cw` is picked, in list order. So a 2:3:3:2:2 pool is served
//! B C A B C D E A B C D E, exactly as IPVS serves it.

use thiserror::Error;

/// Scheduling algorithms the data path can walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Weighted round robin (IPVS `wrr`).
    Wrr,
    /// Round robin (IPVS `rr`): every server with weight > 0 once per cycle.
    Rr,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Wrr => "wrr",
            Algorithm::Rr => "rr",
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_pool_is_served_in_ipvs_order() {
        let s = schedule(Algorithm::Wrr, &[2, 3, 3, 2, 2]).unwrap();
        assert_eq!(s, vec![1, 2, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
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
