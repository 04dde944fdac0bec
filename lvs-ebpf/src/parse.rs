//! Header parsing: Ethernet → IPv4 → TCP/UDP ports, every access
//! bounds-checked against `data_end` (the verifier insists, and a truncated
//! frame must be passed, never mis-forwarded).

use aya_ebpf::programs::XdpContext;
use lvs_common::{verdict as reason, FlowKey, IPPROTO_TCP, IPPROTO_UDP};
use network_types::{eth::EthHdr, ip::Ipv4Hdr, tcp::TcpHdr, udp::UdpHdr};

use crate::verdict::{Step, Verdict};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
/// Fragment offset, in the host-order `frags` word.
const IP_OFFSET_MASK: u16 = 0x1FFF;
/// More-fragments flag, in the host-order `frags` word.
const IP_MF: u16 = 0x2000;

/// What the later steps need from a frame.
pub struct Packet {
    /// The client-side 5-tuple, network byte order, padding zeroed.
    pub key: FlowKey,
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
    Ok(Packet {
        key: FlowKey {
            src_be: ip.src_be,
            dst_be: ip.dst_be,
            sport_be: u16::from_ne_bytes(ports.0),
            dport_be: u16::from_ne_bytes(ports.1),
            proto: ip.proto,
            _pad: [0; 3],
        },
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
