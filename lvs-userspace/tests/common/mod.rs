//! The seed-shaped lab with our data path on the director, shared by the
//! lab tests and the demo (`examples/demo.rs` includes this file).
#![allow(dead_code)]

pub mod ecmp;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
};

use std::path::Path;
use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc, Mutex,
};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use lvs_testkit::{http_get, wait_until, KeepAliveClient, Lab, LabSpec, Pid};
use lvs_userspace::datapath::{read::ConnView, DatapathError, Inspector, State};
use lvs_userspace::{
    datapath::{
        AttachMode, Attached, Datapath, DesiredBackend, DesiredService, DesiredState, NextHop,
        Options, Persistence, Protocol,
    },
    sched::Algorithm,
};

/// The seed's weights: real servers .36–.40.
pub const SEED_WEIGHTS: [u32; 5] = [2, 3, 3, 2, 2];

pub fn seed_spec(client_addrs: usize) -> LabSpec {
    LabSpec {
        directors: 1,
        director_if: "bond0".into(),
        director_holds_vip: true,
        real_servers: SEED_WEIGHTS.len(),
        client_addrs,
        second_client_net: true,
        ..LabSpec::default()
    }
}

/// A lab of `real_servers` real servers running no HTTP server (the
/// benches start what they measure) and one client address.
pub fn lab_without_httpd(real_servers: usize) -> Result<Lab> {
    Lab::create(LabSpec {
        httpd: false,
        ..LabSpec::sized(real_servers, 1)
    })
}

/// Two directors whose own VRRP puts the VIP on the MASTER.
pub fn vrrp_pair_spec(real_servers: usize, client_addrs: usize) -> LabSpec {
    LabSpec {
        directors: 2,
        director_holds_vip: false,
        ..LabSpec::sized(real_servers, client_addrs)
    }
}

/// A binary of this package (tests get the path from cargo; the demo
/// looks next to itself, in target/<profile>/).
pub fn own_bin(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!("CARGO_BIN_EXE_{name}")) {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    for d in [dir, dir.parent().unwrap_or(dir)] {
        if d.join(name).is_file() {
            return d.join(name);
        }
    }
    PathBuf::from(name)
}

/// One address family of the lab's service (the lab has an IPv6 VIP when
/// its spec names one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The service address clients of this family connect to.
    pub fn service(self, lab: &Lab) -> SocketAddr {
        match self {
            Family::V4 => lab.service().into(),
            Family::V6 => lab.service6().into(),
        }
    }

    pub fn client_addrs(self, lab: &Lab) -> Vec<IpAddr> {
        match self {
            Family::V4 => lab.client_addrs().iter().map(|&a| a.into()).collect(),
            Family::V6 => lab.client_addrs6().iter().map(|&a| a.into()).collect(),
        }
    }

    pub fn real_server_addr(self, lab: &Lab, i: usize) -> IpAddr {
        match self {
            Family::V4 => lab.real_server_addr(i).into(),
            Family::V6 => lab.real_server_addr6(i).into(),
        }
    }
}

/// The seed's virtual server in the lab on `family`'s VIP: wrr over the
/// real servers' addresses of that family (MACs as the lab built them),
/// reached through `ifindex`.
pub fn seed_virtual_server(
    lab: &Lab,
    family: Family,
    ifindex: u32,
    persistence: Option<u32>,
) -> DesiredService {
    let port = lab.spec().service_port;
    let backends = SEED_WEIGHTS
        .iter()
        .enumerate()
        .map(|(i, &weight)| DesiredBackend {
            addr: family.real_server_addr(lab, i),
            port,
            weight,
            alive: true,
            u_threshold: 0,
            l_threshold: 0,
            next_hop: NextHop {
                mac: lab.real_server_mac(i),
                src_mac: lab.director_mac(0),
                ifindex,
            },
        })
        .collect();
    DesiredService {
        vip: family.service(lab).ip(),
        port,
        proto: Protocol::Tcp,
        algo: Algorithm::Wrr,
        persistence: persistence.map(|timeout_s| Persistence {
            timeout_s,
            netmask: Ipv4Addr::BROADCAST,
            prefix_len6: 128,
        }),
        sloppy: false,
        one_packet: false,
        backends,
    }
}

