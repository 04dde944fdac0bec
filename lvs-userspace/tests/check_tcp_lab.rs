//! TCP_CHECK in the lab, the checkers alone (no data path): the checkers
//! run in the director's namespace against the real servers'
//! `lvs-lab-httpd`. Stopping one is reported `Down` within keepalived's
//! bound `delay_loop + connect_timeout × (retry+1) + delay_before_retry ×
//! retry` (measured and printed); starting it again is `Up` within one
//! `delay_loop`. A reload with the same config keeps the checkers (no new
//! event); `alpha` starts a server down.
//!
//! Needs root, `ip`, `ethtool` and `lvs-lab-httpd`
//! (`cargo build -p lvs-testkit --bins` or `LVS_LAB_HTTPD`).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use lvs_userspace::check::{CheckEvent, Proto, RsKey};

mod check_util;
use check_util::*;

const DELAY_LOOP: u64 = 1;
const CONNECT_TIMEOUT: u64 = 1;
const RETRY: u64 = 1;
const DELAY_BEFORE_RETRY: u64 = 1;

fn config(alpha_rs3: bool) -> lvs_config::Config {
    let mut s = String::from(
        "virtual_server 198.18.0.100 80 {\n lb_algo wrr\n lb_kind DR\n protocol TCP\n",
    );
    s += &format!(" delay_loop {DELAY_LOOP}\n");
    for n in 1..=3 {
        let alpha = if n == 3 && alpha_rs3 {
            "   alpha\n"
        } else {
            ""
        };
        s += &format!(
            " real_server 198.18.0.{} 80 {{\n  weight 1\n  TCP_CHECK {{\n   connect_timeout {CONNECT_TIMEOUT}\n   retry {RETRY}\n   delay_before_retry {DELAY_BEFORE_RETRY}\n   warmup 0\n{alpha}  }}\n }}\n",
            10 + n
        );
    }
    s += "}\n";
    parse(&s)
}

fn rs(n: u8) -> RsKey {
    key(Proto::Tcp, 80, 10 + n, 80)
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn tcp_check_down_within_bound_up_within_delay_loop() -> Result<()> {
    let lab = small_lab(3)?;
    // rs3 is dead from the start: with alpha it is Down at once.
    lab.stop_real_server_httpd(2)?;
    with_checkers(
        &lab,
        lab.director_ns(0),
        &config(true),
        async |checkers, rx| {
            // alpha: down before any check.
            wait_event(
                rx,
                Duration::from_secs(1),
                "rs3 Down (alpha)",
                |e| matches!(e, CheckEvent::Down { rs: r, .. } if *r == rs(3)),
            )
            .await?;
            // rs1 and rs2 up, in any order.
            let mut waiting = vec![rs(1), rs(2)];
            while !waiting.is_empty() {
                let (ev, _) = wait_event(rx, Duration::from_secs(3), "rs1 and rs2 Up", |e| {
                    matches!(e, CheckEvent::Up { .. })
                })
                .await?;
                if let CheckEvent::Up { rs: r } = ev {
                    waiting.retain(|w| *w != r);
                }
            }
            let states = checkers.states();
            assert_eq!(states.len(), 3);
            assert!(states.iter().all(|s| s.checkers == ["TCP_CHECK"]));

            // A reload with the same config keeps everything: no event.
            checkers.reconcile(&config(true));
            if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(2500), rx.recv()).await
            {
                bail!("unexpected event after a no-op reload: {ev:?}");
            }

            // Stop rs1's server: Down within the bound.
            let bound = DELAY_LOOP + CONNECT_TIMEOUT * (RETRY + 1) + DELAY_BEFORE_RETRY * RETRY;
            lab.stop_real_server_httpd(0)?;
            let (ev, took) = wait_event(
                rx,
                Duration::from_secs(bound + 2),
                "rs1 Down",
                |e| matches!(e, CheckEvent::Down { rs: r, .. } if *r == rs(1)),
            )
            .await?;
            println!(
                "TCP_CHECK: rs1 Down {:.2} s after its server stopped (bound {bound} s): {ev:?}",
                took.as_secs_f64()
            );
            // Slack for a loaded 2-core machine (builds run beside the tests).
            assert!(took <= Duration::from_secs(bound) + Duration::from_millis(1000));
            let h = checkers
                .states()
                .into_iter()
                .find(|s| s.rs == rs(1))
                .context("rs1 state")?;
            assert!(!h.up && h.last_failure.is_some(), "{h:?}");
            assert!(h.last_reason.as_deref().unwrap_or("").contains("TCP_CHECK"));

            // Start it again: Up within one delay_loop.
            lab.start_real_server_httpd(0)?;
            let (_, took) = wait_event(
                rx,
                Duration::from_secs(DELAY_LOOP + 2),
                "rs1 Up",
                |e| matches!(e, CheckEvent::Up { rs: r } if *r == rs(1)),
            )
            .await?;
            println!(
                "TCP_CHECK: rs1 Up {:.2} s after its server started (bound {DELAY_LOOP} s)",
                took.as_secs_f64()
            );
            assert!(took <= Duration::from_secs(DELAY_LOOP) + Duration::from_millis(1000));

            // rs3 comes up once its server runs.
            lab.start_real_server_httpd(2)?;
            wait_event(
                rx,
                Duration::from_secs(DELAY_LOOP + 2),
                "rs3 Up",
                |e| matches!(e, CheckEvent::Up { rs: r } if *r == rs(3)),
            )
            .await?;

            // A reload without alpha on rs3 changes only rs3's checker.
            checkers.reconcile(&config(false));
            assert_eq!(checkers.states().len(), 3);
            Ok(())
        },
    )
}
