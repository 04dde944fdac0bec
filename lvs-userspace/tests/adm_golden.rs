//! `lvsadm` against ipvsadm's formats, column for column.
//!
//! A known data-path state is built through the real XDP program with
//! test-run frames (TCP flows in several states, a persistent service with
//! templates, a UDP service) and rendered as `-ln`, `--stats [--exact]`,
//! `--rate`, `--persistent-conn`, `-lnc`, `-S`, `--timeout`, `-t` and
//! `--json`; each is compared with a file under `tests/golden/adm/`
//! (`UPDATE_GOLDEN=1` rewrites them). Independently of those files, the
//! `-ln`, `--persistent-conn` and `-lnc` lines are rebuilt here with
//! ipvsadm.c's own printf format strings, run through a small printf.
//!
//! Also: `/metrics` counters agree with `--stats --exact` for one state, and
//! the `lvsadm` binary lists a pinned instance with no agent running.

use std::{net::Ipv4Addr, path::PathBuf};

use lvs_common::{tcp, Stats};
use lvs_userspace::{
    adm::{self, json, Extras, Format, Select, ServiceExtra, Snapshot},
    datapath::{
        testrun::{self, tcp_frame, udp_frame, Flags},
        Datapath, DesiredBackend, DesiredState, Options, Persistence, Protocol, State,
    },
    sched::Algorithm,
};

mod testrun_util;
use testrun_util::{open, run, service, VIP};

/// [`testrun::backend`] `n` on another port.
fn backend(n: u8, port: u16, weight: u32) -> DesiredBackend {
    DesiredBackend {
        port,
        ..testrun::backend(n, weight)
    }
}

/// The seed's shape, smaller: wrr 2:3 on :80, a persistent /24 service on
/// :443, a UDP service on :53.
fn desired() -> DesiredState {
    // rs5 failed its checks: out of the schedule, and of ipvsadm's listing.
    let dead = DesiredBackend {
        alive: false,
        ..backend(5, 80, 2)
    };
    let http = service(
        VIP,
        80,
        Protocol::Tcp,
        Algorithm::Wrr,
        vec![backend(1, 80, 2), backend(2, 80, 3), dead],
    );
    let mut https = service(
        VIP,
        443,
        Protocol::Tcp,
        Algorithm::Rr,
        vec![backend(3, 443, 1), backend(4, 443, 1)],
    );
    https.persistence = Some(Persistence {
        timeout_s: 120,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        prefix_len6: 128,
    });
    let dns = service(
        VIP,
        53,
        Protocol::Udp,
        Algorithm::Wrr,
        vec![backend(1, 53, 1), backend(2, 53, 1)],
    );
    DesiredState {
        services: vec![http, https, dns],
    }
}

fn client(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1, n)
}

/// Known flows through the program: established, half-open, reset and
/// closing TCP connections; two clients of one /24 on the persistent
/// service (one template); two UDP flows.
fn datapath() -> Datapath {
    let mut dp = open(&desired());
    let mut run = |f: Vec<u8>| {
        run(&mut dp, &f);
    };
    let tcp = |n: u8, port: u16, flags: Flags| {
        tcp_frame((client(n), 40000 + n as u16), (VIP, port), flags, b"")
    };
    // :80 — 1, 2 established; 3 SYN then RST; 4 SYN only; 5 closing.
    for n in [1, 2] {
        run(tcp(n, 80, Flags::SYN));
        run(tcp(n, 80, Flags::ACK));
    }
    run(tcp(3, 80, Flags::SYN));
    run(tcp(3, 80, Flags::RST));
    run(tcp(4, 80, Flags::SYN));
    run(tcp(5, 80, Flags::SYN));
    run(tcp(5, 80, Flags::ACK));
    run(tcp(5, 80, Flags::FIN_ACK));
    // :443 persistent /24 — clients 6 and 7 share a template.
    run(tcp(6, 443, Flags::SYN));
    run(tcp(6, 443, Flags::ACK));
    run(tcp(7, 443, Flags::SYN));
    // :53 UDP.
    for n in [8, 9] {
        run(udp_frame(
            (client(n), 50000 + n as u16),
            (VIP, 53),
            b"query",
        ));
    }
    dp
}