/// The desired state of the seed's virtual server in the lab.
pub fn seed_service(lab: &Lab, ifindex: u32, persistence: Option<u32>) -> DesiredState {
    DesiredState {
        services: vec![seed_virtual_server(lab, Family::V4, ifindex, persistence)],
    }
}

/// Loads the data path inside director 0's namespace, attaches it to the
/// director interface and applies the seed service. In native mode the
/// bridge-side peer gets an XDP_PASS program first (veth needs one to
/// receive XDP_TX frames).
pub fn program_director(
    lab: &Lab,
    mode: AttachMode,
    opts: &Options,
    persistence: Option<u32>,
) -> Result<(Datapath, Attached)> {
    program_director_with(lab, mode, opts, |ifindex| {
        seed_service(lab, ifindex, persistence)
    })
}

/// [`program_director`] with the state `desired` makes for the attached
/// interface's index.
pub fn program_director_with(
    lab: &Lab,
    mode: AttachMode,
    opts: &Options,
    desired: impl FnOnce(u32) -> DesiredState + Send,
) -> Result<(Datapath, Attached)> {
    if mode != AttachMode::Generic {
        let (sw, peer) = lab.director_peer(0);
        let pass = own_bin("lvs-xdp-pass");
        lab.spawn_with(
            sw,
            &[pass.to_str().context("path")?, peer],
            lvs_testkit::process::SpawnOutput::Log,
            Some(("attached", std::time::Duration::from_secs(10))),
        )?;
    }
    let ifname = lab.director_if().to_owned();
    lab.run_in_netns(lab.director_ns(0), || -> Result<(Datapath, Attached)> {
        let mut dp = Datapath::open(opts).context("open datapath")?;
        let attached = dp.attach(&ifname, mode).context("attach")?;
        dp.apply(&desired(attached.ifindex))?;
        Ok((dp, attached))
    })?
}

/// The seed's keepalived.conf.orig (no-break spaces, Chinese comments and
/// all) with its addresses moved into the lab: real servers .36–.40 →
/// 198.18.0.11–15, the service .42 → the lab VIP, and VI_1's address
/// (.44/27, the seed's slip) → the VIP too, so VRRP carries the service.
pub fn seed_lab_config() -> String {
    let orig = include_str!("../../../lvs-config/tests/configs/seed.conf.orig");
    let mut s = orig.replace(
        "222.211.74.44/27 brd 222.211.74.255",
        "198.18.0.100/16 brd 198.18.255.255",
    );
    for (i, last) in (36..=40).enumerate() {
        s = s.replace(
            &format!("222.211.74.{last} "),
            &format!("198.18.0.{} ", 11 + i),
        );
    }
    s.replace("222.211.74.42", "198.18.0.100")
        .replace("222.211.74.44", "198.18.0.100")
}

/// A bpffs of the test's own, mounted in the root namespace before lvsd
/// starts: `ip netns exec` gives lvsd a fresh /sys, so pins must live
/// elsewhere to be found again by a restarted lvsd. Unmounted on drop.
pub struct Bpffs(pub PathBuf);

impl Bpffs {
    pub fn mount(lab: &Lab) -> Result<Self> {
        let dir = PathBuf::from(format!(
            "/run/lvs-test-bpf-{}",
            lab.prefix().trim_end_matches('-')
        ));
        std::fs::create_dir_all(&dir)?;
        let st = std::process::Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&dir)
            .status()?;
        ensure!(st.success(), "mount bpffs at {}", dir.display());
        Ok(Bpffs(dir))
    }
}

