//! Golden tests: every config under tests/configs (and its samples/) is
//! and keepalived/) is parsed; the diagnostics and a model summary must match `NAME.expected`.
//! `UPDATE_GOLDEN=1 cargo test -p lvs-config --test golden` rewrites them.
//! A `NAME.options` file may set `config_id=ID` (default `lvs1`).

mod common;

use std::path::{Path, PathBuf};

use lvs_config::{
    capability::{self, Support},
    parse_file, LbKind, ParseOptions, Severity,
};

fn options(path: &Path) -> ParseOptions {
    let mut opts = ParseOptions::with_config_id("lvs1");
    let opt_file = PathBuf::from(format!("{}.options", path.display()));
    if let Ok(text) = std::fs::read_to_string(opt_file) {
        for line in text.lines() {
            if let Some(id) = line.strip_prefix("config_id=") {
                opts.config_id = Some(id.trim().to_string());
            }
        }
    }
    opts
}

#[test]
fn golden() {
    let dir = common::configs_dir();
    let mut files = common::config_files(&dir);
    files.extend(common::config_files(&dir.join("samples")));
    // One file per construct where keepalived's reading is subtle (issue 18);
    // the differential test runs them through keepalived 2.2.7 too.
    files.extend(common::config_files(&dir.join("keepalived")));
    assert!(files.len() >= 15, "only {} golden configs", files.len());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failed = Vec::new();
    for f in &files {
        let r = parse_file(f, &options(f));
        let got = common::render(&r);
        let exp_path = PathBuf::from(format!("{}.expected", f.display()));
        if update {
            std::fs::write(&exp_path, &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&exp_path).unwrap_or_default();
        if got != want {
            eprintln!("--- {} differs; got:\n{got}", f.display());
            failed.push(f.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "golden mismatch (UPDATE_GOLDEN=1 to accept): {failed:?}"
    );
}

/// keepalived's own samples parse without errors: every keyword is either
/// implemented or warned about once.
#[test]
fn samples_have_no_errors() {
    let dir = common::configs_dir().join("samples");
    let files = common::config_files(&dir);
    assert_eq!(files.len(), 25);
    for f in files {
        // keepalived 2.2.7 itself rejects this sample's old sync-group
        // syntax (names without `group { }`); so do we.
        if f.ends_with("keepalived.conf.vrrp.lvs_syncd") {
            continue;
        }
        let r = parse_file(&f, &options(&f));
        // The only errors are what lvsd refuses (NAT, TUN, fwmark): those
        // services are not run, the rest is (exit 4).
        for d in r
            .diagnostics
            .iter()
            .filter(|d| d.severity != Severity::Warning)
        {
            assert!(
                d.message
                    .contains("is not run: lvsd forwards by Direct Routing only")
                    || d.message.contains("fwmark services are not supported"),
                "{}: {d}",
                f.display()
            );
        }
        let refused = r
            .config
            .virtual_servers
            .iter()
            .any(|v| v.lb_kind != LbKind::Dr)
            || r.diagnostics
                .iter()
                .any(|d| d.message.contains("fwmark services are not supported"));
        assert_eq!(
            r.exit_code(),
            if refused { 4 } else { 0 },
            "{}",
            f.display()
        );
        // Nothing lvsd runs is called unsupported or ignored.
        for d in &r.diagnostics {
            let Some(kw) = d.message.split('`').nth(1) else {
                continue;
            };
            let ctx = d
                .message
                .split(" in ")
                .nth(1)
                .and_then(|c| c.split_whitespace().next())
                .unwrap_or("root");
            if d.message.contains("not supported") || d.message.contains("not run by lvsd") {
                assert_ne!(
                    capability::lookup(ctx, kw, None),
                    Some(Support::Runs),
                    "{}: false claim: {d}",
                    f.display()
                );
            }
        }
        // No keyword is reported twice as unsupported.
        let mut seen = std::collections::HashSet::new();
        for d in &r.diagnostics {
            if d.message.contains("not supported yet") {
                assert!(seen.insert(d.message.clone()), "twice: {d}");
            }
        }
    }
}
