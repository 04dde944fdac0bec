//! MISC_CHECK with real scripts (no network, so no lab needed): with
//! `misc_dynamic` the script's exit code drives the real server's state and
//! weight (0 up, 1 down, 2..=255 up with weight exit − 2); a script that
//! outlives `misc_timeout` is killed (its whole process group) and reaped:
//! no zombie, no stray process.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use lvs_userspace::check::{CheckEvent, Protocol, RsKey};
use tokio::sync::mpsc;

mod check_util;
use check_util::{runtime, start_checkers, write_script, TempDir};

fn key(last: u8) -> RsKey {
    RsKey {
        vs_addr: "198.18.0.100".parse().unwrap(),
        vs_port: 80,
        proto: Protocol::Tcp,
        rs_addr: format!("198.18.0.{last}").parse().unwrap(),
        rs_port: 80,
    }
}

fn config(script: &Path, marker: &str) -> lvs_config::Config {
    let s = format!(
        "virtual_server 198.18.0.100 80 {{\n delay_loop 1\n lb_kind DR\n protocol TCP\n\
         real_server 198.18.0.11 80 {{\n  weight 1\n  MISC_CHECK {{\n   misc_path \"{} 'arg with space'\"\n   misc_dynamic\n   warmup 0\n  }}\n }}\n\
         real_server 198.18.0.12 80 {{\n  MISC_CHECK {{\n   misc_path \"/bin/sh -c 'sleep 30; echo {marker}'\"\n   misc_timeout 1\n   warmup 0\n  }}\n }}\n}}\n",
        script.display()
    );
    let parsed = lvs_config::parse_str("check_misc.conf", &s, &Default::default());
    assert!(!parsed.diagnostics.has_errors(), "{:?}", parsed.diagnostics);
    parsed.config
}

async fn next_event(rx: &mut mpsc::Receiver<CheckEvent>, timeout: Duration) -> Result<CheckEvent> {
    match tokio::time::timeout(timeout, rx.recv()).await {
        Ok(Some(ev)) => Ok(ev),
        Ok(None) => bail!("channel closed"),
        Err(_) => bail!("no event within {timeout:?}"),
    }
}

/// rs 11 (the `misc_dynamic` one) at `weight`.
fn weight_of_11(weight: u32) -> CheckEvent {
    CheckEvent::Weight {
        rs: key(11),
        weight,
    }
}

/// Makes rs 11's script exit with `status` from now on, then waits for
/// `want` (see [`expect`]).
async fn exits_with(
    code: &Path,
    status: u8,
    rx: &mut mpsc::Receiver<CheckEvent>,
    want: &[CheckEvent],
) -> Result<()> {
    std::fs::write(code, status.to_string())?;
    expect(rx, want).await
}

/// Waits for the events of `want` (in any order), ignoring others of rs2.
async fn expect(rx: &mut mpsc::Receiver<CheckEvent>, want: &[CheckEvent]) -> Result<()> {
    let mut want = want.to_vec();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !want.is_empty() {
        let ev = next_event(rx, deadline.saturating_duration_since(Instant::now())).await?;
        if let Some(i) = want.iter().position(|w| *w == ev) {
            want.remove(i);
            println!("  {ev:?}");
        } else if matches!(&ev, CheckEvent::Down { rs, .. } | CheckEvent::Up { rs } if *rs == key(12))
        {
            continue;
        } else {
            bail!("unexpected {ev:?}, waiting for {want:?}");
        }
    }
    Ok(())
}

/// Children of this process that are zombies, and processes whose command
/// line contains `marker`.
fn leftovers(marker: &str) -> (usize, usize) {
    let me = std::process::id().to_string();
    let (mut zombies, mut strays) = (0, 0);
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let p = e.path();
        if let Ok(stat) = std::fs::read_to_string(p.join("stat")) {
            // pid (comm) state ppid …
            if let Some(rest) = stat.rsplit_once(") ").map(|x| x.1) {
                let f: Vec<&str> = rest.split(' ').collect();
                if f.len() > 1 && f[1] == me && f[0] == "Z" {
                    zombies += 1;
                }
            }
        }
        if let Ok(cmd) = std::fs::read(p.join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(marker) {
                strays += 1;
            }
        }
    }
    (zombies, strays)
}

#[test]
fn misc_dynamic_weight_and_timeout() -> Result<()> {
    let dir = TempDir::new("check-misc")?;
    let (code, script) = (dir.join("code"), dir.join("check.sh"));
    write_script(
        &script,
        &format!(
            "[ \"$1\" = 'arg with space' ] || exit 1\nexit $(cat {})\n",
            code.display()
        ),
    )?;
    std::fs::write(&code, "0")?;
    let marker = format!("lvs-misc-marker-{}", std::process::id());

    let rt = runtime()?;
    let result = rt.block_on(async {
        let t = Instant::now();
        let (checkers, mut rx) = start_checkers(&config(&script, &marker));
        expect(&mut rx, &[CheckEvent::Up { rs: key(11) }]).await?;

        // The sleeping script is killed after misc_timeout: Down.
        let ev = loop {
            let ev = next_event(&mut rx, Duration::from_secs(5)).await?;
            if matches!(&ev, CheckEvent::Down { rs, .. } if *rs == key(12)) {
                break ev;
            }
        };
        println!(
            "timed-out script: {ev:?} after {:.2} s",
            t.elapsed().as_secs_f64()
        );
        assert!(format!("{ev:?}").contains("timed out"));

        exits_with(&code, 5, &mut rx, &[weight_of_11(3)]).await?;
        // Down resets the dynamic weight to the configured one (keepalived),
        // so a later exit 0 does not leave the last dynamic weight.
        exits_with(
            &code,
            1,
            &mut rx,
            &[
                weight_of_11(1),
                CheckEvent::Down {
                    rs: key(11),
                    reason: "MISC_CHECK: script exited with status 1".into(),
                },
            ],
        )
        .await?;
        exits_with(
            &code,
            7,
            &mut rx,
            &[weight_of_11(5), CheckEvent::Up { rs: key(11) }],
        )
        .await?;
        // Exit 0 after a dynamic weight: back to the configured weight.
        exits_with(&code, 0, &mut rx, &[weight_of_11(1)]).await?;
        let h = checkers.states();
        assert_eq!(h.len(), 2);
        assert!(h.iter().all(|s| s.checkers == ["MISC_CHECK"]));
        checkers.shutdown().await;
        // A script killed by the shutdown is reaped by the runtime's
        // SIGCHLD handling, as in lvsd, whose runtime outlives its checkers:
        // keep this runtime alive (bounded) until nothing is left.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while leftovers(&marker) != (0, 0) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::Ok(())
    });
    drop(rt);
    // Killed scripts are reaped: no zombie, no stray `sleep` of ours.
    std::thread::sleep(Duration::from_millis(300));
    let (zombies, strays) = leftovers(&marker);
    drop(dir);
    result?;
    assert_eq!(zombies, 0, "zombie children left");
    assert_eq!(strays, 0, "script processes left running");
    Ok(())
}
