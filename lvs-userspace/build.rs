//! Builds the XDP objects (`lvs-ebpf`) with the nightly pinned in
//! `lvs-ebpf/rust-toolchain.toml` for bpfel-unknown-none and puts them in
//! OUT_DIR, where `datapath::objects` embeds them: one `lvsd` binary carries
//! its own data path. `cargo xtask setup` installs what this needs (the
//! pinned nightly with rust-src, a bpf-linker built against its LLVM).

use std::{env, path::PathBuf, process::Command};

const OBJECTS: [&str; 2] = ["lvs-xdp", "lvs-tools"];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.parent().expect("workspace root").to_path_buf();
    let ebpf = root.join("lvs-ebpf");
    for dir in [
        "lvs-ebpf/src",
        "lvs-ebpf/Cargo.toml",
        "lvs-ebpf/Cargo.lock",
        "lvs-ebpf/rust-toolchain.toml",
        "lvs-common/src",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("bpf");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));

    let toolchain = pinned_toolchain(&ebpf.join("rust-toolchain.toml"));
    let mut cmd = Command::new("rustup");
    cmd.args(["run", &toolchain, "cargo", "build", "--release", "--locked"])
        .args(["-Z", "build-std=core", "--target", "bpfel-unknown-none"])
        .arg("--manifest-path")
        .arg(ebpf.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer cargo's settings are for the host build: none may leak in.
    for var in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "RUSTUP_TOOLCHAIN",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    // BTF: debug info in, bpf-linker emits .BTF (named map fields in bpftool).
    // Code generation happens in bpf-linker (LTO): cpu v3 (kernel >= 5.1)
    // gives 32-bit jumps and ALU. (LLVM's allows-misaligned-mem-access would
    // merge byte loads of packet fields, but it also emits misaligned stack
    // accesses, which the verifier rejects.)
    cmd.env(
        "CARGO_ENCODED_RUSTFLAGS",
        ["-Cdebuginfo=2", "-Clink-arg=--btf", "-Ctarget-cpu=v3"].join("\x1f"),
    );

    let status = cmd.status().unwrap_or_else(|e| {
        panic!("cannot run `rustup run {toolchain} cargo` to build lvs-ebpf ({e}); run `cargo xtask setup`")
    });
    if !status.success() {
        panic!("building the XDP program failed (see above); if {toolchain}, its rust-src or bpf-linker is missing, run `cargo xtask setup`");
    }
    for obj in OBJECTS {
        let built = target_dir.join("bpfel-unknown-none/release").join(obj);
        std::fs::copy(&built, out_dir.join(obj))
            .unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    }
}

/// `channel = "…"` of rust-toolchain.toml (read by line, as xtask does).
fn pinned_toolchain(path: &std::path::Path) -> String {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "channel")
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("{}: no `channel = \"…\"`", path.display()))
}
