//! `lvsd`: the keepalived-compatible agent of lvs-xdp.

fn main() -> std::process::ExitCode {
    lvs_userspace::agent::main()
}
