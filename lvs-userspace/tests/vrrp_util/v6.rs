//! IPv6 helpers of the VRRP lab tests: IPv6 turned on (without DAD) in
//! the lab's directors and client, an IPv6 instance's config, our speaker
//! and keepalived started with it, the IPv6 VIP's presence, `ping -6`.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lvs_testkit::{Lab, Pid};
use lvs_userspace::netlink::{self, IfAddr6};

use super::*;

pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x100);
pub const CLIENT6: &str = "2001:2::50";

/// IPv6 on for `ifname` in `ns`: no DAD (link-local usable at once), then
/// enabled (the kernel makes the link-local address), plus `addr`/64.
pub fn enable_ipv6(lab: &Lab, ns: &str, ifname: &str, addr: &str) {
    let name = ifname.to_string();
    lab.run_in_netns(ns, move || {
        for (k, v) in [
            ("net.ipv6.conf.all.accept_dad".to_string(), "0"),
            (format!("net.ipv6.conf.{name}.accept_dad"), "0"),
            ("net.ipv6.conf.all.disable_ipv6".to_string(), "0"),
            (format!("net.ipv6.conf.{name}.disable_ipv6"), "0"),
        ] {
            lvs_testkit::netns::write_sysctl(&k, v).unwrap();
        }
    })
    .unwrap();
    lab.ip_batch(ns, &format!("addr add {addr}/64 dev {ifname} nodad\n"))
        .expect("IPv6 address");
}

pub fn lab6() -> Lab {
    let lab = lab();
    for d in 0..2 {
        enable_ipv6(
            &lab,
            lab.director_ns(d),
            "bond0",
            &format!("2001:2::{}", d + 2),
        );
    }
    enable_ipv6(&lab, lab.client_ns(), "eth0", CLIENT6);
    // The link-local addresses exist once the interfaces are up with IPv6.
    for d in 0..2 {
        lvs_testkit::wait_until(
            "a link-local address on bond0",
            Duration::from_secs(5),
            Duration::from_millis(20),
            || link_local(&lab, d).is_some(),
        )
        .unwrap();
    }
    lab
}

pub fn link_local(lab: &Lab, dir: usize) -> Option<Ipv6Addr> {
    lab.run_in_netns(lab.director_ns(dir), || {
        let l = netlink::link_by_name("bond0").unwrap();
        netlink::addrs6(l.index)
            .unwrap()
            .into_iter()
            .find(IfAddr6::is_link_local)
            .map(|a| a.addr)
    })
    .unwrap()
}

/// The IPv6 VIP on director `dir`'s bond0, if present.
pub fn vip6_on(lab: &Lab, dir: usize) -> Option<IfAddr6> {
    lab.run_in_netns(lab.director_ns(dir), || {
        let l = netlink::link_by_name("bond0").unwrap();
        netlink::addrs6(l.index)
            .unwrap()
            .into_iter()
            .find(|a| a.addr == VIP6)
    })
    .unwrap()
}

pub fn wait_master6(lab: &Lab, master: usize, timeout: Duration) {
    let t0 = Instant::now();
    lvs_testkit::wait_until(
        &format!("dir{} to hold the IPv6 VIP alone", master + 1),
        timeout,
        Duration::from_millis(20),
        || vip6_on(lab, master).is_some() && vip6_on(lab, 1 - master).is_none(),
    )
    .unwrap();
    let a = vip6_on(lab, master).unwrap();
    assert_eq!(a.prefix_len, 64);
    eprintln!(
        "dir{} holds the IPv6 VIP after {:?}",
        master + 1,
        t0.elapsed()
    );
}

pub fn drop_vip6(lab: &Lab, dir: usize) {
    lab.run_in_netns(lab.director_ns(dir), || {
        let l = netlink::link_by_name("bond0").unwrap();
        netlink::addr6_del(
            l.index,
            &IfAddr6 {
                addr: VIP6,
                prefix_len: 64,
                nodad: false,
            },
        )
        .unwrap();
    })
    .unwrap();
}

/// An IPv6 instance (keepalived decides the family from the VIP: v3).
pub fn conf6(state: &str, priority: u8, advert_int: &str) -> String {
    conf6_with(state, priority, advert_int, "", "")
}

/// [`conf6`] with lines added to `global_defs` and to the instance.
pub fn conf6_with(
    state: &str,
    priority: u8,
    advert_int: &str,
    global: &str,
    extra: &str,
) -> String {
    format!(
        "global_defs {{\n    router_id lvs6\n{global}}}\n\
         vrrp_instance VI_6 {{\n    state {state}\n    priority {priority}\n    interface bond0\n    \
         virtual_router_id 60\n    advert_int {advert_int}\n{extra}    \
         virtual_ipaddress {{\n        2001:2::100/64 dev bond0\n    }}\n}}\n"
    )
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn conf_file(lab: &Lab, what: &str, text: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let p = lab.log_dir().join(format!("{what}-{n}.conf"));
    std::fs::write(&p, text).unwrap();
    p
}

pub fn start_ours6(lab: &Lab, dir: usize, text: &str) -> Speaker {
    spawn_ours(
        lab,
        dir,
        conf_file(lab, &format!("v6-dir{}", dir + 1), text),
        &[],
    )
}

pub fn start_keepalived6(lab: &Lab, dir: usize, text: &str) -> Speaker {
    spawn_keepalived(
        lab,
        dir,
        conf_file(lab, &format!("v6-ka-dir{}", dir + 1), text),
    )
}

/// `ping -6 -D -i 0.01` from the client to the IPv6 VIP.
pub struct Ping6 {
    pub pid: Pid,
    log: PathBuf,
}

impl Ping6 {
    pub fn start(lab: &Lab) -> Ping6 {
        let pid = lab
            .spawn(
                lab.client_ns(),
                &[
                    "ping",
                    "-6",
                    "-n",
                    "-D",
                    "-i",
                    "0.01",
                    "-W",
                    "1",
                    &VIP6.to_string(),
                ],
            )
            .expect("ping -6");
        Ping6 {
            pid,
            log: lab.log_path(pid).unwrap(),
        }
    }

    pub fn stop(self, lab: &Lab) -> Vec<f64> {
        let _ = lab.kill(self.pid);
        parse_ping(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}
