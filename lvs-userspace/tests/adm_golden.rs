//! `lvsadm` against ipvsadm's formats, column for column: a known data-path
//! state (built through the real program with test-run frames) rendered as
//! `-ln`, `--stats --exact`, `--rate`, `-lnc`, `-S`, `--timeout`; and the
//! binary itself against a pinned instance with no agent running.
//!
//! The expected texts follow ipvsadm.c's printf formats: "%-33s" service
//! names, "  -> %-28s %-7s %-6d %-10u %-10u" destinations, "%9llu"
//! statistics, "%-3s %-6s %-11s %-18s %-18s %s" connections.

use std::net::Ipv4Addr;

use lvs_common::tcp;
use lvs_userspace::{
    adm::{self, Format, Snapshot},
    datapath::{
        testrun::{self, backend_mac, tcp_frame, Flags, DIRECTOR_MAC},
        Datapath, DesiredBackend, DesiredService, DesiredState, NextHop, Options, Persistence,
        Proto,
    },
    sched::Algorithm,
};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

fn backend(n: u8, weight: u32) -> DesiredBackend {
    DesiredBackend {
        addr: Ipv4Addr::new(198, 18, 0, 10 + n),
        port: 80,
        weight,
        alive: true,
        next_hop: NextHop {
            mac: backend_mac(n),
            src_mac: DIRECTOR_MAC,
            ifindex: 1,
        },
    }
}

fn state() -> DesiredState {
    DesiredState {
        services: vec![
            DesiredService {
                vip: VIP,
                port: 80,
                proto: Proto::Tcp,
                algo: Algorithm::Wrr,
                persistence: None,
                sloppy: false,
                backends: vec![backend(1, 2), backend(2, 3)],
            },
            DesiredService {
                vip: VIP,
                port: 443,
                proto: Proto::Tcp,
                algo: Algorithm::Rr,
                persistence: Some(Persistence {
                    timeout_s: 120,
                    netmask: Ipv4Addr::new(255, 255, 255, 0),
                }),
                sloppy: false,
                backends: vec![backend(3, 1)],
            },
        ],
    }
}

/// Known flows: two established, one SYN answered by a client RST (which
/// IPVS's input-only table leaves in SYN_RECV), one persistent SYN.
fn snapshot() -> Snapshot {
    testrun::pin_to_cpu(0);
    let mut dp = Datapath::open(&Options::ephemeral()).expect("load (root?)");
    dp.set_local_mac(1, DIRECTOR_MAC).unwrap();
    dp.apply(&state()).unwrap();
    let client = |n| Ipv4Addr::new(198, 18, 1, n);
    let run = |dp: &mut Datapath, f: Vec<u8>| {
        testrun::run(dp.program().unwrap(), &f).unwrap();
    };
    for (n, sport) in [(1, 40001), (2, 40002)] {
        run(
            &mut dp,
            tcp_frame((client(n), sport), (VIP, 80), Flags::SYN, b""),
        );
        run(
            &mut dp,
            tcp_frame((client(n), sport), (VIP, 80), Flags::ACK, b""),
        );
    }
    run(
        &mut dp,
        tcp_frame((client(3), 40003), (VIP, 80), Flags::SYN, b""),
    );
    run(
        &mut dp,
        tcp_frame((client(3), 40003), (VIP, 80), Flags::RST, b""),
    );
    run(
        &mut dp,
        tcp_frame((client(4), 40004), (VIP, 443), Flags::SYN, b""),
    );
    let mut snap = Snapshot::take(&dp).unwrap();
    // Full timeouts, whatever the clock did while the test ran.
    for c in &mut snap.conns {
        c.expires_in_s = snap.timeouts_s[c.conn.state as usize] as u64;
    }
    for t in &mut snap.templates {
        t.expires_in_s = 120;
    }
    snap.table_size = 4096;
    snap
}

#[test]
fn list_numeric() {
    let s = snapshot();
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.100:80 wrr
  -> 198.18.0.11:80               Route   2      1          0         \n  -> 198.18.0.12:80               Route   3      1          1         \nTCP  198.18.0.100:443 rr persistent 120 mask 255.255.255.0
  -> 198.18.0.13:80               Route   1      0          1         \n";
    assert_eq!(adm::list(&s, Format::default(), None, None, 1.0), want);
}

#[test]
fn stats_exact_and_rate() {
    let s = snapshot();
    let got = adm::list(
        &s,
        Format {
            stats: true,
            exact: true,
            ..Default::default()
        },
        None,
        None,
        1.0,
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[1],
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes"
    );
    assert_eq!(lines[2], "  -> RemoteAddress:Port");
    // 6 packets of 54 bytes: 2 handshakes + a SYN and its RST.
    assert_eq!(
        lines[3],
        "TCP  198.18.0.100:80                     3        6        0      324        0"
    );
    // Rate: the same snapshot one second later with 10 more packets.
    let mut later = s.clone();
    later.services[0].stats.packets += 10;
    later.services[0].stats.bytes += 540;
    later.services[0].backends[0].stats.packets += 10;
    let got = adm::list(
        &later,
        Format {
            rate: true,
            ..Default::default()
        },
        None,
        Some(&s),
        1.0,
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[1],
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS"
    );
    assert_eq!(
        lines[3],
        "TCP  198.18.0.100:80                     0       10        0      540        0"
    );
    assert_eq!(
        lines[4],
        "  -> 198.18.0.11:80                      0       10        0        0        0"
    );
}

#[test]
fn connections_templates_timeouts_and_save() {
    let s = snapshot();
    let want = "\
IPVS connection entries
pro expire state       source             virtual            destination
TCP 02:00  NONE        198.18.1.0:0       198.18.0.100:443   198.18.0.13:80
TCP 15:00  ESTABLISHED 198.18.1.1:40001   198.18.0.100:80    198.18.0.12:80
TCP 15:00  ESTABLISHED 198.18.1.2:40002   198.18.0.100:80    198.18.0.11:80
TCP 01:00  SYN_RECV    198.18.1.3:40003   198.18.0.100:80    198.18.0.12:80
TCP 01:00  SYN_RECV    198.18.1.4:40004   198.18.0.100:443   198.18.0.13:80
";
    assert_eq!(adm::conns(&s), want);
    assert_eq!(adm::timeout(&s), "Timeout (tcp tcpfin udp): 900 120 300\n");
    assert_eq!(
        adm::save(&s),
        "\
-A -t 198.18.0.100:80 -s wrr
-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 2
-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 3
-A -t 198.18.0.100:443 -s rr -p 120 -M 255.255.255.0
-a -t 198.18.0.100:443 -r 198.18.0.13:80 -g -w 1
"
    );
    let _ = tcp::ESTABLISHED;
}

#[test]
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
    dp.apply(&state()).unwrap();
    drop(dp); // like `lvsd --keep-datapath` stopping: only the pins remain
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lvsadm"))
        .args(["-L", "-n", "--instance", &instance])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("IP Virtual Server version 1.2.1 (size=4096)\n"),
        "{text}"
    );
    assert!(
        text.contains("TCP  198.18.0.100:443 rr persistent 120 mask 255.255.255.0\n"),
        "{text}"
    );
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_lvsadm"))
        .args(["-L", "-n", "--instance", "no-such-instance"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is lvsd running"));
}