impl Bpffs {
    /// `--bpffs DIR --instance lab --xdp-mode generic`: lvsd's arguments
    /// for the tests' instance on this bpffs.
    pub fn lab_instance_args(&self) -> Result<[&str; 6]> {
        Ok([
            "--bpffs",
            self.0.to_str().context("path")?,
            "--instance",
            "lab",
            "--xdp-mode",
            "generic",
        ])
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        for instance in ["lab", "lab2"] {
            let _ = lvs_userspace::datapath::flush_instance(&self.0, instance);
        }
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

pub struct Director<'a> {
    lab: &'a Lab,
    conf: PathBuf,
    bpffs: PathBuf,
    pid: Option<Pid>,
    /// `--xdp-mode` for lvsd (tests: generic; the demo: auto).
    pub xdp_mode: &'static str,
    /// Which director namespace it runs in.
    pub index: usize,
    /// `--instance` (directors sharing a bpffs need different ones).
    pub instance: String,
    /// More lvsd arguments.
    pub extra_args: Vec<String>,
    /// `--conn-table-size`.
    pub conn_table_size: u32,
}

impl<'a> Director<'a> {
    pub fn new(lab: &'a Lab, bpffs: &Path, config: &str) -> Result<Self> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let conf = lab.log_dir().join(format!("keepalived-{n}.conf"));
        std::fs::write(&conf, config)?;
        Ok(Director {
            lab,
            conf,
            bpffs: bpffs.to_path_buf(),
            pid: None,
            xdp_mode: "generic",
            index: 0,
            instance: "lab".into(),
            extra_args: Vec::new(),
            conn_table_size: 65536,
        })
    }

    /// lvsd on the second director (namespace 1), instance `lab2` on the
    /// shared bpffs.
    pub fn second(lab: &'a Lab, bpffs: &Path, config: &str) -> Result<Self> {
        let mut d = Director::new(lab, bpffs, config)?;
        d.index = 1;
        d.instance = "lab2".into();
        Ok(d)
    }

    /// lvsd with `config` on the first director, started, once a request
    /// through the VIP succeeds.
    pub fn forwarding(lab: &'a Lab, bpffs: &Path, config: &str) -> Result<Self> {
        Director::forwarding_with(lab, bpffs, config, &[])
    }

    /// [`Director::forwarding`] with more lvsd arguments.
    pub fn forwarding_with(
        lab: &'a Lab,
        bpffs: &Path,
        config: &str,
        extra_args: &[&str],
    ) -> Result<Self> {
        let mut d = Director::new(lab, bpffs, config)?;
        d.extra_args = extra_args.iter().map(|a| a.to_string()).collect();
        d.start()?;
        wait_forwarding(lab)?;
        Ok(d)
    }

    /// Writes `config` over lvsd's file and sends SIGHUP (keepalived's
    /// reload).
    pub fn reload(&self, config: &str) -> Result<()> {
        self.write_config(config)?;
        self.signal(libc::SIGHUP)
    }

    /// SIGTERM, then waits (10 s at most) until lvsd says it stopped.
    pub fn stop(&self) -> Result<()> {
        self.signal(libc::SIGTERM)?;
        self.wait_log("Stopped lvsd", Duration::from_secs(10))
    }

    pub fn write_config(&self, config: &str) -> Result<()> {
        std::fs::write(&self.conf, config)?;
        Ok(())
    }

    pub fn start(&mut self) -> Result<Pid> {
        let lvsd = own_bin("lvsd");
        let table_size = self.conn_table_size.to_string();
        let mut argv: Vec<&str> = vec![
            lvsd.to_str().context("path")?,
            "-n",
            "-l",
            "-f",
            self.conf.to_str().context("path")?,
            "--bpffs",
            self.bpffs.to_str().context("path")?,
            "--instance",
            &self.instance,
            "--xdp-mode",
            self.xdp_mode,
            "--conn-table-size",
            &table_size,
            "--drain-timeout",
            "30",
        ];
        argv.extend(self.extra_args.iter().map(String::as_str));
        let pid = self.lab.spawn(self.lab.director_ns(self.index), &argv)?;
        self.pid = Some(pid);
        Ok(pid)
    }

