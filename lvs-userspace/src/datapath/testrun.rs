//! Running the XDP program on crafted frames (BPF_PROG_TEST_RUN): the unit
//! tests' table and the bench use these same frames and runner.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use anyhow::{Context, Result};
use aya::{
    maps::{Array, HashMap, MapData, ProgramArray},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp},
    Ebpf, EbpfLoader,
};
use etherparse::PacketBuilder;
use lvs_common::{bench::HarnessCfg, Backend, FlowKey, IPPROTO_TCP};

use super::objects;

/// MACs of the crafted frames.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0, 0, 0, 0x01];
pub const DIRECTOR_MAC: [u8; 6] = [0x02, 0xd1, 0, 0, 0, 0x01];

/// A backend MAC for tests: 02:be:00:00:00:nn.
pub const fn backend_mac(n: u8) -> [u8; 6] {
    [0x02, 0xbe, 0, 0, 0, n]
}

/// Real server `n` of the test tables: 198.18.0.(10 + n):80, MAC
/// [`backend_mac`]`(n)`, reached through the test-run ingress `lo` (so a
/// forward is XDP_TX), up, no connection thresholds.
pub fn backend(n: u8, weight: u32) -> super::DesiredBackend {
    super::DesiredBackend {
        addr: Ipv4Addr::new(198, 18, 0, 10 + n).into(),
        port: 80,
        weight,
        alive: true,
        u_threshold: 0,
        l_threshold: 0,
        next_hop: super::NextHop {
            mac: backend_mac(n),
            src_mac: DIRECTOR_MAC,
            ifindex: 1,
        },
    }
}

/// TCP flags for [`tcp_frame`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

impl Flags {
    pub const SYN: Flags = Flags {
        syn: true,
        ack: false,
        fin: false,
        rst: false,
        psh: false,
    };
    pub const ACK: Flags = Flags {
        syn: false,
        ack: true,
        fin: false,
        rst: false,
        psh: false,
    };
    pub const FIN_ACK: Flags = Flags {
        syn: false,
        ack: true,
        fin: true,
        rst: false,
        psh: false,
    };
    pub const RST: Flags = Flags {
        syn: false,
        ack: false,
        fin: false,
        rst: true,
        psh: false,
    };
    pub const NONE: Flags = Flags {
        syn: false,
        ack: false,
        fin: false,
        rst: false,
        psh: false,
    };
}

/// The Ethernet and IP headers of a frame from the client (TTL or hop
/// limit 64), in the addresses' family.
fn ip_step(src: IpAddr, dst: IpAddr) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    let eth = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("a frame from {src} to {dst} mixes families"),
    }
}

/// An Ethernet/IP/TCP frame (IPv4 or IPv6) from the client to `dst`, with
/// a payload.
pub fn tcp_frame(
    src: (impl Into<IpAddr>, u16),
    dst: (impl Into<IpAddr>, u16),
    flags: Flags,
    payload: &[u8],
) -> Vec<u8> {
    let b = ip_step(src.0.into(), dst.0.into()).tcp(src.1, dst.1, 1000, 65535);
    tcp_write(b, flags, payload)
}

/// The TCP step of either family's frame: `flags` set, `payload` written.
fn tcp_write(
    mut b: etherparse::PacketBuilderStep<etherparse::TcpHeader>,
    flags: Flags,
    payload: &[u8],
) -> Vec<u8> {
    if flags.syn {
        b = b.syn();
    }
    if flags.ack {
        b = b.ack(1);
    }
    if flags.fin {
        b = b.fin();
    }
    if flags.rst {
        b = b.rst();
    }
    if flags.psh {
        b = b.psh();
    }
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("writing to a Vec");
    out
}

/// An Ethernet/IP/UDP frame (IPv4 or IPv6).
pub fn udp_frame(
    src: (impl Into<IpAddr>, u16),
    dst: (impl Into<IpAddr>, u16),
    payload: &[u8],
) -> Vec<u8> {
    let b = ip_step(src.0.into(), dst.0.into()).udp(src.1, dst.1);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("writing to a Vec");
    out
}

/// Real server `n` of the IPv6 test tables: 2001:2::(10 + n) port 80, MAC
/// [`backend_mac`]`(n)`, through `lo` as [`backend`].
pub fn backend6(n: u8, weight: u32) -> super::DesiredBackend {
    super::DesiredBackend {
        addr: Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x10 + n as u16).into(),
        ..backend(n, weight)
    }
}

/// Offset of the IPv6 header in the crafted frames, and its length.
pub const IPV6_AT: usize = 14;
pub const IPV6_LEN: usize = 40;

/// `frame` (Ethernet/IPv6/…) with extension headers inserted after the
/// fixed header: each `(next-header type, body)`, the body padded to a
/// multiple of 8 bytes with its first two bytes (next header, length)
/// filled in; the payload length and next-header chain fixed up.
pub fn with_ipv6_ext_headers(frame: &[u8], headers: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut ip = frame[IPV6_AT..IPV6_AT + IPV6_LEN].to_vec();
    let rest = &frame[IPV6_AT + IPV6_LEN..];
    let mut next = ip[6];
    let mut ext = Vec::new();
    // Built back to front: each header names the one after it.
    for (kind, body) in headers.iter().rev() {
        let mut h = body.clone();
        h.resize(h.len().max(2).div_ceil(8) * 8, 0);
        h[0] = next;
        h[1] = (h.len() / 8 - 1) as u8;
        h.extend_from_slice(&ext);
        ext = h;
        next = *kind;
    }
    ip[6] = next;
    let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize + ext.len();
    ip[4..6].copy_from_slice(&(plen as u16).to_be_bytes());
    let mut out = frame[..IPV6_AT].to_vec();
    out.extend_from_slice(&ip);
    out.extend_from_slice(&ext);
    out.extend_from_slice(rest);
    out
}

