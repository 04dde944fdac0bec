//! Bounded polling.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// Polls `cond` every `interval` until it returns true; fails after
/// `timeout` with `what` in the message. `cond` runs at least once.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(interval.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded() {
        let mut n = 0;
        wait_until(
            "n to reach 3",
            Duration::from_secs(1),
            Duration::from_millis(1),
            || {
                n += 1;
                n >= 3
            },
        )
        .unwrap();
        let t = Instant::now();
        let e = wait_until(
            "never",
            Duration::from_millis(50),
            Duration::from_millis(10),
            || false,
        )
        .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(e.to_string().contains("never"));
    }
}
