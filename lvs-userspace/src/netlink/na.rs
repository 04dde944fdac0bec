//! Unsolicited neighbour advertisements (RFC 4861 §7.2.6), IPv6's
//! gratuitous ARP, in the form keepalived's `vrrp_ndisc.c` sends them: an
//! Ethernet frame to 33:33:00:00:00:01 from the interface's MAC, IPv6 from
//! the VIP itself to ff02::1 (all nodes), hop limit 255, an NA with the
//! Override flag (and Router when the interface forwards), target = the
//! VIP, and its target link-layer address option = the MAC.

use std::net::Ipv6Addr;

use lvs_common::{ETH_P_IPV6, IPPROTO_ICMPV6};

use super::NetlinkError;

const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_OPT_TARGET_LINKADDR: u8 = 2;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_OVERRIDE: u8 = 0x20;
/// Ethernet 14 + IPv6 40 + NA 24 + option 8.
pub const NA_FRAME_LEN: usize = 86;

/// The Ethernet frame of an unsolicited NA for `ip` from `mac`.
pub fn na_frame(mac: [u8; 6], ip: Ipv6Addr, router: bool) -> [u8; NA_FRAME_LEN] {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut f = [0u8; NA_FRAME_LEN];
    f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]); // RFC 2464 §7
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    let ip6 = &mut f[14..54];
    ip6[0] = 0x60;
    ip6[4..6].copy_from_slice(&32u16.to_be_bytes()); // payload length
    ip6[6] = IPPROTO_ICMPV6;
    ip6[7] = 255; // hop limit: receivers drop ND with anything else
    ip6[8..24].copy_from_slice(&ip.octets());
    ip6[24..40].copy_from_slice(&all_nodes.octets());
    let na = &mut f[54..86];
    na[0] = ND_NEIGHBOR_ADVERT;
    na[4] = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    na[8..24].copy_from_slice(&ip.octets());
    na[24] = ND_OPT_TARGET_LINKADDR;
    na[25] = 1; // in units of 8 bytes
    na[26..32].copy_from_slice(&mac);
    // ICMPv6 checksum over the pseudo-header (src, dst, length, 58).
    let mut acc: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&ip.octets());
    add(&all_nodes.octets());
    add(&32u32.to_be_bytes());
    add(&[0, 0, 0, IPPROTO_ICMPV6]);
    add(&f[54..86]);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    f[56..58].copy_from_slice(&(!(acc as u16)).to_be_bytes());
    f
}

/// Whether IPv6 forwarding is on for `ifname` (keepalived then sets the
/// NA's Router flag, so neighbours keep treating the address as a router).
/// Read in the calling thread's namespace.
pub fn ipv6_forwarding(ifname: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{ifname}/forwarding"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// Sends one unsolicited NA for `ip` from `mac` out of `ifindex` through an
/// `AF_PACKET` raw socket (needs CAP_NET_RAW).
pub fn send_unsolicited_na(
    ifindex: u32,
    mac: [u8; 6],
    ip: Ipv6Addr,
    router: bool,
) -> Result<(), NetlinkError> {
    let frame = na_frame(mac, ip, router);
    super::garp::send_frame(ifindex, ETH_P_IPV6, [0x33, 0x33, 0, 0, 0, 1], &frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_verifies_and_fields_are_keepalived_s() {
        let mac = [2, 0, 0, 0, 0, 2];
        let ip: Ipv6Addr = "2001:2::100".parse().unwrap();
        let f = na_frame(mac, ip, false);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(f[21], 255, "hop limit");
        assert_eq!(&f[22..38], &ip.octets(), "source: the VIP");
        assert_eq!(f[54], 136);
        assert_eq!(f[58], NA_FLAG_OVERRIDE);
        assert_eq!(&f[62..78], &ip.octets(), "target");
        assert_eq!(&f[80..86], &mac);
        // Summing again with the checksum in place gives 0xffff.
        let mut acc: u32 = 0;
        for b in [&f[22..38], &f[38..54]] {
            for c in b.chunks(2) {
                acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
            }
        }
        acc += 32 + 58;
        for c in f[54..86].chunks(2) {
            acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        assert_eq!(acc, 0xffff);
        assert_eq!(
            na_frame(mac, ip, true)[58],
            NA_FLAG_OVERRIDE | NA_FLAG_ROUTER
        );
    }
}
