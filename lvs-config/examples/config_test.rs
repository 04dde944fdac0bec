//! `cargo run -p lvs-config --example config_test -- FILE [CONFIG_ID]`:
//! prints the diagnostics and exits like `keepalived -t`.
fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: config_test FILE [CONFIG_ID]");
        std::process::exit(2);
    };
    let opts = match args.next() {
        Some(id) => lvs_config::ParseOptions::with_config_id(id),
        None => lvs_config::ParseOptions::default(),
    };
    let code = lvs_config::config_test(path.as_ref(), &opts, &mut std::io::stdout());
    std::process::exit(code);
}
