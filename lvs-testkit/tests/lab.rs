//! Lab tests: they need root and build real namespaces.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lvs_testkit::{http_get, http_load, http_request, netns, KeepAliveClient, Lab, LabSpec};

const T: Duration = Duration::from_secs(5);

fn setup() {
    assert_eq!(
        // SAFETY: geteuid() has no preconditions.
        unsafe { libc::geteuid() },
        0,
        "the lab tests need root (network namespaces)"
    );
}

/// The default spec, with this crate's freshly built HTTP server.
fn spec() -> LabSpec {
    LabSpec {
        httpd_bin: Some(env!("CARGO_BIN_EXE_lvs-lab-httpd").into()),
        ..LabSpec::default()
    }
}

/// A lab of `real_servers` and `client_addrs` with this crate's HTTP
/// server, and how long creating it took.
fn timed_lab(real_servers: usize, client_addrs: usize) -> (Lab, Duration) {
    setup();
    let t0 = Instant::now();
    let lab = Lab::create(LabSpec {
        real_servers,
        client_addrs,
        ..spec()
    })
    .unwrap();
    (lab, t0.elapsed())
}

/// A lab of one client namespace and nothing else (for the process tests).
fn client_only_lab() -> Lab {
    setup();
    Lab::create(LabSpec {
        directors: 0,
        real_servers: 0,
        client_addrs: 1,
        ..spec()
    })
    .unwrap()
}

fn pid_alive(pid: u32) -> bool {
    // Our children are reaped by the lab, so /proc/PID disappears.
    Path::new(&format!("/proc/{pid}")).exists()
}

