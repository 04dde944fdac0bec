//! The lab topology: `LabSpec` says what to build, `Lab` builds it and tears
//! it down on drop.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::netns;
use crate::process::{self, Pid, ProcessTable, SpawnOutput, DEFAULT_EXEC_TIMEOUT};

/// The lab's L2 segment is 198.18.0.0/16 (within the 198.18.0.0/15 range
/// reserved for benchmarking, RFC 2544).
pub const PREFIX_LEN: u8 = 16;
/// Default VIP.
pub const DEFAULT_VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// Most directors: 198.18.0.2 – .9.
pub const MAX_DIRECTORS: usize = 8;
/// Most real-server namespaces: 198.18.0.11 – .90.
pub const MAX_REAL_SERVERS: usize = 80;
/// Most client addresses in the first client namespace.
pub const MAX_CLIENT_ADDRS: usize = 254 + 16 * 256 - 2;
/// Most client addresses in the second client namespace (198.18.2.1 – .254).
pub const MAX_SECOND_CLIENT_ADDRS: usize = 254;
/// How long the HTTP server may take to start listening.
pub const HTTPD_READY_TIMEOUT: Duration = Duration::from_secs(10);

const IP_TIMEOUT: Duration = Duration::from_secs(30);

static LAB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// What to build. `LabSpec::default()` is one director holding the VIP, three
/// real servers running the HTTP server on port 80, 120 client addresses.
#[derive(Clone, Debug)]
pub struct LabSpec {
    /// Number of director namespaces (`<prefix>dir1` …), 0 ..= 8.
    pub directors: usize,
    /// Interface name inside the directors (≤ 15 chars); default `bond0`.
    pub director_if: String,
    /// Put the VIPs (/32) on the directors' interface, so the director(s)
    /// answer ARP for them; for tests without VRRP. With several directors
    /// only the first gets them.
    pub director_holds_vip: bool,
    /// Number of real-server namespaces (`<prefix>rs1` …), 0 ..= 80.
    pub real_servers: usize,
    /// The VIPs; every real server holds them all on `lo` (/32).
    pub vips: Vec<Ipv4Addr>,
    /// The port the real servers' HTTP server listens on (0.0.0.0:port).
    pub service_port: u16,
    /// Number of addresses on the client's eth0 (198.18.1.1 …).
    pub client_addrs: usize,
    /// Build a second client namespace `<prefix>cl2` (198.18.2.1 …).
    pub second_client_net: bool,
    /// Number of addresses in the second client namespace.
    pub second_client_addrs: usize,
    /// Start `lvs-lab-httpd` in every real server.
    pub httpd: bool,
    /// Install permanent neighbour entries for every lab address in every
    /// namespace (no ARP between lab hosts, except for the VIPs which stay
    /// dynamic so VRRP/gratuitous ARP behave for real). Needed at scale: the
    /// kernel's ARP table limit (gc_thresh3, 1024 by default) counts dynamic
    /// entries of *all* namespaces together, and 5 real servers × 200
    /// clients already reach it. Permanent entries are exempt.
    pub static_neighbors: bool,
    /// The `lvs-lab-httpd` binary; `None`: found by [`crate::httpd_path`].
    pub httpd_bin: Option<PathBuf>,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            directors: 1,
            director_if: "bond0".into(),
            director_holds_vip: true,
            real_servers: 3,
            vips: vec![DEFAULT_VIP],
            service_port: 80,
            client_addrs: 120,
            second_client_net: false,
            second_client_addrs: 10,
            httpd: true,
            static_neighbors: true,
            httpd_bin: None,
        }
    }
}

impl LabSpec {
    /// The default lab (one director holding the VIPs, real servers
    /// running `lvs-lab-httpd`) with `real_servers` real servers and
    /// `client_addrs` client addresses.
    pub fn sized(real_servers: usize, client_addrs: usize) -> Self {
        LabSpec {
            real_servers,
            client_addrs,
            ..LabSpec::default()
        }
    }
}

