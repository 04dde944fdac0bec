//! Lab helper: attaches an XDP_PASS program to an interface in native mode
//! and holds it until killed. Native XDP_TX on a veth delivers only to a
//! peer that has an XDP program itself; the lab puts this on the bridge side.

use anyhow::{Context, Result};
use aya::{programs::Xdp, programs::XdpMode, EbpfLoader};
use lvs_userspace::datapath::objects;

fn main() -> Result<()> {
    let ifname = std::env::args()
        .nth(1)
        .context("usage: lvs-xdp-pass IFNAME")?;
    let mut ebpf = EbpfLoader::new()
        .load(objects::LVS_TOOLS)
        .context("loading lvs-tools")?;
    let prog: &mut Xdp = ebpf
        .program_mut("xdp_pass")
        .context("xdp_pass missing")?
        .try_into()?;
    prog.load()?;
    prog.attach(&ifname, XdpMode::Driver)
        .with_context(|| format!("attaching xdp_pass to {ifname}"))?;
    println!("xdp_pass attached to {ifname}");
    // Killed by the lab at teardown; the link goes with the process.
    loop {
        std::thread::park();
    }
}
