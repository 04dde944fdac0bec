//! The netlink module in a lab namespace: link lookup, labelled address
//! add/list/delete (idempotent), neighbour resolution after `solicit`,
//! gratuitous ARP updating a peer's neighbour entry.
//!
//! Needs root, `ip`, `ethtool`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use lvs_testkit::{Lab, LabSpec};
use lvs_userspace::netlink::{self, IfAddr};

fn lab() -> Lab {
    Lab::create(LabSpec {
        directors: 1,
        director_holds_vip: false,
        httpd: false,
        // Real ARP between hosts, so neighbour resolution is exercised.
        static_neighbors: false,
        ..LabSpec::sized(1, 1)
    })
    .expect("lab")
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn links_addresses_neighbours_garp() {
    let lab = lab();
    let dir = lab.director_ns(0).to_string();
    let rs_addr = lab.real_server_addr(0);
    let rs_mac = lab.real_server_mac(0);
    let dir_mac = lab.director_mac(0);

    let ifindex = lab
        .run_in_netns(&dir, || {
            // Links.
            let l = netlink::link_by_name("bond0").expect("bond0");
            assert_eq!(l.name, "bond0");
            assert_eq!(l.mac, dir_mac);
            assert!(l.up);
            assert_eq!(l.mtu, 1500);
            assert_eq!(netlink::link_by_index(l.index).unwrap(), l);
            let lo = netlink::link_by_name("lo").unwrap();
            assert_eq!(lo.index, 1);
            assert!(matches!(
                netlink::link_by_name("nope0"),
                Err(netlink::NetlinkError::NoSuchLink(_))
            ));
            assert!(netlink::links().unwrap().iter().any(|x| x.name == "bond0"));

            // Addresses: the seed's VIP line, mapped into the lab.
            let vip = IfAddr {
                addr: Ipv4Addr::new(198, 18, 0, 100),
                prefix_len: 16,
                brd: Some(Ipv4Addr::new(198, 18, 255, 255)),
                scope: None,
                label: Some("bond0:1".into()),
            };
            netlink::addr_add(l.index, &vip).unwrap();
            netlink::addr_add(l.index, &vip).unwrap(); // EEXIST is Ok
            let list = netlink::addrs(l.index).unwrap();
            let got = list
                .iter()
                .find(|a| a.addr == vip.addr)
                .unwrap_or_else(|| panic!("VIP not listed: {list:?}"));
            assert_eq!(got.prefix_len, 16);
            assert_eq!(got.brd, vip.brd);
            assert_eq!(got.label.as_deref(), Some("bond0:1"));
            assert_eq!(got.scope, Some(0));
            // The primary address stays with its own label.
            let prim = list
                .iter()
                .find(|a| a.addr == Ipv4Addr::new(198, 18, 0, 2))
                .unwrap();
            assert_eq!(prim.label.as_deref(), Some("bond0"));

            // A host-scope /32 too.
            let host = IfAddr {
                scope: Some(netlink::scope_from_name("host").unwrap()),
                ..IfAddr::new(Ipv4Addr::new(198, 18, 0, 101), 32)
            };
            netlink::addr_add(l.index, &host).unwrap();
            let list = netlink::addrs(l.index).unwrap();
            let h = list.iter().find(|a| a.addr == host.addr).unwrap();
            assert_eq!((h.prefix_len, h.scope), (32, Some(254)));

            netlink::addr_del(l.index, &vip).unwrap();
            netlink::addr_del(l.index, &vip).unwrap(); // missing is Ok
            netlink::addr_del(l.index, &host).unwrap();
            let list = netlink::addrs(l.index).unwrap();
            assert!(!list
                .iter()
                .any(|a| a.addr == vip.addr || a.addr == host.addr));

            // Neighbours: nothing known yet, then solicit and wait.
            assert_eq!(netlink::neighbour(l.index, rs_addr).unwrap(), None);
            netlink::solicit(l.index, rs_addr).unwrap();
            let t0 = Instant::now();
            let mac = loop {
                if let Some(m) = netlink::neighbour(l.index, rs_addr).unwrap() {
                    break m;
                }
                assert!(t0.elapsed() < Duration::from_secs(3), "not resolved");
                std::thread::sleep(Duration::from_millis(10));
            };
            assert_eq!(mac, rs_mac);
            println!("resolved {rs_addr} in {:?}", t0.elapsed());
            l.index
        })
        .unwrap();

    // GARP: the real server learns (a fake) MAC for an address from it.
    let rs = lab.real_server_ns(0).to_string();
    let vip = Ipv4Addr::new(198, 18, 0, 150);
    let fake = [0x02, 0, 0, 0, 0x99, 0x01];
    // The kernel only creates an entry from a gratuitous request when it
    // already has one (or arp_accept); make one first with a ping-free
    // permanent-less stale entry by soliciting from the real server.
    lab.exec(
        &rs,
        &[
            "ip",
            "neigh",
            "replace",
            "198.18.0.150",
            "lladdr",
            "02:00:00:00:99:00",
            "dev",
            "eth0",
            "nud",
            "stale",
        ],
    )
    .unwrap();
    lab.run_in_netns(&dir, || netlink::send_garp(ifindex, fake, vip).unwrap())
        .unwrap();
    let rs_if = lab
        .run_in_netns(&rs, || netlink::link_by_name("eth0").unwrap().index)
        .unwrap();
    let t0 = Instant::now();
    loop {
        let m = lab
            .run_in_netns(&rs, || netlink::neighbour(rs_if, vip).unwrap())
            .unwrap();
        if m == Some(fake) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "GARP not applied: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn garp_frame_layout() {
    let f = netlink::garp_frame([2, 0, 0, 0, 1, 1], Ipv4Addr::new(198, 18, 0, 100));
    assert_eq!(&f[0..6], &[0xff; 6]);
    assert_eq!(&f[12..14], &[0x08, 0x06]);
    assert_eq!(&f[20..22], &[0, 1]);
    assert_eq!(&f[28..32], &[198, 18, 0, 100]);
    assert_eq!(&f[38..42], &[198, 18, 0, 100]);
}