/// Address of director `i` (0-based): 198.18.0.2 + i.
pub fn director_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 2 + i as u8)
}

/// Address of real server `i` (0-based): 198.18.0.11 + i.
pub fn real_server_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 11 + i as u8)
}

/// Name of real server `i` (0-based): `rs1`, `rs2`, … (also its namespace
/// suffix and the body its HTTP server answers with).
pub fn real_server_name(i: usize) -> String {
    format!("rs{}", i + 1)
}

/// Client address `k` (0-based): 198.18.1.1 – 198.18.1.254, then
/// 198.18.16.1 onwards (198.18.16.0/20).
pub fn client_addr(k: usize) -> Ipv4Addr {
    if k < 254 {
        Ipv4Addr::new(198, 18, 1, 1 + k as u8)
    } else {
        Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 16, 1)) + (k - 254) as u32)
    }
}

/// Address `k` (0-based) of the second client network: 198.18.2.1 + k.
pub fn second_client_addr(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 2, 1 + k as u8)
}

/// One host namespace plugged into the switch.
#[derive(Clone, Debug)]
struct Host {
    ns: String,
    /// Interface inside the host.
    ifname: String,
    /// Its peer inside the switch namespace (enslaved to br0).
    peer: String,
    mac: [u8; 6],
    addrs: Vec<Ipv4Addr>,
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The router on the lab's segment (see `Lab::add_routed_client`).
pub const ROUTER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);
/// The network behind the router.
pub const ROUTED_NET: &str = "198.19.200.0/24";
/// The client behind the router.
pub const ROUTED_CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 19, 200, 1);

#[derive(Clone, Debug)]
struct RoutedClient {
    router_ns: String,
    client_ns: String,
}

/// A running lab. Dropping it tears everything down (also while unwinding
/// from a panic): the processes it started are killed by pid (SIGTERM, then
/// SIGKILL after 3 s) and reaped, then every namespace it made is deleted.
pub struct Lab {
    spec: LabSpec,
    prefix: String,
    switch: String,
    directors: Vec<Host>,
    real_servers: Vec<Host>,
    client: Option<Host>,
    client2: Option<Host>,
    /// Every namespace created so far (deleted on teardown).
    namespaces: Vec<String>,
    /// A client behind a router, once `add_routed_client` made one.
    routed: Option<RoutedClient>,
    procs: ProcessTable,
    httpd_pids: Mutex<Vec<Option<Pid>>>,
    log_dir: PathBuf,
    httpd_bin: Option<PathBuf>,
    torn_down: bool,
}

