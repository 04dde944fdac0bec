//! `cargo +nightly fuzz run parse` (from lvs-config/): arbitrary bytes, as
//! text, through `parse_str`; the parser must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let opts = lvs_config::ParseOptions {
        config_id: Some("lvs1".into()),
        defines: Vec::new(),
        follow_includes: false,
    };
    let r = lvs_config::parse_str("fuzz.conf", &text, &opts);
    let _ = r.diagnostics.to_string();
    let _ = r.exit_code();
});
