//! `virtual_server_group` (keepalived's check_parser.c `vsg_handler` and
//! its entries).

use std::net::IpAddr;

use super::refuse_fwmark;
use crate::model::{Config, VirtualServerGroup, VsgEntry};
use crate::parse::Parser;
use crate::tree::{Node, Word};

pub(in crate::parse) fn parse_vsg(p: &mut Parser, cfg: &mut Config, n: &Node) {
    let Some(name) = p.string(n, 1) else { return };
    let Some(body) = &n.block else {
        p.diags
            .fatal(n.span(), "`virtual_server_group` needs a block");
        return;
    };
    let mut g = VirtualServerGroup {
        span: n.span().clone(),
        name,
        entries: Vec::new(),
    };
    for e in body {
        let w0 = &e.words[0];
        if w0.text == "fwmark" {
            if let Some(m) = p.number(e, 1, 1, u32::MAX) {
                refuse_fwmark(
                    p,
                    &w0.span,
                    &format!("virtual_server_group {} entry fwmark {m}", g.name),
                );
                g.entries.push(VsgEntry::Fwmark {
                    span: w0.span.clone(),
                    mark: m,
                });
            }
            continue;
        }
        let Some((first, last)) = addr_range(p, w0) else {
            continue;
        };
        // keepalived: a port of 0 (or "00") is no port.
        let port = match e.words.get(1) {
            Some(w) if w.text.bytes().all(|b| b == b'0') => 0,
            Some(_) => p.port(e, 1).unwrap_or(0),
            None => 0,
        };
        p.extra(e, 1);
        g.entries.push(VsgEntry::Range {
            span: w0.span.clone(),
            first,
            last,
            port,
        });
    }
    p.add_named(
        n,
        "virtual_server_group",
        &mut cfg.virtual_server_groups,
        g,
        |g| &g.name,
    );
}

/// A `virtual_server_group` address entry, as keepalived's
/// `alloc_vsg_entry` reads it: `ADDR`, `ADDR-LAST` (the last byte / group),
/// `ADDR-ADDR` (a full end address) or `ADDR/LEN` (every address of the
/// prefix; the host bits must be 0). A bad entry is skipped (an error).
fn addr_range(p: &mut Parser, w: &Word) -> Option<(IpAddr, IpAddr)> {
    let text = w.text.as_str();
    let skip = |p: &mut Parser, why: &str| {
        p.diags
            .error(&w.span, format!("{why} - {text} - skipping"))
            .help("write ADDRESS, ADDRESS-LAST (192.0.2.3-10), ADDRESS-ADDRESS or ADDRESS/LEN");
        None
    };
    let head_end = text.find(['-', '/']).unwrap_or(text.len());
    let Ok(first) = text[..head_end].parse::<IpAddr>() else {
        p.diags
            .fatal(
                &w.span,
                format!("`{text}` is not an address or address range"),
            )
            .help("write ADDRESS, ADDRESS-LAST (192.0.2.3-10), ADDRESS-ADDRESS or ADDRESS/LEN");
        return None;
    };
    let bits: u32 = if first.is_ipv4() { 32 } else { 128 };
    let as_u128 = |a: IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let from_u128 = |v: u128| -> IpAddr {
        if bits == 32 {
            IpAddr::from(std::net::Ipv4Addr::from(v as u32))
        } else {
            IpAddr::from(std::net::Ipv6Addr::from(v))
        }
    };
    let rest = &text[head_end..];
    if let Some(len) = rest.strip_prefix('/') {
        let Ok(len) = len.parse::<u32>() else {
            return skip(p, "Invalid netmask");
        };
        if len == 0 || len > bits {
            return skip(p, "Invalid netmask");
        }
        let host: u128 = if len == bits {
            0
        } else {
            (1u128 << (bits - len)) - 1
        };
        let start = as_u128(first);
        if start & host != 0 {
            return skip(p, "Address mask bits not empty");
        }
        return Some((first, from_u128(start | host)));
    }
    let Some(end) = rest.strip_prefix('-') else {
        return Some((first, first));
    };
    let full_end = if first.is_ipv4() {
        end.contains('.')
    } else {
        end.contains(':')
    };
    if full_end {
        let Ok(last) = end.parse::<IpAddr>() else {
            return skip(p, "Invalid range end");
        };
        if last.is_ipv4() != first.is_ipv4() {
            return skip(p, "Range address families do not match");
        }
        if as_u128(last) < as_u128(first) {
            return skip(p, "Address range end is less than address range start");
        }
        return Some((first, last));
    }
    let last = match first {
        IpAddr::V4(f) => {
            let Ok(e) = end.parse::<u8>() else {
                return skip(p, "Invalid range end");
            };
            let o = f.octets();
            (e > o[3]).then(|| IpAddr::from([o[0], o[1], o[2], e]))
        }
        IpAddr::V6(f) => {
            let Ok(e) = u16::from_str_radix(end, 16) else {
                return skip(p, "Invalid range end");
            };
            let mut s = f.segments();
            let ok = e > s[7];
            s[7] = e;
            ok.then(|| IpAddr::from(s))
        }
    };
    match last {
        Some(l) => Some((first, l)),
        None => skip(
            p,
            "Address range end is not greater than address range start",
        ),
    }
}
