//! Links, neighbours, routes and IPv4/IPv6 addresses through rtnetlink, and
//! gratuitous ARP / unsolicited neighbour advertisements through an
//! `AF_PACKET` socket.
//!
//! Everything here is synchronous and opens its own socket per call, so it
//! acts on the network namespace of the *calling thread* (a netlink socket
//! is bound to the namespace it was created in). That keeps the functions
//! usable from test threads that `setns` into a lab namespace and from
//! `spawn_blocking` tasks alike. Calls are cheap (one socket, one request,
//! one reply or dump); nobody calls them per packet.
//!
//! No `ip` subprocess is involved: requests are built with
//! `netlink-packet-route` and sent over a `netlink-sys` socket.

mod addr;
mod addr6;
mod garp;
mod link;
pub mod monitor;
mod na;
mod neigh;
mod route;
mod sock;

use std::net::Ipv4Addr;

pub use addr::{addr_add, addr_del, addrs};
pub use addr6::{addr6_add, addr6_del, addrs6, IfAddr6};
pub use garp::{garp_frame, send_garp};
pub use link::{link_by_index, link_by_name, link_operational, links};
pub use na::{ipv6_forwarding, na_frame, send_unsolicited_na};
pub use neigh::{neighbour, neighbours, solicit};
pub use route::{route_to, RouteTo};

/// One network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// All zero for interfaces without a link-layer address (`lo` has zeros too).
    pub mac: [u8; 6],
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    pub mtu: u32,
}

/// One IPv4 address of an interface (what `ip -4 addr` shows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    pub brd: Option<Ipv4Addr>,
    /// `RT_SCOPE_*`: 0 global, 200 site, 253 link, 254 host. `None` when
    /// adding = global. Always `Some` in [`addrs`]' answers.
    pub scope: Option<u8>,
    /// `bond0:1`-style label; `None` when adding = the interface name.
    pub label: Option<String>,
}

impl IfAddr {
    /// A plain address: no broadcast, global scope, no label.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Self {
        IfAddr {
            addr,
            prefix_len,
            brd: None,
            scope: None,
            label: None,
        }
    }
}

/// Parses keepalived's / iproute2's scope names (`global`, `site`, `link`,
/// `host`, `nowhere`) or a number.
pub fn scope_from_name(s: &str) -> Option<u8> {
    Some(match s {
        "global" | "universe" => 0,
        "site" => 200,
        "link" => 253,
        "host" => 254,
        "nowhere" => 255,
        n => n.parse().ok()?,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel answered a request with an error (`errno`).
    #[error("{op}: {source}")]
    Kernel {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("no such interface: {0}")]
    NoSuchLink(String),
    #[error("cannot decode netlink reply: {0}")]
    Decode(String),
    #[error("netlink: {0}")]
    Protocol(&'static str),
}

impl NetlinkError {
    /// The kernel's errno, if the kernel refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            NetlinkError::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }
}