fn assert_gone(prefix: &str, pids: &[u32]) {
    let left = netns::list_with_prefix(prefix).unwrap();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    for p in pids {
        assert!(!pid_alive(*p), "process {p} still alive after teardown");
    }
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn three_real_servers_answer_120_clients_then_teardown() {
    let (lab, created) = timed_lab(3, 120);
    assert_eq!(lab.client_addrs().len(), 120);
    let prefix = lab.prefix().to_string();
    assert!(prefix.starts_with(&format!("lvs-{}-", std::process::id())));
    let names = netns::list_with_prefix(&prefix).unwrap();
    assert_eq!(names.len(), 1 + 1 + 3 + 1, "{names:?}");

    // Every real server answers every client address with its own name.
    for i in 0..lab.real_servers() {
        let target = lab.real_server_service(i);
        let r = http_load(&lab, lab.client_ns(), lab.client_addrs(), target, 1, 40).unwrap();
        r.ensure_no_failures().unwrap();
        assert_eq!(
            r.per_body,
            BTreeMap::from([(lab.real_server_name(i), 120)]),
            "{}",
            r.summary()
        );
        assert_eq!(r.per_client.len(), 120);
    }

    // The server sees the real client address (source preserved).
    let (resp, ka) = lab
        .run_in_netns(lab.client_ns(), || {
            let src = lab.client_addrs()[77];
            let resp = http_request(Some(src), lab.real_server_service(1), "/x", T).unwrap();
            // A keep-alive connection: several answers on one connection.
            let mut c = KeepAliveClient::connect(Some(src), lab.real_server_service(2), T).unwrap();
            let local = c.local_addr().unwrap();
            let mut bodies = Vec::new();
            for _ in 0..5 {
                let r = c.request("/").unwrap();
                assert_eq!(r.header("x-client"), Some(local.to_string().as_str()));
                assert_eq!(r.header("connection"), Some("keep-alive"));
                bodies.push(r.body_text());
            }
            (resp, bodies)
        })
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_text(), "rs2");
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(resp
        .header("x-client")
        .unwrap()
        .starts_with(&format!("{}:", lab.client_addrs()[77])));
    assert_eq!(ka, vec!["rs3"; 5]);

    // Real-server settings.
    let rs = lab.real_server_ns(0);
    let addrs = lab
        .exec_ok(rs, &["ip", "-4", "-o", "addr", "show", "dev", "lo"])
        .unwrap();
    assert!(addrs.contains("198.18.0.100/32"), "{addrs}");
    let v = lab
        .run_in_netns(rs, || {
            (
                netns::read_sysctl("net.ipv4.conf.all.arp_ignore").unwrap(),
                netns::read_sysctl("net.ipv4.conf.eth0.arp_announce").unwrap(),
                netns::read_sysctl("net.ipv4.conf.lo.arp_ignore").unwrap(),
            )
        })
        .unwrap();
    assert_eq!(v, ("1".into(), "2".into(), "1".into()));
    // No default route anywhere.
    for ns in lab.namespaces() {
        let routes = lab
            .exec_ok(ns, &["ip", "-4", "route", "show", "default"])
            .unwrap();
        assert!(routes.trim().is_empty(), "{ns}: {routes}");
    }
    // The director answers ARP for the VIP (it holds it): a TCP connect to
    // it is refused (nothing listens there) rather than timing out.
    let e = lab
        .run_in_netns(lab.client_ns(), || {
            lvs_testkit::connect_from(None, SocketAddrV4::new(lab.vip(), 80), T)
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    let (sw, peer) = lab.director_peer(0);
    let link = lab
        .exec_ok(sw, &["ip", "-o", "link", "show", peer])
        .unwrap();
    assert!(link.contains("master br0"), "{link}");
    let bond = ipv4_addrs(&lab, lab.director_ns(0), "bond0");
    assert!(
        bond.contains("198.18.0.2/16") && bond.contains("198.18.0.100/32"),
        "{bond}"
    );

    let pids: Vec<u32> = lab.pids().iter().map(|p| p.0).collect();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|p| pid_alive(*p)));
    let t1 = Instant::now();
    drop(lab);
    eprintln!(
        "lab 1 dir/3 rs/120 clients: create {created:?}, teardown {:?}",
        t1.elapsed()
    );
    assert_gone(&prefix, &pids);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn panic_inside_a_lab_closure_still_tears_down() {
    setup();
    let seen: Mutex<Option<(String, Vec<u32>, std::path::PathBuf)>> = Mutex::new(None);
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::create(LabSpec {
            real_servers: 2,
            client_addrs: 4,
            ..spec()
        })
        .unwrap();
        let extra = lab.spawn(lab.real_server_ns(0), &["sleep", "300"]).unwrap();
        assert!(lab.is_running(extra));
        *seen.lock().unwrap() = Some((
            lab.prefix().to_string(),
            lab.pids().iter().map(|p| p.0).collect(),
            lab.log_dir().to_path_buf(),
        ));
        lab.run_in_netns(lab.client_ns(), || panic!("boom inside the lab"))
            .unwrap();
    }));
    let err = res.expect_err("the closure panicked");
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom inside the lab"));
    let (prefix, pids, logs) = seen.lock().unwrap().take().unwrap();
    assert_eq!(pids.len(), 3);
    assert_gone(&prefix, &pids);
    // Dropped while panicking: the logs are kept for the post-mortem.
    assert!(logs.is_dir());
    std::fs::remove_dir_all(logs).unwrap();
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn two_labs_in_parallel_do_not_collide() {
    setup();
    let run = || {
        let lab = Lab::create(LabSpec {
            real_servers: 2,
            client_addrs: 20,
            second_client_net: true,
            second_client_addrs: 5,
            ..spec()
        })
        .unwrap();
        for i in 0..2 {
            let r = http_load(
                &lab,
                lab.client_ns(),
                lab.client_addrs(),
                lab.real_server_service(i),
                2,
                8,
            )
            .unwrap();
            assert_eq!(r.count(&lab.real_server_name(i)), 40, "{}", r.summary());
            let cl2 = lab.second_client_ns().unwrap();
            let r = http_load(
                &lab,
                cl2,
                lab.second_client_addrs(),
                lab.real_server_service(i),
                1,
                5,
            )
            .unwrap();
            assert_eq!(r.count(&lab.real_server_name(i)), 5, "{}", r.summary());
        }
        let prefix = lab.prefix().to_string();
        let pids: Vec<u32> = lab.pids().iter().map(|p| p.0).collect();
        lab.teardown().unwrap();
        (prefix, pids)
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(run);
        let b = s.spawn(run);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.0, b.0);
    assert_gone(&a.0, &a.1);
    assert_gone(&b.0, &b.1);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn stopping_and_restarting_a_real_server() {
    setup();
    let lab = Lab::create(LabSpec {
        real_servers: 2,
        client_addrs: 3,
        service_port: 8080,
        static_neighbors: false,
        ..spec()
    })
    .unwrap();
    let target = lab.real_server_service(1);
    let src = lab.client_addrs()[0];
    let get = || {
        lab.run_in_netns(lab.client_ns(), || http_get(src, target, T))
            .unwrap()
    };
    assert_eq!(get().unwrap(), "rs2");
    let old = lab.real_server_httpd_pid(1).unwrap();
    lab.stop_real_server_httpd(1).unwrap();
    assert!(!pid_alive(old.0));
    let e = get().unwrap_err();
    assert!(format!("{e:#}").contains("refused"), "{e:#}");
    lab.start_real_server_httpd(1).unwrap();
    assert_eq!(get().unwrap(), "rs2");
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn httpd_listens_on_many_addresses() {
    setup();
    let lab = Lab::create(LabSpec {
        directors: 0,
        real_servers: 1,
        client_addrs: 1,
        httpd: false,
        ..spec()
    })
    .unwrap();
    let ns = lab.real_server_ns(0);
    let addrs: Vec<_> = (0..1000u32)
        .map(|k| std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 40, 1)) + k))
        .collect();
    lab.add_addrs(ns, "eth0", &addrs, 16).unwrap();
    let pid = lab
        .spawn_httpd(
            ns,
            "many",
            &["198.18.40.1-198.18.43.232:9000", "198.18.0.11:9001"],
        )
        .unwrap();
    let bodies = lab
        .run_in_netns(lab.client_ns(), || {
            let src = lab.client_addrs()[0];
            [addrs[0], addrs[500], addrs[999]]
                .iter()
                .map(|a| {
                    let r = http_request(Some(src), SocketAddrV4::new(*a, 9000), "/", T).unwrap();
                    assert_eq!(r.header("x-local"), Some(format!("{a}:9000").as_str()));
                    r.body_text()
                })
                .chain([http_get(src, "198.18.0.11:9001".parse().unwrap(), T).unwrap()])
                .collect::<Vec<_>>()
        })
        .unwrap();
    assert_eq!(bodies, vec!["many"; 4]);
    lab.kill(pid).unwrap();
    assert!(lab.kill(pid).is_err(), "a pid is killed once");
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn orphaned_descendants_are_killed_too() {
    let lab = client_only_lab();
    let ns = lab.client_ns().to_string();
    // A shell with background children; SIGTERM kills the shell only.
    let pid = lab
        .spawn(
            &ns,
            &["sh", "-c", "sleep 300 & sleep 300 & echo started; wait"],
        )
        .unwrap();
    lvs_testkit::wait_until(
        "the shell to start its children",
        T,
        Duration::from_millis(10),
        || netns::pids(&ns).unwrap().len() >= 3,
    )
    .unwrap();
    let prefix = lab.prefix().to_string();
    let inside = netns::pids(&ns).unwrap();
    assert!(inside.contains(&pid.0));
    drop(lab);
    for p in inside {
        assert!(
            !pid_alive(p)
                || std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .unwrap()
                    .contains(") Z"),
            "descendant {p} survived"
        );
    }
    assert_gone(&prefix, &[pid.0]);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn exec_is_bounded() {
    let lab = client_only_lab();
    let t = Instant::now();
    let e = lab
        .exec_timeout(
            lab.client_ns(),
            &["sleep", "30"],
            Duration::from_millis(300),
        )
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(format!("{e}").contains("did not finish"), "{e}");
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn five_real_servers_200_clients_under_load() {
    let (lab, created) = timed_lab(5, 200);
    let r = http_load(
        &lab,
        lab.client_ns(),
        lab.client_addrs(),
        lab.real_server_service(4),
        5,
        500,
    )
    .unwrap();
    r.ensure_no_failures().unwrap();
    assert_eq!(r.count("rs5"), 1000, "{}", r.summary());
    assert_eq!(r.max_servers_per_client(), 1);
    eprintln!("1000 requests, 500 at a time: {}", r.summary());
    // Without static neighbours too (real ARP for every client address).
    let t1 = Instant::now();
    lab.teardown().unwrap();
    eprintln!(
        "lab 1 dir/5 rs/200 clients: create {created:?}, teardown {:?}",
        t1.elapsed()
    );
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn keep_alive_connection_outlives_the_netns_thread() {
    setup();
    let lab = Lab::create(LabSpec {
        real_servers: 1,
        client_addrs: 3,
        ..spec()
    })
    .unwrap();
    let mut c = lab
        .run_in_netns(lab.client_ns(), || {
            KeepAliveClient::connect(Some(lab.client_addrs()[2]), lab.real_server_service(0), T)
        })
        .unwrap()
        .unwrap();
    // Used from this (root-namespace) thread: the socket lives in the client's.
    for _ in 0..3 {
        assert_eq!(c.get().unwrap(), "rs1");
    }
    // The real server's HTTP server is stopped: the connection breaks.
    lab.stop_real_server_httpd(0).unwrap();
    assert!(c.get().is_err());
    // Outside the namespace, the client addresses do not exist.
    let e = http_get(lab.client_addrs()[0], lab.real_server_service(0), T).unwrap_err();
    assert!(format!("{e:#}").contains("run_in_netns"), "{e:#}");
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn arp_mode_without_static_neighbours() {
    setup();
    let lab = Lab::create(LabSpec {
        real_servers: 2,
        client_addrs: 50,
        static_neighbors: false,
        ..spec()
    })
    .unwrap();
    let neigh = lab
        .exec_ok(
            lab.real_server_ns(0),
            &["ip", "neigh", "show", "nud", "permanent"],
        )
        .unwrap();
    assert!(neigh.trim().is_empty(), "{neigh}");
    let r = http_load(
        &lab,
        lab.client_ns(),
        lab.client_addrs(),
        lab.real_server_service(0),
        2,
        20,
    )
    .unwrap();
    r.ensure_no_failures().unwrap();
    assert_eq!(r.count("rs1"), 100);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn director_variants() {
    setup();
    let lab = Lab::create(LabSpec {
        directors: 2,
        director_if: "eth1".into(),
        director_holds_vip: false,
        real_servers: 1,
        client_addrs: 2,
        vips: vec![
            "198.18.0.100".parse().unwrap(),
            "198.18.0.101".parse().unwrap(),
        ],
        ..spec()
    })
    .unwrap();
    for i in 0..2 {
        let a = ipv4_addrs(&lab, lab.director_ns(i), "eth1");
        assert!(a.contains(&format!("{}/16", lab.director_addr(i))), "{a}");
        assert!(!a.contains("198.18.0.100"), "{a}");
        assert_eq!(lab.director_peer(i).1, format!("dir{}", i + 1));
    }
    let lo = ipv4_addrs(&lab, lab.real_server_ns(0), "lo");
    assert!(
        lo.contains("198.18.0.100/32") && lo.contains("198.18.0.101/32"),
        "{lo}"
    );
    let (no_vip, rs) = lab
        .run_in_netns(lab.director_ns(1), || {
            let short = Duration::from_millis(1500);
            (
                lvs_testkit::connect_from(None, "198.18.0.101:80".parse().unwrap(), short),
                http_get(lab.director_addr(1), lab.real_server_service(0), T),
            )
        })
        .unwrap();
    // Nobody holds the VIP: ARP for it goes unanswered.
    let e = no_vip.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::HostUnreachable
        ),
        "{e}"
    );
    // Directors reach real servers.
    assert_eq!(rs.unwrap(), "rs1");
    assert!(Lab::create(LabSpec {
        director_if: "a-very-long-ifname".into(),
        ..spec()
    })
    .is_err());
    assert!(Lab::create(LabSpec {
        vips: vec!["10.0.0.1".parse().unwrap()],
        ..spec()
    })
    .is_err());
}

/// `ip -o -4 addr show dev DEV` in namespace `ns`.
fn ipv4_addrs(lab: &Lab, ns: &str, dev: &str) -> String {
    lab.exec_ok(ns, &["ip", "-o", "-4", "addr", "show", "dev", dev])
        .unwrap()
}
