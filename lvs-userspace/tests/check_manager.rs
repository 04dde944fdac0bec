//! The manager's behaviour on loopback (no lab, no root): reloads by diff
//! keep running checkers, several checkers of one real server must all be
//! up, `ha_suspend` pauses only its virtual servers, a slow server does not
//! hold up another's checks.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use lvs_userspace::check::{CheckEvent, Protocol, RsKey};
use tokio::{net::TcpListener, sync::mpsc};

mod check_util;
use check_util::*;

/// A listener counting accepted connections.
async fn counting_listener(addr: &str) -> Result<(SocketAddr, Arc<AtomicU64>)> {
    let l = TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            n2.fetch_add(1, Ordering::Relaxed);
            drop(s);
        }
    });
    Ok((a, n))
}

/// A port nobody listens on.
async fn closed_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    Ok(l.local_addr()?.port())
}

fn key(vs_port: u16, rs: SocketAddr) -> RsKey {
    RsKey {
        vs_addr: "198.18.0.100".parse().unwrap(),
        vs_port,
        proto: Protocol::Tcp,
        rs_addr: rs.ip(),
        rs_port: rs.port(),
    }
}

fn vs(port: u16, extra: &str, body: &str) -> String {
    format!("virtual_server 198.18.0.100 {port} {{\n delay_loop 1\n lb_kind DR\n protocol TCP\n{extra}{body}}}\n")
}

fn rs(a: SocketAddr, checkers: &str) -> String {
    format!(" real_server {} {} {{\n{checkers} }}\n", a.ip(), a.port())
}

fn tcp(extra: &str) -> String {
    format!("  TCP_CHECK {{\n   connect_timeout 1\n   retry 0\n   warmup 0\n{extra}  }}\n")
}

async fn quiet(rx: &mut mpsc::Receiver<CheckEvent>, d: Duration) -> Result<()> {
    if let Ok(Some(ev)) = tokio::time::timeout(d, rx.recv()).await {
        bail!("unexpected event {ev:?}");
    }
    Ok(())
}

async fn collect(
    rx: &mut mpsc::Receiver<CheckEvent>,
    n: usize,
    d: Duration,
) -> Result<Vec<CheckEvent>> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + d;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => out.push(ev),
            _ => bail!("got {out:?}, wanted {n} events"),
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_by_diff_all_checkers_and_ha_suspend() -> Result<()> {
    let (a, na) = counting_listener("127.0.0.1:0").await?;
    let (b, nb) = counting_listener("127.0.0.1:0").await?;
    let closed = closed_port().await?;
    // VS 80: a (one checker) and b (two checkers: b itself and a closed port).
    // VS 81 (ha_suspend): a.
    let cfg = |with_b: bool| {
        let mut s = rs(a, &tcp(""));
        if with_b {
            s += &rs(b, &(tcp("") + &tcp(&format!("   connect_port {closed}\n"))));
        }
        parse(&(vs(80, "", &s) + &vs(81, " ha_suspend\n", &rs(a, &tcp("")))))
    };
    let (mut checkers, mut rx) = start_checkers(&cfg(true));
    let mut evs = collect(&mut rx, 3, Duration::from_secs(3)).await?;
    evs.sort_by_key(|e| format!("{e:?}"));
    assert!(evs.contains(&CheckEvent::Up { rs: key(80, a) }), "{evs:?}");
    assert!(evs.contains(&CheckEvent::Up { rs: key(81, a) }), "{evs:?}");
    // b is down: one of its two checkers fails.
    assert!(
        evs.iter().any(|e| matches!(e, CheckEvent::Down { rs, reason } if *rs == key(80, b) && reason.contains("TCP_CHECK"))),
        "{evs:?}"
    );
    let st = checkers.states();
    let hb = st.iter().find(|h| h.rs == key(80, b)).unwrap();
    assert_eq!(hb.checkers, ["TCP_CHECK", "TCP_CHECK"]);
    assert!(!hb.up && hb.last_failure.is_some());

    // The same config again: nothing restarts, nothing is said.
    checkers.reconcile(&cfg(true));
    quiet(&mut rx, Duration::from_millis(1500)).await?;

    // b removed: gone from the states; a's checkers carry on.
    checkers.reconcile(&cfg(false));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(checkers.states().len(), 2);
    let nb0 = nb.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(nb.load(Ordering::Relaxed), nb0, "b is still probed");

    // ha_suspend: VS 81's checker pauses, VS 80's does not. Both probe a;
    // suspended, a gets about one probe a second instead of two.
    checkers.set_suspended(true);
    let suspended_rate = settled_rate(&na).await;
    assert!(checkers
        .states()
        .iter()
        .any(|h| h.rs == key(81, a) && h.suspended));
    checkers.set_suspended(false);
    let rate = settled_rate(&na).await;
    println!("probes of a per second: suspended {suspended_rate:.2}, resumed {rate:.2}");
    assert!(
        suspended_rate < 1.5 && rate > 1.5,
        "{suspended_rate} {rate}"
    );
    quiet(&mut rx, Duration::from_millis(100)).await?;
    checkers.shutdown().await;
    Ok(())
}

