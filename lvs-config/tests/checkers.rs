//! The checkers keepalived has beyond TCP/HTTP/MISC, as the parser models
//! them: UDP_CHECK's hex strings, DNS_CHECK's type and name, SMTP_CHECK's
//! defaults, FILE_CHECK and its `track_file`, and each mistake reported at
//! its `line:col`.

mod common;

use lvs_config::{parse_str, Checker, HexPattern, Severity};

fn parse(body: &str) -> lvs_config::ParseResult {
    let text = format!(
        "track_file tf {{\n file /run/tf\n weight -3 reverse\n init_file 2 overwrite\n}}\n\
         virtual_server 198.18.0.100 53 {{\n lb_algo rr\n lb_kind DR\n protocol UDP\n\
         real_server 198.18.0.11 53 {{\n{body}\n }}\n}}\n"
    );
    parse_str("c.conf", &text, &Default::default())
}

/// [`parse`], asserting that nothing is reported as an error.
#[track_caller]
fn parse_clean(body: &str) -> lvs_config::ParseResult {
    let r = parse(body);
    assert!(!r.diagnostics.has_errors(), "{}", r.diagnostics);
    r
}

fn error_at(r: &lvs_config::ParseResult, line: u32, col: u32, needle: &str) {
    common::assert_diag_at(r, Severity::Error, line, col, needle);
}

fn checkers(r: &lvs_config::ParseResult) -> &[Checker] {
    &r.config.virtual_servers[0].real_servers[0].checkers
}

#[test]
fn udp_check_hex_strings() {
    let r = parse_clean("  UDP_CHECK {\n   payload 01 02 0a0B\n   require_reply 4x ff\n  }");
    let Checker::Udp(u) = &checkers(&r)[0] else {
        panic!("{:?}", checkers(&r))
    };
    let p = HexPattern::parse(u.payload.as_deref().unwrap(), false).unwrap();
    assert_eq!(p.bytes, [1, 2, 0x0a, 0x0b]);
    let q = HexPattern::parse(u.require_reply.as_deref().unwrap(), true).unwrap();
    assert_eq!((q.bytes, q.mask), (vec![0x40, 0xff], vec![0x0f, 0]));
    // A bare require_reply: any reply.
    let r = parse("  UDP_CHECK {\n   require_reply\n  }");
    let Checker::Udp(u) = &checkers(&r)[0] else {
        panic!()
    };
    assert_eq!(u.require_reply.as_deref(), Some(""));
    // Not hex: reported at the value (line 12 is `payload`).
    let r = parse("  UDP_CHECK {\n   payload 0g\n  }");
    error_at(&r, 12, 12, "not a hex string");
    assert_eq!(
        HexPattern::parse("0x", false),
        None,
        "x only in require_reply"
    );
}

#[test]
fn dns_check_type_and_name() {
    let r = parse_clean("  DNS_CHECK {\n   type aaaa\n   name www.example.test\n  }");
    let Checker::Dns(d) = &checkers(&r)[0] else {
        panic!()
    };
    assert_eq!(d.query_type.as_deref(), Some("AAAA"));
    assert_eq!(d.name.as_deref(), Some("www.example.test"));
    assert_eq!(d.common.policy.retry, 3, "DNS_CHECK's default retry");
    let r = parse("  DNS_CHECK {\n   type SRV\n   name a..b\n  }");
    error_at(&r, 12, 9, "Unknown DNS check type SRV");
    error_at(&r, 13, 9, "has empty label");
}

#[test]
fn file_check_and_track_file() {
    let r = parse_clean("  weight 10\n  FILE_CHECK {\n   track_file tf\n  }");
    let t = r.config.track_file("tf").unwrap();
    assert_eq!(
        (t.file.as_str(), t.weight, t.weight_reverse, t.init_file),
        ("/run/tf", -3, true, Some((2, true)))
    );
    let Checker::File(f) = &checkers(&r)[0] else {
        panic!()
    };
    assert_eq!((f.track_file.as_str(), f.weight), ("tf", None));
    assert_eq!(
        t.weight_for(f.weight, f.weight_reverse),
        (-3, true),
        "the file's"
    );
    let r = parse("  FILE_CHECK {\n   track_file tf\n   weight 4 reverse\n  }");
    let Checker::File(f) = &checkers(&r)[0] else {
        panic!()
    };
    assert_eq!((f.weight, f.weight_reverse), (Some(4), true));
    let t = r.config.track_file("tf").unwrap();
    assert_eq!(
        t.weight_for(Some(4), false),
        (4, false),
        "the checker's own"
    );
    // An unknown track_file: the checker is left out, with the reason.
    let r = parse("  FILE_CHECK {\n   track_file nope\n  }");
    error_at(&r, 11, 3, "track_file nope not found");
    assert!(checkers(&r).is_empty());
    let r = parse("  FILE_CHECK {\n  }");
    error_at(&r, 11, 3, "FILE_CHECK has no track_file");
}
