//! Running the XDP program on crafted frames (BPF_PROG_TEST_RUN): the unit
//! tests' table and the bench use these same frames and runner.

use std::{net::Ipv4Addr, time::Duration};

use aya::programs::{ProgramError, TestRun, TestRunOptions, Xdp};
use etherparse::PacketBuilder;

/// MACs of the crafted frames.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0, 0, 0, 0x01];
pub const DIRECTOR_MAC: [u8; 6] = [0x02, 0xd1, 0, 0, 0, 0x01];

/// A backend MAC for tests: 02:be:00:00:00:nn.
pub const fn backend_mac(n: u8) -> [u8; 6] {
    [0x02, 0xbe, 0, 0, 0, n]
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

/// An Ethernet/IPv4/TCP frame from the client to `dst`, with a payload.
pub fn tcp_frame(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: Flags,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(src.0.octets(), dst.0.octets(), 64)
        .tcp(src.1, dst.1, 1000, 65535);
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

/// An Ethernet/IPv4/UDP frame.
pub fn udp_frame(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(src.0.octets(), dst.0.octets(), 64)
        .udp(src.1, dst.1);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("writing to a Vec");
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