/// `frame` as the data path should send it to a backend: only the MACs differ.
pub fn rewritten(frame: &[u8], dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut out = frame.to_vec();
    out[0..6].copy_from_slice(&dst);
    out[6..12].copy_from_slice(&src);
    out
}

/// One run's result.
#[derive(Debug)]
pub struct Outcome {
    /// XDP action (2 = PASS, 3 = TX, 4 = REDIRECT…).
    pub action: u32,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
}

/// Runs `prog` once on `frame`.
pub fn run(prog: &Xdp, frame: &[u8]) -> Result<Outcome, ProgramError> {
    let mut out = vec![0u8; frame.len() + 256];
    let mut opts = TestRunOptions::new();
    opts.data_in = Some(frame);
    opts.data_out = Some(&mut out);
    let r = prog.test_run(opts)?;
    out.truncate(r.data_size_out as usize);
    Ok(Outcome {
        action: r.return_value,
        frame: out,
    })
}

/// Runs `prog` once on `frame` as if it arrived on `ingress_ifindex` (a
/// device of the calling thread's network namespace).
pub fn run_on(prog: &Xdp, frame: &[u8], ingress_ifindex: u32) -> Result<Outcome, ProgramError> {
    let mut out = vec![0u8; frame.len() + 256];
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
    // rx_queue_index, egress_ifindex. The kernel wants data_end to be the
    // frame's length when a context is given.
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ingress_ifindex.to_ne_bytes());
    let mut opts = TestRunOptions::new();
    opts.data_in = Some(frame);
    opts.data_out = Some(&mut out);
    opts.ctx_in = Some(&ctx);
    let r = prog.test_run(opts)?;
    out.truncate(r.data_size_out as usize);
    Ok(Outcome {
        action: r.return_value,
        frame: out,
    })
}

/// Runs `prog` `repeat` times on one buffer; the kernel's mean per run.
pub fn time(prog: &Xdp, frame: &[u8], repeat: u32) -> Result<(u32, Duration), ProgramError> {
    let mut opts = TestRunOptions::new();
    opts.data_in = Some(frame);
    opts.repeat = repeat;
    let r = prog.test_run(opts)?;
    Ok((r.return_value, r.duration))
}

/// BPF_PROG_TEST_RUN runs on the calling CPU and the data path keeps
/// per-CPU state (schedule cursors, flow cache): a test that expects one
/// exact sequence pins its thread to one CPU.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only touch the set we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The bench's and the tests' helper programs (`lvs-tools`): the two
/// baselines and a harness that makes every test-run repetition a new flow.
pub struct Tools {
    ebpf: Ebpf,
}

impl Tools {
    pub fn load(floor_entries: u32) -> Result<Self> {
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("floor_flows", floor_entries)
            .load(objects::LVS_TOOLS)
            .context("loading lvs-tools")?;
        for name in ["bench_reflector", "bench_floor", "bench_harness"] {
            let p: &mut Xdp = ebpf.program_mut(name).context(name)?.try_into()?;
            p.load().with_context(|| format!("verifying {name}"))?;
        }
        Ok(Tools { ebpf })
    }

    pub fn prog(&self, name: &str) -> Result<&Xdp> {
        Ok(self.ebpf.program(name).context("program")?.try_into()?)
    }

    /// Points the harness at `target`, cycling `flows` flows (0 = always new).
    pub fn harness_to(&mut self, target: &Xdp, flows: u32) -> Result<()> {
        let fd = target.fd()?.try_clone()?;
        let mut slots: ProgramArray<&mut MapData> =
            ProgramArray::try_from(self.ebpf.map_mut("harness_target").context("map")?)?;
        slots.set(0, &fd, 0)?;
        let mut cfg: Array<&mut MapData, HarnessCfg> =
            Array::try_from(self.ebpf.map_mut("harness_cfg").context("map")?)?;
        cfg.set(0, HarnessCfg { flows, _pad: 0 }, 0)?;
        Ok(())
    }

    pub fn floor_insert(&mut self, keys: impl Iterator<Item = FlowKey>) -> Result<()> {
        let mut flows: HashMap<&mut MapData, FlowKey, u32> =
            HashMap::try_from(self.ebpf.map_mut("floor_flows").context("map")?)?;
        for k in keys {
            flows.insert(k, 0, 0)?;
        }
        let mut backends: Array<&mut MapData, Backend> =
            Array::try_from(self.ebpf.map_mut("floor_backends").context("map")?)?;
        backends.set(
            0,
            Backend {
                mac: backend_mac(1),
                src_mac: DIRECTOR_MAC,
                ifindex: 1,
                ..Default::default()
            },
            0,
        )?;
        Ok(())
    }
}

/// The 5-tuple of harness flow `idx` for a TCP frame from `client`:40000
/// to `dst`:80.
pub fn harness_key(client: Ipv4Addr, idx: u32, dst: Ipv4Addr) -> FlowKey {
    let (low, sport) = lvs_common::bench::flow_variation(idx);
    let mut src = client.octets();
    src[2..4].copy_from_slice(&low.to_be_bytes());
    FlowKey {
        src_be: u32::from_ne_bytes(src),
        dst_be: u32::from_ne_bytes(dst.octets()),
        sport_be: sport.to_be(),
        dport_be: 80u16.to_be(),
        proto: IPPROTO_TCP,
        _pad: [0; 3],
    }
}
