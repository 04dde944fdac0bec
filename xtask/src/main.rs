//! `cargo xtask …`: toolchain setup, builds, tests, the bench and the demo.
//!
//! Kept free of the eBPF build itself (no dependency on lvs-userspace), so
//! `cargo xtask setup` works on a machine that cannot build the XDP program
//! yet — installing what it needs is its job.

mod package;
mod setup;

use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "lvs-xdp developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the pinned nightly (lvs-ebpf/rust-toolchain.toml) with
    /// rust-src, bpf-linker built against its LLVM, and the lab's Debian
    /// packages; skips what is already right.
    Setup {
        /// Do not apt-get install missing lab tools.
        #[arg(long)]
        no_apt: bool,
    },
    /// Build the XDP objects and the binaries (release).
    Build,
    /// Every test: unit, BPF test-run, lab end-to-end (needs root), the
    /// root-only ones included (`--include-ignored`).
    Test {
        /// Extra arguments for `cargo test` (after `--`, for the test binaries).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Measure the data path under BPF_PROG_TEST_RUN against baselines.
    Bench {
        /// Print one JSON object as the last line.
        #[arg(long)]
        json: bool,
        /// Test-run repetitions per measurement.
        #[arg(long, default_value_t = 2_000_000)]
        repeat: u32,
    },
    /// The Debian package (cargo-deb): binaries, unit, man pages,
    /// completions, alert rules. Writes target/package/lvs-xdp_*.deb.
    Package {
        /// Then install it here, check every file, the unit
        /// (systemd-analyze verify) and the man pages (man -l), and purge
        /// it (needs root; the package must not be installed already).
        #[arg(long)]
        check: bool,
        /// Package the debug build instead of the release one (quicker;
        /// what `cargo xtask test` checks).
        #[arg(long)]
        dev: bool,
    },
    /// The seed-shaped lab: one director, five real servers (2:3:3:2:2),
    /// real HTTP clients from many addresses, the service on an IPv4 and
    /// an IPv6 VIP; prints the split of each.
    Demo {
        /// Instead: three active directors behind an ECMP router (FRR),
        /// each announcing the VIP over BGP through BIRD; one is killed,
        /// cut off, returned and stopped while connections stream.
        #[arg(long)]
        ecmp: bool,
    },
    /// Run the cargo-fuzz targets (config parser, VRRP advert parser), each
    /// for the given time; installs cargo-fuzz when missing.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Only this target (`parse`, `parse_advert`, `sync_decode`).
        #[arg(long)]
        target: Option<String>,
    },
}

/// Fuzz targets: (directory with its own fuzz workspace, target name).
/// The test-only parts (`datapath::testrun`, `lvs-xdp-pass`): on for the
/// tests, the bench and the demo; the package is built without them.
/// Unqualified on purpose: with `--workspace`, cargo 1.95 enables
/// `lvs-userspace/test-support` for the library but still skips the binary
/// whose `required-features` names it, and the demo then has no
/// `lvs-xdp-pass` on a fresh clone.
const TEST_SUPPORT: &str = "test-support";

