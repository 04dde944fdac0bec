//! Adverts injected on the wire from the client's namespace (raw sockets),
//! for IPv4 and IPv6 alike: what the speakers expect of an advert, random
//! noise, the rounds of sending, and the checks that every case was
//! counted and nothing moved.

use std::time::Duration;

use lvs_userspace::vrrp::packet::{Expect, Outgoing};
use socket2::Socket;

use super::*;

/// What a speaker of the instance `o` speaks for expects of an advert.
pub fn expect_of<'a, A>(o: &Outgoing<'a, A>) -> Expect<'a, A> {
    Expect {
        version: o.version,
        vrid: o.vrid,
        auth_pass: o.auth_pass,
        adver_int_cs: o.adver_int_cs,
        vips: o.addrs,
        check_ttl: true,
    }
}

/// xorshift32 noise over adverts (the same sequence every run).
pub struct Noise(u32);

impl Noise {
    /// 200 copies of `good` with about one byte in five past `skip`
    /// changed at random; only those `refused` says the parser refuses
    /// (random changes can, rarely, leave a valid advert).
    pub fn batch(
        &mut self,
        good: &[u8],
        skip: usize,
        refused: impl Fn(&[u8]) -> bool,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for _ in 0..200 {
            let mut p = good.to_vec();
            for byte in p.iter_mut().skip(skip) {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 17;
                self.0 ^= self.0 << 5;
                if self.0.is_multiple_of(5) {
                    *byte = self.0 as u8;
                }
            }
            if refused(&p) {
                out.push(p);
            }
        }
        out
    }
}

/// Three rounds a second apart from the client's namespace, on the socket
/// `open` makes there: `round` sends one (its cases, then noise); then
/// half a second for the speakers to count the last.
pub fn inject_rounds(
    lab: &Lab,
    open: impl FnOnce() -> Socket + Send,
    mut round: impl FnMut(&Socket, &mut Noise) + Send,
) {
    lab.run_in_netns(lab.client_ns(), || {
        let s = open();
        let mut noise = Noise(0x1234_5678);
        for _ in 0..3 {
            round(&s, &mut noise);
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
}

/// After [`inject_rounds`]: both speakers still run and counted every
/// case's `keys` each round; nothing changed (master still master holding
/// the VIP, backup still backup, never a takeover).
pub fn assert_counted_and_unmoved<'k>(
    lab: &Lab,
    fam: Family,
    m: &Speaker,
    b: &Speaker,
    keys: impl Iterator<Item = &'k str> + Clone,
) {
    for sp in [m, b] {
        assert!(lab.is_running(sp.pid), "a speaker died");
        for key in keys.clone() {
            let n = rejected(sp, key);
            assert!(n >= 3, "{key}: counted {n} on {}", sp.log.display());
        }
        println!("rejected: {}", stats(sp).unwrap()["rejected"]);
    }
    assert!(fam.holds_vip(lab, 0) && !fam.holds_vip(lab, 1));
    wait_state(m, "Master", Duration::from_secs(1));
    wait_state(b, "Backup", Duration::from_secs(1));
    let lb = log_text(b);
    assert!(!lb.contains("Transition to MASTER"), "{lb}");
    assert!(!log_text(m).contains("Entering BACKUP STATE\n"));
}

/// Each of `lines` (keepalived's wording of a refusal) is in `s`'s log.
pub fn assert_logged(s: &Speaker, lines: &[&str]) {
    let log = log_text(s);
    for line in lines {
        assert!(log.contains(line), "missing log line {line:?} in:\n{log}");
    }
}
