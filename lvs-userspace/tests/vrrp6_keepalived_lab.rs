//! VRRPv3 over IPv6 (RFC 5798) against Debian's keepalived 2.2.7 in the
//! lab: an instance whose VIP is IPv6 (2001:2::100/64) runs over IPv6 on
//! both (adverts to ff02::12 from the link-local address, hop limit 255).
//! keepalived MASTER → ours takes over when it dies and yields when it
//! returns; ours MASTER → keepalived takes over at our priority 0. The gap
//! is measured as for IPv4: `ping -6` every 10 ms from the client to the
//! VIP, which must answer at the new master after its unsolicited
//! neighbour advertisement moved the client's neighbour entry.
//!
//! IPv6 is off in the lab's namespaces; these tests turn it on for the
//! directors' and the client's interface (without DAD, so the link-local
//! addresses are usable at once). Needs root, `ip`, `ping`, `keepalived`.

mod vrrp_util;

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lvs_testkit::{Lab, Pid};
use lvs_userspace::netlink::{self, IfAddr6};
use vrrp_util::*;

const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x100);
const CLIENT6: &str = "2001:2::50";

fn have_keepalived() -> bool {
    std::path::Path::new("/usr/sbin/keepalived").exists()
}

/// IPv6 on for `ifname` in `ns`: no DAD (link-local usable at once), then
/// enabled (the kernel makes the link-local address), plus `addr`/64.
fn enable_ipv6(lab: &Lab, ns: &str, ifname: &str, addr: &str) {
    let name = ifname.to_string();
    lab.run_in_netns(ns, move || {
        for (k, v) in [
            ("net.ipv6.conf.all.accept_dad".to_string(), "0"),
            (format!("net.ipv6.conf.{name}.accept_dad"), "0"),
            ("net.ipv6.conf.all.disable_ipv6".to_string(), "0"),
            (format!("net.ipv6.conf.{name}.disable_ipv6"), "0"),
        ] {
            lvs_testkit::netns::write_sysctl(&k, v).unwrap();
        }
    })
    .unwrap();
    lab.ip_batch(ns, &format!("addr add {addr}/64 dev {ifname} nodad\n"))
        .expect("IPv6 address");
}

fn lab6() -> Lab {
    let lab = lab();
    for d in 0..2 {
        enable_ipv6(
            &lab,
            lab.director_ns(d),
            "bond0",
            &format!("2001:2::{}", d + 2),
        );
    }
    enable_ipv6(&lab, lab.client_ns(), "eth0", CLIENT6);
    // The link-local addresses exist once the interfaces are up with IPv6.
    for d in 0..2 {
        lvs_testkit::wait_until(
            "a link-local address on bond0",
            Duration::from_secs(5),
            Duration::from_millis(20),
            || link_local(&lab, d).is_some(),
        )
        .unwrap();
    }
    lab
}

fn link_local(lab: &Lab, dir: usize) -> Option<Ipv6Addr> {
    lab.run_in_netns(lab.director_ns(dir), || {
        let l = netlink::link_by_name("bond0").unwrap();
        netlink::addrs6(l.index)
            .unwrap()
            .into_iter()
            .find(IfAddr6::is_link_local)
            .map(|a| a.addr)
    })
    .unwrap()
}

/// The IPv6 VIP on director `dir`'s bond0, if present.
fn vip6_on(lab: &Lab, dir: usize) -> Option<IfAddr6> {
    lab.run_in_netns(lab.director_ns(dir), || {
        let l = netlink::link_by_name("bond0").unwrap();
        netlink::addrs6(l.index)
            .unwrap()
            .into_iter()
            .find(|a| a.addr == VIP6)
    })
    .unwrap()
}

fn wait_master6(lab: &Lab, master: usize, timeout: Duration) {
    let t0 = Instant::now();
    lvs_testkit::wait_until(
        &format!("dir{} to hold the IPv6 VIP alone", master + 1),
        timeout,
        Duration::from_millis(20),
        || vip6_on(lab, master).is_some() && vip6_on(lab, 1 - master).is_none(),
    )
    .unwrap();
    let a = vip6_on(lab, master).unwrap();
    assert_eq!(a.prefix_len, 64);
    eprintln!(
        "dir{} holds the IPv6 VIP after {:?}",
        master + 1,
        t0.elapsed()
    );
}