/// Connections a second to a [`counting_listener`] over 3 s, once 1.2 s
/// have let a change of the checkers take hold.
async fn settled_rate(accepted: &AtomicU64) -> f64 {
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let t = Instant::now();
    let n0 = accepted.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    (accepted.load(Ordering::Relaxed) - n0) as f64 / t.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_does_not_hold_up_another() -> Result<()> {
    // `slow` accepts TCP but never answers HTTP: its HTTP_GET waits for its
    // read timeout (3 s); `fast`'s checks go on meanwhile.
    let slow = TcpListener::bind("127.0.0.1:0").await?;
    let slow_addr = slow.local_addr()?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = slow.accept().await {
            held.push(s);
        }
    });
    let (fast, nfast) = counting_listener("127.0.0.1:0").await?;
    let http = "  HTTP_GET {\n   url {\n    path /\n   }\n   connect_timeout 3\n   retry 0\n   warmup 0\n  }\n";
    let cfg = parse(&vs(80, "", &(rs(slow_addr, http) + &rs(fast, &tcp("")))));
    let (checkers, mut rx) = start_checkers(&cfg);
    let t = Instant::now();
    let ev = collect(&mut rx, 1, Duration::from_secs(2)).await?;
    assert_eq!(ev, [CheckEvent::Up { rs: key(80, fast) }]);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        nfast.load(Ordering::Relaxed) >= 2,
        "fast was not probed meanwhile"
    );
    let ev = collect(&mut rx, 1, Duration::from_secs(3)).await?;
    assert!(
        matches!(&ev[0], CheckEvent::Down { rs, reason } if *rs == key(80, slow_addr) && reason.contains("read timeout")),
        "{ev:?}"
    );
    println!("slow server down after {:.2} s", t.elapsed().as_secs_f64());
    checkers.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn keepalived_log_lines() -> Result<()> {
    let cap = Capture::global();
    let (a, _) = counting_listener("127.0.0.1:0").await?;
    let closed = closed_port().await?;
    let dead: SocketAddr = format!("127.0.0.1:{closed}").parse()?;
    let retry1 = "  TCP_CHECK {\n   connect_timeout 1\n   retry 1\n   delay_before_retry 1\n   warmup 0\n  }\n";
    let cfg = parse(&vs(80, "", &(rs(a, &tcp("")) + &rs(dead, retry1))));
    let (checkers, mut rx) = start_checkers(&cfg);
    collect(&mut rx, 2, Duration::from_secs(4)).await?;
    checkers.shutdown().await;
    let text = cap.text();
    print!("{text}");
    let (pa, pd) = (a.port(), closed);
    for line in [
        format!("Activating healthchecker for service [127.0.0.1]:tcp:{pa} for VS [198.18.0.100]:tcp:80"),
        format!("TCP connection to [127.0.0.1]:tcp:{pa} success."),
        format!("TCP connection to [127.0.0.1]:tcp:{pd} failed."),
        // Dead from the start: the first failure decides (keepalived spends
        // the retries at start), so no "after 1 retries".
        format!("TCP_CHECK on service [127.0.0.1]:tcp:{pd} failed."),
    ] {
        assert!(text.contains(&line), "missing log line {line:?}");
    }
    Ok(())
}
