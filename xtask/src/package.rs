//! `cargo xtask package [--check]`: the Debian package, and the check an
//! operator would make of it.
//!
//! Build: release binaries, man pages and completions generated from the
//! clap definitions (`lvs-userspace/examples/gen_docs.rs`, gzipped here),
//! then `cargo deb --no-build` (cargo-deb installed when missing) with the
//! layout in `[package.metadata.deb]` of lvs-userspace/Cargo.toml.
//!
//! Check: `dpkg -i`, every file in place, `--version`, `systemd-analyze
//! verify` of the unit, `man -l` of both pages, `lvsd -t` on a sample,
//! then `dpkg --purge` and nothing of the package left on disk.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, ensure, Context, Result};

use crate::{cargo, workspace_root};

const PACKAGE: &str = "lvs-xdp";

/// Files the package must install (and purge must remove).
const EXPECTED: &[&str] = &[
    "/usr/sbin/lvsd",
    "/usr/sbin/lvsadm",
    "/usr/bin/lvs-genhash",
    "/lib/systemd/system/lvsd.service",
    "/etc/default/lvsd",
    "/usr/share/man/man8/lvsd.8.gz",
    "/usr/share/man/man8/lvsadm.8.gz",
    "/usr/share/bash-completion/completions/lvsd",
    "/usr/share/bash-completion/completions/lvsadm",
    "/usr/share/zsh/vendor-completions/_lvsd",
    "/usr/share/fish/vendor_completions.d/lvsd.fish",
    "/usr/share/doc/lvs-xdp/alerts.yml",
];

/// Which build the package holds: `Release` for `cargo xtask package`;
/// `Dev` for the check in `cargo xtask test`, which reuses the debug build
/// the tests need anyway (the layout, unit, pages and scripts are the same).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Release,
    Dev,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "debug",
        }
    }
}

