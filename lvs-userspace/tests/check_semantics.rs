//! keepalived's checker semantics where they decide whether traffic goes
//! to a dead server (issue 17, items 9–11), the checkers alone:
//!
//! - a server dead when the checkers start leaves after its first failed
//!   check, not after its retries (keepalived spends them at start): with
//!   `retry 3`, `delay_before_retry 2`, a refused port is down at once and
//!   an address that never answers within one `connect_timeout`;
//! - a checker that cannot bind its `bindto` address (absent on this host)
//!   leaves the server's state alone and logs the error once;
//! - `misc_dynamic`: weight 0 (exit 2), down (exit 1), up (exit 0) gives
//!   back the configured weight.
//!
//! Needs root, `ip`, `ethtool` and `lvs-lab-httpd`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lvs_userspace::check::{CheckEvent, Checkers, Proto, RsKey};
use tokio::sync::mpsc;

mod check_util;
use check_util::*;

fn key(rs: &str) -> RsKey {
    RsKey {
        vs_addr: "198.18.0.100".parse().unwrap(),
        vs_port: 80,
        proto: Proto::Tcp,
        rs_addr: rs.parse().unwrap(),
        rs_port: 80,
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
// Slack for a loaded 2-core machine (builds run beside the tests).
const SLACK: Duration = Duration::from_millis(1000);

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn dead_at_start_leaves_after_one_check_and_bind_errors_change_nothing() -> Result<()> {
    let lab = small_lab(2)?;
    lab.stop_real_server_httpd(0)?;
    let tcp = |extra: &str| {
        format!(
            "TCP_CHECK {{\n   connect_timeout 1\n   retry 3\n   delay_before_retry 2\n   warmup 0\n{extra}  }}"
        )
    };
    // .11: its server is stopped (refused); .99: nobody has the address
    // (no answer at all); .12: alive, but the checker binds an address
    // this host does not have.
    let cfg = parse(&format!(
        "virtual_server 198.18.0.100 80 {{\n delay_loop 1\n lb_kind DR\n protocol TCP\n\
         real_server 198.18.0.11 80 {{\n  {}\n }}\n\
         real_server 198.18.0.99 80 {{\n  {}\n }}\n\
         real_server 198.18.0.12 80 {{\n  {}\n }}\n}}\n",
        tcp(""),
        tcp(""),
        tcp("   bindto 198.18.0.250\n"),
    ));
    let (refused, silent, unbindable) =
        (key("198.18.0.11"), key("198.18.0.99"), key("198.18.0.12"));
    let cap = Capture::default();
    let writer = cap.clone();
    lab.run_in_netns(lab.director_ns(0), || -> Result<()> {
        // One thread, so the log capture sees every checker task.
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let (tx, mut rx) = mpsc::channel(64);
            let mut checkers = Checkers::new(tx);
            let t0 = Instant::now();
            checkers.reconcile(&cfg);
            let mut down = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while down.len() < 2 {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(CheckEvent::Down { rs, reason })) => {
                        let took = t0.elapsed();
                        println!(
                            "{} down after {:.2} s: {reason}",
                            rs.rs_addr,
                            took.as_secs_f64()
                        );
                        if rs == unbindable {
                            bail!("a local bind error took the server down: {reason}");
                        }
                        down.push((rs, took));
                    }
                    Ok(Some(ev)) => bail!("unexpected {ev:?}"),
                    Ok(None) => bail!("channel closed"),
                    Err(_) => bail!("timed out; down so far: {down:?}"),
                }
            }
            for (rs, took) in &down {
                // Old behaviour: 3 retries × (2 s + 1 s) ≈ 9–12 s.
                let bound = if *rs == refused {
                    SLACK
                } else {
                    CONNECT_TIMEOUT + SLACK
                };
                assert!(*took <= bound, "{rs:?} took {took:?}, bound {bound:?}");
            }
            assert!(
                down.iter().any(|(r, _)| *r == refused) && down.iter().any(|(r, _)| *r == silent)
            );
            // The unbindable checker keeps failing locally: nothing changes.
            if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(3000), rx.recv()).await
            {
                bail!("unexpected event: {ev:?}");
            }
            let h = checkers
                .states()
                .into_iter()
                .find(|h| h.rs == unbindable)
                .context("unbindable state")?;
            assert!(h.up && !h.checked && h.last_failure.is_none(), "{h:?}");
            checkers.shutdown().await;
            Ok(())
        })
    })??;
    let text = String::from_utf8(cap.0.lock().unwrap().clone())?;
    let bind_lines = text
        .lines()
        .filter(|l| l.contains("socket bind failed. Rescheduling."))
        .collect::<Vec<_>>();
    println!("{}", bind_lines.join("\n"));
    assert_eq!(
        bind_lines.len(),
        1,
        "logged once over several attempts:\n{text}"
    );
    assert!(bind_lines[0].contains("198.18.0.250"), "{}", bind_lines[0]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misc_dynamic_down_then_up_restores_configured_weight() -> Result<()> {
    let dir = TempDir::new("misc-dyn")?;
    let (code, script) = (dir.join("code"), dir.join("check.sh"));
    write_script(&script, &format!("exit $(cat {})\n", code.display()))?;
    std::fs::write(&code, "0")?;
    let cfg = parse(&format!(
        "virtual_server 198.18.0.100 80 {{\n delay_loop 1\n lb_kind DR\n protocol TCP\n\
         real_server 198.18.0.11 80 {{\n  weight 7\n  MISC_CHECK {{\n   misc_path {}\n   misc_dynamic\n   warmup 0\n  }}\n }}\n}}\n",
        script.display()
    ));
    let k = key("198.18.0.11");
    let (checkers, mut rx) = start_checkers(&cfg);
    let mut next = async |what: &str| -> Result<CheckEvent> {
        match tokio::time::timeout(Duration::from_secs(4), rx.recv()).await {
            Ok(Some(ev)) => Ok(ev),
            _ => bail!("no event: waiting for {what}"),
        }
    };
    assert_eq!(next("up").await?, CheckEvent::Up { rs: k.clone() });
    std::fs::write(&code, "2")?; // up, weight 0
    assert_eq!(
        next("weight 0").await?,
        CheckEvent::Weight {
            rs: k.clone(),
            weight: 0
        }
    );
    std::fs::write(&code, "1")?; // down: the dynamic weight goes
    assert_eq!(
        next("weight 7").await?,
        CheckEvent::Weight {
            rs: k.clone(),
            weight: 7
        }
    );
    assert!(matches!(next("down").await?, CheckEvent::Down { .. }));
    std::fs::write(&code, "0")?; // up again, at the configured weight
    assert_eq!(next("up again").await?, CheckEvent::Up { rs: k.clone() });
    let h = checkers
        .states()
        .into_iter()
        .find(|h| h.rs == k)
        .context("state")?;
    assert!(h.up && h.dynamic_weight.is_none(), "{h:?}");
    checkers.shutdown().await;
    Ok(())
}
