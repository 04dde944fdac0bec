//! What the agent wants the data path to do: services and their backends,
//! in plain types. `Datapath::apply` turns it into map writes by diff.

use std::net::Ipv4Addr;

use lvs_common::ServiceKey;

use crate::sched::Algorithm;

/// The data path serves TCP and UDP services; `Protocol::number()` is the
/// map key's protocol byte.
pub use lvs_config::Protocol;
/// The name this type had here before there was one protocol type; kept so
/// that branches written against it still build. Prefer `Protocol`.
#[doc(hidden)]
pub use lvs_config::Protocol as Proto;

/// Where an L2 frame for a backend goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NextHop {
    /// The real server's MAC.
    pub mac: [u8; 6],
    /// The egress interface's MAC.
    pub src_mac: [u8; 6],
    /// The egress interface.
    pub ifindex: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredBackend {
    pub addr: Ipv4Addr,
    pub port: u16,
    /// 0 = quiescent: keeps its flows and templates, gets no new ones.
    pub weight: u32,
    /// false = down: out of the schedule, its flows rescheduled.
    pub alive: bool,
    /// IPVS `uthreshold` / `lthreshold` (0 = none): at `u_threshold`
    /// connections the server takes no new ones until it is below
    /// `l_threshold` (or 3/4 of `u_threshold`).
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub next_hop: NextHop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    pub timeout_s: u32,
    /// Granularity: clients in the same network (addr & mask) share a template.
    pub netmask: Ipv4Addr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredService {
    pub vip: Ipv4Addr,
    pub port: u16,
    pub proto: Protocol,
    pub algo: Algorithm,
    pub persistence: Option<Persistence>,
    /// Schedule TCP segments without SYN that have no connection entry.
    pub sloppy: bool,
    /// IPVS one-packet scheduling (`ops`, UDP only): every datagram is
    /// scheduled on its own and no connection entry is kept.
    pub one_packet: bool,
    /// In list order: the order IPVS would have them (config order).
    pub backends: Vec<DesiredBackend>,
}

impl DesiredService {
    pub fn key(&self) -> ServiceKey {
        service_key(self.vip, self.port, self.proto)
    }
}

/// The map key of a service.
pub fn service_key(vip: Ipv4Addr, port: u16, proto: Protocol) -> ServiceKey {
    ServiceKey {
        addr_be: u32::from_ne_bytes(vip.octets()),
        port_be: port.to_be(),
        proto: proto.number(),
        _pad: 0,
    }
}

/// Network-order u32 (as kept in the maps) back to an address.
pub fn addr_of(be: u32) -> Ipv4Addr {
    Ipv4Addr::from(be.to_ne_bytes())
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredState {
    pub services: Vec<DesiredService>,
}