    pub fn signal(&self, sig: i32) -> Result<()> {
        let pid = self.pid.context("not started")?;
        // SAFETY: a signal to a process this test started.
        ensure!(unsafe { libc::kill(pid.0 as i32, sig) } == 0, "kill {sig}");
        Ok(())
    }

    pub fn log(&self) -> String {
        self.pid
            .and_then(|p| self.lab.log_path(p))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        self.wait_loaded(needle);
        wait_until(needle, timeout, Duration::from_millis(50), || {
            self.log().contains(needle)
        })
        .with_context(|| format!("lvsd log:\n{}", self.log()))
    }

    /// Loading the XDP programs (the verifier) takes from under a second
    /// to several on a busy machine: a test's bound on what lvsd does
    /// counts from when its data path is attached (or it has stopped, or
    /// said what the test waits for), not from its start.
    fn wait_loaded(&self, needle: &str) {
        let _ = wait_until(
            "lvsd's data path loaded",
            Duration::from_secs(60),
            Duration::from_millis(50),
            || {
                let log = self.log();
                log.contains("XDP on ")
                    || log.contains(needle)
                    || log.contains("Stopped lvsd")
                    || !self.running()
            },
        );
    }

    fn running(&self) -> bool {
        // SAFETY: signal 0 to a process this test started only checks it.
        self.pid
            .is_some_and(|pid| unsafe { libc::kill(pid.0 as i32, 0) } == 0)
    }

    /// Waits until `needle` has appeared `n` times in the log.
    pub fn wait_log_count(&self, needle: &str, n: usize, timeout: Duration) -> Result<()> {
        self.wait_loaded(needle);
        wait_until(needle, timeout, Duration::from_millis(50), || {
            self.log().matches(needle).count() >= n
        })
        .with_context(|| format!("lvsd log:\n{}", self.log()))
    }

    pub fn inspect(&self) -> Result<Inspector> {
        Ok(Inspector::open(&self.bpffs, &self.instance)?)
    }
}

/// Waits until a request through the VIP succeeds.
pub fn wait_forwarding(lab: &Lab) -> Result<()> {
    let client = lab.client_addrs()[0];
    wait_until(
        "forwarding through lvsd",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || {
            lab.run_in_netns(lab.client_ns(), || {
                http_get(client, lab.service(), Duration::from_millis(500)).is_ok()
            })
            .unwrap_or(false)
        },
    )
}

/// Waits (at most `within`) until an HTTP request from the first IPv6
/// client address through the IPv6 VIP gets an answer.
pub fn wait_forwarding6(lab: &Lab, within: Duration) -> Result<()> {
    let client: IpAddr = lab.client_addrs6()[0].into();
    wait_until(
        "IPv6 forwarding through lvsd",
        within,
        Duration::from_millis(100),
        || {
            lab.run_in_netns(lab.client_ns(), || {
                lvs_testkit::http::http_request_any(
                    Some(client),
                    lab.service6().into(),
                    "/",
                    Duration::from_millis(500),
                )
                .is_ok()
            })
            .unwrap_or(false)
        },
    )
}

/// Long-lived keep-alive connections through the VIP, one per client
/// address, each with the server that answered its first request.
pub fn keep_alive_clients(
    lab: &Lab,
    addrs: &[std::net::Ipv4Addr],
) -> Result<Vec<(KeepAliveClient, String)>> {
    keep_alive_clients_to(lab, addrs, lab.service().into())
}

/// [`keep_alive_clients`] to `target`, from addresses of either family.
pub fn keep_alive_clients_to<A: Copy + Into<IpAddr> + Sync>(
    lab: &Lab,
    addrs: &[A],
    target: SocketAddr,
) -> Result<Vec<(KeepAliveClient, String)>> {
    lab.run_in_netns(lab.client_ns(), || {
        addrs
            .iter()
            .map(|&a| {
                let mut c =
                    KeepAliveClient::connect_any(Some(a.into()), target, Duration::from_secs(5))?;
                let s = c.get()?;
                Ok((c, s))
            })
            .collect()
    })?
}

/// New connections (`requests` from each of `clients` to `target`) all
/// answered, each client's by the real server of its kept connection
/// (`kept[i]` is `clients[i]`'s): its persistence template held.
pub fn ensure_persistence_kept<A: Copy + Into<IpAddr> + Sync>(
    lab: &Lab,
    clients: &[A],
    target: SocketAddr,
    kept: &[(KeepAliveClient, String)],
    requests: usize,
    what: &str,
) -> Result<()> {
    let r = lvs_testkit::http_load(lab, lab.client_ns(), clients, target, requests, 10)?;
    r.ensure_no_failures()?;
    for (addr, per_server) in &r.per_client {
        let i = clients
            .iter()
            .position(|&c| c.into() == *addr)
            .context("client")?;
        ensure!(per_server.len() == 1, "{addr}: one server {what}");
        ensure!(
            per_server.contains_key(&kept[i].1),
            "{addr} kept its real server {what}"
        );
    }
    Ok(())
}

/// How a test starts its VRRP pair ([`start_vrrp_pair`]).
pub struct PairStart {
    /// The VRRP instance that carries the VIP.
    pub instance: &'static str,
    /// Lines the BACKUP logs before it is ready (the sync's start).
    pub backup_ready: &'static [&'static str],
    /// How long the MASTER, then each of the BACKUP's steps, may take (s).
    pub within_s: (u64, u64),
    /// The family whose forwarding through the VIP is awaited at the end.
    pub family: Family,
}