const FUZZ_TARGETS: [(&str, &str); 3] = [
    ("lvs-config/fuzz", "parse"),
    ("lvs-userspace/fuzz", "parse_advert"),
    ("lvs-userspace/fuzz", "sync_decode"),
];

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Setup { no_apt } => setup::run(!no_apt),
        Cmd::Build => {
            setup::run(false)?;
            cargo(&["build", "--release", "--workspace", "--bins"])
        }
        Cmd::Test { args } => {
            setup::run(true)?;
            require_root("the tests load BPF programs and build network namespaces")?;
            // The shipped alert rules: valid, and each fires when it should.
            package::check_alert_rules()?;
            // Binaries the lab starts (httpd, lvsd, lvs-xdp-pass) must exist
            // before the tests look for them.
            build_lab_bins(false)?;
            // Tests that need root are `#[ignore = "needs root: …"]` so that
            // a plain `cargo test` passes as any user; here they all run.
            let mut argv = vec![
                "test",
                "--workspace",
                "--no-fail-fast",
                "--",
                "--include-ignored",
            ];
            argv.extend(args.iter().map(String::as_str));
            // One test at a time: the lab tests measure failover gaps and
            // removal times, and on two cores parallel labs would measure
            // each other. (RUST_TEST_THREADS set by the caller wins.)
            if std::env::var_os("RUST_TEST_THREADS").is_none() {
                std::env::set_var("RUST_TEST_THREADS", "1");
            }
            let tests = cargo(&argv);
            // The Debian package of the debug build (already built above):
            // installed, checked and purged.
            eprintln!("package check (debug build)");
            let package =
                package::build(package::Profile::Dev).and_then(|deb| package::check(&deb));
            tests.and(package)
        }
        Cmd::Bench { json, repeat } => {
            setup::run(true)?;
            require_root("the bench loads BPF programs and builds a lab")?;
            build_lab_bins(true)?;
            let json = if json { &["--json"][..] } else { &[] };
            // The agent side first: 1000 real servers checked every second,
            // and 1 M connections in the table while /metrics is scraped
            // every second.
            example("health_bench", json)?;
            example("metrics_bench", json)?;
            // The data path last, so its JSON object is the last line.
            let repeat = repeat.to_string();
            example("bench", &[&["--repeat", repeat.as_str()], json].concat())
        }
        Cmd::Fuzz { seconds, target } => fuzz(seconds, target.as_deref()),
        Cmd::Package { check, dev } => {
            setup::run(check)?;
            let deb = package::build(if dev {
                package::Profile::Dev
            } else {
                package::Profile::Release
            })?;
            if check {
                require_root("the check installs and purges the package")?;
                package::check(&deb)?;
            }
            Ok(())
        }
        Cmd::Demo { ecmp } => {
            setup::run(true)?;
            require_root("the demo builds network namespaces and attaches XDP")?;
            build_lab_bins(true)?;
            example(if ecmp { "demo_ecmp" } else { "demo" }, &[])
        }
    }
}

fn fuzz(seconds: u64, only: Option<&str>) -> Result<()> {
    setup::run(false)?;
    setup::ensure_cargo_fuzz()?;
    let pin = setup::pinned_toolchain()?;
    let mut ran = 0;
    for (dir, target) in FUZZ_TARGETS {
        if only.is_some_and(|t| t != target) {
            continue;
        }
        let path = workspace_root().join(dir);
        if !path.join("Cargo.toml").exists() {
            eprintln!("fuzz: {dir} has no fuzz crate yet, skipped");
            continue;
        }
        eprintln!("fuzz: {target} for {seconds} s");
        let max_time = format!("-max_total_time={seconds}");
        let status = Command::new("rustup")
            .args([
                "run",
                &pin.channel,
                "cargo",
                "fuzz",
                "run",
                target,
                "--",
                &max_time,
            ])
            .current_dir(path.parent().expect("fuzz dir has a parent"))
            .env_remove("RUSTUP_TOOLCHAIN")
            .status()
            .context("cargo fuzz")?;
        if !status.success() {
            bail!("fuzz target {target} failed (a crash is saved under {dir}/artifacts)");
        }
        ran += 1;
    }
    if ran == 0 {
        bail!("no fuzz target ran");
    }
    Ok(())
}

/// Every binary, with the test-only ones the lab starts (`lvs-xdp-pass`).
fn build_lab_bins(release: bool) -> Result<()> {
    let mut argv = vec!["build", "--workspace", "--bins", "--features", TEST_SUPPORT];
    if release {
        argv.push("--release");
    }
    cargo(&argv)
}

/// Runs one of lvs-userspace's examples (release) with `args`.
fn example(name: &str, args: &[&str]) -> Result<()> {
    let mut argv = vec![
        "run",
        "--release",
        "--quiet",
        "-p",
        "lvs-userspace",
        "--example",
        name,
        "--",
    ];
    argv.extend_from_slice(args);
    cargo(&argv)
}

/// Runs cargo (the same one that runs us) in the workspace root.
pub fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("running {cargo} {}", args.join(" ")))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn require_root(why: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        bail!("run as root: {why}");
    }
    Ok(())
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
