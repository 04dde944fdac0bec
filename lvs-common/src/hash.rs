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

/// Buckets of an `sh` or `dh` table (IPVS `CONFIG_IP_VS_SH_TAB_BITS` = 8).
pub const SH_TABLE_BITS: u32 = 8;
pub const SH_TABLE_SIZE: u32 = 1 << SH_TABLE_BITS;
/// Entries of an `mh` table: IPVS's default (`CONFIG_IP_VS_MH_TAB_INDEX`
/// 12, so `primes[12 - 8]` of 251, 509, 1021, 2039, 4093, …, 65521).
pub const MH_TABLE_SIZE: u32 = 4093;
/// `IP_VS_MH_TAB_BITS` (`CONFIG_IP_VS_MH_TAB_INDEX / 2`): weights are shifted
/// down so that max weight / gcd fits in this many bits.
pub const MH_TABLE_BITS: u32 = 6;
/// ip_vs_mh's fixed hsiphash keys (`generate_hash_secret`): both words of
/// each key are the same constant, so every director, and the kernel,
/// computes the same table and the same lookups.
pub const MH_KEY1: u64 = 2_654_435_761;
pub const MH_KEY2: u64 = 2_654_446_892;

/// The kernel's `hash_32` multiplier (`GOLDEN_RATIO_32`).
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// `ip_vs_sh_hashkey`: bucket of a client address (host order) and port
/// (host order, 0 without `sh-port`), plus `offset` for the fallback walk.
#[inline(always)]
pub fn sh_bucket(addr: u32, port: u16, offset: u32) -> u32 {
    let h = (port as u32)
        .wrapping_add(addr)
        .wrapping_mul(GOLDEN_RATIO_32)
        >> (32 - SH_TABLE_BITS);
    offset.wrapping_add(h) & (SH_TABLE_SIZE - 1)
}

/// `ip_vs_dh_hashkey`: bucket of a destination address (host order).
#[inline(always)]
pub fn dh_bucket(addr: u32) -> u32 {
    addr.wrapping_mul(2_654_435_761) & (SH_TABLE_SIZE - 1)
}

#[inline(always)]
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// The kernel's `hsiphash_1u32` on 64-bit machines (SipHash-1-3 of one
/// 4-byte word, truncated) with key (k0, k1).
#[inline(always)]
pub fn hsiphash_u32(x: u32, k0: u64, k1: u64) -> u32 {
    let mut v = [
        0x736f_6d65_7073_6575 ^ k0,
        0x646f_7261_6e64_6f6d ^ k1,
        0x6c79_6765_6e65_7261 ^ k0,
        0x7465_6462_7974_6573 ^ k1,
    ];
    let b = (4u64 << 56) | x as u64;
    v[3] ^= b;
    sipround(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    sipround(&mut v);
    sipround(&mut v);
    sipround(&mut v);
    ((v[0] ^ v[1]) ^ (v[2] ^ v[3])) as u32
}

/// `ip_vs_mh_hashkey`: hsiphash of `offset + port + addr` (host order).
#[inline(always)]
pub fn mh_hash(addr: u32, port: u16, key: u64, offset: u32) -> u32 {
    hsiphash_u32(
        offset.wrapping_add(port as u32).wrapping_add(addr),
        key,
        key,
    )
}
