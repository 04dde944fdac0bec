//! `bgp_announce { }`: lvs-xdp's route-health-injection block.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use lvs_config::{parse_str, AnnounceDaemon, ParseOptions, Severity};

fn parse(text: &str) -> lvs_config::ParseResult {
    parse_str("a.conf", text, &ParseOptions::default())
}

fn messages(r: &lvs_config::ParseResult) -> Vec<String> {
    r.diagnostics.iter().map(|d| d.to_string()).collect()
}

#[test]
fn a_full_block_reads_into_the_model() {
    let r = parse(
        "bgp_announce {\n  daemon bird\n  socket /run/lvsd/bird.ctl\n  local_as 65001\n  router_id 198.18.0.2\n  neighbor 198.18.0.250 as 65000\n  neighbor 198.18.0.251 as 65000\n  bfd on\n  bfd_interval 0.05\n  bfd_multiplier 4\n  withdraw_delay 1.5\n}\n\
         virtual_server 198.18.0.100 80 {\n lb_algo mh\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n",
    );
    assert!(r.diagnostics.is_empty(), "{:?}", messages(&r));
    let a = r.config.bgp_announce.expect("block");
    assert_eq!(a.daemon, AnnounceDaemon::Bird);
    assert_eq!(a.local_as, 65001);
    assert_eq!(a.router_id, Some(Ipv4Addr::new(198, 18, 0, 2)));
    assert_eq!(a.neighbors.len(), 2);
    assert_eq!(a.neighbors[0].addr, Ipv4Addr::new(198, 18, 0, 250));
    assert_eq!(a.neighbors[0].remote_as, 65000);
    assert!(a.bfd);
    assert_eq!(a.bfd_interval, Duration::from_millis(50));
    assert_eq!(a.bfd_multiplier, 4);
    assert_eq!(a.withdraw_delay, Duration::from_millis(1500));
    assert_eq!(a.socket.as_deref(), Some("/run/lvsd/bird.ctl"));
    assert_eq!(a.daemon_path, "bird");
    assert_eq!(a.hold_time, 3);
}

#[test]
fn mistakes_name_file_line_and_column() {
    let r = parse(
        "bgp_announce {\n  daemon bird\n  local_as 65001\n  neighbor 198.18.0.250 AS 65000\n}\n",
    );
    assert_eq!(r.exit_code(), 3, "{:?}", messages(&r));
    common::assert_diag_starts(
        &r,
        "a.conf:4:25: fatal: `neighbor 198.18.0.250`: expected `as`",
    );

    let r = parse("bgp_announce {\n  daemon gobgp\n}\n");
    common::assert_diag_starts(&r, "a.conf:2:10: fatal: `daemon gobgp`");

    let r = parse("bgp_announce {\n  daemon bird\n  neighbor 198.18.0.250 as 65000\n}\n");
    common::assert_diag_starts(&r, "a.conf:1:1: fatal: `bgp_announce` has no `local_as`");
    assert!(r.config.bgp_announce.is_none());

    let r = parse("bgp_announce {\n  daemon bird\n  local_as 65001\n  neighbor 198.18.0.250 as 65000\n  bfd_interval 0.001\n  nieghbor x\n}\n");
    let m = messages(&r);
    common::assert_diag_starts(
        &r,
        "a.conf:5:16: error: `bfd_interval` value 0.001 is out of range",
    );
    assert!(
        m.iter().any(|m| m
            .starts_with("a.conf:6:3: error: Unknown keyword 'nieghbor' in bgp_announce")
            && m.contains("`neighbor`")),
        "{m:?}"
    );
    assert!(r.diagnostics.iter().all(|d| d.severity != Severity::Fatal));
    assert!(r.config.bgp_announce.is_some());
}

#[test]
fn whole_config_checks() {
    let r = parse(
        "bgp_announce {\n  daemon bird\n  local_as 65001\n  neighbor 198.18.0.250 as 65000\n}\n",
    );
    common::assert_diag_starts(
        &r,
        "a.conf:1:1: warning: `bgp_announce` has no virtual_server",
    );
    let r = parse(
        "vrrp_instance VI_1 {\n interface bond0\n virtual_router_id 1\n priority 100\n virtual_ipaddress {\n  198.18.0.100/32\n }\n}\n\
         bgp_announce {\n  daemon bird\n  local_as 65001\n  neighbor 198.18.0.250 as 65000\n}\n\
         virtual_server 198.18.0.100 80 {\n lb_algo mh\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n\
         virtual_server 198.18.0.101 80 {\n lb_algo mh\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n",
    );
    let m = messages(&r);
    common::assert_diag_starts(
        &r,
        "a.conf:6:3: warning: 198.18.0.100 is announced over BGP",
    );
    // .101 is announced, not carried by VRRP: no "no vrrp_instance carries it".
    assert!(!m.iter().any(|m| m.contains("198.18.0.101")), "{m:?}");
}
