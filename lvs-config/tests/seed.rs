//! Acceptance: the operator's seed config (as pasted, with U+00A0 and Chinese
//! comments) and broken configs.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use lvs_config::{parse_file, parse_str, Checker, LbKind, ParseOptions, Severity, VsAddr};

fn seed(name: &str) -> lvs_config::ParseResult {
    parse_file(
        &common::configs_dir().join(name),
        &ParseOptions::with_config_id("lvs1"),
    )
}

/// `text` read as file `name`, with a fixed config id (not the host's name).
fn parse(name: &str, text: &str) -> lvs_config::ParseResult {
    parse_str(name, text, &ParseOptions::with_config_id("x"))
}

#[test]
fn seed_orig_parses_with_the_expected_warnings() {
    let r = seed("seed.conf.orig");
    let code = r.exit_code();
    assert!(code == 0 || code == 4, "exit {code}:\n{}", r.diagnostics);
    assert!(!r.diagnostics.has_errors(), "{}", r.diagnostics);
    let text: Vec<String> = r.diagnostics.iter().map(|d| d.to_string()).collect();
    let find = |needle: &str| {
        r.diagnostics
            .iter()
            .find(|d| d.message.contains(needle))
            .unwrap_or_else(|| panic!("no diagnostic with {needle:?} in {text:#?}"))
    };
    // VIP .42 is not carried by VI_1 (it carries .44/27): at the address of
    // `virtual_server 222.211.74.42 80` (line 41, after U+00A0 indentation).
    let d = find("222.211.74.42 is not carried by vrrp_instance VI_1");
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!((d.span.line, d.span.col), (41, 24));
    assert!(d.help.as_deref().unwrap().contains("222.211.74.42/27"));
    // brd .255 is not the broadcast of a /27 (.63): at the brd value.
    let d = find("brd 222.211.74.255 is not the broadcast");
    assert_eq!((d.span.line, d.span.col), (33, 39));
    assert!(d.help.as_deref().unwrap().contains("brd 222.211.74.63"));
    // nb_get_retry in TCP_CHECK: keepalived 2.2.7 ignores it, lvsd honours
    // it; a warning at each use says so.
    let dep: Vec<_> = r
        .diagnostics
        .iter()
        .filter(|d| d.message.contains("nb_get_retry"))
        .collect();
    assert_eq!(
        dep.iter().map(|d| d.span.line).collect::<Vec<_>>(),
        [52, 62, 72, 82, 92]
    );
    assert!(dep.iter().all(|d| d.severity == Severity::Warning
        && d.message.contains("keepalived 2.2.7 does not know it here")));

    let c = &r.config;
    assert_eq!(c.global.router_id.as_deref(), Some("mllvs1"));
    let vi = &c.vrrp_instances[0];
    assert_eq!(vi.name, "VI_1");
    assert_eq!(vi.interface, "bond0");
    assert_eq!(vi.virtual_router_id, 20);
    assert_eq!(vi.priority, 200);
    assert_eq!(vi.advert_int, Duration::from_secs(1));
    assert_eq!(vi.lvs_sync_daemon_interface.as_deref(), Some("bond0"));
    assert_eq!(vi.authentication.as_ref().unwrap().pass, "7890");
    let vip = &vi.virtual_ipaddress[0];
    assert_eq!(vip.addr, "222.211.74.44".parse::<IpAddr>().unwrap());
    assert_eq!(vip.prefix_len, 27);
    assert_eq!(vip.label.as_deref(), Some("bond0:1"));

    assert_eq!(c.virtual_servers.len(), 1);
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.addr, VsAddr::Ip("222.211.74.42".parse().unwrap(), 80));
    assert_eq!(vs.lb_algo, "wrr");
    assert_eq!(vs.lb_kind, LbKind::Dr);
    assert_eq!(vs.persistence_timeout, Some(120));
    assert_eq!(vs.delay_loop, Duration::from_secs(6));
    assert_eq!(vs.real_servers.len(), 5);
    let weights: Vec<u32> = vs.real_servers.iter().map(|r| r.weight).collect();
    assert_eq!(weights, [2, 3, 3, 2, 2]);
    for (i, rs) in vs.real_servers.iter().enumerate() {
        assert_eq!(
            rs.addr,
            format!("222.211.74.{}", 36 + i).parse::<IpAddr>().unwrap()
        );
        assert_eq!(rs.port, 80);
        assert_eq!(rs.lb_kind, LbKind::Dr);
        let [Checker::Tcp(t)] = rs.checkers.as_slice() else {
            panic!("checkers {:?}", rs.checkers)
        };
        let conn = t.common.conn.as_ref().unwrap();
        assert_eq!(conn.connect_timeout, Duration::from_secs(10));
        assert_eq!(conn.connect_port, Some(80));
        assert_eq!(t.common.policy.retry, 3);
        assert_eq!(t.common.policy.delay_before_retry, Duration::from_secs(3));
        assert_eq!(t.common.policy.delay_loop, Duration::from_secs(6));
    }
}

