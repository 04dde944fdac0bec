//! Man pages and shell completions from the clap definitions of `lvsd` and
//! `lvsadm` (run by `cargo xtask package`):
//!
//! ```text
//! cargo run -p lvs-userspace --example gen_docs -- OUTDIR
//! ```
//!
//! writes `OUTDIR/man/lvsd.8`, `OUTDIR/man/lvsadm.8` and
//! `OUTDIR/completions/{bash,zsh,fish}/…`. The options come from clap; the
//! sections clap does not know (signals, files, exit status, systemd,
//! upgrades, keepalived) are written here.

use std::{io::Write, path::Path};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use lvs_userspace::{adm::cli::Args as AdmArgs, agent::cli::Args as AgentArgs};

/// A man section: title and paragraphs (`.TP` items as `("tag", "text")`).
struct Section {
    title: &'static str,
    body: &'static [(&'static str, &'static str)],
}

const LVSD_SECTIONS: &[Section] = &[
    Section {
        title: "SIGNALS",
        body: &[
            ("SIGHUP", "Re-read the configuration and apply only the difference: unchanged services keep their flows and counters, removed real servers are drained (weight 0) for --drain-timeout seconds. A file that cannot run is refused and the running configuration stays. Under systemd: RELOADING=1, then READY=1."),
            ("SIGTERM, SIGINT", "Stop: send VRRP priority 0 (the backup takes over at once), stop the checkers, then detach and unpin the data path, or with --keep-datapath leave it forwarding for the next lvsd to re-adopt. Under systemd: STOPPING=1."),
        ],
    },
    Section {
        title: "EXIT STATUS",
        body: &[
            ("0", "Stopped cleanly, or -t found nothing wrong."),
            ("1", "Could not start: the instance is in use by another lvsd (its pid is named), an interface is missing, the data path could not be loaded. A failed start removes what it pinned, attached or mounted."),
            ("3", "The configuration cannot run (keepalived's KEEPALIVED_EXIT_CONFIG)."),
            ("4", "-t: the configuration has errors but would run; the services in error are not run (keepalived's \"errors but would run\")."),
        ],
    },
    Section {
        title: "FILES",
        body: &[
            ("/etc/keepalived/keepalived.conf", "The configuration, keepalived's own file and syntax (-f to change)."),
            ("/etc/default/lvsd", "LVSD_OPTIONS for lvsd.service (the package sets --keep-datapath)."),
            ("/sys/fs/bpf/lvs/INSTANCE/", "The pinned maps and XDP links of an instance (--bpffs, --instance); bpftool map dump pinned reads them. The owner link names the running lvsd's pid; lvsd holds a flock on the directory, so a second lvsd on the same instance exits at once."),
            ("/run/lvs-xdp/INSTANCE/status.json", "Health, VRRP and sync state, written every second, read by lvsadm --health, --vrrp and --daemon."),
        ],
    },
    Section {
        title: "SYSTEMD",
        body: &[
            ("lvsd.service", "Type=notify: READY=1 once the data path forwards, RELOADING=1 and READY=1 around a reload (systemctl reload lvsd sends SIGHUP), STOPPING=1. It conflicts with keepalived.service: both would own the same VRRP instances and virtual servers."),
        ],
    },
    Section {
        title: "UPGRADES",
        body: &[
            ("--keep-datapath", "With it (the packaged default), systemctl restart lvsd and package upgrades do not drop a flow: the stopping lvsd leaves the XDP program and its maps pinned, the new one waits for it to finish, then re-adopts the maps (connections, persistence templates, counters) and swaps its program into the pinned links. A plain stop then leaves the program forwarding while the VIPs move to the VRRP backup; lvsd --flush removes it (removing the package does)."),
        ],
    },
    Section {
        title: "KEEPALIVED",
        body: &[
            ("Coexistence", "lvsd reads keepalived.conf and replaces keepalived with IPVS on a director. Debian's keepalived package can stay installed (its binaries and config are untouched, lvs-xdp installs none of its files), but only one of the two services may run: lvsd.service conflicts with keepalived.service. Test a config with lvsd -t before switching; lvsd speaks VRRP with keepalived 2.2, so directors can be moved one at a time."),
        ],
    },
    Section {
        title: "SEE ALSO",
        body: &[(
            "",
            "lvsadm(8), keepalived(8), keepalived.conf(5), ipvsadm(8), bpftool(8), systemctl(1)",
        )],
    },
];

