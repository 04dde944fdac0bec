//! The active-active scenario behind an ECMP router, shared by the
//! `ecmp_lab` test and `cargo xtask demo --ecmp`.

use std::{
    collections::HashSet,
    net::{Ipv4Addr, SocketAddrV4},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use super::{own_bin, Bpffs, Director, Streamer};
use anyhow::{ensure, Context, Result};
use lvs_testkit::{
    frr::{EcmpRouter, EcmpRouterSpec},
    http_get, wait_until, KeepAliveClient, Lab, LabSpec,
};

const DIRECTORS: usize = 3;
const LONG_LIVED: usize = 300;
/// Client addresses behind the router (198.19.200.1 …).
const CLIENT_ADDRS: u8 = 60;
const INSTANCES: [&str; DIRECTORS] = ["lab", "lab2", "lab3"];

fn config(lab: &Lab, i: usize) -> String {
    let dir = lab.log_dir().display().to_string();
    let mut s = format!(
        "bgp_announce {{\n daemon bird\n socket {dir}/bird{i}.ctl\n config_file {dir}/bird{i}.conf\n \
         router_id {}\n local_as 65001\n neighbor {} as 65000\n bfd on\n bfd_interval 0.1\n withdraw_delay 1\n}}\n\
         virtual_server {} 80 {{\n delay_loop 1\n lb_algo mh\n lb_kind DR\n protocol TCP\n",
        lab.director_addr(i),
        lvs_testkit::ROUTER_ADDR,
        lab.vip(),
    );
    for r in 0..lab.real_servers() {
        s += &format!(
            " real_server {} 80 {{\n  weight 1\n  TCP_CHECK {{\n   connect_timeout 1\n   retry 0\n  }}\n }}\n",
            lab.real_server_addr(r)
        );
    }
    s + "}\n"
}

fn client_addr(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, 200, 1 + (k % CLIENT_ADDRS as usize) as u8)
}

/// Short requests, one at a time from rotating client addresses, each
/// recorded as (start, duration, ok).
struct Shorts {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(Instant, Duration, bool)>>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Shorts {
    fn start(far: &str, vip: SocketAddrV4) -> Result<Shorts> {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (s, l) = (stop.clone(), log.clone());
        let thread = lvs_testkit::netns::spawn_thread(far, move || {
            let mut k = 0usize;
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = http_get(client_addr(k), vip, Duration::from_secs(3)).is_ok();
                l.lock().unwrap().push((t, t.elapsed(), ok));
                k += 7;
                std::thread::sleep(Duration::from_millis(10));
            }
        })?;
        Ok(Shorts {
            stop,
            log,
            thread: Some(thread),
        })
    }

    /// Requests begun in [from, to): (total, failed, delayed over 300 ms,
    /// seconds from `from` to the end of the last affected one).
    fn between(&self, from: Instant, to: Instant) -> (usize, usize, usize, f64) {
        let log = self.log.lock().unwrap();
        let mut r = (0, 0, 0, 0.0f64);
        for (t, d, ok) in log.iter().filter(|(t, _, _)| *t >= from && *t < to) {
            r.0 += 1;
            let slow = *d > Duration::from_millis(300);
            if !ok {
                r.1 += 1;
            } else if slow {
                r.2 += 1;
            }
            if !ok || slow {
                r.3 = r.3.max((*t + *d).duration_since(from).as_secs_f64());
            }
        }
        r
    }

    fn finish(mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| anyhow::anyhow!("short requests panicked"))??;
        }
        Ok(())
    }
}

/// Waits until the router's FIB has `n` next hops for the VIP; how long.
fn wait_hops(lab: &Lab, router: &EcmpRouter, n: usize, within: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    wait_until(
        &format!("{n} next hops for the VIP at the router"),
        within,
        Duration::from_millis(10),
        || router.next_hops(lab, lab.vip()).is_ok_and(|h| h.len() == n),
    )
    .with_context(|| format!("router's next hops: {:?}", router.next_hops(lab, lab.vip())))?;
    Ok(t0.elapsed())
}