/// The snapshot with every timer at its full timeout, whatever the clock
/// did while the test ran, and IPVS's default table size in the title.
fn normalized(state: &State) -> Snapshot {
    let mut snap = Snapshot::take(state).unwrap();
    for c in &mut snap.conns {
        c.expires_in_s = snap.timeouts_s[c.conn.state as usize] as u64;
    }
    for t in &mut snap.templates {
        t.expires_in_s = 120;
    }
    snap.table_size = 4096;
    snap
}

/// Every service listed in `format`, as `golden_file` has it.
fn listed(s: &Snapshot, format: Format, golden_file: &str) -> String {
    let text = adm::list(s, format, None, None).unwrap();
    golden(golden_file, &text);
    text
}

fn golden(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/adm")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if got != want {
        // The first differing line, not two pages of escaped text.
        let (n, (g, w)) = got
            .lines()
            .chain(std::iter::repeat("<end>"))
            .zip(want.lines().chain(std::iter::repeat("<end>")))
            .enumerate()
            .find(|(_, (g, w))| g != w)
            .unwrap();
        panic!(
            "{name} differs from {} at line {}:\n got: {g:?}\nwant: {w:?}\n(UPDATE_GOLDEN=1 rewrites it)\n{got}",
            path.display(),
            n + 1
        );
    }
}

/// C's printf for the conversions ipvsadm's listings use: %s, %u, %d with
/// an optional '-' and width, and %02d.
fn printf(fmt: &str, args: &[&dyn std::fmt::Display]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let left = chars.next_if_eq(&'-').is_some();
        let zero = chars.next_if_eq(&'0').is_some();
        let mut width = 0;
        while let Some(d) = chars.next_if(|c| c.is_ascii_digit()) {
            width = width * 10 + d.to_digit(10).unwrap() as usize;
        }
        let conv = chars.next().unwrap();
        assert!("sud".contains(conv), "unsupported %{conv}");
        let v = args.next().expect("too few arguments").to_string();
        let pad = " ".repeat(width.saturating_sub(v.len()));
        if left {
            out += &v;
            out += &pad;
        } else if zero {
            out += &"0".repeat(width.saturating_sub(v.len()));
            out += &v;
        } else {
            out += &pad;
            out += &v;
        }
    }
    out
}

