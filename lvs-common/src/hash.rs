//! Cheap hashes the data path computes per packet, shared so the agent can
//! fill the VIP pre-filter with exactly the bits the program tests.

use crate::{FLOW_CACHE_SLOTS, VIP_FILTER_WORDS};

const GOLDEN: u32 = 0x9E37_79B1;

/// Bit of the VIP pre-filter for a destination address, as (word, bit).
/// The input is the raw network-order value (see the crate docs). Keyed on
/// the address alone so traffic to other hosts passes before L4 parsing.
#[inline(always)]
pub fn vip_filter_bit(addr_be: u32) -> (u32, u32) {
    let h = addr_be.wrapping_mul(GOLDEN);
    // VIP_FILTER_WORDS × 64 bits = 2^16 bits: take the top 16 bits.
    let bit = h >> 16;
    ((bit >> 6) % VIP_FILTER_WORDS, bit & 63)
}

/// Slot of the per-CPU flow cache for a 5-tuple.
#[inline(always)]
pub fn flow_cache_slot(src_be: u32, dst_be: u32, ports: u32, proto: u8) -> u32 {
    let h = (src_be ^ dst_be.rotate_left(13) ^ ports.rotate_left(7) ^ proto as u32)
        .wrapping_mul(GOLDEN);
    (h >> 20) & (FLOW_CACHE_SLOTS - 1)
}

const _: () = assert!(VIP_FILTER_WORDS * 64 == 1 << 16);
const _: () = assert!(FLOW_CACHE_SLOTS == 1 << 12);