/// Connections each director scheduled so far (first-packet and sloppy).
fn scheduled(ds: &[Director]) -> Vec<u64> {
    ds.iter()
        .map(|d| {
            d.inspect()
                .and_then(|i| Ok(i.services()?))
                .map(|s| s.iter().map(|v| v.stats.conns).sum())
                .unwrap_or(0)
        })
        .collect()
}

/// How many of the long-lived connections (client address, port) each
/// director has in its connection table.
fn known(ds: &[Director], keys: &HashSet<(Ipv4Addr, u16)>) -> Vec<usize> {
    ds.iter()
        .map(|d| {
            d.inspect()
                .and_then(|i| Ok(i.conns()?))
                .map(|cs| {
                    cs.iter()
                        .filter(|c| {
                            !c.half_open
                                && keys.contains(&(
                                    Ipv4Addr::from(u32::from_be(c.key.src_be)),
                                    u16::from_be(c.key.sport_be),
                                ))
                        })
                        .count()
                })
                .unwrap_or(0)
        })
        .collect()
}

fn lvsadm_daemon(lab: &Lab, i: usize) -> Result<String> {
    let status = lab.log_dir().join(format!("status{i}.json"));
    let lvsadm = own_bin("lvsadm");
    lab.exec_ok(
        lab.director_ns(i),
        &[
            lvsadm.to_str().context("path")?,
            "--daemon",
            "--status-file",
            status.to_str().context("path")?,
        ],
    )
}

