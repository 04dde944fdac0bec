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
//! keepalived is woken by inotify; we read the file every
//! [`POLL`], which bounds how late a change is seen.

use std::{path::Path, time::Duration};

use super::spec::FileSpec;

/// How often the file is read.
pub const POLL: Duration = Duration::from_millis(250);

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

#[cfg(test)]
mod tests {
    use super::*;

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