/// Builds the .deb and returns its path.
pub fn build(profile: Profile) -> Result<PathBuf> {
    match profile {
        Profile::Release => cargo(&["build", "--release", "--workspace", "--bins"])?,
        Profile::Dev => cargo(&["build", "--workspace", "--bins"])?,
    }
    // Where [package.metadata.deb] finds them (target/release/… is mapped
    // to the profile's directory by cargo-deb).
    let docs = workspace_root()
        .join("target")
        .join(profile.dir())
        .join("lvs-docs");
    let _ = std::fs::remove_dir_all(&docs);
    let docs_arg = docs.to_str().context("target path")?.to_owned();
    cargo(&[
        "run",
        "--quiet",
        "-p",
        "lvs-userspace",
        "--example",
        "gen_docs",
        "--",
        &docs_arg,
    ])?;
    for page in ["lvsd.8", "lvsadm.8"] {
        run(
            "gzip",
            &["-9", "-n", "-f", &format!("{docs_arg}/man/{page}")],
        )?;
    }
    ensure_cargo_deb()?;
    let out_dir = workspace_root().join("target/package").join(profile.dir());
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.to_str().context("target path")?;
    let mut argv = vec![
        "deb",
        "-p",
        "lvs-userspace",
        "--no-build",
        "--strip",
        "--output",
        out,
    ];
    if profile == Profile::Dev {
        argv.extend(["--profile", "dev"]);
    }
    cargo(&argv)?;
    let deb = std::fs::read_dir(&out_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("cargo deb wrote no .deb")?;
    eprintln!("package: {}", deb.display());
    Ok(deb)
}

/// Installs, inspects and purges the package on this machine.
pub fn check(deb: &Path) -> Result<()> {
    ensure!(
        !installed(),
        "{PACKAGE} is already installed here; the check installs and purges it: dpkg --purge {PACKAGE} first"
    );
    let info = run("dpkg-deb", &["--info", path_str(deb)?])?;
    eprintln!("{info}");
    run("dpkg", &["-i", path_str(deb)?])?;
    let result = inspect();
    let purge = run("dpkg", &["--purge", PACKAGE]);
    result?;
    purge?;
    ensure!(!installed(), "{PACKAGE} still known to dpkg after --purge");
    let left: Vec<&str> = EXPECTED
        .iter()
        .copied()
        .filter(|p| Path::new(p).exists())
        .collect();
    ensure!(left.is_empty(), "left behind after dpkg --purge: {left:?}");
    for dir in ["/usr/share/doc/lvs-xdp", "/run/lvs-xdp"] {
        ensure!(!Path::new(dir).exists(), "{dir} left after purge");
    }
    eprintln!("package check: installed, verified and purged cleanly");
    Ok(())
}

fn inspect() -> Result<()> {
    let listed = run("dpkg", &["-L", PACKAGE])?;
    for path in EXPECTED {
        ensure!(
            listed.lines().any(|l| l == *path) && Path::new(path).exists(),
            "{path} not installed by the package:\n{listed}"
        );
    }
    let conffiles = run("dpkg-query", &["-W", "-f=${Conffiles}", PACKAGE])?;
    ensure!(
        conffiles.contains("/etc/default/lvsd"),
        "/etc/default/lvsd is a conffile: {conffiles}"
    );
    let version = env!("CARGO_PKG_VERSION");
    for (bin, name) in [
        ("/usr/sbin/lvsd", "lvsd"),
        ("/usr/sbin/lvsadm", "lvsadm"),
        ("/usr/bin/lvs-genhash", "lvs-genhash"),
    ] {
        let out = run(bin, &["--version"])?;
        ensure!(
            out.trim() == format!("{name} {version}"),
            "{bin} --version: {out}"
        );
    }
    // systemd-analyze verify prints nothing for a clean unit.
    let out = Command::new("systemd-analyze")
        .args(["verify", "/lib/systemd/system/lvsd.service"])
        .output()
        .context("systemd-analyze")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("lvsd.service"))
        .collect();
    ensure!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify lvsd.service:\n{text}"
    );
    for (page, must) in [
        ("/usr/share/man/man8/lvsd.8.gz", "--keep-datapath"),
        ("/usr/share/man/man8/lvsadm.8.gz", "--stats"),
    ] {
        let out = Command::new("man")
            .args(["-l", page])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .context("man")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.success() && text.contains(must) && text.contains("SEE ALSO"),
            "man -l {page} renders:\n{text}{err}"
        );
        ensure!(err.trim().is_empty(), "man -l {page} warns: {err}");
    }
    // The installed lvsd tests keepalived's own sample.
    let sample = workspace_root().join("lvs-config/tests/configs/samples/keepalived.conf.sample");
    let out = Command::new("/usr/sbin/lvsd")
        .args(["-t", "-f", path_str(&sample)?])
        .output()?;
    ensure!(
        matches!(out.status.code(), Some(0 | 4)),
        "/usr/sbin/lvsd -t on keepalived.conf.sample: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", PACKAGE])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("installed"))
        .unwrap_or(false)
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

fn run(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `promtool check rules` and `promtool test rules` on the shipped alert
/// rules (packaging/prometheus).
pub fn check_alert_rules() -> Result<()> {
    let dir = workspace_root().join("packaging/prometheus");
    for (args, what) in [
        (["check", "rules", "alerts.yml"], "promtool check rules"),
        (["test", "rules", "alerts_test.yml"], "promtool test rules"),
    ] {
        let status = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .status()
            .context("promtool (Debian package prometheus; cargo xtask setup)")?;
        ensure!(
            status.success(),
            "{what} packaging/prometheus/{} failed",
            args[2]
        );
    }
    Ok(())
}

/// cargo-deb from crates.io, built locally when missing.
fn ensure_cargo_deb() -> Result<()> {
    let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["deb", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Ok(());
    }
    crate::setup::cargo_install("cargo-deb")
}