/// The whole scenario; `say` gets each measurement as it is made. Fails
/// on the first broken promise.
pub fn scenario(say: &dyn Fn(String)) -> Result<()> {
    let t_test = Instant::now();
    let mut lab = Lab::create(LabSpec {
        directors: DIRECTORS,
        director_holds_vip: false,
        ..LabSpec::sized(3, 1)
    })?;
    lab.add_routed_client(1500)?;
    let far = lab.routed_client_ns().context("far client")?.to_owned();
    let more: Vec<Ipv4Addr> = (1..CLIENT_ADDRS as usize).map(client_addr).collect();
    lab.add_addrs(&far, "eth0", &more, 24)?;
    let router = EcmpRouter::start(
        &lab,
        &EcmpRouterSpec {
            peers: (0..DIRECTORS).map(|i| lab.director_addr(i)).collect(),
            peer_as: 65001,
            bfd_interval: Duration::from_millis(100),
        },
    )?;

    let bpffs = Bpffs::mount(&lab)?;
    let mut ds = Vec::new();
    for (i, instance) in INSTANCES.iter().enumerate() {
        let mut d = Director::new(&lab, &bpffs.0, &config(&lab, i))?;
        d.index = i;
        d.instance = (*instance).into();
        let status = lab.log_dir().join(format!("status{i}.json"));
        d.extra_args = vec![
            "--interface".into(),
            lab.director_if().into(),
            "--status-file".into(),
            status.display().to_string(),
            "--metrics".into(),
            format!("{}:9100", lab.director_addr(i)),
        ];
        d.start()?;
        ds.push(d);
    }
    for d in &ds {
        d.wait_log("bgp_announce: announcing", Duration::from_secs(15))?;
    }
    let up = wait_hops(&lab, &router, DIRECTORS, Duration::from_secs(20))?;
    let hops = router.next_hops(&lab, lab.vip())?;
    say(format!(
        "router: {} equal-cost next hops for {} ({hops:?}), {:.2} s after the last announcement",
        hops.len(),
        lab.vip(),
        up.as_secs_f64()
    ));
    ensure!(
        hops == (0..DIRECTORS)
            .map(|i| lab.director_addr(i))
            .collect::<Vec<_>>(),
        "every director is a next hop: {hops:?}"
    );
    // What an operator checks on a director.
    wait_until(
        "lvsadm --daemon shows the sessions up",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            lvsadm_daemon(&lab, 0).is_ok_and(|o| {
                o.contains("announced 198.18.0.100/32") && o.contains("Established, BFD Up")
            })
        },
    )?;
    say(format!(
        "lvsadm --daemon on dir1:\n{}",
        lvsadm_daemon(&lab, 0)?
    ));
    let metrics = lab.exec_ok(
        lab.director_ns(0),
        &[
            "curl",
            "-s",
            &format!("http://{}:9100/metrics", lab.director_addr(0)),
        ],
    )?;
    ensure!(
        metrics.contains("lvs_bgp_announced{vip=\"198.18.0.100\"} 1"),
        "metrics show the announcement"
    );
    ensure!(metrics.contains("lvs_bgp_session_up{neighbor=\"198.18.0.250\",session=\"bfd\"} 1"));

    // 300 long-lived connections from 60 client addresses.
    let vip = lab.service();
    let before = scheduled(&ds);
    let conns: Vec<(KeepAliveClient, String)> = lab.run_in_netns(&far, || {
        (0..LONG_LIVED)
            .map(|k| -> Result<_> {
                let mut c =
                    KeepAliveClient::connect(Some(client_addr(k)), vip, Duration::from_secs(5))?;
                let s = c.get()?;
                Ok((c, s))
            })
            .collect::<Result<Vec<_>>>()
    })??;
    let after = scheduled(&ds);
    let per_dir: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let mut per_rs = std::collections::BTreeMap::new();
    for (_, s) in &conns {
        *per_rs.entry(s.clone()).or_insert(0usize) += 1;
    }
    say(format!(
        "spread of {LONG_LIVED} connections: directors {per_dir:?}, real servers {per_rs:?}"
    ));
    ensure!(
        per_dir.iter().all(|n| *n > 0),
        "ECMP spreads over every director: {per_dir:?}"
    );
    ensure!(
        per_rs.len() == 3,
        "mh spreads over every real server: {per_rs:?}"
    );

    let keys: HashSet<(Ipv4Addr, u16)> = conns
        .iter()
        .filter_map(|(c, _)| match c.local_addr().ok()? {
            std::net::SocketAddr::V4(a) => Some((*a.ip(), a.port())),
            _ => None,
        })
        .collect();
    let shorts = Shorts::start(&far, vip)?;
    let victim = DIRECTORS - 1;
    let mut streamer = Streamer::start(conns);
    let phase = |name: &str,
                 streamer: Streamer,
                 t_ev: Instant,
                 settle: Duration|
     -> Result<(Streamer, (usize, usize, usize, f64))> {
        std::thread::sleep(settle);
        let (broken, done, conns) = streamer.finish();
        let shorts_r = shorts.between(t_ev, Instant::now());
        say(format!(
            "{name}: {done} requests on {LONG_LIVED} long-lived connections, {broken} failed or moved; \
             short requests: {} sent, {} failed, {} delayed > 300 ms, last affected one ended {:.2} s after the event",
            shorts_r.0, shorts_r.1, shorts_r.2, shorts_r.3
        ));
        ensure!(
            broken == 0,
            "{name}: {broken} of {done} requests on established connections broke"
        );
        ensure!(
            shorts_r.1 == 0,
            "{name}: {} short requests failed",
            shorts_r.1
        );
        Ok((Streamer::start(conns), shorts_r))
    };
    std::thread::sleep(Duration::from_secs(1));

    // 1. lvsd killed -9: BIRD dies with it, the router withdraws at once.
    let held = known(&ds, &keys);
    let t_ev = Instant::now();
    ds[victim].signal(libc::SIGKILL)?;
    let gone = wait_hops(&lab, &router, DIRECTORS - 1, Duration::from_secs(5))?;
    say(format!(
        "kill -9 lvsd on dir{}: router down to 2 next hops after {:.3} s",
        victim + 1,
        gone.as_secs_f64()
    ));
    let (s, _) = phase("kill -9", streamer, t_ev, Duration::from_secs(2))?;
    streamer = s;
    let now = known(&ds, &keys);
    say(format!(
        "long-lived connections in each director's table: before {held:?}, after {now:?} (dir{}'s moved, and some of the others': the router's hash-threshold ECMP re-divides its hash space; all on the same real servers)",
        victim + 1
    ));
    ensure!(
        (0..victim).map(|i| now[i] - held[i]).sum::<usize>() >= held[victim],
        "the other directors picked up dir{}'s connections mid-stream: {held:?} -> {now:?}",
        victim + 1
    );

    // ... and back (it re-adopts its data path).
    let t_ev = Instant::now();
    ds[victim].start()?;
    let back = wait_hops(&lab, &router, DIRECTORS, Duration::from_secs(15))?;
    say(format!(
        "lvsd restarted: 3 next hops again after {:.2} s",
        back.as_secs_f64()
    ));
    let (s, _) = phase(
        "return after kill -9",
        streamer,
        t_ev,
        Duration::from_secs(2),
    )?;
    streamer = s;

    // 2. The link is cut (at the switch): only BFD can tell the router;
    //    then restored.
    let (sw, peer) = lab.director_peer(victim);
    let (sw, peer) = (sw.to_owned(), peer.to_owned());
    for (link, hops, within_s, settle_s) in
        [("down", DIRECTORS - 1, 5, 3), ("up", DIRECTORS, 20, 2)]
    {
        let t_ev = Instant::now();
        lab.ip_batch(&sw, &format!("link set {peer} {link}\n"))?;
        let took = wait_hops(&lab, &router, hops, Duration::from_secs(within_s))?;
        say(format!(
            "link {link}: {hops} next hops at the router after {:.3} s (BFD 3 x 100 ms)",
            took.as_secs_f64()
        ));
        let what = format!("link {link}");
        let (s, r) = phase(&what, streamer, t_ev, Duration::from_secs(settle_s))?;
        streamer = s;
        ensure!(
            link == "up" || r.3 <= 2.5,
            "link cut: short requests affected for {:.2} s (BFD detection plus one SYN retransmission)",
            r.3
        );
    }

    // 3. Graceful stop: withdraw, drain, then detach.
    let t_ev = Instant::now();
    ds[victim].signal(libc::SIGTERM)?;
    let gone = wait_hops(&lab, &router, DIRECTORS - 1, Duration::from_secs(5))?;
    say(format!(
        "SIGTERM: withdrawn after {:.3} s",
        gone.as_secs_f64()
    ));
    ds[victim].wait_log("Stopped lvsd", Duration::from_secs(10))?;
    let (streamer, _) = phase("graceful stop", streamer, t_ev, Duration::from_secs(1))?;
    // (Delays are reported above, not asserted: on a busy machine a request
    // can take 300 ms for reasons of its own.)
    ds[victim]
        .log()
        .find("withdrawing 198.18.0.100/32")
        .context("the stopping lvsd withdrew the VIP")?;

    let (broken, _, _) = streamer.finish();
    shorts.finish()?;
    ensure!(broken == 0);

    // 4. Every real server down: the directors withdraw (a router with no
    //    route answers clients at once instead of blackholing them); one
    //    back: announced again.
    for i in 0..lab.real_servers() {
        lab.stop_real_server_httpd(i)?;
    }
    let t_ev = Instant::now();
    wait_hops(&lab, &router, 0, Duration::from_secs(10))?;
    say(format!(
        "every real server down: VIP withdrawn by both directors after {:.2} s",
        t_ev.elapsed().as_secs_f64()
    ));
    // (The status file is rewritten every second.)
    wait_until(
        "lvsadm --daemon shows the VIP withdrawn",
        Duration::from_secs(5),
        Duration::from_millis(100),
        || {
            lvsadm_daemon(&lab, 0)
                .is_ok_and(|o| o.contains("announced none; withdrawn 198.18.0.100/32"))
        },
    )
    .with_context(|| {
        format!(
            "lvsadm --daemon:\n{}",
            lvsadm_daemon(&lab, 0).unwrap_or_default()
        )
    })?;
    lab.start_real_server_httpd(0)?;
    let t_ev = Instant::now();
    wait_hops(&lab, &router, DIRECTORS - 1, Duration::from_secs(10))?;
    say(format!(
        "one real server back: announced again after {:.2} s",
        t_ev.elapsed().as_secs_f64()
    ));
    say(format!(
        "ecmp lab done in {:.1} s",
        t_test.elapsed().as_secs_f64()
    ));
    Ok(())
}