impl PairStart {
    /// The sync labs' pair ([`sync_pair_config`]): ready once the BACKUP's
    /// connection sync has started, 10 s for each step.
    pub const fn synced(family: Family) -> Self {
        PairStart {
            instance: match family {
                Family::V4 => "VI_1",
                Family::V6 => "VI_6",
            },
            backup_ready: &["Starting connection sync on bond0"],
            within_s: (10, 10),
            family,
        }
    }
}

/// keepalived.conf of one director of the sync labs' pair: a VRRP
/// instance holding `family`'s VIP with `lvs_sync_daemon_interface bond0`,
/// and the seed's service (wrr 2:3:3:2:2, persistence 120 s) on it.
pub fn sync_pair_config(family: Family, state: &str, priority: u8) -> String {
    let (instance, vrid, vip, vip_on_bond0) = match family {
        Family::V4 => (
            "VI_1",
            20,
            "198.18.0.100",
            "198.18.0.100/16 dev bond0 label bond0:1",
        ),
        Family::V6 => ("VI_6", 60, "2001:2::100", "2001:2::100/64 dev bond0"),
    };
    let mut s = format!(
        "vrrp_instance {instance} {{\n state {state}\n interface bond0\n lvs_sync_daemon_interface bond0\n virtual_router_id {vrid}\n priority {priority}\n advert_int 1\n virtual_ipaddress {{\n  {vip_on_bond0}\n }}\n}}\nvirtual_server {vip} 80 {{\n lb_algo wrr\n lb_kind DR\n persistence_timeout 120\n protocol TCP\n"
    );
    for (i, w) in SEED_WEIGHTS.iter().enumerate() {
        let real: IpAddr = match family {
            Family::V4 => lvs_testkit::topology::real_server_addr(i).into(),
            Family::V6 => lvs_testkit::topology::real_server_addr6(i).into(),
        };
        s += &format!(" real_server {real} 80 {{\n  weight {w}\n }}\n");
    }
    s + "}\n"
}