impl Lab {
    /// Builds the lab described by `spec`. On error everything created so
    /// far is torn down again.
    pub fn create(spec: LabSpec) -> Result<Lab> {
        let t0 = Instant::now();
        ensure!(
            spec.directors <= MAX_DIRECTORS,
            "at most {MAX_DIRECTORS} directors"
        );
        ensure!(
            spec.real_servers <= MAX_REAL_SERVERS,
            "at most {MAX_REAL_SERVERS} real servers"
        );
        ensure!(
            spec.client_addrs >= 1 && spec.client_addrs <= MAX_CLIENT_ADDRS,
            "client_addrs must be 1 ..= {MAX_CLIENT_ADDRS}"
        );
        ensure!(
            !spec.second_client_net
                || (spec.second_client_addrs >= 1
                    && spec.second_client_addrs <= MAX_SECOND_CLIENT_ADDRS),
            "second_client_addrs must be 1 ..= {MAX_SECOND_CLIENT_ADDRS}"
        );
        ensure!(
            !spec.director_if.is_empty() && spec.director_if.len() <= 15,
            "director_if {:?}: interface names are 1 ..= 15 chars",
            spec.director_if
        );
        ensure!(spec.director_if != "lo", "director_if must not be lo");
        for v in &spec.vips {
            let o = v.octets();
            ensure!(
                o[0] == 198 && (o[1] & 0xfe) == 18,
                "VIP {v} is outside the lab range 198.18.0.0/15"
            );
        }
        let httpd_bin = match &spec.httpd_bin {
            Some(p) => {
                ensure!(p.is_file(), "httpd_bin {} is not a file", p.display());
                Some(p.clone())
            }
            None if spec.httpd && spec.real_servers > 0 => Some(process::httpd_path()?),
            None => process::httpd_path().ok(),
        };

        // Skip prefixes still used by namespaces left behind by a dead run
        // that had our pid (see `netns::cleanup_stale`).
        let existing: Vec<String> = std::fs::read_dir("/run/netns")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let prefix = loop {
            let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
            let p = format!("lvs-{}-{}-", std::process::id(), n);
            if !existing.iter().any(|e| e.starts_with(&p)) {
                break p;
            }
        };
        let log_dir = std::env::temp_dir().join(prefix.trim_end_matches('-'));
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;

        let host = |ns: String, ifname: &str, peer: String, mac: [u8; 6], addrs| Host {
            ns,
            ifname: ifname.to_string(),
            peer,
            mac,
            addrs,
        };
        let directors = (0..spec.directors)
            .map(|i| {
                host(
                    format!("{prefix}dir{}", i + 1),
                    &spec.director_if,
                    format!("dir{}", i + 1),
                    [0x02, 0, 0, 0, 1, i as u8 + 1],
                    vec![director_addr(i)],
                )
            })
            .collect();
        let real_servers = (0..spec.real_servers)
            .map(|i| {
                host(
                    format!("{prefix}{}", real_server_name(i)),
                    "eth0",
                    real_server_name(i),
                    [0x02, 0, 0, 0, 2, i as u8 + 1],
                    vec![real_server_addr(i)],
                )
            })
            .collect();
        let client = Some(host(
            format!("{prefix}cl"),
            "eth0",
            "cl".into(),
            [0x02, 0, 0, 0, 3, 1],
            (0..spec.client_addrs).map(client_addr).collect(),
        ));
        let client2 = spec.second_client_net.then(|| {
            host(
                format!("{prefix}cl2"),
                "eth0",
                "cl2".into(),
                [0x02, 0, 0, 0, 3, 2],
                (0..spec.second_client_addrs)
                    .map(second_client_addr)
                    .collect(),
            )
        });

        let mut lab = Lab {
            switch: format!("{prefix}sw"),
            httpd_pids: Mutex::new(vec![None; spec.real_servers]),
            spec,
            prefix,
            directors,
            real_servers,
            client,
            client2,
            namespaces: Vec::new(),
            routed: None,
            procs: ProcessTable::default(),
            log_dir,
            httpd_bin,
            torn_down: false,
        };
        lab.build()
            .with_context(|| format!("building lab {}", lab.prefix))?;
        if std::env::var_os("LVS_LAB_VERBOSE").is_some() {
            eprintln!("lab {} ready in {:?}", lab.prefix, t0.elapsed());
        }
        Ok(lab)
    }

    fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.directors
            .iter()
            .chain(&self.real_servers)
            .chain(&self.client)
            .chain(&self.client2)
    }

    fn build(&mut self) -> Result<()> {
        // 1. Namespaces.
        let mut names = vec![self.switch.clone()];
        names.extend(self.hosts().map(|h| h.ns.clone()));
        for n in &names {
            ensure!(!netns::path(n).exists(), "namespace {n} already exists");
        }
        // Record them first: a partial failure still deletes what exists.
        self.namespaces = names.clone();
        netns::add_all(&names)?;

        // 2. No IPv6 anywhere (no DAD/RS/MLD noise on the segment); set
        //    before the interfaces exist so they inherit it.
        parallel(&names, |ns| {
            netns::run_in(ns, || -> Result<()> {
                netns::write_sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
                netns::write_sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
                Ok(())
            })?
        })?;

        // 3. The switch: a bridge forwarding at once.
        ip_batch(
            &self.switch,
            "link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0\n\
             link set br0 up\nlink set lo up\n",
        )?;

        // 4. Hosts: veth created inside the host, peer straight into the
        //    switch; addresses; static neighbours.
        let all: Vec<(Ipv4Addr, [u8; 6])> = self
            .hosts()
            .flat_map(|h| h.addrs.iter().map(move |a| (*a, h.mac)))
            .collect();
        let vips = self.spec.vips.clone();
        let hosts: Vec<Host> = self.hosts().cloned().collect();
        let switch = self.switch.clone();
        let static_neighbors = self.spec.static_neighbors;
        let holds_vip = self.spec.director_holds_vip;
        let first_director = self.directors.first().map(|h| h.ns.clone());
        let rs_set: Vec<String> = self.real_servers.iter().map(|h| h.ns.clone()).collect();
        parallel(&hosts, |h| {
            let mut b = format!(
                "link add {} address {} type veth peer name {} address {} netns {}\n",
                h.ifname,
                mac_str(h.mac),
                h.peer,
                mac_str([0x02, 0, 0, 1, h.mac[4], h.mac[5]]),
                switch
            );
            b += "link set lo up\n";
            for a in &h.addrs {
                b += &format!("addr add {a}/{PREFIX_LEN} dev {}\n", h.ifname);
            }
            let is_rs = rs_set.contains(&h.ns);
            if is_rs {
                for v in &vips {
                    b += &format!("addr add {v}/32 dev lo\n");
                }
            }
            if holds_vip && first_director.as_deref() == Some(h.ns.as_str()) {
                for v in &vips {
                    b += &format!("addr add {v}/32 dev {}\n", h.ifname);
                }
            }
            b += &format!("link set {} up\n", h.ifname);
            if static_neighbors {
                for (a, mac) in &all {
                    if *mac != h.mac {
                        b += &format!(
                            "neigh replace {a} lladdr {} dev {} nud permanent\n",
                            mac_str(*mac),
                            h.ifname
                        );
                    }
                }
            }
            ip_batch(&h.ns, &b)?;
            // Real servers: DR sysctls.
            if is_rs {
                let ifname = h.ifname.clone();
                netns::run_in(&h.ns, move || -> Result<()> {
                    for dev in ["all", "lo", ifname.as_str()] {
                        netns::write_sysctl(&format!("net.ipv4.conf.{dev}.arp_ignore"), "1")?;
                        netns::write_sysctl(&format!("net.ipv4.conf.{dev}.arp_announce"), "2")?;
                    }
                    for dev in ["all", "default", "lo", ifname.as_str()] {
                        netns::write_sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"), "0")?;
                    }
                    Ok(())
                })??;
            } else {
                netns::run_in(&h.ns, || -> Result<()> {
                    for dev in ["all", "default"] {
                        netns::write_sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"), "0")?;
                    }
                    Ok(())
                })??;
            }
            Ok(())
        })?;

        // 5. Plug the peers into the bridge.
        let mut b = String::new();
        for h in &hosts {
            b += &format!("link set {} master br0\nlink set {} up\n", h.peer, h.peer);
        }
        ip_batch(&self.switch, &b)?;

        // 6. Clients: no tx checksum offload (native XDP on veth forwards
        //    CHECKSUM_PARTIAL packets without fixing them).
        for c in self.client.iter().chain(&self.client2) {
            let out =
                self.exec_timeout(&c.ns, &["ethtool", "-K", "eth0", "tx", "off"], IP_TIMEOUT)?;
            process::check_output(&["ethtool", "-K", "eth0", "tx", "off"], &out)
                .with_context(|| format!("in {}", c.ns))?;
        }

        // 7. HTTP servers.
        if self.spec.httpd {
            for i in 0..self.real_servers.len() {
                self.start_real_server_httpd(i)?;
            }
        }
        Ok(())
    }

    /// Adds a router on the segment (198.18.0.250) and a client network
    /// behind it (198.19.200.0/24, the client at .1): the router's link to
    /// the client has `bottleneck_mtu`, the client's own interface 1500, so
    /// the client advertises a full-size MSS and the router has to send
    /// "fragmentation needed" for full-size segments towards it. Real
    /// servers and directors get a route to the client network via the
    /// router (DR replies go straight to the client). Removed with the lab.
    pub fn add_routed_client(&mut self, bottleneck_mtu: u32) -> Result<()> {
        ensure!(self.routed.is_none(), "one routed client per lab");
        let rc = RoutedClient {
            router_ns: format!("{}rt", self.prefix),
            client_ns: format!("{}far", self.prefix),
        };
        for n in [&rc.router_ns, &rc.client_ns] {
            ensure!(!netns::path(n).exists(), "namespace {n} already exists");
        }
        let names = vec![rc.router_ns.clone(), rc.client_ns.clone()];
        self.namespaces.extend(names.iter().cloned());
        netns::add_all(&names)?;
        for ns in &names {
            netns::run_in(ns, || -> Result<()> {
                netns::write_sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
                netns::write_sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
                for dev in ["all", "default"] {
                    netns::write_sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"), "0")?;
                }
                Ok(())
            })??;
        }
        // The switch namespace is the lab's own: a plain peer name is unique.
        let peer = "rt0";
        ip_batch(
            &rc.router_ns,
            &format!(
                "link set lo up\n\
                 link add eth0 address 02:00:00:00:04:01 type veth peer name {peer} netns {sw}\n\
                 addr add {router}/{PREFIX_LEN} dev eth0\n\
                 link set eth0 up\n\
                 link add eth1 mtu {bottleneck_mtu} type veth peer name eth0 netns {far}\n\
                 addr add 198.19.200.254/24 dev eth1\n\
                 link set eth1 up\n",
                sw = self.switch,
                far = rc.client_ns,
                router = ROUTER_ADDR,
            ),
        )?;
        ip_batch(
            &self.switch,
            &format!("link set {peer} master br0\nlink set {peer} up\n"),
        )?;
        ip_batch(
            &rc.client_ns,
            "link set lo up\nlink set eth0 mtu 1500\naddr add 198.19.200.1/24 dev eth0\n\
             link set eth0 up\nroute add default via 198.19.200.254\n",
        )?;
        netns::run_in(&rc.router_ns, || {
            netns::write_sysctl("net.ipv4.ip_forward", "1")
        })??;
        let _ = self.exec(&rc.client_ns, &["ethtool", "-K", "eth0", "tx", "off"]);
        let route = format!("route replace {ROUTED_NET} via {ROUTER_ADDR}\n");
        for h in self.directors.iter().chain(&self.real_servers) {
            ip_batch(&h.ns, &route)?;
        }
        self.routed = Some(rc);
        Ok(())
    }

    /// The router's namespace (see `add_routed_client`).
    pub fn router_ns(&self) -> Option<&str> {
        self.routed.as_ref().map(|r| r.router_ns.as_str())
    }
    /// The routed client's namespace; its address is [`ROUTED_CLIENT_ADDR`].
    pub fn routed_client_ns(&self) -> Option<&str> {
        self.routed.as_ref().map(|r| r.client_ns.as_str())
    }

    // ----- names and addresses -------------------------------------------

    /// The spec the lab was built from.
    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }
    /// Per-run prefix of every namespace name, e.g. `lvs-4242-0-`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// The switch namespace (`<prefix>sw`, bridge `br0`).
    pub fn switch_ns(&self) -> &str {
        &self.switch
    }
    /// Namespace of director `i` (0-based).
    pub fn director_ns(&self, i: usize) -> &str {
        &self.directors[i].ns
    }
    /// The directors' interface name (`spec.director_if`).
    pub fn director_if(&self) -> &str {
        &self.spec.director_if
    }
    /// Address of director `i`.
    pub fn director_addr(&self, i: usize) -> Ipv4Addr {
        assert!(i < self.directors.len(), "no director {i}");
        director_addr(i)
    }
    /// MAC address of director `i`'s interface.
    pub fn director_mac(&self, i: usize) -> [u8; 6] {
        self.directors[i].mac
    }
    /// The bridge-side peer of director `i`'s interface: (switch namespace,
    /// interface name). Native XDP_TX on a veth needs an XDP program on this
    /// peer; attaching one is the caller's business.
    pub fn director_peer(&self, i: usize) -> (&str, &str) {
        (&self.switch, &self.directors[i].peer)
    }
    /// Number of directors.
    pub fn directors(&self) -> usize {
        self.directors.len()
    }
    /// Namespace of real server `i` (0-based).
    pub fn real_server_ns(&self, i: usize) -> &str {
        &self.real_servers[i].ns
    }
    /// Address of real server `i` (on its eth0).
    pub fn real_server_addr(&self, i: usize) -> Ipv4Addr {
        assert!(i < self.real_servers.len(), "no real server {i}");
        real_server_addr(i)
    }
    /// Name of real server `i`: `rs1`, … (the body its HTTP server answers).
    pub fn real_server_name(&self, i: usize) -> String {
        real_server_name(i)
    }
    /// MAC address of real server `i`'s eth0.
    pub fn real_server_mac(&self, i: usize) -> [u8; 6] {
        self.real_servers[i].mac
    }
    /// Bridge-side peer of real server `i`'s eth0.
    pub fn real_server_peer(&self, i: usize) -> (&str, &str) {
        (&self.switch, &self.real_servers[i].peer)
    }
    /// Number of real servers.
    pub fn real_servers(&self) -> usize {
        self.real_servers.len()
    }
    /// (address, port) of real server `i`'s HTTP service on its own eth0.
    pub fn real_server_service(&self, i: usize) -> SocketAddrV4 {
        SocketAddrV4::new(self.real_server_addr(i), self.spec.service_port)
    }
    /// The client namespace (`<prefix>cl`).
    pub fn client_ns(&self) -> &str {
        &self.client.as_ref().expect("client").ns
    }
    /// The client's addresses (198.18.1.1 …), all on its eth0.
    pub fn client_addrs(&self) -> &[Ipv4Addr] {
        &self.client.as_ref().expect("client").addrs
    }
    /// MAC address of the client's eth0.
    pub fn client_mac(&self) -> [u8; 6] {
        self.client.as_ref().expect("client").mac
    }
    /// The second client namespace (`<prefix>cl2`), if the spec asked for it.
    pub fn second_client_ns(&self) -> Option<&str> {
        self.client2.as_ref().map(|h| h.ns.as_str())
    }
    /// The second client's addresses (198.18.2.1 …); empty without one.
    /// MAC address of the second client namespace's eth0.
    pub fn second_client_mac(&self) -> Option<[u8; 6]> {
        self.client2.as_ref().map(|c| c.mac)
    }

    pub fn second_client_addrs(&self) -> &[Ipv4Addr] {
        self.client2.as_ref().map_or(&[], |h| &h.addrs)
    }
    /// The first VIP.
    pub fn vip(&self) -> Ipv4Addr {
        self.spec.vips[0]
    }
    /// All VIPs.
    pub fn vips(&self) -> &[Ipv4Addr] {
        &self.spec.vips
    }
    /// (first VIP, service port).
    pub fn service(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.vip(), self.spec.service_port)
    }
    /// Every namespace this lab made.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }
    /// Directory holding the logs of spawned processes; removed on teardown
    /// unless the lab is dropped during a panic or `LVS_LAB_KEEP_LOGS` is set.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    // ----- processes and commands ----------------------------------------

    /// Starts `argv` inside `ns` (`ip netns exec`); stdout and stderr go to
    /// a log file in [`Lab::log_dir`]. The process is killed on teardown.
    pub fn spawn(&self, ns: &str, argv: &[&str]) -> Result<Pid> {
        self.procs
            .spawn(ns, argv, SpawnOutput::Log, &self.log_dir, None)
    }

    /// Like [`Lab::spawn`] with a choice of output handling, optionally
    /// waiting (up to the given bound) for a stdout line containing a marker.
    pub fn spawn_with(
        &self,
        ns: &str,
        argv: &[&str],
        output: SpawnOutput,
        ready: Option<(&str, Duration)>,
    ) -> Result<Pid> {
        self.procs.spawn(ns, argv, output, &self.log_dir, ready)
    }

    /// Starts `lvs-lab-httpd --name NAME --listen L …` in `ns` and waits until
    /// it listens. Each listen entry is `ADDR:PORT` or `FIRST-LAST:PORT`.
    pub fn spawn_httpd(&self, ns: &str, name: &str, listen: &[&str]) -> Result<Pid> {
        let bin = match &self.httpd_bin {
            Some(b) => b.clone(),
            None => process::httpd_path()?,
        };
        let bin = bin.to_string_lossy().into_owned();
        let mut argv = vec![bin.as_str(), "--name", name];
        for l in listen {
            argv.push("--listen");
            argv.push(l);
        }
        self.spawn_with(
            ns,
            &argv,
            SpawnOutput::Log,
            Some(("READY", HTTPD_READY_TIMEOUT)),
        )
    }

    /// Kills a process this lab started: SIGTERM, SIGKILL after 3 s, reaped.
    pub fn kill(&self, pid: Pid) -> Result<ExitStatus> {
        self.procs.kill(pid)
    }

    /// Whether a process this lab started is still running.
    pub fn is_running(&self, pid: Pid) -> bool {
        self.procs.is_running(pid)
    }

    /// Pids of the processes this lab started and has not killed yet.
    pub fn pids(&self) -> Vec<Pid> {
        self.procs.pids()
    }

    /// Log file of a process started with [`Lab::spawn`].
    pub fn log_path(&self, pid: Pid) -> Option<PathBuf> {
        self.procs.log_path(pid)
    }

    /// Runs `argv` inside `ns` and waits for it (at most 30 s, then it is
    /// killed and an error returned). The exit status is not checked.
    pub fn exec(&self, ns: &str, argv: &[&str]) -> Result<Output> {
        self.exec_timeout(ns, argv, DEFAULT_EXEC_TIMEOUT)
    }

    /// [`Lab::exec`] with an explicit bound.
    pub fn exec_timeout(&self, ns: &str, argv: &[&str], timeout: Duration) -> Result<Output> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(argv);
        process::run(&full, None, timeout)
    }

    /// Runs `argv` inside `ns`, fails unless it exits 0, returns its stdout.
    pub fn exec_ok(&self, ns: &str, argv: &[&str]) -> Result<String> {
        let out = self.exec(ns, argv)?;
        process::check_output(argv, &out).with_context(|| format!("in {ns}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `ip -n NS -batch -` with the given commands (one per line).
    pub fn ip_batch(&self, ns: &str, commands: &str) -> Result<()> {
        ip_batch(ns, commands)
    }

    /// Runs `f` on a fresh thread that has entered network namespace `ns`;
    /// sockets it opens live there. Panics in `f` propagate to the caller.
    pub fn run_in_netns<F, R>(&self, ns: &str, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        netns::run_in(ns, f)
    }

    /// Starts the HTTP server of real server `i` (if not running) and waits
    /// until it listens on 0.0.0.0:service_port.
    pub fn start_real_server_httpd(&self, i: usize) -> Result<Pid> {
        if let Some(pid) = self.httpd_pids.lock().unwrap()[i] {
            if self.is_running(pid) {
                return Ok(pid);
            }
        }
        let listen = format!("0.0.0.0:{}", self.spec.service_port);
        let pid = self.spawn_httpd(self.real_server_ns(i), &real_server_name(i), &[&listen])?;
        self.httpd_pids.lock().unwrap()[i] = Some(pid);
        Ok(pid)
    }

    /// Stops the HTTP server of real server `i` (for health-check tests);
    /// afterwards connections to its port are refused.
    pub fn stop_real_server_httpd(&self, i: usize) -> Result<()> {
        let pid = self.httpd_pids.lock().unwrap()[i].take();
        if let Some(pid) = pid {
            self.kill(pid)?;
        }
        Ok(())
    }

    /// Pid of real server `i`'s HTTP server, if running.
    pub fn real_server_httpd_pid(&self, i: usize) -> Option<Pid> {
        self.httpd_pids.lock().unwrap()[i]
    }

    /// Adds addresses to an interface inside `ns` (e.g. 1000 listen
    /// addresses for a health-check bench), in one `ip -batch` call.
    pub fn add_addrs(
        &self,
        ns: &str,
        ifname: &str,
        addrs: &[Ipv4Addr],
        prefix_len: u8,
    ) -> Result<()> {
        let b: String = addrs
            .iter()
            .map(|a| format!("addr add {a}/{prefix_len} dev {ifname}\n"))
            .collect();
        ip_batch(ns, &b)
    }

    /// Tears the lab down now and reports problems (Drop does the same but
    /// can only print them).
    pub fn teardown(mut self) -> Result<()> {
        self.do_teardown()
    }

    fn do_teardown(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let mut problems = Vec::new();
        for (pid, what, status) in self.procs.kill_all() {
            if std::env::var_os("LVS_LAB_VERBOSE").is_some() {
                eprintln!("lab {}: pid {pid} ({what}) ended: {status}", self.prefix);
            }
        }
        for ns in &self.namespaces {
            if let Ok(p) = netns::pids(ns) {
                if !p.is_empty() {
                    problems.push(format!(
                        "processes not started by the lab are still in {ns}: {p:?} (left alone)"
                    ));
                }
            }
        }
        if let Err(e) = netns::del_all(&self.namespaces) {
            problems.push(format!("{e:#}"));
        }
        let keep = thread::panicking() || std::env::var_os("LVS_LAB_KEEP_LOGS").is_some();
        if keep {
            eprintln!(
                "lab {}: logs kept in {}",
                self.prefix,
                self.log_dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            bail!("teardown of lab {}: {}", self.prefix, problems.join("; "))
        }
    }
}

// Test code shares `&Lab` with closures on other threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Lab>();
};

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.do_teardown() {
            eprintln!("{e:#}");
        }
    }
}

/// `ip -n NS -batch -` with the given commands.
pub fn ip_batch(ns: &str, commands: &str) -> Result<()> {
    process::run_ok(
        &["ip", "-n", ns, "-batch", "-"],
        Some(commands.as_bytes()),
        IP_TIMEOUT,
    )
    .with_context(|| format!("ip -n {ns} -batch"))?;
    Ok(())
}

/// Runs `f` over `items` on scoped threads (at most 8 at a time); returns
/// the first error.
fn parallel<T: Sync>(items: &[T], f: impl Fn(&T) -> Result<()> + Sync) -> Result<()> {
    for chunk in items.chunks(8) {
        thread::scope(|s| -> Result<()> {
            let hs: Vec<_> = chunk.iter().map(|it| s.spawn(|| f(it))).collect();
            let mut first = Ok(());
            for h in hs {
                let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                if first.is_ok() {
                    first = r;
                }
            }
            first
        })?;
    }
    Ok(())
}
