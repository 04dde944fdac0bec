//! The eBPF objects built by build.rs, embedded so one binary carries its
//! own data path (no object file to lose or mismatch at run time).

/// The data path: program `lvs_xdp` and its maps.
pub static LVS_XDP: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lvs-xdp"));

/// Bench baselines, the bench harness and `xdp_pass` for lab veth peers.
#[cfg(feature = "test-support")]
pub static LVS_TOOLS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lvs-tools"));

/// Name of the XDP program in [`LVS_XDP`].
pub const PROGRAM: &str = "lvs_xdp";
