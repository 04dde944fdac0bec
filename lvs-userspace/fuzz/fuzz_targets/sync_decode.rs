//! The connection-sync decoder on arbitrary bytes (sync datagrams are
//! untrusted input): never panics; whatever it accepts re-encodes to a
//! datagram that decodes to the same message, with and without a key
//! (IPv4 and IPv6 entries alike).
#![no_main]

#[allow(dead_code)]
#[path = "../../src/sync/wire.rs"]
mod wire;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for key in [None, Some(&b"fuzz-key"[..])] {
        if let Ok(m) = wire::decode(data, key) {
            assert!(m.entries.len() <= wire::MAX_ENTRIES);
            let again = wire::encode_one(&m, key);
            assert_eq!(wire::decode(&again, key).as_ref(), Ok(&m));
        }
    }
});