#[test]
fn seed_plain_and_orig_agree() {
    let a = seed("seed.conf");
    let b = seed("seed.conf.orig");
    assert_eq!(common::summary(&a.config), common::summary(&b.config));
    // The same findings, plus one warning that the .orig's U+00A0 would
    // not separate words for keepalived.
    assert_eq!(a.diagnostics.len() + 1, b.diagnostics.len());
    assert!(b
        .diagnostics
        .iter()
        .any(|d| d.message.starts_with("U+00A0 separates words here")));
}

/// The broken config `name`: it cannot run, and has each of `fatals`
/// (line, column, text) among its fatal errors.
#[track_caller]
fn broken(name: &str, fatals: &[(u32, u32, &str)]) -> lvs_config::ParseResult {
    let r = seed(name);
    assert_eq!(
        r.exit_code(),
        lvs_config::EXIT_CANNOT_RUN,
        "{name}:\n{}",
        r.diagnostics
    );
    for &(line, col, text) in fatals {
        common::assert_diag_at(&r, Severity::Fatal, line, col, text);
    }
    r
}

#[test]
fn missing_brace_points_at_the_unclosed_block() {
    let r = broken(
        "broken_brace.conf",
        &[(1, 1, "missing '}': block `vrrp_instance VI_1`")],
    );
    // Recovery: the virtual server after it is still read.
    assert_eq!(r.config.virtual_servers.len(), 1);
    broken("broken_eof.conf", &[(4, 1, "not closed at end of file")]);
    broken("broken_extra.conf", &[(4, 1, "extra '}'")]);
}

#[test]
fn bad_values_point_at_the_value() {
    broken(
        "broken_ip.conf",
        &[
            (4, 17, "`192.0.2.300` is not a valid IP address"),
            (8, 16, "`weight` value `x1` is not a number"),
        ],
    );
}

#[test]
fn unknown_block_is_fatal_with_a_suggestion() {
    let r = broken(
        "broken_block.conf",
        &[(4, 1, "unknown top-level keyword `virtual_servr`")],
    );
    let d = r
        .diagnostics
        .iter()
        .find(|d| d.severity == Severity::Fatal)
        .unwrap();
    assert_eq!(d.help.as_deref(), Some("did you mean `virtual_server`?"));
    assert_eq!(
        d.to_string(),
        format!(
            "{}:4:1: fatal: unknown top-level keyword `virtual_servr` (hint: did you mean `virtual_server`?)",
            common::configs_dir().join("broken_block.conf").display()
        )
    );
}