fn with_extras(snap: Snapshot) -> Snapshot {
    // The agent knows the configured lb_algo; here it names :443's "rr".
    let mut extras = Extras::default();
    extras.services.insert(
        Select {
            proto: Protocol::Tcp,
            vip: VIP.into(),
            port: 443,
        },
        ServiceExtra {
            scheduler: Some("rr".into()),
        },
    );
    snap.with_extras(extras)
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn listings_match_golden_files_and_ipvsadm_formats() {
    let dp = datapath();
    let s = with_extras(normalized(&dp));

    let ln = listed(&s, Format::default(), "ln.txt");
    // The same table, rebuilt from ipvsadm.c's format strings.
    let mut want = printf(
        "IP Virtual Server version %d.%d.%d (size=%d)\n",
        &[&1, &2, &1, &4096],
    );
    want += "Prot LocalAddress:Port Scheduler Flags\n";
    want += "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
    let mut services: Vec<_> = s.services.iter().collect();
    services.sort_by_key(|v| (v.proto.unwrap().number(), v.vip, v.port));
    for v in &services {
        let svc_name = printf(
            "%-4s %s",
            &[&v.proto.unwrap().name(), &format!("{}:{}", v.vip, v.port)],
        );
        want += &printf("%s %s", &[&svc_name, &s.scheduler(v)]);
        if v.port == 443 {
            want += &printf(" persistent %u", &[&120]);
            want += &printf(" mask %s", &[&"255.255.255.0"]);
        }
        want += "\n";
        let mut dests: Vec<_> = v.backends.iter().filter(|b| b.alive).collect();
        dests.sort_by_key(|b| (b.addr, b.port));
        for b in dests {
            want += &printf(
                "  -> %-28s %-7s %-6d %-10u %-10u\n",
                &[
                    &format!("{}:{}", b.addr, b.port),
                    &"Route",
                    &b.weight,
                    &b.active,
                    &b.inactive,
                ],
            );
        }
    }
    assert_eq!(ln, want);
    // ActiveConn/InActConn as IPVS counts them: the two established flows
    // are active, everything else on :80 is not.
    let active: u64 = services[0].backends.iter().map(|b| b.active).sum();
    let inactive: u64 = services[0].backends.iter().map(|b| b.inactive).sum();
    assert_eq!((active, inactive), (2, 3), "{ln}");

    let pc = Format {
        persistent_conn: true,
        ..Default::default()
    };
    let lpc = listed(&s, pc, "persistent_conn.txt");
    let line = lpc.lines().nth(1).unwrap();
    assert_eq!(
        line,
        printf(
            "%-33s %-9s %-11s %-10s %-10s",
            &[
                &"Prot LocalAddress:Port",
                &"Weight",
                &"PersistConn",
                &"ActiveConn",
                &"InActConn"
            ]
        )
    );
    // One template: both /24 clients are pinned to one real server.
    let pinned: Vec<u64> = s
        .services
        .iter()
        .find(|v| v.port == 443)
        .unwrap()
        .backends
        .iter()
        .map(|b| b.templates)
        .collect();
    assert_eq!(pinned.iter().sum::<u64>(), 1, "{lpc}");

    let lnc = adm::conns(&s, Format::default(), None);
    golden("lnc.txt", &lnc);
    let mut lines = lnc.lines();
    assert_eq!(lines.next(), Some("IPVS connection entries"));
    assert_eq!(
        lines.next().unwrap(),
        printf(
            "pro expire %-11s %-18s %-18s %s",
            &[&"state", &"source", &"virtual", &"destination"]
        )
    );
    let rows: Vec<&str> = lines.collect();
    // 5 on :80, 2 on :443 plus their template, 2 UDP.
    assert_eq!(rows.len(), 10, "{lnc}");
    for c in &s.conns {
        let state = tcp::STATE_NAMES[c.conn.state as usize];
        let src = format!(
            "{}:{}",
            Ipv4Addr::from(u32::from_be(c.key.src_be)),
            u16::from_be(c.key.sport_be)
        );
        let t = c.expires_in_s;
        let expire = printf("%02d:%02d", &[&(t / 60), &(t % 60)]);
        let vname = format!(
            "{}:{}",
            Ipv4Addr::from(u32::from_be(c.key.dst_be)),
            u16::from_be(c.key.dport_be)
        );
        let proto = if c.key.proto == 6 { "TCP" } else { "UDP" };
        let prefix = printf(
            "%-3s %-6s %-11s %-18s %-18s ",
            &[&proto, &expire, &state, &src, &vname],
        );
        assert!(
            rows.iter().any(|r| r.starts_with(&prefix)),
            "{prefix}\n{lnc}"
        );
    }
    assert!(
        rows.iter().any(|r| r.starts_with(
            "TCP 02:00  NONE        198.18.1.0:0       198.18.0.100:443   198.18.0.1"
        )),
        "the template as IPVS lists it\n{lnc}"
    );
    for state in ["ESTABLISHED", "SYN_RECV", "UDP"] {
        assert!(lnc.contains(state), "{state}\n{lnc}");
    }

    golden("save.txt", &adm::save(&s));
    golden("timeout.txt", &adm::timeout(&s));
    assert_eq!(adm::timeout(&s), "Timeout (tcp tcpfin udp): 900 120 300\n");

    let one = Select {
        proto: Protocol::Udp,
        vip: VIP.into(),
        port: 53,
    };
    golden(
        "select_u.txt",
        &adm::list(&s, Format::default(), Some(one), None).unwrap(),
    );
    golden(
        "lnc_select_u.txt",
        &adm::conns(&s, Format::default(), Some(one)),
    );
    let missing = Select { port: 54, ..one };
    assert_eq!(
        adm::list(&s, Format::default(), Some(missing), None)
            .unwrap_err()
            .to_string(),
        "No such service: -u 198.18.0.100:54"
    );

    golden("ln.json", &json::to_text(&json::services(&s, None, None)));
    golden("lnc.json", &json::to_text(&json::conns(&s, None)));
    golden("timeout.json", &json::to_text(&json::timeout(&s)));
}

/// `--stats` with and without `--exact`, from the test-run counters and
/// from counters big enough for ipvsadm's K/M/G suffixes.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn stats_exact_and_large_numbers() {
    let dp = datapath();
    let s = normalized(&dp);
    let exact = Format {
        stats: true,
        exact: true,
        ..Default::default()
    };
    let got = listed(&s, exact, "stats_exact.txt");
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[1],
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes"
    );
    assert_eq!(lines[2], "  -> RemoteAddress:Port");

    let mut big = s.clone();
    for (i, v) in big.services.iter_mut().enumerate() {
        let k = 10u64.pow(i as u32 * 2);
        v.stats = Stats {
            packets: 123_456_789 * k,
            bytes: 98_765_432_109 * k,
            conns: 1_234_567 * k,
        };
        for b in &mut v.backends {
            b.stats = Stats {
                packets: 99_999_999,
                bytes: 100_000_000,
                conns: 7,
            };
        }
    }
    let stats = Format {
        stats: true,
        ..Default::default()
    };
    listed(&big, stats, "stats.txt");
    listed(&big, exact, "stats_exact_big.txt");
}

