//! Value readers. A value that does not parse at all (not a number, not an
//! address) is fatal and points at the value; a value that parses but is out
//! of range is an error (keepalived ignores the line or uses its default).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::Parser;
use crate::diag::Span;
use crate::tree::{Node, Word};

impl Parser {
    /// The `i`th word of `n`, or an error saying it is missing.
    pub fn arg<'n>(&mut self, n: &'n Node, i: usize) -> Option<&'n Word> {
        let w = n.words.get(i);
        if w.is_none() {
            self.diags.error(
                &n.end_span(),
                format!("`{}` needs a value; ignored", n.keyword()),
            );
        }
        w
    }

    /// The `i`th word as a string.
    pub fn string(&mut self, n: &Node, i: usize) -> Option<String> {
        self.arg(n, i).map(|w| w.text.clone())
    }

    /// Words from `i` on, joined by spaces (scripts may be written unquoted).
    pub fn rest(&mut self, n: &Node, i: usize) -> Option<String> {
        self.arg(n, i)?;
        Some(
            n.words[i..]
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    /// A whole number in `min..=max`, of the type the bounds are given in
    /// (the field's), so no caller narrows it with `as`.
    pub fn number<T: Whole>(&mut self, n: &Node, i: usize, min: T, max: T) -> Option<T> {
        let w = self.arg(n, i)?;
        self.number_word(n.keyword(), w, min, max)
    }

    pub fn number_word<T: Whole>(&mut self, kw: &str, w: &Word, min: T, max: T) -> Option<T> {
        // Read in the widest type of T's sign: `300` for a u8 is out of
        // range, not "not a number".
        let v = self.whole_word(kw, w, min.widen(), max.widen())?;
        v.try_into().ok()
    }

    /// A whole number in `min..=max`: out of range is an error (ignored),
    /// not a number is fatal.
    fn whole_word<T>(&mut self, kw: &str, w: &Word, min: T, max: T) -> Option<T>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let parsed = w.text.parse::<T>().ok().or_else(|| {
            // keepalived reads numbers with strtoul and, when running, uses
            // the digits before any junk (`weight 2;` is 2); -t complains.
            let v = numeric_prefix(&w.text)?.parse::<T>().ok()?;
            self.diags
                .warn(
                    &w.span,
                    format!(
                        "`{kw}`: invalid number '{}'; keepalived uses {v}, so does lvs-xdp",
                        w.text
                    ),
                )
                .help(format!("write `{kw} {v}`"));
            Some(v)
        });
        match parsed {
            Some(v) if min <= v && v <= max => Some(v),
            Some(_) => self.out_of_range(kw, w, format!("use a value from {min} to {max}")),
            None => self.not_a(
                kw,
                w,
                "number",
                format!("use a whole number from {min} to {max}"),
            ),
        }
    }

    /// A time in seconds, decimals allowed (keepalived's `read_timer`:
    /// microsecond resolution), in `min..=max`.
    pub fn timer(&mut self, n: &Node, i: usize, min: Duration, max: Duration) -> Option<Duration> {
        let w = self.arg(n, i)?;
        let kw = n.keyword();
        let (int, frac) = w.text.split_once('.').unwrap_or((&w.text, ""));
        let parsed = if frac.len() > 6 && frac.bytes().all(|b| b.is_ascii_digit()) {
            // keepalived: "number has too many decimal places", rounded to
            // microseconds and used.
            let rounded = round_micros(int, frac);
            if let Some(d) = rounded {
                self.diags
                    .warn(
                        &w.span,
                        format!(
                            "`{kw}`: number '{}' has too many decimal places; rounded to {} s as keepalived does",
                            w.text,
                            fmt_secs(d)
                        ),
                    )
                    .help("write at most 6 decimals");
            }
            rounded
        } else {
            parse_seconds(&w.text)
        };
        match parsed {
            Some(d) if d >= min && d <= max => Some(d),
            Some(_) => self.out_of_range(
                kw,
                w,
                format!(
                    "use a number of seconds from {} to {}",
                    fmt_secs(min),
                    fmt_secs(max)
                ),
            ),
            None => self.not_a(
                kw,
                w,
                "number of seconds",
                "write seconds, e.g. `3` or `1.5`",
            ),
        }
    }

    /// A value of the right kind outside its range: an error, the line is
    /// ignored as keepalived does. `help` gives the range.
    fn out_of_range<T>(&mut self, kw: &str, w: &Word, help: String) -> Option<T> {
        self.diags
            .error(
                &w.span,
                format!("`{kw}` value {} is out of range; ignored", w.text),
            )
            .help(help);
        None
    }

    /// A value that is not a `what` at all: fatal. `help` says how to write one.
    fn not_a<T>(&mut self, kw: &str, w: &Word, what: &str, help: impl Into<String>) -> Option<T> {
        self.diags
            .fatal(
                &w.span,
                format!("`{kw}` value `{}` is not a {what}", w.text),
            )
            .help(help);
        None
    }

    /// The address of a `virtual_server`, `real_server` or `sorry_server`:
    /// keepalived (inet_stosockaddr) drops anything from a `/` or `-` on,
    /// so `192.0.2.1/32` is `192.0.2.1`.
    pub fn sockaddr_word(&mut self, kw: &str, w: &Word) -> Option<IpAddr> {
        let Some(cut) = w.text.find(['/', '-']) else {
            return self.ip_word(kw, w);
        };
        let (a, suffix) = w.text.split_at(cut);
        let Ok(ip) = a.parse::<IpAddr>() else {
            return self.ip_word(kw, w);
        };
        let host = match ip {
            IpAddr::V4(_) => "/32",
            IpAddr::V6(_) => "/128",
        };
        if suffix != host {
            self.diags
                .warn(
                    &w.span,
                    format!("`{kw}` {}: `{suffix}` is ignored, the address is {ip} (as keepalived reads it)", w.text),
                )
                .help(format!("write `{ip}`"));
        }
        Some(ip)
    }

    /// An IP address.
    pub fn ip(&mut self, n: &Node, i: usize) -> Option<IpAddr> {
        let w = self.arg(n, i)?;
        self.ip_word(n.keyword(), w)
    }

    pub fn ip_word(&mut self, kw: &str, w: &Word) -> Option<IpAddr> {
        match w.text.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.diags
                    .fatal(
                        &w.span,
                        format!("`{kw}`: `{}` is not a valid IP address", w.text),
                    )
                    .help("write an IPv4 (192.0.2.1) or IPv6 (2001:db8::1) address");
                None
            }
        }
    }

    pub fn ipv4_word(&mut self, kw: &str, w: &Word) -> Option<Ipv4Addr> {
        match self.ip_word(kw, w)? {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => {
                self.diags.fatal(
                    &w.span,
                    format!("`{kw}`: `{}` must be an IPv4 address", w.text),
                );
                None
            }
        }
    }

    /// A port number 1..=65535.
    pub fn port(&mut self, n: &Node, i: usize) -> Option<u16> {
        self.number(n, i, 1, u16::MAX)
    }

    /// A flag: bare keyword = true, or an explicit true/false/on/off/yes/no.
    pub fn flag(&mut self, n: &Node) -> Option<bool> {
        let Some(w) = n.words.get(1) else {
            return Some(true);
        };
        match w.text.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" => Some(true),
            "false" | "off" | "no" => Some(false),
            _ => {
                self.diags.error(
                    &w.span,
                    format!(
                        "`{}` takes no value or true/false, not `{}`; ignored",
                        n.keyword(),
                        w.text
                    ),
                );
                None
            }
        }
    }

    /// An item a block cannot run without (keepalived's end-of-block
    /// check): `v`, or a fatal error `msg` at the block's `span`.
    pub fn required<T>(
        &mut self,
        v: Option<T>,
        span: &Span,
        msg: impl Into<String>,
        help: &str,
    ) -> Option<T> {
        if v.is_none() {
            self.diags.fatal(span, msg).help(help);
        }
        v
    }

    /// Warns about words after the `max`th argument.
    pub fn extra(&mut self, n: &Node, max: usize) {
        if let Some(w) = n.words.get(max + 1) {
            self.diags.warn(
                &w.span,
                format!(
                    "`{}` takes {max} value(s); `{}` and what follows is ignored",
                    n.keyword(),
                    w.text
                ),
            );
        }
    }
}

