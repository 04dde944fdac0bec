//! Header parsing: Ethernet → IPv4 (or IPv6 and its extension headers) →
//! TCP/UDP ports, every access
//! bounds-checked against `data_end` (the verifier insists, and a truncated
//! frame must be passed, never mis-forwarded).

use aya_ebpf::programs::XdpContext;
use lvs_common::{
    verdict as reason, FlowKey, FlowKey6, Ipv6Words, ETH_P_IPV6, IPPROTO_ICMPV6, IPPROTO_TCP,
    IPPROTO_UDP, IPV6_HDR_LEN, MAX_IPV6_EXT_HEADERS,
};
use network_types::{eth::EthHdr, ip::Ipv4Hdr, tcp::TcpHdr, udp::UdpHdr};

use crate::verdict::{Step, Verdict};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
/// Fragment offset, in the host-order `frags` word.
const IP_OFFSET_MASK: u16 = 0x1FFF;
/// More-fragments flag, in the host-order `frags` word.
const IP_MF: u16 = 0x2000;

/// What the later steps need from a frame (`K`: the family's 5-tuple).
pub struct Packet<K = FlowKey> {
    /// The client-side 5-tuple, network byte order, padding zeroed.
    pub key: K,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
    /// Frame length in bytes, for the byte counters.
    pub len: u32,
}

/// A pointer to a `T` at `offset`, if the whole `T` lies inside the frame.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Step<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return Err(Verdict::pass(reason::PASS_MALFORMED));
    }
    Ok((start + offset) as *const T)
}

/// The IPv4 header fields the later steps need.
pub struct Ipv4 {
    pub src_be: u32,
    pub dst_be: u32,
    pub proto: u8,
    /// Host-order flags/fragment-offset word.
    pub frags: u16,
    /// The IP identification, as on the wire (fragments of one datagram
    /// share it).
    pub id: [u8; 2],
}

impl Ipv4 {
    /// A fragment after the first: no L4 header.
    #[inline(always)]
    pub fn is_later_fragment(&self) -> bool {
        self.frags & IP_OFFSET_MASK != 0
    }

    /// The first fragment of a fragmented datagram (it has the ports).
    #[inline(always)]
    pub fn is_first_fragment(&self) -> bool {
        self.frags & IP_MF != 0 && !self.is_later_fragment()
    }
}

/// Ethernet and IPv4 headers. Non-IPv4 and broken headers stop here.
#[inline(always)]
pub fn ipv4(ctx: &XdpContext) -> Step<Ipv4> {
    let eth: *const EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: ptr_at checked that the Ethernet header is inside the frame.
    let ether_type = u16::from_be(unsafe { (*eth).ether_type });
    if ether_type != ETH_P_IP {
        return Err(Verdict::pass(match ether_type {
            ETH_P_8021Q | ETH_P_8021AD => reason::PASS_VLAN,
            _ => reason::PASS_NOT_IPV4,
        }));
    }
    let ip: *const Ipv4Hdr = ptr_at(ctx, EthHdr::LEN)?;
    // SAFETY: ptr_at checked the 20-byte IPv4 header; fields are byte arrays.
    let (vihl, proto, frags, id, tot_len, src, dst) = unsafe {
        (
            (*ip).vihl,
            (*ip).proto,
            u16::from_be_bytes((*ip).frags),
            (*ip).id,
            u16::from_be_bytes((*ip).tot_len),
            u32::from_ne_bytes((*ip).src_addr),
            u32::from_ne_bytes((*ip).dst_addr),
        )
    };
    let ihl_bytes = ((vihl & 0x0F) as usize) * 4;
    if vihl >> 4 != 4 || ihl_bytes < Ipv4Hdr::LEN || (tot_len as usize) < ihl_bytes {
        return Err(Verdict::pass(reason::PASS_MALFORMED));
    }
    Ok(Ipv4 {
        src_be: src,
        dst_be: dst,
        proto,
        frags,
        id,
    })
}

/// The L4 ports (and TCP flags) of a TCP/UDP packet, unfragmented or the
/// first fragment of a datagram.
// Zeroed whole, then filled (see `l4`): the lint's struct literal with
// `..Default::default()` brings the 3-byte memset call back.
#[allow(clippy::field_reassign_with_default)]
#[inline(always)]
pub fn l4(ctx: &XdpContext, ip: &Ipv4) -> Step<Packet> {
    if ip.proto != IPPROTO_TCP && ip.proto != IPPROTO_UDP {
        return Err(Verdict::pass(reason::PASS_NOT_SERVICE));
    }
    // A later fragment has no ports: it follows its first (`frag`).
    if ip.is_later_fragment() {
        return Err(Verdict::pass(reason::PASS_FRAGMENT));
    }
    // The L4 offset is recomputed from the header byte here rather than
    // carried over: a value kept across steps may be spilled to the stack,
    // where the verifier forgets its bounds and rejects `data + offset`.
    let first: *const u8 = ptr_at(ctx, EthHdr::LEN)?;
    // SAFETY: ipv4() already checked this byte is inside the frame.
    let ihl_bytes = ((unsafe { *first } & 0x0F) as usize) * 4;
    // IP options are skipped, never rewritten: DR changes no L3 byte.
    let l4 = EthHdr::LEN + ihl_bytes;
    let (ports, tcp_flags) = if ip.proto == IPPROTO_TCP {
        let tcp: *const TcpHdr = ptr_at(ctx, l4)?;
        // SAFETY: ptr_at checked the 20-byte TCP header.
        unsafe {
            let hdr = tcp as *const [u8; 20];
            (
                ((*tcp).source, (*tcp).dest),
                (*hdr)[13], // flags byte: CWR ECE URG ACK PSH RST SYN FIN
            )
        }
    } else {
        let udp: *const UdpHdr = ptr_at(ctx, l4)?;
        // SAFETY: ptr_at checked the 8-byte UDP header.
        unsafe { (((*udp).src, (*udp).dst), 0) }
    };
    // Zeroed whole, then filled: the padding bytes then come with two
    // aligned stores instead of a 3-byte memset call.
    let mut key = FlowKey::default();
    key.src_be = ip.src_be;
    key.dst_be = ip.dst_be;
    key.sport_be = u16::from_ne_bytes(ports.0);
    key.dport_be = u16::from_ne_bytes(ports.1);
    key.proto = ip.proto;
    Ok(Packet {
        key,
        tcp_flags,
        len: (ctx.data_end() - ctx.data()) as u32,
    })
}

