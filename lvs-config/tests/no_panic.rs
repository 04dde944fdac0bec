//! The no-panic property of the fuzz target, as a plain test: thousands of
//! pseudo-random mutations of the seed config go through `parse_str`.

mod common;

use lvs_config::{parse_str, ParseOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Bytes that matter to the grammar, to make mutations interesting.
const SPICE: &[&[u8]] = &[
    b"{",
    b"}",
    b"\"",
    b"#",
    b"!",
    b"\\",
    b"$",
    b"${",
    b"@",
    b"@^",
    b"\n",
    b"\t",
    "\u{a0}".as_bytes(),
    b"include ",
    b"$X=",
    b"$X",
    b"-",
    b"/",
    b"/33",
    b"999999999999999999999",
    b"0.0000001",
    b"virtual_server ",
    b"real_server ",
    b"fwmark ",
    b"group ",
    b"vrrp_instance ",
    b"::",
    b"\xff\xfe",
    b"TCP_CHECK {",
    b"url {",
    b"}}}}",
    b"{{{{",
    b"persistence_timeout\n",
    b"lb_kind NAT\n",
    b"~SEQ(i, 1, 3) ",
    b"~SEQx(i, 0, 2, 9) ",
    b"~LST({a, b}, {1, 2}, {3}) ",
    b"${i}",
    b"${_RANDOM 1 9}",
    b"${_PWD}",
    b"${_HASH}",
    b"include a/{b,c}.conf\n",
    b"198.18.0.0/29 ",
    b"2;",
];

#[test]
fn mutated_seed_never_panics() {
    let seed = std::fs::read(common::configs_dir().join("seed.conf.orig")).unwrap();
    let extra = std::fs::read(common::configs_dir().join("all_blocks.conf")).unwrap();
    let opts = ParseOptions {
        config_id: Some("lvs1".into()),
        defines: vec![("X".into(), "$X$X".into())],
        follow_includes: false,
    };
    // LVS_CONFIG_MUTATIONS=N runs more (CI runs 3000).
    let iters: usize = std::env::var("LVS_CONFIG_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed_state = std::env::var("LVS_CONFIG_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15_u64);
    let mut rng = SmallRng::seed_from_u64(seed_state);
    for i in 0..iters {
        let mut buf = if i % 2 == 0 {
            seed.clone()
        } else {
            extra.clone()
        };
        for _ in 0..rng.random_range(1..=8) {
            let at = rng.random_range(0..=buf.len());
            match rng.random_range(0..5) {
                0 => {
                    let end = (at + rng.random_range(0..40)).min(buf.len());
                    buf.drain(at..end);
                }
                1 => {
                    let s = SPICE[rng.random_range(0..SPICE.len())];
                    buf.splice(at..at, s.iter().copied());
                }
                2 if at < buf.len() => buf[at] = rng.random::<u8>(),
                3 => {
                    // Duplicate a chunk (blocks, lines).
                    let end = (at + rng.random_range(0..200)).min(buf.len());
                    let chunk: Vec<u8> = buf[at..end].to_vec();
                    let to = rng.random_range(0..=buf.len());
                    buf.splice(to..to, chunk);
                }
                _ => {
                    let end = (at + rng.random_range(0..20)).min(buf.len());
                    buf.truncate(end.max(at));
                }
            }
        }
        let text = String::from_utf8_lossy(&buf);
        let r = parse_str("fuzz.conf", &text, &opts);
        // Exercise Display too.
        let _ = r.diagnostics.to_string();
        let _ = r.exit_code();
    }
}

/// Nested `~SEQ`s multiply; the total is bounded, the parse stays fast.
#[test]
fn nested_seq_is_bounded() {
    let text = "~SEQ(a, 1, 9000) ~SEQ(b, 1, 9000) ~SEQ(c, 1, 9000) global_defs { router_id r${a}_${b}_${c} }\n";
    let t = std::time::Instant::now();
    let r = parse_str("n.conf", text, &ParseOptions::with_config_id("x"));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        t.elapsed()
    );
    assert!(r
        .diagnostics
        .iter()
        .any(|d| d.message.contains("lines produced in all")));
}
