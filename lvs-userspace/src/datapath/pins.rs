//! Every bpffs path lvs-xdp uses, built in one place.
//!
//! `<root>/<instance>/<map>` for each map (`bpftool map dump pinned` works on
//! them), `<root>/<instance>/link_<ifname>` for each XDP link: the link keeps
//! the program attached while no agent runs, and a new agent swaps its
//! program into the same link (`bpf_link_update`) without a gap.

use std::path::{Path, PathBuf};

/// Default bpffs root; `lvsd --bpffs` changes it.
pub const DEFAULT_ROOT: &str = "/sys/fs/bpf/lvs";

/// The pin directory of one datapath instance.
#[derive(Clone, Debug)]
pub struct PinDir {
    dir: PathBuf,
}

impl PinDir {
    pub fn new(root: &Path, instance: &str) -> Self {
        PinDir {
            dir: root.join(instance),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn link(&self, ifname: &str) -> PathBuf {
        self.dir.join(format!("link_{ifname}"))
    }

    /// Interfaces with a pinned link, from the file names.
    pub fn linked_interfaces(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("link_"))
                    .map(str::to_owned)
            })
            .collect();
        out.sort();
        out
    }
}
