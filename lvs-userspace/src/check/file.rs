//! FILE_CHECK: a `track_file` whose number sets the real server's weight
//! (keepalived check_file.c and trackers/track_file.c).
//!
//! The file holds a number (C `strtol`, base 0: `12`, `-3`, `0x10`; a
//! missing or empty file is 0). With the checker's weight `W` (FILE_CHECK's
//! own `weight`, else the track_file's; `reverse` negates it):
//! - `W == 0`: a non-zero value is FAULT (the server is down), 0 is up;
//!   `reverse` swaps the two;
//! - otherwise the server's weight is its configured weight plus
//!   `value × W`, never below 0 (weight 0: no new connections); a product at
//!   or below −2147483648 (keepalived's `IPVS_WEIGHT_FAULT`) is FAULT.
//!
//! As keepalived, the file's directory is watched with inotify (a write
//! closed, a file moved in or out, deleted: a deleted file reads as 0), so
//! a change is seen at once; the file is also read every [`POLL`], in case
//! inotify is unavailable or the directory appears later.

use std::{
    ffi::{CString, OsStr},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::Path,
    time::Duration,
};

use tokio::io::unix::AsyncFd;

use super::spec::FileSpec;

/// How often the file is read besides inotify's events.
pub const POLL: Duration = Duration::from_secs(1);

/// keepalived's `IPVS_WEIGHT_FAULT` (−IPVS_WEIGHT_MAX − 1).
const WEIGHT_FAULT: i64 = i32::MIN as i64;

/// What a value means for the real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    Fault,
    /// Up, with this offset to the configured weight.
    Up(i64),
}

/// C `strtol(s, NULL, 0)`: leading blanks, a sign, `0x` hex, `0` octal,
/// decimal; stops at the first other character; nothing numeric is 0.
/// `None` when the number does not fit (keepalived ignores such a read).
pub fn strtol(s: &str) -> Option<i64> {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if (s.starts_with("0x") || s.starts_with("0X"))
        && s[2..].starts_with(|c: char| c.is_ascii_hexdigit())
    {
        (16, &s[2..])
    } else if s.starts_with('0') {
        (8, s)
    } else {
        (10, s)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 {
        return Some(0);
    }
    let v = i64::from_str_radix(&digits[..end], radix).ok()?;
    let v = if neg { -v } else { v };
    // keepalived: INT32_MIN ..= INT32_MAX + 1.
    (i64::from(i32::MIN)..=i64::from(i32::MAX) + 1)
        .contains(&v)
        .then_some(v)
}

/// keepalived's `update_track_file_status` for a checker.
pub fn state(value: i64, weight: i32, reverse: bool) -> FileState {
    if weight == 0 {
        return if (value != 0) != reverse {
            FileState::Fault
        } else {
            FileState::Up(0)
        };
    }
    let mult = if reverse { -1 } else { 1 };
    let product = value.saturating_mul(i64::from(weight)).saturating_mul(mult);
    if product <= WEIGHT_FAULT {
        FileState::Fault
    } else {
        FileState::Up(product.min(i64::from(i32::MAX)))
    }
}

/// The file's value now (`None`: an unreadable number, keep the last one).
pub fn read_value(path: &Path) -> Option<i64> {
    match std::fs::read(path) {
        Ok(b) => {
            let b = &b[..b.len().min(127)];
            strtol(&String::from_utf8_lossy(b))
        }
        Err(_) => Some(0),
    }
}

/// `init_file [VALUE] [overwrite]`: writes VALUE when the file is missing,
/// or always with `overwrite` (keepalived does this at start).
pub fn init(spec: &FileSpec) -> std::io::Result<()> {
    let Some((value, overwrite)) = spec.init_file else {
        return Ok(());
    };
    let path = Path::new(&spec.path);
    if overwrite || !path.exists() {
        std::fs::write(path, format!("{value}\n"))?;
    }
    Ok(())
}

/// An inotify watch on a file's directory, for that file's name.
pub struct Watch {
    fd: AsyncFd<OwnedFd>,
    name: Vec<u8>,
}

impl Watch {
    /// `None` when inotify or the directory is not available (then the
    /// file is only polled).
    pub fn new(path: &Path) -> Option<Watch> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name()?.as_bytes().to_vec();
        let cdir = CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: inotify_init1 takes flags only and returns a new
        // descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return None;
        }
        // SAFETY: `raw` is a descriptor we just opened and own alone.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mask = libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_MOVED_FROM | libc::IN_DELETE;
        // SAFETY: `cdir` is a NUL-terminated path that outlives the call.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), cdir.as_ptr(), mask) } < 0 {
            return None;
        }
        // SAFETY: the OwnedFd is moved into the AsyncFd, which is its only
        // owner until it is dropped and closed.
        let fd = unsafe { AsyncFd::register(fd) }.ok()?;
        Some(Watch { fd, name })
    }

    /// Waits until an event names the file (or the watch fails: then never
    /// returns, and polling takes over).
    pub async fn changed(&self) {
        let mut buf = [0u8; 4096];
        loop {
            let Ok(mut g) = self.fd.readable().await else {
                return std::future::pending().await;
            };
            let n = match g.try_io(|fd| {
                // SAFETY: read(2) into a buffer valid for its whole length.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }) {
                Ok(Ok(n)) => n,
                Ok(Err(_)) => return std::future::pending().await,
                Err(_would_block) => continue,
            };
            if names(&buf[..n]).any(|name| name == OsStr::from_bytes(&self.name)) {
                return;
            }
        }
    }
}