/// Two directors of a VRRP pair running lvsd on a bpffs of the test's own
/// (returned with them): the first with `config("MASTER", 200)`, the
/// second with `config("BACKUP", 100)`, started in turn: the first until
/// it is MASTER, then the second until it has logged its `backup_ready`
/// lines and is BACKUP; then until a request through the VIP is answered.
pub fn start_vrrp_pair<'a>(
    lab: &'a Lab,
    config: impl Fn(&str, u8) -> String,
    how: &PairStart,
) -> Result<(Director<'a>, Director<'a>, Bpffs)> {
    let bpffs = Bpffs::mount(lab)?;
    let mut master = Director::new(lab, &bpffs.0, &config("MASTER", 200))?;
    let mut backup = Director::second(lab, &bpffs.0, &config("BACKUP", 100))?;
    let (master_within, backup_within) = (
        Duration::from_secs(how.within_s.0),
        Duration::from_secs(how.within_s.1),
    );
    let instance = how.instance;
    master.start()?;
    master.wait_log(
        &format!("({instance}) Entering MASTER STATE"),
        master_within,
    )?;
    backup.start()?;
    for line in how.backup_ready {
        backup.wait_log(line, backup_within)?;
    }
    backup.wait_log(
        &format!("({instance}) Entering BACKUP STATE"),
        backup_within,
    )?;
    match how.family {
        Family::V4 => wait_forwarding(lab)?,
        Family::V6 => wait_forwarding6(lab, Duration::from_secs(20))?,
    }
    Ok((master, backup, bpffs))
}

/// The real server a director's backend id names (any service).
pub fn real_of(d: &Director, id: u32) -> Result<Option<IpAddr>> {
    Ok(d.inspect()?
        .services()?
        .iter()
        .flat_map(|s| s.backends.iter())
        .find(|b| b.id == id)
        .map(|b| b.addr))
}

/// Whether the backup has every established connection of the master's
/// that `of_client` picks (at least `clients` of them) with the master's
/// real server and state, marked as synced. `conns` reads one family's
/// table (`State::conns` or `State::conns6`).
pub fn in_step<K: PartialEq>(
    master: &Director,
    backup: &Director,
    conns: fn(&State) -> Result<Vec<ConnView<K>>, DatapathError>,
    of_client: impl Fn(&K) -> bool,
    clients: usize,
) -> Result<bool> {
    let theirs = conns(&*backup.inspect()?)?;
    let mut matched = 0;
    for m in conns(&*master.inspect()?)? {
        if !of_client(&m.key) || m.conn.state != lvs_common::tcp::ESTABLISHED {
            continue;
        }
        let Some(b) = theirs.iter().find(|b| b.key == m.key) else {
            return Ok(false);
        };
        if b.conn.flags & lvs_common::CONN_F_SYNCED == 0
            || b.conn.state != m.conn.state
            || real_of(backup, b.conn.backend)? != real_of(master, m.conn.backend)?
        {
            return Ok(false);
        }
        matched += 1;
    }
    Ok(matched >= clients)
}

/// What sync gives the BACKUP before a takeover: it forwarded nothing
/// itself (frames a switch floods to it are not its to forward), then
/// within 10 s `in_step` holds (its entries are the MASTER's) and it has
/// at least `want` persistence templates (`templates` counts them).
pub fn ensure_backup_synced(
    backup: &Director,
    mut in_step: impl FnMut() -> Result<bool>,
    templates: impl Fn(&Inspector) -> Result<usize>,
    want: usize,
) -> Result<()> {
    let before = backup.inspect()?.verdicts()?;
    ensure!(
        before[lvs_common::verdict::TX as usize] == 0,
        "the backup forwarded nothing: {before:?}"
    );
    wait_until(
        "connections synced to the backup",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || in_step().unwrap_or(false),
    )?;
    let n = templates(&backup.inspect()?)?;
    ensure!(n >= want, "persistence templates synced too: {n}");
    Ok(())
}

/// Every keep-alive connection still answers, from the same server.
pub fn ensure_same_servers(
    lab: &Lab,
    conns: &mut [(KeepAliveClient, String)],
    what: &str,
) -> Result<()> {
    lab.run_in_netns(lab.client_ns(), || -> Result<()> {
        for (c, server) in conns.iter_mut() {
            let got = c
                .get()
                .with_context(|| format!("{what}: request on a kept connection"))?;
            ensure!(&got == server, "{what}: {got} answered instead of {server}");
        }
        Ok(())
    })?
}