fn drop_vip6(lab: &Lab, dir: usize) {
    lab.run_in_netns(lab.director_ns(dir), || {
        let l = netlink::link_by_name("bond0").unwrap();
        netlink::addr6_del(
            l.index,
            &IfAddr6 {
                addr: VIP6,
                prefix_len: 64,
                nodad: false,
            },
        )
        .unwrap();
    })
    .unwrap();
}

/// An IPv6 instance (keepalived decides the family from the VIP: v3).
fn conf6(state: &str, priority: u8, advert_int: &str) -> String {
    format!(
        "global_defs {{\n    router_id lvs6\n}}\n\
         vrrp_instance VI_6 {{\n    state {state}\n    priority {priority}\n    interface bond0\n    \
         virtual_router_id 60\n    advert_int {advert_int}\n    \
         virtual_ipaddress {{\n        2001:2::100/64 dev bond0\n    }}\n}}\n"
    )
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn conf_file(lab: &Lab, what: &str, text: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let p = lab.log_dir().join(format!("{what}-{n}.conf"));
    std::fs::write(&p, text).unwrap();
    p
}

fn start_ours6(lab: &Lab, dir: usize, text: &str) -> Speaker {
    let conf = conf_file(lab, &format!("v6-dir{}", dir + 1), text);
    let stats = conf.with_extension("json");
    let bin = vrrp_only_bin();
    let pid = lab
        .spawn(
            lab.director_ns(dir),
            &[
                bin.to_str().unwrap(),
                "-f",
                conf.to_str().unwrap(),
                "--stats",
                stats.to_str().unwrap(),
            ],
        )
        .expect("spawn vrrp_only");
    Speaker {
        pid,
        conf,
        stats,
        log: lab.log_path(pid).unwrap(),
        child_pidfile: None,
    }
}

fn start_keepalived6(lab: &Lab, dir: usize, text: &str) -> Speaker {
    let conf = conf_file(lab, &format!("v6-ka-dir{}", dir + 1), text);
    let p = |e: &str| conf.with_extension(e).to_string_lossy().into_owned();
    let (pid_main, pid_vrrp, pid_chk) = (p("pid"), p("vrrp.pid"), p("chk.pid"));
    let pid = lab
        .spawn(
            lab.director_ns(dir),
            &[
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-f",
                conf.to_str().unwrap(),
                "-p",
                &pid_main,
                "-r",
                &pid_vrrp,
                "-c",
                &pid_chk,
                "--vrrp",
            ],
        )
        .expect("spawn keepalived");
    Speaker {
        pid,
        conf,
        stats: PathBuf::new(),
        log: lab.log_path(pid).unwrap(),
        child_pidfile: Some(PathBuf::from(pid_vrrp)),
    }
}

/// `ping -6 -D -i 0.01` from the client to the IPv6 VIP.
struct Ping6 {
    pid: Pid,
    log: PathBuf,
}

impl Ping6 {
    fn start(lab: &Lab) -> Ping6 {
        let pid = lab
            .spawn(
                lab.client_ns(),
                &[
                    "ping",
                    "-6",
                    "-n",
                    "-D",
                    "-i",
                    "0.01",
                    "-W",
                    "1",
                    &VIP6.to_string(),
                ],
            )
            .expect("ping -6");
        Ping6 {
            pid,
            log: lab.log_path(pid).unwrap(),
        }
    }

    fn stop(self, lab: &Lab) -> Vec<f64> {
        let _ = lab.kill(self.pid);
        parse_ping(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

fn received(s: &Speaker) -> u64 {
    stats(s)
        .and_then(|v| v["adverts_received"].as_u64())
        .unwrap_or(0)
}

/// keepalived MASTER, ours BACKUP: ours accepts keepalived's IPv6 adverts
/// (from its link-local address), takes over when keepalived dies, and
/// yields when it returns.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v6_keepalived_master_ours_backup() {
    if !have_keepalived() {
        eprintln!("keepalived not installed: skipped");
        return;
    }
    let lab = lab6();
    let ka_ll = link_local(&lab, 0).unwrap();
    let ka = start_keepalived6(&lab, 0, &conf6("MASTER", 200, "1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let ours = start_ours6(&lab, 1, &conf6("BACKUP", 100, "1"));
    lvs_testkit::wait_until(
        "ours to accept keepalived's IPv6 adverts",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || received(&ours) >= 2,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", log_text(&ours)));
    std::thread::sleep(Duration::from_secs(4)); // longer than master-down
    assert!(vip6_on(&lab, 1).is_none());
    wait_state(&ours, "Backup", Duration::from_secs(1)).unwrap();
    let st = stats(&ours).unwrap();
    assert!(
        st["rejected"].as_object().unwrap().is_empty(),
        "rejections: {st}"
    );
    assert_eq!(st["master_ip"], ka_ll.to_string(), "from its link-local");

    // keepalived dies: ours takes over, its NA moves the client.
    let ping = Ping6::start(&lab);
    std::thread::sleep(Duration::from_millis(500));
    let at = now_s();
    sigkill_keepalived(&ka);
    drop_vip6(&lab, 0);
    wait_master6(&lab, 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let gap = gap_around(&ping.stop(&lab), at).unwrap();
    println!(
        "v6: keepalived master crashed (VRRP child SIGKILLed) → ours took over, ping -6 gap {gap:?}"
    );
    assert!(gap <= Duration::from_millis(3700));
    assert!(
        log_text(&ours).contains(
            "(VI_6) Sending/queueing Unsolicited Neighbour Adverts on bond0 for 2001:2::100"
        ),
        "{}",
        log_text(&ours)
    );
    let _ = lab.kill(ka.pid);

    // keepalived returns with priority 200: it preempts ours.
    let ka2 = start_keepalived6(&lab, 0, &conf6("MASTER", 200, "1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    wait_state(&ours, "Backup", Duration::from_secs(2)).unwrap();
    let _ = lab.kill(ka2.pid);
    let _ = lab.kill(ours.pid);
}

/// Ours MASTER, keepalived BACKUP: keepalived accepts ours (checksum over
/// the IPv6 pseudo-header, hop limit 255); on our graceful stop
/// (priority 0) keepalived takes over at once; ours returns and preempts.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn v6_ours_master_keepalived_backup() {
    if !have_keepalived() {
        eprintln!("keepalived not installed: skipped");
        return;
    }
    let lab = lab6();
    let ours = start_ours6(&lab, 0, &conf6("MASTER", 200, "0.1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let ka = start_keepalived6(&lab, 1, &conf6("BACKUP", 100, "0.1"));
    wait_log(&ka, "Entering BACKUP STATE", Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        vip6_on(&lab, 1).is_none(),
        "keepalived took the VIP: {}",
        log_text(&ka)
    );
    assert!(vip6_on(&lab, 0).is_some());
    let a = vip6_on(&lab, 0).unwrap();
    assert!(
        a.nodad,
        "IPv6 VIPs are added with nodad, as keepalived does"
    );

    let ping = Ping6::start(&lab);
    std::thread::sleep(Duration::from_millis(500));
    let at = now_s();
    sigterm(ours.pid);
    wait_master6(&lab, 1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let gap = gap_around(&ping.stop(&lab), at).unwrap();
    println!("v6: ours stopped (priority 0) → keepalived took over, ping -6 gap {gap:?}");
    assert!(gap <= Duration::from_secs(1));
    assert!(log_text(&ka).contains("(VI_6) Entering MASTER STATE"));
    let _ = lab.kill(ours.pid);

    let ours2 = start_ours6(&lab, 0, &conf6("MASTER", 200, "0.1"));
    wait_master6(&lab, 0, Duration::from_secs(10));
    let _ = lab.kill(ours2.pid);
    let _ = lab.kill(ka.pid);
}
