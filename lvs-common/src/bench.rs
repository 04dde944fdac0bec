//! Shared by the bench programs (`lvs-tools` object) and `cargo xtask bench`.
//!
//! BPF_PROG_TEST_RUN repeats a program on one buffer; the harness program
//! makes each repetition a different flow by rewriting the client address
//! and port before it tail-calls the program under test.

/// `harness_cfg` value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HarnessCfg {
    /// Flows to cycle through; 0 = a new flow every repetition.
    pub flows: u32,
    pub _pad: u32,
}

#[cfg(feature = "user")]
// SAFETY: repr(C), two u32, no padding.
unsafe impl aya::Pod for HarnessCfg {}

/// Byte offsets the harness rewrites (IPv4 without options).
pub const SRC_ADDR_LOW_OFFSET: usize = 14 + 12 + 2;
pub const SPORT_OFFSET: usize = 14 + 20;
pub const MIN_FRAME: usize = 14 + 20 + 4;

/// Flow number `idx`'s client address low 16 bits and client port, as the
/// harness writes them (network byte order on the wire).
#[inline(always)]
pub fn flow_variation(idx: u32) -> (u16, u16) {
    ((idx & 0xFFFF) as u16, 1024 + (idx >> 16) as u16)
}