/// `--rate` from two synthetic snapshots 2 s apart.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn rate_from_two_snapshots() {
    let dp = datapath();
    let before = normalized(&dp);
    let mut now = before.clone();
    for (i, v) in now.services.iter_mut().enumerate() {
        let n = i as u64 + 1;
        v.stats.conns += 20 * n;
        v.stats.packets += 3000 * n;
        v.stats.bytes += 4_000_000 * n;
        for b in &mut v.backends {
            b.stats.conns += 10 * n;
            b.stats.packets += 1500 * n;
            b.stats.bytes += 2_000_000 * n;
        }
    }
    let rate = Format {
        rate: true,
        ..Default::default()
    };
    let got = adm::list(&now, rate, None, Some((&before, 2.0))).unwrap();
    golden("rate.txt", &got);
    assert!(
        got.contains(
            "\nTCP  198.18.0.100:80                    20     3000        0  4000000        0\n"
        ),
        "{got}"
    );
    assert!(
        got.contains(
            "\n  -> 198.18.0.11:80                     10     1500        0  2000000        0\n"
        ),
        "{got}"
    );
    golden(
        "rate.json",
        &json::to_text(&json::services(&now, None, Some((&before, 2.0)))),
    );
}

/// The numbers `/metrics` exports are the numbers `--stats --exact` prints.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn metrics_counters_agree_with_stats_exact() {
    let dp = datapath();
    let view = lvs_userspace::agent::metrics::AgentView {
        sync: Some(lvs_userspace::adm::status::SyncStatus {
            interface: "bond0".into(),
            syncid: 51,
            group: "224.0.0.81:8848".into(),
            sent_entries: 12,
            received_entries: 10_001,
            rejected_datagrams: 1,
            bulk: lvs_userspace::sync::BulkStatus {
                state: "done".into(),
                entries: 10_001,
                peers: 1,
                duration_ms: 404,
                finished_unix_s: 1,
                answers_sent: 0,
            },
        }),
        conns: std::sync::Arc::new(dp.count_conns().unwrap()),
        ..Default::default()
    };
    let text = lvs_userspace::agent::metrics::render(&dp, &view);
    assert!(
        text.contains("lvs_sync_entries_received_total{interface=\"bond0\"} 10001")
            && text.contains("lvs_sync_bulk_duration_seconds{interface=\"bond0\"} 0.404"),
        "sync families:\n{text}"
    );
    // Valid exposition, as Prometheus' own linter sees it.
    let out = lvs_testkit::process::run(
        &["promtool", "check", "metrics"],
        Some(text.as_bytes()),
        std::time::Duration::from_secs(20),
    )
    .expect("promtool (cargo xtask setup installs Debian's prometheus)");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let s = Snapshot::take(&dp).unwrap();
    let stats = adm::list(
        &s,
        Format {
            stats: true,
            exact: true,
            ..Default::default()
        },
        None,
        None,
    )
    .unwrap();
    let metric = |name: &str, labels: &str| -> u64 {
        let prefix = format!("{name}{{{labels}}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{prefix} missing\n{text}"))
            .parse()
            .unwrap()
    };
    let cols = |line: &str| -> Vec<u64> {
        line.split_whitespace()
            .skip_while(|w| !w.contains(':'))
            .skip(1)
            .map(|c| c.parse().unwrap())
            .collect()
    };
    let mut checked = 0;
    for v in &s.services {
        let proto = v.proto.unwrap().name();
        let svc = format!("vip=\"{}\",port=\"{}\",proto=\"{proto}\"", v.vip, v.port);
        let head = format!("{proto:<4} {}:{} ", v.vip, v.port);
        let line = stats.lines().find(|l| l.starts_with(&head)).unwrap();
        let c = cols(line);
        assert_eq!(
            metric("lvs_service_connections_total", &svc),
            c[0],
            "{line}"
        );
        assert_eq!(metric("lvs_service_packets_total", &svc), c[1], "{line}");
        assert_eq!(metric("lvs_service_bytes_total", &svc), c[3], "{line}");
        // Each real server's line follows its service's line.
        let after: Vec<&str> = stats
            .lines()
            .skip_while(|l| !l.starts_with(&head))
            .skip(1)
            .take_while(|l| l.starts_with("  -> "))
            .collect();
        for b in v.backends.iter().filter(|b| b.alive) {
            let rs = format!("{svc},real_server=\"{}:{}\"", b.addr, b.port);
            let line = after
                .iter()
                .find(|l| l.starts_with(&format!("  -> {}:{} ", b.addr, b.port)))
                .unwrap();
            let c = cols(line);
            assert_eq!(metric("lvs_real_server_connections_total", &rs), c[0]);
            assert_eq!(metric("lvs_real_server_packets_total", &rs), c[1]);
            assert_eq!(metric("lvs_real_server_bytes_total", &rs), c[3]);
            assert_eq!(metric("lvs_real_server_active_connections", &rs), b.active);
            assert_eq!(
                metric("lvs_real_server_inactive_connections", &rs),
                b.inactive
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
    // Something was counted at all.
    assert!(s.services.iter().map(|v| v.stats.packets).sum::<u64>() >= 14);
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn lvsadm_reads_a_pinned_instance_with_no_agent() {
    let instance = format!("test-adm-{}", std::process::id());
    struct Flush(String);
    impl Drop for Flush {
        fn drop(&mut self) {
            let root = std::path::Path::new(lvs_userspace::datapath::pins::DEFAULT_ROOT);
            let _ = lvs_userspace::datapath::flush_instance(root, &self.0);
            let _ = std::fs::remove_dir(root);
        }
    }
    let _flush = Flush(instance.clone());
    let mut opts = Options::new(&instance);
    opts.conn_table_size = 4096;
    let mut dp = Datapath::open(&opts).unwrap();
    dp.apply(&desired()).unwrap();
    drop(dp); // like `lvsd --keep-datapath` stopping: only the pins remain
    let lvsadm = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lvsadm"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = lvsadm(&["-L", "-n", "--instance", &instance]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing flowed: the golden -ln with every counter 0 and rr for :443
    // (the maps know rr vs wrr without the agent's extras).
    let want = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/adm/ln.txt"),
    )
    .unwrap();
    let zeroed: String = want
        .lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("  -> ").filter(|r| !r.starts_with("Remote")) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                format!(
                    "  -> {:<28} {:<7} {:<6} {:<10} {:<10}\n",
                    f[0], f[1], f[2], 0, 0
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_eq!(text, zeroed);

    for args in [
        &["-S", "-n"][..],
        &["-L", "-n", "-c"],
        &["--timeout"],
        &["-L", "-n", "--stats", "--exact"],
        &["-l", "-n", "--rate", "--interval", "0.1"],
        &["-L", "-n", "-u", "198.18.0.100:53"],
        &["-L", "-n", "--json"],
        &["-L", "-n", "-c", "--json"],
    ] {
        let mut argv = args.to_vec();
        argv.extend(["--instance", &instance]);
        let out = lvsadm(&argv);
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let timeout = lvsadm(&["--timeout", "--instance", &instance]);
    assert_eq!(
        String::from_utf8_lossy(&timeout.stdout),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    let conflict = lvsadm(&["-L", "-n", "-c", "--stats", "--instance", &instance]);
    assert!(!conflict.status.success());
    assert!(String::from_utf8_lossy(&conflict.stderr).contains("options conflicts"));
    let missing = lvsadm(&["-L", "-n", "-t", "198.18.0.100:81", "--instance", &instance]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("No such service"));

    let nothing = lvsadm(&["-L", "-n", "--instance", "no-such-instance"]);
    assert!(!nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("is lvsd running"));
}

/// `--health`, `--vrrp` and `--daemon` from a status file as lvsd writes it
/// (through the file: write, then read, as lvsadm does).
#[test]
fn status_listings() {
    use lvs_userspace::adm::status::{self, InstanceStatus, RealHealth, Status, SyncStatus};
    let real = |n: u8, up: bool| RealHealth {
        protocol: "TCP".into(),
        vip: VIP.into(),
        port: 80,
        real_server: Ipv4Addr::new(198, 18, 0, 10 + n).into(),
        real_port: 80,
        checkers: vec!["TCP_CHECK".into()],
        up,
        last_failure_unix_s: (!up).then_some(1_000 - 42),
        last_reason: (!up).then(|| "TCP connection to [198.18.0.12]:tcp:80 failed".into()),
    };
    let st = Status {
        pid: 4242,
        updated_unix_s: 1_000,
        health: vec![real(1, true), real(2, false)],
        vrrp: vec![InstanceStatus {
            name: "VI_1".into(),
            interface: "bond0".into(),
            vrid: 51,
            version: 2,
            state: "MASTER".into(),
            priority: 200,
            master: Some(Ipv4Addr::new(198, 18, 0, 2).into()),
            adverts_received: 12,
            adverts_sent: 340,
            rejected: [("invalid passwd".to_string(), 3), ("ttl".to_string(), 1)]
                .into_iter()
                .collect(),
        }],
        sync: Some(SyncStatus {
            interface: "bond0".into(),
            syncid: 51,
            group: "224.0.0.81:8848".into(),
            sent_entries: 1200,
            received_entries: 10040,
            rejected_datagrams: 2,
            bulk: lvs_userspace::sync::BulkStatus {
                state: "done".into(),
                entries: 10040,
                peers: 1,
                duration_ms: 412,
                finished_unix_s: 1_764_000_000,
                answers_sent: 1,
            },
        }),
        announce: None,
    };
    let dir = std::env::temp_dir().join(format!("adm-golden-status-{}", std::process::id()));
    let path = dir.join("status.json");
    st.write(&path).unwrap();
    let back = Status::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(back, st);
    golden("health.txt", &adm::health(&back));
    golden("vrrp.txt", &adm::vrrp(&back));
    golden("daemon.txt", &adm::daemon(&back));
    assert_eq!(
        status::status_path("lab"),
        PathBuf::from("/run/lvs-xdp/lab/status.json")
    );
}

/// The hashing schedulers, named as ipvsadm names them, with their flags
/// the way ipvsadm prints them: ` (sh-fallback,sh-port)` after the name in
/// `-ln` (ipvsadm's `print_sched_flags`, SCHED1 before SCHED2) and
/// `-b sh-fallback,sh-port` after `-p`/`-M` in `-S` (the order of
/// ipvsadm's format strings); no parentheses without flags.
#[test]
#[ignore = "needs root: run cargo xtask test"]
fn hashed_schedulers_are_listed_with_their_flags() {
    let mut sh = service(
        VIP,
        80,
        Protocol::Tcp,
        Algorithm::Sh {
            port: true,
            fallback: true,
        },
        vec![backend(1, 80, 1), backend(2, 80, 2)],
    );
    sh.persistence = Some(Persistence {
        timeout_s: 300,
        netmask: Ipv4Addr::BROADCAST,
        prefix_len6: 128,
    });
    sh.backends[1].u_threshold = 100;
    sh.backends[1].l_threshold = 80;
    let mh = Algorithm::Mh {
        port: true,
        fallback: false,
    };
    let mh_fallback = Algorithm::Mh {
        port: false,
        fallback: true,
    };
    let dp = open(&DesiredState {
        services: vec![
            sh,
            service(VIP, 81, Protocol::Tcp, mh, vec![backend(3, 81, 1)]),
            service(
                VIP,
                82,
                Protocol::Tcp,
                Algorithm::Dh,
                vec![backend(4, 82, 1)],
            ),
            service(VIP, 83, Protocol::Udp, mh_fallback, vec![backend(5, 83, 1)]),
        ],
    });
    let s = normalized(&dp);
    let ln = listed(&s, Format::default(), "sched_flags.txt");
    let lines: Vec<&str> = ln.lines().collect();
    assert_eq!(
        lines[3],
        "TCP  198.18.0.100:80 sh (sh-fallback,sh-port) persistent 300"
    );
    assert_eq!(lines[6], "TCP  198.18.0.100:81 mh (mh-port)");
    assert_eq!(lines[8], "TCP  198.18.0.100:82 dh");
    assert_eq!(lines[10], "UDP  198.18.0.100:83 mh (mh-fallback)");
    let save = adm::save(&s);
    golden("sched_flags_save.txt", &save);
    assert!(save.contains("-A -t 198.18.0.100:80 -s sh -p 300 -b sh-fallback,sh-port\n"));

    // --thresholds: ipvsadm's title and "  -> %-28s %-10u %-10u %-10u %-10u".
    let lt = listed(
        &s,
        Format {
            thresholds: true,
            ..Default::default()
        },
        "thresholds.txt",
    );
    let lines: Vec<&str> = lt.lines().collect();
    assert_eq!(
        lines[1],
        printf(
            "%-33s %-10s %-10s %-10s %-10s",
            &[
                &"Prot LocalAddress:Port",
                &"Uthreshold",
                &"Lthreshold",
                &"ActiveConn",
                &"InActConn"
            ]
        )
    );
    assert_eq!(
        lines[5],
        printf(
            "  -> %-28s %-10u %-10u %-10u %-10u",
            &[&"198.18.0.12:80", &100, &80, &0, &0]
        )
    );
}
