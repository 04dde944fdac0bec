//! What the agent wants the data path to do: services and their backends,
//! in plain types. `Datapath::apply` turns it into map writes by diff.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_common::{
    hash::{ipv6_octets, ipv6_words},
    Ipv6Words, ServiceKey, ServiceKey6,
};

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
    /// Of the service's family (the plan refuses mixes: Direct Routing
    /// cannot send an IPv4 packet to an IPv6 real server).
    pub addr: IpAddr,
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
    /// The same for an IPv6 service, as a prefix length (keepalived takes
    /// `persistence_granularity` so for IPv6; 128 = per client).
    pub prefix_len6: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredService {
    pub vip: IpAddr,
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
    pub fn key(&self) -> SvcKey {
        match self.vip {
            IpAddr::V4(a) => SvcKey::V4(service_key(a, self.port, self.proto)),
            IpAddr::V6(a) => SvcKey::V6(service_key6(a, self.port, self.proto)),
        }
    }
}

/// A service's map key in either family: `services` or `services6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SvcKey {
    V4(ServiceKey),
    V6(ServiceKey6),
}

impl SvcKey {
    pub fn vip(&self) -> IpAddr {
        match self {
            SvcKey::V4(k) => IpAddr::V4(addr_of(k.addr_be)),
            SvcKey::V6(k) => IpAddr::V6(addr6_of(&k.addr_be)),
        }
    }
    pub fn port_be(&self) -> u16 {
        match self {
            SvcKey::V4(k) => k.port_be,
            SvcKey::V6(k) => k.port_be,
        }
    }
    pub fn proto(&self) -> u8 {
        match self {
            SvcKey::V4(k) => k.proto,
            SvcKey::V6(k) => k.proto,
        }
    }
}

impl From<ServiceKey> for SvcKey {
    fn from(k: ServiceKey) -> Self {
        SvcKey::V4(k)
    }
}

impl From<&ServiceKey> for SvcKey {
    fn from(k: &ServiceKey) -> Self {
        SvcKey::V4(*k)
    }
}

impl From<&SvcKey> for SvcKey {
    fn from(k: &SvcKey) -> Self {
        *k
    }
}

impl From<ServiceKey6> for SvcKey {
    fn from(k: ServiceKey6) -> Self {
        SvcKey::V6(k)
    }
}

/// The map key of an IPv6 service.
pub fn service_key6(vip: Ipv6Addr, port: u16, proto: Protocol) -> ServiceKey6 {
    ServiceKey6 {
        addr_be: ipv6_words(vip.octets()),
        port_be: port.to_be(),
        proto: proto.number(),
        _pad: 0,
    }
}

/// The map key of a service in either family.
pub fn any_service_key(vip: IpAddr, port: u16, proto: Protocol) -> SvcKey {
    match vip {
        IpAddr::V4(a) => SvcKey::V4(service_key(a, port, proto)),
        IpAddr::V6(a) => SvcKey::V6(service_key6(a, port, proto)),
    }
}

/// `addr:port`, an IPv6 address in brackets (`[2001:2::1]:80`), as
/// ipvsadm's `addrport_to_anyname` prints them (listings, metrics labels).
pub fn endpoint(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// An IPv6 address as the maps keep it, back to an address.
pub fn addr6_of(words: &Ipv6Words) -> Ipv6Addr {
    Ipv6Addr::from(ipv6_octets(words))
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