/// An integer field's type, read through the widest type of its sign.
pub trait Whole: Copy {
    type Wide: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + TryInto<Self>;
    fn widen(self) -> Self::Wide;
}

macro_rules! whole {
    ($wide:ty: $($t:ty),*) => {$(
        impl Whole for $t {
            type Wide = $wide;
            fn widen(self) -> $wide {
                self.into()
            }
        }
    )*};
}
whole!(u64: u8, u16, u32, u64);
whole!(i64: i32, i64);

/// The leading digits of `s` (with a sign), if any and if something follows.
fn numeric_prefix(s: &str) -> Option<&str> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let n = body.bytes().take_while(u8::is_ascii_digit).count();
    let sign = s.len() - body.len();
    (n > 0 && n < body.len()).then(|| &s[..sign + n])
}

/// Seconds with more than 6 decimals, rounded half up to microseconds.
fn round_micros(int: &str, frac: &str) -> Option<Duration> {
    let d = parse_seconds(&format!("{int}.{}", &frac[..6]))?;
    let up = frac.as_bytes()[6] >= b'5';
    Some(if up { d + Duration::from_micros(1) } else { d })
}

/// Parses decimal seconds ("3", "0.5", "1.000001").
pub(crate) fn parse_seconds(s: &str) -> Option<Duration> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 6 {
        return None;
    }
    let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut micros: u32 = 0;
    for (k, b) in frac.bytes().enumerate() {
        micros += u32::from(b - b'0') * 10u32.pow(5 - k as u32);
    }
    if secs > u64::from(u32::MAX) {
        return None;
    }
    Some(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
}

pub(crate) fn fmt_secs(d: Duration) -> String {
    if d.subsec_micros() == 0 {
        d.as_secs().to_string()
    } else {
        let s = format!("{}.{:06}", d.as_secs(), d.subsec_micros());
        s.trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_seconds("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_seconds(".01"), Some(Duration::from_millis(10)));
        assert_eq!(parse_seconds("1.0000001"), None);
        assert_eq!(parse_seconds("x"), None);
        assert_eq!(parse_seconds("."), None);
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(fmt_secs(Duration::from_millis(1500)), "1.5");
    }
}
