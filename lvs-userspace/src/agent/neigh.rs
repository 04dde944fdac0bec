//! Interim link and neighbour lookups for the agent, until the netlink
//! module lands: sysfs for interfaces, /proc/net/arp for neighbours, and an
//! empty UDP datagram to make the kernel resolve a missing neighbour.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use anyhow::{Context, Result};

pub struct Link {
    pub index: u32,
    pub mac: [u8; 6],
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    Some(out)
}

pub fn link_by_name(name: &str) -> Result<Link> {
    let base = format!("/sys/class/net/{name}");
    let index = std::fs::read_to_string(format!("{base}/ifindex"))
        .with_context(|| format!("interface {name}"))?
        .trim()
        .parse()?;
    let mac =
        parse_mac(&std::fs::read_to_string(format!("{base}/address"))?).context("interface MAC")?;
    Ok(Link { index, mac })
}

fn ifname(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf is IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name into buf.
    Some(
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// The resolved MAC of `ip` on interface `index`, if the kernel has one.
pub fn neighbour(index: u32, ip: Ipv4Addr) -> Result<Option<[u8; 6]>> {
    let dev = ifname(index).context("no such interface")?;
    let table = std::fs::read_to_string("/proc/net/arp")?;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // IP, HW type, Flags, HW address, Mask, Device; flags 0x2 = complete.
        if f.len() >= 6 && f[0] == ip.to_string() && f[5] == dev {
            let complete =
                u32::from_str_radix(f[2].trim_start_matches("0x"), 16).unwrap_or(0) & 0x2 != 0;
            if complete {
                return Ok(parse_mac(f[3]));
            }
        }
    }
    Ok(None)
}

/// Makes the kernel resolve `ip`: one empty datagram to the discard port.
pub fn solicit(_index: u32, ip: Ipv4Addr) -> Result<()> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    let _ = s.send_to(&[], SocketAddrV4::new(ip, 9));
    Ok(())
}
