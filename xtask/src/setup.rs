//! `cargo xtask setup`: everything the build and the lab need, idempotent.
//!
//! - the pinned nightly of `lvs-ebpf/rust-toolchain.toml` with `rust-src`
//!   (the XDP program is built with `-Z build-std=core`), see
//!   [`ensure_toolchain`];
//! - `bpf-linker` built against that nightly's own libLLVM. Such a
//!   bpf-linker breaks when the pin moves, so the `rustc -vV` it was built
//!   for is recorded in a stamp file and a mismatch (or a linker that no
//!   longer starts) rebuilds it;
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

/// The bpf-linker release (built with its own Cargo.lock).
const BPF_LINKER: &str = "=0.13.0";

pub fn run(with_apt: bool) -> Result<()> {
    let pin = pinned_toolchain()?;
    ensure_toolchain(&pin)?;
    ensure_components(&pin)?;
    let nightly = output("rustup", &["run", &pin.channel, "rustc", "-vV"])?;
    ensure_bpf_linker(&pin.channel, &nightly)?;
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

/// The toolchain pinned in `lvs-ebpf/rust-toolchain.toml`.
pub struct Pin {
    /// A dated nightly, e.g. `nightly-2026-05-20`.
    pub channel: String,
    pub components: Vec<String>,
}

/// Reads the pin. The file is rustup's own format; its two keys are read
/// by line so that xtask needs no TOML parser (build.rs does the same).
pub fn pinned_toolchain() -> Result<Pin> {
    let path = crate::workspace_root().join("lvs-ebpf/rust-toolchain.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
    };
    let channel = value("channel")
        .map(|v| v.trim_matches('"').to_owned())
        .with_context(|| format!("{}: no `channel = \"…\"`", path.display()))?;
    let components = value("components")
        .map(|v| {
            v.trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|c| c.trim().trim_matches('"').to_owned())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(Pin {
        channel,
        components,
    })
}

/// The date of a dated nightly channel name (`nightly-2026-05-20`).
fn pin_date(channel: &str) -> Option<&str> {
    channel.strip_prefix("nightly-")
}

/// Makes the pinned nightly available under its own name, in order:
/// 1. already installed: nothing to do;
/// 2. `rustup toolchain install` it by name (needs static.rust-lang.org);
/// 3. offline: the plain `nightly` installed here *is* that nightly (its
///    channel manifest carries the pin's date): give it the dated name. rustup
///    refuses `toolchain link` for names of official channels, so the
///    toolchain directory is copied with hard links (`cp -al`): no disk
///    space, and a later `rustup update nightly` replaces files rather than
///    rewriting them, so the dated copy stays what it was;
/// 4. otherwise fail, naming the pin and how to get it.
pub fn ensure_toolchain(pin: &Pin) -> Result<()> {
    if output("rustup", &["run", &pin.channel, "rustc", "-V"]).is_ok() {
        return Ok(());
    }
    eprintln!("setup: rustup toolchain install {}", pin.channel);
    let components = pin.components.join(",");
    let mut install = Command::new("rustup");
    install.args(["toolchain", "install", &pin.channel, "--profile", "minimal"]);
    if !components.is_empty() {
        install.args(["--component", &components]);
    }
    if install.status().map(|s| s.success()).unwrap_or(false) {
        return Ok(());
    }
    let installed = link_installed_nightly(pin);
    match installed {
        Ok(()) => Ok(()),
        Err(why) => bail!(
            "the XDP program is built with {channel} (lvs-ebpf/rust-toolchain.toml), \
             which rustup could not install and is not the installed `nightly` ({why:#}); \
             on a machine that reaches static.rust-lang.org run \
             `rustup toolchain install {channel} --component rust-src`, \
             or move the pin on purpose",
            channel = pin.channel
        ),
    }
}

/// Step 3 of [`ensure_toolchain`].
fn link_installed_nightly(pin: &Pin) -> Result<()> {
    let date = pin_date(&pin.channel)
        .with_context(|| format!("{} is not a dated nightly", pin.channel))?;
    let sysroot = output("rustup", &["run", "nightly", "rustc", "--print", "sysroot"])
        .context("no `nightly` toolchain installed")?;
    let sysroot = Path::new(sysroot.trim());
    let manifest = sysroot.join("lib/rustlib/multirust-channel-manifest.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let have = text
        .lines()
        .find_map(|l| l.strip_prefix("date = "))
        .map(|d| d.trim().trim_matches('"'))
        .with_context(|| format!("{}: no date", manifest.display()))?;
    if have != date {
        let version = output("rustup", &["run", "nightly", "rustc", "-V"]).unwrap_or_default();
        bail!("the installed nightly is of {have} ({})", version.trim());
    }
    // `…/toolchains/nightly-<host>` → `…/toolchains/nightly-<date>-<host>`.
    let dir_name = sysroot
        .file_name()
        .and_then(|n| n.to_str())
        .context("nightly's sysroot has no name")?;
    let host = dir_name
        .strip_prefix("nightly-")
        .with_context(|| format!("nightly's sysroot {} is not rustup's", sysroot.display()))?;
    let dated = sysroot.with_file_name(format!("{}-{host}", pin.channel));
    eprintln!(
        "setup: offline; the installed nightly is of {date}: copying it (hard links) to {}",
        dated.display()
    );
    let status = Command::new("cp")
        .arg("-al")
        .arg(sysroot)
        .arg(&dated)
        .status()
        .context("cp -al")?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&dated);
        bail!("cp -al {} {} failed", sysroot.display(), dated.display());
    }
    // The copy must answer to its new name.
    output("rustup", &["run", &pin.channel, "rustc", "-V"]).map(drop)
}

/// The pin's components (`rust-src` for `-Z build-std`, rustfmt and clippy
/// for CI), added when missing.
fn ensure_components(pin: &Pin) -> Result<()> {
    let installed = output(
        "rustup",
        &[
            "component",
            "list",
            "--toolchain",
            &pin.channel,
            "--installed",
        ],
    )?;
    for component in &pin.components {
        if installed.lines().any(|l| l.starts_with(component.as_str())) {
            continue;
        }
        eprintln!("setup: adding {component} to {}", pin.channel);
        let status = Command::new("rustup")
            .args(["component", "add", component, "--toolchain", &pin.channel])
            .status()?;
        if !status.success() {
            bail!(
                "rustup component add {component} --toolchain {} failed",
                pin.channel
            );
        }
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

/// `nightly` is `rustc -vV` of the pinned `channel`: its LLVM major picks
/// bpf-linker's `llvm-N` feature.
fn ensure_bpf_linker(channel: &str, nightly: &str) -> Result<()> {
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
        "setup: building bpf-linker against {channel}'s libLLVM ({})",
        if works {
            "the pinned nightly changed"
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
    let sysroot = output("rustup", &["run", channel, "rustc", "--print", "sysroot"])?;
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
            BPF_LINKER,
            "--locked",
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
    cargo_install("cargo-fuzz")
}

/// `cargo install --locked <krate>` from crates.io, with the workspace's
/// toolchain pin lifted (a tool builds with the default toolchain).
pub fn cargo_install(krate: &str) -> Result<()> {
    eprintln!("setup: cargo install {krate}");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", krate, "--locked"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .status()?;
    if !status.success() {
        bail!("cargo install {krate} failed");
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