const LVSADM_SECTIONS: &[Section] = &[
    Section {
        title: "EXAMPLES",
        body: &[
            ("lvsadm -L -n", "Services and real servers with Weight, ActiveConn and InActConn, as ipvsadm -ln."),
            ("lvsadm -L -n --stats --exact", "Conns, InPkts, OutPkts, InBytes and OutBytes, unrounded."),
            ("lvsadm -L -n -c", "The connection table and persistence templates."),
            ("lvsadm --health", "Each real server's checkers and whether it is up (from lvsd's status file)."),
        ],
    },
    Section {
        title: "DIFFERENCES FROM IPVSADM",
        body: &[
            ("", "lvsadm only lists; the table is lvsd's, from keepalived.conf. size= is the connection table's capacity. Real servers that failed their checks leave the listings, as keepalived removes them from IPVS (--json and --health still show them). OutPkts and OutBytes are 0, as with IPVS in DR mode: replies never pass the director. It reads the pinned maps, so it works while lvsd is stopped with --keep-datapath."),
        ],
    },
    Section {
        title: "EXIT STATUS",
        body: &[
            ("0", "Listed."),
            ("1", "Nothing to list (no lvsd data path pinned for --instance under --bpffs), or bad options."),
        ],
    },
    Section {
        title: "SEE ALSO",
        body: &[("", "lvsd(8), ipvsadm(8), keepalived.conf(5)")],
    },
];

/// roff with its special characters escaped.
fn esc(s: &str) -> String {
    let s = s.replace('\\', "\\\\").replace('-', "\\-");
    match s.strip_prefix('.').or_else(|| s.strip_prefix('\'')) {
        Some(_) => format!("\\&{s}"),
        None => s,
    }
}

fn man(cmd: clap::Command, sections: &[Section], dir: &Path) -> Result<()> {
    let name = cmd.get_name().to_owned();
    let m = clap_mangen::Man::new(cmd)
        .section("8")
        .manual("System Manager's Manual")
        .source(format!("lvs-xdp {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    m.render_title(&mut out)?;
    m.render_name_section(&mut out)?;
    m.render_synopsis_section(&mut out)?;
    m.render_description_section(&mut out)?;
    m.render_options_section(&mut out)?;
    for s in sections {
        writeln!(out, ".SH \"{}\"", s.title)?;
        for (tag, text) in s.body {
            if tag.is_empty() {
                writeln!(out, ".PP\n{}", esc(text))?;
            } else {
                writeln!(out, ".TP\n\\fB{}\\fR\n{}", esc(tag), esc(text))?;
            }
        }
    }
    m.render_version_section(&mut out)?;
    let path = dir.join(format!("{name}.8"));
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn completions(mut cmd: clap::Command, dir: &Path) -> Result<()> {
    let name = cmd.get_name().to_owned();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let d = dir.join(shell.to_string());
        std::fs::create_dir_all(&d)?;
        clap_complete::generate_to(shell, &mut cmd, &name, &d)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let out = std::env::args().nth(1).context("usage: gen_docs OUTDIR")?;
    let out = Path::new(&out);
    let man_dir = out.join("man");
    let comp_dir = out.join("completions");
    std::fs::create_dir_all(&man_dir)?;
    man(AgentArgs::command(), LVSD_SECTIONS, &man_dir)?;
    man(AdmArgs::command(), LVSADM_SECTIONS, &man_dir)?;
    completions(AgentArgs::command(), &comp_dir)?;
    completions(AdmArgs::command(), &comp_dir)?;
    println!("man pages and completions in {}", out.display());
    Ok(())
}
