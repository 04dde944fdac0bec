//! Every bpffs path lvs-xdp uses, built in one place.
//!
//! `<root>/<instance>/<map>` for each map (`bpftool map dump pinned` works on
//! them), `<root>/<instance>/link_<ifname>` for each XDP link: the link keeps
//! the program attached while no agent runs, and a new agent swaps its
//! program into the same link (`bpf_link_update`) without a gap.

use std::path::{Path, PathBuf};

/// Default bpffs root; `lvsd --bpffs` changes it.
pub const DEFAULT_ROOT: &str = "/sys/fs/bpf/lvs";

/// bpffs's statfs magic.
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// Makes sure `root` lies on a bpffs, mounting one when it does not (as
/// bpftool does): at /sys/fs/bpf for paths below it, else at `root` itself.
/// Note `ip netns exec` gives its command a fresh /sys, hiding the root
/// namespace's /sys/fs/bpf: pin roots outside /sys survive that. Returns
/// whether it mounted one, then creates `root`.
pub fn ensure_bpffs(root: &Path) -> std::io::Result<bool> {
    let mount_point = mount_point(root);
    std::fs::create_dir_all(mount_point)?;
    if is_bpffs(mount_point)? {
        std::fs::create_dir_all(root)?;
        return Ok(false);
    }
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("no NUL");
    let target = c(mount_point);
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            c"mode=0700".as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    std::fs::create_dir_all(root)?;
    Ok(true)
}

/// Where [`ensure_bpffs`] mounts a bpffs for `root`.
pub(crate) fn mount_point(root: &Path) -> &Path {
    let sys = Path::new("/sys/fs/bpf");
    if root.starts_with(sys) {
        sys
    } else {
        root
    }
}

/// Unmounts the bpffs [`ensure_bpffs`] mounted for `root` (a failed start
/// leaves no mount behind).
pub fn unmount(root: &Path) -> std::io::Result<()> {
    let c =
        std::ffi::CString::new(mount_point(root).as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: a NUL-terminated path that outlives the call.
    if unsafe { libc::umount2(c.as_ptr(), 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn is_bpffs(p: &Path) -> std::io::Result<bool> {
    let path = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: a zeroed statfs is valid; statfs writes into it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and buffer.
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

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