/// Waits (at most 10 s) for a condition.
pub fn wait_until_true(cond: impl FnMut() -> bool) -> Result<()> {
    wait_until(
        "condition",
        Duration::from_secs(10),
        Duration::from_millis(50),
        cond,
    )
}

/// Keeps every connection busy (a request every 200 ms each) until
/// stopped; counts requests that failed or were answered by another server.
pub struct Streamer {
    stop: Arc<AtomicBool>,
    broken: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<(KeepAliveClient, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Streamer {
    pub fn start(conns: Vec<(KeepAliveClient, String)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let broken = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let conns = Arc::new(Mutex::new(conns));
        let thread = {
            let (stop, broken, done, conns) =
                (stop.clone(), broken.clone(), done.clone(), conns.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut cs = conns.lock().unwrap();
                    for (c, server) in cs.iter_mut() {
                        match c.get() {
                            Ok(got) if &got == server => {}
                            _ => {
                                broken.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(cs);
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        Streamer {
            stop,
            broken,
            done,
            conns,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> (u64, u64, Vec<(KeepAliveClient, String)>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let conns = std::mem::take(&mut *self.conns.lock().unwrap());
        (
            self.broken.load(Ordering::Relaxed),
            self.done.load(Ordering::Relaxed),
            conns,
        )
    }
}

/// A process's CPU use over a window, from /proc/<pid>/stat (the benches'
/// measure of the agent).
pub struct CpuWindow {
    pid: u32,
    started: std::time::Instant,
    ticks: (u64, u64),
}

impl CpuWindow {
    /// (user, system) clock ticks of a process.
    fn ticks(pid: u32) -> Result<(u64, u64)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the ")" of the command name: utime is 14th, stime 15th.
        let rest = stat.rsplit_once(')').context("stat")?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Ok((f[11].parse()?, f[12].parse()?))
    }

    pub fn start(pid: u32) -> Result<Self> {
        Ok(CpuWindow {
            pid,
            started: std::time::Instant::now(),
            ticks: Self::ticks(pid)?,
        })
    }

    /// (user, system) in % of one core since `start`.
    pub fn percent(&self) -> Result<(f64, f64)> {
        let now = Self::ticks(self.pid)?;
        let secs = self.started.elapsed().as_secs_f64();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let pct = |a: u64, b: u64| (b - a) as f64 / hz / secs * 100.0;
        Ok((pct(self.ticks.0, now.0), pct(self.ticks.1, now.1)))
    }
}

/// HTTP load on the lab's service from every client address (the usual
/// `http_load` of the lab tests): `requests` per address, `concurrency`
/// at once.
pub fn load_every_client(
    lab: &Lab,
    requests: usize,
    concurrency: usize,
) -> Result<lvs_testkit::LoadReport> {
    load_every_client_of(lab, Family::V4, requests, concurrency)
}

/// [`load_every_client`] for one family: its client addresses to its VIP.
pub fn load_every_client_of(
    lab: &Lab,
    family: Family,
    requests: usize,
    concurrency: usize,
) -> Result<lvs_testkit::LoadReport> {
    lvs_testkit::http_load(
        lab,
        lab.client_ns(),
        &family.client_addrs(lab),
        family.service(lab),
        requests,
        concurrency,
    )
}

/// HTTP load from every address of the second client network (`requests`
/// each, 10 at a time): all answered, each client by one server (its
/// persistence template). The report.
pub fn load_second_network_pinned(lab: &Lab, requests: usize) -> Result<lvs_testkit::LoadReport> {
    let ns2 = lab.second_client_ns().context("a second client network")?;
    let r = lvs_testkit::http_load(
        lab,
        ns2,
        lab.second_client_addrs(),
        lab.service(),
        requests,
        10,
    )?;
    r.ensure_no_failures()?;
    ensure!(
        r.max_servers_per_client() == 1,
        "each client of the second network on one server: {}",
        r.summary()
    );
    Ok(r)
}

/// A file in the lab's log directory whose content a MISC_CHECK's script
/// exits with (0 up, 1 down; with `misc_dynamic` 2 + the weight), written
/// as `initial`; and that script, for `misc_path "…"`.
pub fn misc_exit_knob(lab: &Lab, name: &str, initial: &str) -> Result<(PathBuf, String)> {
    let knob = lab.log_dir().join(name);
    std::fs::write(&knob, initial)?;
    let script = format!("/bin/sh -c 'exit $(cat {})'", knob.display());
    Ok((knob, script))
}

/// With lvsd stopped by `--keep-datapath`: new connections of the first
/// `clients` client addresses of `family` (2 each) are still answered,
/// and `lvsadm -L -n` lists the pinned state. The listing.
pub fn ensure_forwarding_without_lvsd(
    lab: &Lab,
    bpffs: &Path,
    family: Family,
    clients: usize,
) -> Result<String> {
    let addrs = &family.client_addrs(lab)[..clients];
    let r = lvs_testkit::http_load(lab, lab.client_ns(), addrs, family.service(lab), 2, 5)?;
    println!("{family:?} with lvsd stopped: {}", r.summary());
    r.ensure_no_failures()?;
    lvsadm(lab, bpffs, &["-L", "-n"])
}

/// keepalived.conf of the MISC_CHECK labs: VI_1 holding the VIP, a wrr
/// virtual server (`vs_extra` lines added) whose rs1 has a MISC_CHECK
/// (`misc_timeout 2`) and rs2 none (`rs2_extra` lines added); and the file
/// that decides rs1's check (0 up, 1 down), up at first.
pub fn rs1_misc_checked(lab: &Lab, vs_extra: &str, rs2_extra: &str) -> Result<(PathBuf, String)> {
    let (knob, script) = misc_exit_knob(lab, "rs1-check", "0")?;
    let cfg = format!(
        "vrrp_instance VI_1 {{\n state MASTER\n interface bond0\n virtual_router_id 20\n priority 200\n virtual_ipaddress {{\n  198.18.0.100/16 dev bond0\n }}\n}}\n\
         virtual_server 198.18.0.100 80 {{\n delay_loop 1\n lb_algo wrr\n lb_kind DR\n protocol TCP\n{vs_extra}\
          real_server 198.18.0.11 80 {{\n  weight 1\n  MISC_CHECK {{\n   misc_path \"{script}\"\n   misc_timeout 2\n  }}\n }}\n\
          real_server 198.18.0.12 80 {{\n  weight 1\n{rs2_extra} }}\n}}\n"
    );
    Ok((knob, cfg))
}

/// `lvsadm ARGS --bpffs BPFFS --instance lab` in the first director's
/// namespace; its output.
pub fn lvsadm(lab: &Lab, bpffs: &Path, args: &[&str]) -> Result<String> {
    let bin = own_bin("lvsadm");
    let mut argv = vec![bin.to_str().context("path")?];
    argv.extend_from_slice(args);
    argv.extend([
        "--bpffs",
        bpffs.to_str().context("path")?,
        "--instance",
        "lab",
    ]);
    lab.exec_ok(lab.director_ns(0), &argv)
}

/// `lvsd -t -f CONFIG` (check the file, start nothing), run here: its exit
/// code and what it printed on stderr.
pub fn lvsd_test_config(config: &Path) -> Result<(Option<i32>, String)> {
    let out = std::process::Command::new(own_bin("lvsd"))
        .args(["-t", "-f"])
        .arg(config)
        .output()?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `lvsd -n -l ARGS` run to its end in the first director's namespace
/// (20 s at most): its exit code and its log.
pub fn lvsd_once(lab: &Lab, args: &[&str]) -> Result<(Option<i32>, String)> {
    let lvsd = own_bin("lvsd");
    let mut argv = vec![lvsd.to_str().context("path")?, "-n", "-l"];
    argv.extend(args);
    let out = lab.exec_timeout(lab.director_ns(0), &argv, Duration::from_secs(20))?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}