/// The names in a buffer of `struct inotify_event`s.
fn names(mut buf: &[u8]) -> impl Iterator<Item = &OsStr> {
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    std::iter::from_fn(move || {
        if buf.len() < HEADER {
            return None;
        }
        // `len` (the name's padded length) is the header's last u32.
        let len = u32::from_ne_bytes(buf[HEADER - 4..HEADER].try_into().ok()?) as usize;
        let name = buf.get(HEADER..HEADER + len)?;
        buf = &buf[HEADER + len..];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Some(OsStr::from_bytes(&name[..end]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inotify_event_names() {
        // wd, mask, cookie, len, then the NUL-padded name.
        let mut buf = Vec::new();
        for name in ["weights", "other.tmp"] {
            let mut padded = name.as_bytes().to_vec();
            padded.resize(16, 0);
            buf.extend_from_slice(&1i32.to_ne_bytes());
            buf.extend_from_slice(&libc::IN_CLOSE_WRITE.to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
            buf.extend_from_slice(&16u32.to_ne_bytes());
            buf.extend_from_slice(&padded);
        }
        let got: Vec<&OsStr> = names(&buf).collect();
        assert_eq!(got, [OsStr::new("weights"), OsStr::new("other.tmp")]);
        assert_eq!(names(&buf[..10]).count(), 0);
    }

    #[test]
    fn strtol_as_c() {
        assert_eq!(strtol("12\n"), Some(12));
        assert_eq!(strtol("  -3 apples"), Some(-3));
        assert_eq!(strtol("0x10"), Some(16));
        assert_eq!(strtol("010"), Some(8));
        assert_eq!(strtol(""), Some(0));
        assert_eq!(strtol("abc"), Some(0));
        assert_eq!(strtol("99999999999"), None);
    }

    #[test]
    fn weight_zero_is_a_switch() {
        assert_eq!(state(0, 0, false), FileState::Up(0));
        assert_eq!(state(5, 0, false), FileState::Fault);
        assert_eq!(state(0, 0, true), FileState::Fault);
        assert_eq!(state(5, 0, true), FileState::Up(0));
    }

    #[test]
    fn weight_multiplies_the_value() {
        assert_eq!(state(3, 2, false), FileState::Up(6));
        assert_eq!(state(3, 2, true), FileState::Up(-6));
        assert_eq!(state(-1, 2, false), FileState::Up(-2));
        assert_eq!(state(i64::from(i32::MIN), 1, false), FileState::Fault);
        assert_eq!(state(i64::from(i32::MAX), 2, true), FileState::Fault);
    }
}