#[test]
fn defaults_follow_keepalived() {
    let r = parse(
        "t.conf",
        "virtual_server 10.0.0.1 80 {\n persistence_timeout\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n  }\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n }\n}\n",
    );
    let vs = &r.config.virtual_servers[0];
    assert_eq!(vs.lb_kind, LbKind::Nat, "keepalived defaults to NAT");
    assert_eq!(vs.lb_algo, "wlc");
    assert_eq!(vs.persistence_timeout, Some(360));
    assert_eq!(vs.delay_loop, Duration::from_secs(60));
    let rs = &vs.real_servers[0];
    assert_eq!(rs.weight, 1);
    let c: Vec<_> = rs
        .checkers
        .iter()
        .map(|c| c.common().unwrap().clone())
        .collect();
    assert_eq!(
        c[0].conn.as_ref().unwrap().connect_timeout,
        Duration::from_secs(5)
    );
    assert_eq!(
        (c[0].policy.retry, c[0].policy.delay_before_retry),
        (1, Duration::from_secs(1))
    );
    assert_eq!(
        (c[1].policy.retry, c[1].policy.delay_before_retry),
        (1, Duration::from_secs(3))
    );
    assert_eq!(c[2].policy.retry, 0);
    assert!(c[2].conn.is_none());
    assert_eq!(c[0].policy.warmup, Duration::from_secs(60));
    // No `protocol`: keepalived's UDP, reported as keepalived words it;
    // and keepalived's default NAT is a forwarding method lvsd refuses (the
    // service is not run): both errors, "errors but would run".
    assert_eq!(vs.protocol, lvs_config::Protocol::Udp);
    let errors: Vec<String> = r
        .diagnostics
        .iter()
        .filter(|d| d.severity >= Severity::Error)
        .map(|d| d.to_string())
        .collect();
    assert!(
        errors.contains(&"t.conf:1:1: error: Virtual server 10.0.0.1:80: no protocol set - defaulting to UDP (hint: write `protocol TCP` for a TCP service (or `protocol UDP` to keep UDP))".to_string()),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("error: lb_kind NAT: virtual_server 10.0.0.1:80 is not run")),
        "{errors:#?}"
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(r.exit_code(), lvs_config::EXIT_ERRORS);
}

/// keepalived check_data.c: `ops` on a TCP service is reported and
/// cleared (one-packet scheduling is for UDP); on UDP it stays.
#[test]
fn ops_on_a_tcp_service_is_reset_as_keepalived_does() {
    let text = |proto: &str| {
        format!("virtual_server 10.0.0.1 53 {{\n lb_algo rr\n lb_kind DR\n protocol {proto}\n ops\n real_server 10.0.0.2 53 {{\n }}\n}}\n")
    };
    let r = parse("t.conf", &text("TCP"));
    let errors: Vec<String> = r.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(
        errors.contains(&"t.conf:1:1: error: Virtual server 10.0.0.1:53: one packet scheduling requires UDP - resetting (hint: remove `ops`: it applies to UDP services only)".to_string()),
        "{errors:#?}"
    );
    assert!(r.config.virtual_servers[0].lb_flags.is_empty());
    let r = parse("t.conf", &text("UDP"));
    assert!(r.diagnostics.is_empty(), "{:#?}", r.diagnostics);
    assert_eq!(r.config.virtual_servers[0].lb_flags, ["ops"]);
}

#[test]
fn vrrp_required_items_and_ranges() {
    let r = parse(
        "v.conf",
        "vrrp_instance A {\n priority 256\n advert_int 300\n}\n",
    );
    let msgs: Vec<String> = r.diagnostics.iter().map(|d| d.to_string()).collect();
    common::assert_diag_starts(
        &r,
        "v.conf:2:11: error: `priority` value 256 is out of range",
    );
    common::assert_diag_starts(&r, "v.conf:3:13: error: `advert_int` value 300");
    common::assert_diag_starts(
        &r,
        "v.conf:1:1: fatal: vrrp_instance `A` has no `interface`",
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("has no valid `virtual_router_id`")),
        "{msgs:#?}"
    );
    assert_eq!(r.exit_code(), lvs_config::EXIT_CANNOT_RUN);
}

#[test]
fn a_block_name_defined_twice_keeps_the_first() {
    let r = parse(
        "d.conf",
        "track_file tf {\n file /run/a\n}\ntrack_file tf {\n file /run/b\n}\n\
         virtual_server_group G {\n 198.18.0.100 80\n}\nvirtual_server_group G {\n 198.18.0.101 80\n}\n",
    );
    common::assert_diag_starts(
        &r,
        "d.conf:4:1: error: track_file `tf` defined twice; the second is ignored",
    );
    common::assert_diag_starts(
        &r,
        "d.conf:10:1: error: virtual_server_group `G` defined twice; the second is ignored",
    );
    assert_eq!(r.config.track_files.len(), 1);
    assert_eq!(r.config.track_file("tf").unwrap().file, "/run/a");
    assert_eq!(r.config.virtual_server_groups.len(), 1);
}