/// Both steps, for programs without a pre-filter in between (the bench floor).
#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Step<Packet> {
    let ip = ipv4(ctx)?;
    l4(ctx, &ip)
}

const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_DEST: u8 = 60;

/// The IPv6 header fields the later steps need.
pub struct Ipv6 {
    pub src_be: Ipv6Words,
    pub dst_be: Ipv6Words,
}

/// Reads an address at `offset` as four network-order words.
///
/// # Safety
/// The 16 bytes at `p` must be inside the frame.
#[inline(always)]
unsafe fn words(p: *const u8) -> Ipv6Words {
    let w = p as *const [u8; 4];
    [
        u32::from_ne_bytes(*w),
        u32::from_ne_bytes(*w.add(1)),
        u32::from_ne_bytes(*w.add(2)),
        u32::from_ne_bytes(*w.add(3)),
    ]
}

/// Ethernet and the fixed IPv6 header (called once `ipv4` has said the
/// frame is not IPv4). Anything else passes as before.
#[inline(always)]
pub fn ipv6(ctx: &XdpContext) -> Step<Ipv6> {
    let eth: *const EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: ptr_at checked that the Ethernet header is inside the frame.
    let ether_type = u16::from_be(unsafe { (*eth).ether_type });
    if ether_type != ETH_P_IPV6 {
        return Err(Verdict::pass(reason::PASS_NOT_IPV4));
    }
    let ip: *const [u8; IPV6_HDR_LEN] = ptr_at(ctx, EthHdr::LEN)?;
    // SAFETY: ptr_at checked the 40-byte IPv6 header.
    let (version, src_be, dst_be) = unsafe {
        let p = ip as *const u8;
        ((*ip)[0] >> 4, words(p.add(8)), words(p.add(24)))
    };
    if version != 6 {
        return Err(Verdict::pass(reason::PASS_MALFORMED));
    }
    Ok(Ipv6 { src_be, dst_be })
}

/// Where the transport header starts: walks up to `MAX_IPV6_EXT_HEADERS`
/// hop-by-hop / routing / destination-options headers (skipped, never
/// changed: DR changes no L3 byte). A Fragment header is a fragment; ESP,
/// AH, unknown headers or too many of them are not ours to classify.
/// Returns (next header, offset of the transport header).
#[inline(always)]
pub fn ipv6_transport(ctx: &XdpContext) -> Step<(u8, usize)> {
    let ip: *const [u8; IPV6_HDR_LEN] = ptr_at(ctx, EthHdr::LEN)?;
    // SAFETY: ipv6() checked the fixed header.
    let mut next = unsafe { (*ip)[6] };
    let mut off = EthHdr::LEN + IPV6_HDR_LEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                let ext: *const [u8; 2] = ptr_at(ctx, off)?;
                // SAFETY: ptr_at checked the two bytes (next header, length).
                let (n, len) = unsafe { ((*ext)[0], (*ext)[1]) };
                next = n;
                // Length in 8-byte units, not counting the first 8.
                off += (len as usize + 1) * 8;
            }
            _ => break,
        }
    }
    match next {
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMPV6 => Ok((next, off)),
        NEXTHDR_FRAGMENT => Err(Verdict::pass(reason::PASS_FRAGMENT)),
        _ => Err(Verdict::pass(reason::PASS_NOT_SERVICE)),
    }
}

/// The IPv6 packet's 5-tuple from its TCP/UDP header at `off`.
// Zeroed whole, then filled (see `l4`): the lint's struct literal with
// `..Default::default()` brings the 3-byte memset call back.
#[allow(clippy::field_reassign_with_default)]
#[inline(always)]
pub fn l4_v6(ctx: &XdpContext, ip: &Ipv6, proto: u8, off: usize) -> Step<Packet<FlowKey6>> {
    let (ports, tcp_flags) = if proto == IPPROTO_TCP {
        let tcp: *const [u8; 20] = ptr_at(ctx, off)?;
        // SAFETY: ptr_at checked the 20-byte TCP header.
        let h = unsafe { *tcp };
        (([h[0], h[1]], [h[2], h[3]]), h[13])
    } else {
        let udp: *const [u8; 8] = ptr_at(ctx, off)?;
        // SAFETY: ptr_at checked the 8-byte UDP header.
        let h = unsafe { *udp };
        (([h[0], h[1]], [h[2], h[3]]), 0)
    };
    let mut key = FlowKey6::default();
    key.src_be = ip.src_be;
    key.dst_be = ip.dst_be;
    key.sport_be = u16::from_ne_bytes(ports.0);
    key.dport_be = u16::from_ne_bytes(ports.1);
    key.proto = proto;
    Ok(Packet {
        key,
        tcp_flags,
        len: (ctx.data_end() - ctx.data()) as u32,
    })
}
