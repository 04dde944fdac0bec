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

/// IPVS's `addr_fold` of an IPv6 address (`ip6[0] ^ ip6[1] ^ ip6[2] ^
/// ip6[3]`, ip_vs_sh.c / ip_vs_mh.c / ip_vs_dh.c): the 32-bit value its
/// hash schedulers hash in place of an IPv4 address. Network order in,
/// network order out (XOR commutes with the byte swap).
#[inline(always)]
pub fn ipv6_fold(addr_be: &crate::Ipv6Words) -> u32 {
    addr_be[0] ^ addr_be[1] ^ addr_be[2] ^ addr_be[3]
}

/// The address with only its first `prefix_len` bits kept (IPVS
/// `ipv6_addr_prefix` for persistence granularity); 128 or more keeps all.
#[inline(always)]
pub fn ipv6_prefix(addr_be: &crate::Ipv6Words, prefix_len: u32) -> crate::Ipv6Words {
    let mut out = [0u32; 4];
    let mut i = 0;
    while i < 4 {
        let start = 32 * i as u32;
        let bits = if prefix_len <= start {
            0
        } else if prefix_len - start >= 32 {
            32
        } else {
            prefix_len - start
        };
        let mask = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        out[i] = addr_be[i] & mask.to_be();
        i += 1;
    }
    out
}

/// Network-order address bytes as the maps keep them.
#[inline(always)]
pub fn ipv6_words(octets: [u8; 16]) -> crate::Ipv6Words {
    let w = |i: usize| u32::from_ne_bytes([octets[i], octets[i + 1], octets[i + 2], octets[i + 3]]);
    [w(0), w(4), w(8), w(12)]
}

/// The inverse of [`ipv6_words`].
#[inline(always)]
pub fn ipv6_octets(words: &crate::Ipv6Words) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 4 {
        let b = words[i].to_ne_bytes();
        out[4 * i] = b[0];
        out[4 * i + 1] = b[1];
        out[4 * i + 2] = b[2];
        out[4 * i + 3] = b[3];
        i += 1;
    }
    out
}

#[cfg(test)]
mod ipv6_tests {
    use super::*;

    #[test]
    fn prefix_keeps_the_first_bits() {
        let a = ipv6_words([
            0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
        ]);
        assert_eq!(ipv6_prefix(&a, 128), a);
        assert_eq!(ipv6_prefix(&a, 0), [0; 4]);
        let p = ipv6_octets(&ipv6_prefix(&a, 68));
        assert_eq!(
            p,
            [0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0xf0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(ipv6_octets(&a)[12..], [1, 2, 3, 4]);
    }

    #[test]
    fn fold_is_the_xor_of_the_words() {
        let a = ipv6_words([0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 8]);
        assert_eq!(u32::from_be(ipv6_fold(&a)), 15);
    }
}
