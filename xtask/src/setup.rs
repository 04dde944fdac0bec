//! `cargo xtask setup`: everything the build and the lab need, idempotent.
//!
//! - nightly's `rust-src` (the XDP program is built with `-Z build-std=core`);
//! - `bpf-linker` built against nightly's own libLLVM. Such a bpf-linker
//!   breaks when the nightly changes, so the nightly it was built for is
//!   recorded in a stamp file and a mismatch (or a linker that no longer
//!   starts) rebuilds it;
//! - the lab's tools from Debian (ip, ethtool, bpftool, curl, ab, wrk,
//!   keepalived, prometheus, and what `cargo xtask package --check` runs),
//!   installed with apt-get when missing.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

/// Commands the lab and tests run, and the Debian package of each.
const LAB_TOOLS: [(&str, &str); 17] = [
    ("ip", "iproute2"),
    ("ethtool", "ethtool"),
    ("bpftool", "bpftool"),
    ("curl", "curl"),
    ("ab", "apache2-utils"),
    ("wrk", "wrk"),
    ("keepalived", "keepalived"),
    ("ping", "iputils-ping"),
    // DNS_CHECK's real DNS server (dnsmasq-base: the binary, no service).
    ("dnsmasq", "dnsmasq-base"),
    // SSL_GET's real TLS servers (openssl s_server) and the test's keys.
    ("openssl", "openssl"),
    // promtool and a Prometheus server for the metrics tests and rules.
    ("promtool", "prometheus"),
    // `cargo xtask package --check`: shared-library depends, stripping,
    // unit verification, man page rendering.
    ("dpkg-shlibdeps", "dpkg-dev"),
    ("strip", "binutils"),
    ("systemd-analyze", "systemd"),
    ("man", "man-db"),
    // The ECMP lab: FRR is the router (zebra, bgpd, bfdd), BIRD 2 runs
    // beside each lvsd. Both run only inside the lab's namespaces.
    ("vtysh", "frr"),
    ("bird", "bird2"),
];

pub fn run(with_apt: bool) -> Result<()> {
    let nightly = nightly_version()?;
    ensure_rust_src()?;
    ensure_bpf_linker(&nightly)?;
    if with_apt {
        ensure_lab_tools()?;
    }
    Ok(())
}

fn output(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd} {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `rustc +nightly -vV`: names the exact nightly and its LLVM.
fn nightly_version() -> Result<String> {
    output("rustup", &["run", "nightly", "rustc", "-vV"]).context(
        "the nightly toolchain is needed to build the XDP program (rustup toolchain install nightly)",
    )
}

fn ensure_rust_src() -> Result<()> {
    let installed = output(
        "rustup",
        &["component", "list", "--toolchain", "nightly", "--installed"],
    )?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    eprintln!("setup: adding rust-src to nightly");
    let status = Command::new("rustup")
        .args(["component", "add", "rust-src", "--toolchain", "nightly"])
        .status()?;
    if !status.success() {
        bail!("rustup component add rust-src --toolchain nightly failed");
    }
    Ok(())
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// The LLVM prefix bpf-linker links against: kept outside /tmp so it
/// survives reboots as long as the linker it serves.
fn llvm_prefix() -> PathBuf {
    home().join(".local/share/lvs-xdp/llvm-prefix")
}

fn cargo_bin(name: &str) -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cargo"))
        .join("bin")
        .join(name)
}

fn ensure_bpf_linker(nightly: &str) -> Result<()> {
    let prefix = llvm_prefix();
    let stamp = prefix.join("built-for");
    let linker = cargo_bin("bpf-linker");
    let works = Command::new(&linker)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let same_nightly = std::fs::read_to_string(&stamp).ok().as_deref() == Some(nightly);
    if works && same_nightly {
        return Ok(());
    }
    eprintln!(
        "setup: building bpf-linker against nightly's libLLVM ({})",
        if works {
            "the nightly changed"
        } else {
            "missing or broken"
        }
    );

    let llvm_major = nightly
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .context("rustc -vV shows no LLVM version")?
        .to_owned();
    let sysroot = output("rustup", &["run", "nightly", "rustc", "--print", "sysroot"])?;
    let libdir = Path::new(sysroot.trim()).join("lib");
    let lib = std::fs::read_dir(&libdir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so."))
        .with_context(|| format!("no libLLVM.so.* in {}", libdir.display()))?;
    let target = libdir.join(&lib);
    let lib_prefix = prefix.join("lib");
    std::fs::create_dir_all(&lib_prefix)?;
    for name in ["libLLVM.so", lib.as_str()] {
        let link = lib_prefix.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("symlink {}", link.display()))?;
    }
    let feature = format!("llvm-{llvm_major}");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            "bpf-linker",
            "--version",
            "^0.13",
            "--no-default-features",
            "--features",
            &feature,
            "--force",
        ])
        .env("LLVM_PREFIX", &prefix)
        .env_remove("RUSTUP_TOOLCHAIN")
        .status()
        .context("cargo install bpf-linker")?;
    if !status.success() {
        bail!("cargo install bpf-linker failed");
    }
    std::fs::write(&stamp, nightly)?;
    Ok(())
}

/// `cargo fuzz` for `cargo xtask fuzz` (from crates.io, built locally).
pub fn ensure_cargo_fuzz() -> Result<()> {
    if cargo_bin("cargo-fuzz").is_file() {
        return Ok(());
    }
    eprintln!("setup: cargo install cargo-fuzz");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "cargo-fuzz", "--locked"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .status()?;
    if !status.success() {
        bail!("cargo install cargo-fuzz failed");
    }
    Ok(())
}

fn have(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(cmd).is_file())
}

fn ensure_lab_tools() -> Result<()> {
    let missing: Vec<&str> = LAB_TOOLS
        .iter()
        .filter(|(cmd, _)| !have(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("setup: apt-get install {}", missing.join(" "));
    let update = Command::new("apt-get").args(["update", "-qq"]).status()?;
    if !update.success() {
        bail!("apt-get update failed");
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !status.success() {
        bail!("apt-get install {} failed", missing.join(" "));
    }
    // The lab runs these daemons itself, in its namespaces: the system
    // services their packages enable must not run beside them.
    if Path::new("/run/systemd/system").is_dir() {
        for unit in [
            "prometheus.service",
            "keepalived.service",
            "frr.service",
            "bird.service",
        ] {
            let _ = Command::new("systemctl")
                .args(["disable", "--now", "--quiet", unit])
                .status();
        }
    }
    Ok(())
}
