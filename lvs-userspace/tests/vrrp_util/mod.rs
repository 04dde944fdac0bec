//! Shared helpers of the VRRP lab tests: configs derived from the seed
//! (IPv4 VI_1, or the IPv6 VI_6 beside it), starting `examples/vrrp_only`
//! (and keepalived) in director namespaces, reading their counters, VIP
//! checks through the netlink module, and a 10 ms ping from the client
//! measuring the longest gap of a handover.

#![allow(dead_code)]

pub mod inject;
pub mod interop;
pub mod v6;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use lvs_testkit::{Lab, LabSpec, Pid};
use lvs_userspace::netlink::{self, IfAddr};

pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

/// Two directors, one client; no data path, no real-server traffic: the
/// directors themselves answer the client's pings to the VIP.
pub fn lab() -> Lab {
    Lab::create(LabSpec {
        directors: 2,
        director_holds_vip: false,
        httpd: false,
        ..LabSpec::sized(1, 1)
    })
    .expect("lab")
}

/// The address family of a test's instance: the seed's IPv4 VI_1
/// (198.18.0.100/16), or the IPv6 VI_6 (2001:2::100/64, VRRPv3 over IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The lab of two directors and a client; for IPv6 with IPv6 turned on.
    pub fn lab(self) -> Lab {
        match self {
            Family::V4 => lab(),
            Family::V6 => v6::lab6(),
        }
    }

    pub fn vip(self) -> IpAddr {
        match self {
            Family::V4 => VIP.into(),
            Family::V6 => v6::VIP6.into(),
        }
    }

    pub fn instance(self) -> &'static str {
        match self {
            Family::V4 => "VI_1",
            Family::V6 => "VI_6",
        }
    }

    /// The log line of a new master announcing the VIP: gratuitous ARPs,
    /// or unsolicited neighbour advertisements (keepalived's wording).
    pub fn announce(self) -> String {
        let what = match self {
            Family::V4 => "gratuitous ARPs",
            Family::V6 => "Unsolicited Neighbour Adverts",
        };
        format!(
            "({}) Sending/queueing {what} on bond0 for {}",
            self.instance(),
            self.vip()
        )
    }

    /// Whether director `dir` holds the VIP on bond0.
    pub fn holds_vip(self, lab: &Lab, dir: usize) -> bool {
        match self {
            Family::V4 => vip_on(lab, dir).is_some(),
            Family::V6 => v6::vip6_on(lab, dir).is_some(),
        }
    }

    /// Waits until exactly director `master` holds the VIP, then checks
    /// it is configured as the instance says.
    pub fn wait_master(self, lab: &Lab, master: usize, timeout: Duration) -> Result<()> {
        let t0 = Instant::now();
        lvs_testkit::wait_until(
            &format!("dir{} to hold the {self:?} VIP alone", master + 1),
            timeout,
            Duration::from_millis(20),
            || self.holds_vip(lab, master) && !self.holds_vip(lab, 1 - master),
        )?;
        match self {
            Family::V4 => {
                let a = vip_on(lab, master).unwrap();
                assert_eq!(a.label.as_deref(), Some("bond0:1"));
                assert_eq!(a.prefix_len, 16);
                assert_eq!(a.brd, Some(Ipv4Addr::new(198, 18, 255, 255)));
            }
            Family::V6 => {
                let a = v6::vip6_on(lab, master).unwrap();
                assert_eq!(a.prefix_len, 64);
                assert!(
                    a.nodad,
                    "IPv6 VIPs are added with nodad, as keepalived does"
                );
            }
        }
        eprintln!(
            "dir{} holds the {self:?} VIP after {:?}",
            master + 1,
            t0.elapsed()
        );
        Ok(())
    }

    /// Takes the VIP off director `dir`'s bond0 (its host is gone).
    pub fn drop_vip(self, lab: &Lab, dir: usize) {
        on_bond0(lab, dir, |index| match self {
            Family::V4 => netlink::addr_del(index, &IfAddr::new(VIP, 16)).unwrap(),
            Family::V6 => netlink::addr6_del(
                index,
                &netlink::IfAddr6 {
                    addr: v6::VIP6,
                    prefix_len: 64,
                    nodad: false,
                },
            )
            .unwrap(),
        })
    }

    /// Director `dir`'s address on bond0 (2001:2::2 and ::3 once IPv6 is
    /// on).
    pub fn director_addr(self, dir: usize) -> String {
        match self {
            Family::V4 => format!("198.18.0.{}", dir + 2),
            Family::V6 => format!("2001:2::{}", dir + 2),
        }
    }

    /// The source of director `dir`'s multicast adverts: its address on
    /// bond0, for IPv6 the link-local one.
    pub fn advert_src(self, lab: &Lab, dir: usize) -> String {
        match self {
            Family::V4 => self.director_addr(dir),
            Family::V6 => v6::link_local(lab, dir).unwrap().to_string(),
        }
    }

    /// The seed's MASTER and BACKUP (IPv4: v2, advert_int 1; IPv6: v3,
    /// advert_int 1).
    pub fn seed(self) -> (Conf, Conf) {
        match self {
            Family::V4 => (Conf::master(), Conf::backup()),
            Family::V6 => (Conf::master().v6("1"), Conf::backup().v6("1")),
        }
    }
}

/// A config built at run time where [`Conf`] wants a `&'static str` (a
/// test leaks a few short strings).
pub fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The seed's `vrrp_instance VI_1`, mapped into the lab (or, with
/// [`Conf::v6`], the IPv6 instance VI_6 in its place).
#[derive(Clone, Debug)]
pub struct Conf {
    pub family: Family,
    pub state: &'static str,
    pub priority: u8,
    pub version: u8,
    pub advert_int: &'static str,
    /// v2 `auth_type PASS` password (the seed's is 7890).
    pub pass: Option<&'static str>,
    pub nopreempt: bool,
    pub extra: &'static str,
    /// The seed's `lvs_sync_daemon_interface bond0` line (left out for
    /// keepalived: it would start the IPVS sync daemon in the kernel).
    pub sync_daemon: bool,
    /// Top-level blocks before the instance (e.g. `vrrp_script`).
    pub top: &'static str,
    /// More `virtual_ipaddress` lines (e.g. on a second interface).
    pub more_vips: &'static str,
    /// More `global_defs` lines.
    pub global: &'static str,
}

impl Conf {
    pub fn master() -> Conf {
        Conf {
            family: Family::V4,
            state: "MASTER",
            priority: 200,
            version: 2,
            advert_int: "1",
            pass: Some("7890"),
            nopreempt: false,
            extra: "",
            sync_daemon: true,
            top: "",
            more_vips: "",
            global: "",
        }
    }
    pub fn backup() -> Conf {
        Conf {
            state: "BACKUP",
            priority: 100,
            ..Conf::master()
        }
    }
    pub fn v3(mut self, advert_int: &'static str) -> Conf {
        self.version = 3;
        self.advert_int = advert_int;
        self.pass = None;
        self
    }
    /// The IPv6 instance VI_6 instead (vrid 60, VIP 2001:2::100/64):
    /// VRRPv3, which keepalived picks from the VIP's family.
    pub fn v6(self, advert_int: &'static str) -> Conf {
        Conf {
            family: Family::V6,
            sync_daemon: false,
            ..self.v3(advert_int)
        }
    }
    /// This instance advertising by unicast from director `me` to `peer`
    /// (their addresses on bond0) instead of multicast.
    pub fn unicast(self, me: usize, peer: usize) -> Conf {
        let fam = self.family;
        Conf {
            extra: leak(format!(
                "    unicast_src_ip {}\n    unicast_peer {{\n        {}\n    }}\n",
                fam.director_addr(me),
                fam.director_addr(peer)
            )),
            ..self
        }
    }
    /// How long a speaker started alone with this config may take to hold
    /// the VIP: its master-down interval (3.6 s at advert_int 1, under
    /// 0.4 s at 0.1) and its start, with room for a busy machine.
    pub fn start_within(&self) -> Duration {
        if self.advert_int.parse::<f64>().unwrap() >= 0.5 {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(5)
        }
    }
    pub fn text(&self) -> String {
        let auth = match self.pass {
            Some(p) => format!(
                "    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}\n"
            ),
            None => String::new(),
        };
        let (router_id, vrid, version, vip) = match self.family {
            Family::V4 => (
                "mllvs1",
                20,
                format!("version {}\n    ", self.version),
                "198.18.0.100/16 brd 198.18.255.255 dev bond0 label bond0:1",
            ),
            Family::V6 => ("lvs6", 60, String::new(), "2001:2::100/64 dev bond0"),
        };
        self.top.to_string()
            + &format!(
                "global_defs {{\n    router_id {router_id}\n{}}}\n\
             vrrp_instance {} {{\n    state {}\n    priority {}\n    interface bond0\n    \
             {}virtual_router_id {vrid}\n    {version}\
             advert_int {}\n{auth}{}{}    virtual_ipaddress {{\n        \
             {vip}\n{}    }}\n}}\n",
                self.global,
                self.family.instance(),
                self.state,
                self.priority,
                if self.sync_daemon {
                    "lvs_sync_daemon_interface bond0\n    "
                } else {
                    ""
                },
                self.advert_int,
                if self.nopreempt {
                    "    nopreempt\n"
                } else {
                    ""
                },
                self.extra,
                self.more_vips,
            )
    }
}

/// The `vrrp_only` example, built once per test binary.
pub fn vrrp_only_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/<test> → target/<profile>/examples/vrrp_only
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let target_dir = profile_dir.parent().unwrap().to_path_buf();
        let st = Command::new(env!("CARGO"))
            .args(["build", "-p", "lvs-userspace", "--example", "vrrp_only"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build --example vrrp_only");
        assert!(st.success(), "building vrrp_only failed");
        let bin = profile_dir.join("examples").join("vrrp_only");
        assert!(bin.is_file(), "{} missing", bin.display());
        bin
    })
    .clone()
}

/// One of our VRRP speakers running in a director namespace.
pub struct Speaker {
    pub pid: Pid,
    /// The config file it was started with (rewrite + SIGHUP to reload).
    pub conf: PathBuf,
    pub stats: PathBuf,
    pub log: PathBuf,
    /// keepalived only: its VRRP child's pid file.
    pub child_pidfile: Option<PathBuf>,
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn unique(lab: &Lab, what: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    lab.log_dir().join(format!("{what}-{n}"))
}

pub fn start_ours(lab: &Lab, dir: usize, conf: &Conf) -> Speaker {
    start_ours_with(lab, dir, conf, &[])
}

/// As [`start_ours`], with extra `vrrp_only` arguments.
pub fn start_ours_with(lab: &Lab, dir: usize, conf: &Conf, extra: &[&str]) -> Speaker {
    let cfg = unique(lab, &format!("dir{}", dir + 1)).with_extension("conf");
    std::fs::write(&cfg, conf.text()).unwrap();
    spawn_ours(lab, dir, cfg, extra)
}

/// `vrrp_only -f CFG --stats …` in director `dir`; the stats file beside
/// the config.
pub fn spawn_ours(lab: &Lab, dir: usize, cfg: PathBuf, extra: &[&str]) -> Speaker {
    let stats = cfg.with_extension("json");
    let bin = vrrp_only_bin();
    let mut argv = vec![
        bin.to_str().unwrap(),
        "-f",
        cfg.to_str().unwrap(),
        "--stats",
        stats.to_str().unwrap(),
    ];
    argv.extend_from_slice(extra);
    let pid = lab
        .spawn(lab.director_ns(dir), &argv)
        .expect("spawn vrrp_only");
    let log = lab.log_path(pid).unwrap();
    Speaker {
        pid,
        conf: cfg,
        stats,
        log,
        child_pidfile: None,
    }
}

/// keepalived 2.2.7 (VRRP only) in a director namespace, with its own pid
/// files so it never touches the system's.
pub fn start_keepalived(lab: &Lab, dir: usize, conf: &Conf) -> Speaker {
    let cfg = unique(lab, &format!("ka-dir{}", dir + 1)).with_extension("conf");
    let conf = Conf {
        sync_daemon: false,
        ..conf.clone()
    };
    std::fs::write(&cfg, conf.text()).unwrap();
    spawn_keepalived(lab, dir, cfg)
}

/// `keepalived --vrrp -f CFG` in director `dir`, its pid files beside the
/// config.
pub fn spawn_keepalived(lab: &Lab, dir: usize, cfg: PathBuf) -> Speaker {
    let p = |e: &str| cfg.with_extension(e).to_string_lossy().into_owned();
    let (pid_main, pid_vrrp, pid_chk) = (p("pid"), p("vrrp.pid"), p("chk.pid"));
    let pid = lab
        .spawn(
            lab.director_ns(dir),
            &[
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-f",
                cfg.to_str().unwrap(),
                "-p",
                &pid_main,
                "-r",
                &pid_vrrp,
                "-c",
                &pid_chk,
                "--vrrp",
            ],
        )
        .expect("spawn keepalived");
    let log = lab.log_path(pid).unwrap();
    Speaker {
        pid,
        conf: cfg,
        stats: PathBuf::new(),
        log,
        child_pidfile: Some(PathBuf::from(pid_vrrp)),
    }
}

/// The counters `vrrp_only --stats` wrote last (instance VI_1).
pub fn stats(s: &Speaker) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(&s.stats).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.as_array()?.first().cloned()
}

/// Adverts our speaker accepted (0 before its first stats file).
pub fn received(s: &Speaker) -> u64 {
    stats(s)
        .and_then(|v| v["adverts_received"].as_u64())
        .unwrap_or(0)
}

pub fn rejected(s: &Speaker, key: &str) -> u64 {
    stats(s)
        .and_then(|v| v["rejected"][key].as_u64())
        .unwrap_or(0)
}

pub fn state(s: &Speaker) -> String {
    stats(s)
        .and_then(|v| v["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn log_text(s: &Speaker) -> String {
    std::fs::read_to_string(&s.log).unwrap_or_default()
}

/// The VIP as configured on director `dir`'s bond0, if present.
pub fn vip_on(lab: &Lab, dir: usize) -> Option<IfAddr> {
    bond0_addr(lab, dir, VIP)
}

/// `f(bond0's index)` in director `dir`'s namespace.
pub fn on_bond0<T: Send>(lab: &Lab, dir: usize, f: impl FnOnce(u32) -> T + Send) -> T {
    lab.run_in_netns(lab.director_ns(dir), || {
        f(netlink::link_by_name("bond0").unwrap().index)
    })
    .unwrap()
}

/// Address `addr` as configured on director `dir`'s bond0, if present.
pub fn bond0_addr(lab: &Lab, dir: usize, addr: Ipv4Addr) -> Option<IfAddr> {
    on_bond0(lab, dir, |index| {
        netlink::addrs(index)
            .unwrap()
            .into_iter()
            .find(|a| a.addr == addr)
    })
}

/// Waits until exactly director `master` holds the VIP (with the seed's
/// label and broadcast) and the other does not.
pub fn wait_master(lab: &Lab, master: usize, timeout: Duration) -> Result<()> {
    Family::V4.wait_master(lab, master, timeout)
}

pub fn sigkill(pid: Pid) {
    // SAFETY: plain kill(2) on a pid this test started (tracked by the lab).
    unsafe { libc::kill(pid.0 as libc::pid_t, libc::SIGKILL) };
}

/// SIGKILLs keepalived's VRRP child first (a crash: no priority 0), then
/// the parent (which would otherwise stop the child gracefully).
pub fn sigkill_keepalived(s: &Speaker) {
    let child = s
        .child_pidfile
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| t.trim().parse::<u32>().ok())
        .expect("keepalived VRRP child pid");
    sigkill(Pid(child));
    sigkill(s.pid);
}

pub fn sighup(pid: Pid) {
    // SAFETY: as above.
    unsafe { libc::kill(pid.0 as libc::pid_t, libc::SIGHUP) };
}

/// Rewrites the speaker's config file with `text` and sends SIGHUP.
pub fn reload(s: &Speaker, text: &str) {
    std::fs::write(&s.conf, text).unwrap();
    sighup(s.pid);
}

pub fn sigterm(pid: Pid) {
    // SAFETY: as above.
    unsafe { libc::kill(pid.0 as libc::pid_t, libc::SIGTERM) };
}

/// Simulates the death of director `dir`'s host for the VIP's traffic after
/// its VRRP speaker was SIGKILLed: the VIP it left behind stops answering.
pub fn drop_vip(lab: &Lab, dir: usize) {
    Family::V4.drop_vip(lab, dir)
}

/// The speaker on director `dir` dies with its host: SIGKILL (keepalived's
/// VRRP child first, so no priority 0 goes out), and the VIP it leaves
/// behind stops answering.
pub fn crash(lab: &Lab, fam: Family, dir: usize, s: &Speaker) {
    if s.child_pidfile.is_some() {
        sigkill_keepalived(s);
    } else {
        sigkill(s.pid);
    }
    fam.drop_vip(lab, dir);
}

pub fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `ping -D -i 0.01` from the client to the VIP (`ping -6` to the IPv6
/// one).
pub struct Ping {
    pub pid: Pid,
    log: PathBuf,
}

impl Ping {
    pub fn start(lab: &Lab) -> Ping {
        Ping::to(lab, Family::V4)
    }

    pub fn to(lab: &Lab, fam: Family) -> Ping {
        let vip = fam.vip().to_string();
        let mut argv = vec!["ping"];
        if fam == Family::V6 {
            argv.push("-6");
        }
        argv.extend(["-n", "-D", "-i", "0.01", "-W", "1", &vip]);
        let pid = lab.spawn(lab.client_ns(), &argv).expect("ping");
        let log = lab.log_path(pid).unwrap();
        Ping { pid, log }
    }

    /// Stops ping; returns the reply timestamps (UNIX seconds).
    pub fn stop(self, lab: &Lab) -> Vec<f64> {
        let _ = lab.kill(self.pid);
        parse_ping(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

pub fn parse_ping(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| {
            let ts = l.strip_prefix('[')?.split(']').next()?;
            ts.parse().ok()
        })
        .collect()
}

/// The longest interval without a reply that contains time `at`
/// (replies before and after it must exist).
pub fn gap_around(ts: &[f64], at: f64) -> Result<Duration> {
    let before = ts
        .iter()
        .copied()
        .filter(|t| *t <= at)
        .fold(f64::NAN, f64::max);
    let after = ts.iter().copied().find(|t| *t > at);
    let (Some(after), false) = (after, before.is_nan()) else {
        bail!("no replies around the event ({} replies)", ts.len());
    };
    // The largest gap from the last reply before the event through the
    // first few seconds after it.
    let mut worst = after - before;
    let mut prev = after;
    for t in ts.iter().copied().filter(|t| *t > after) {
        worst = worst.max(t - prev);
        prev = t;
    }
    Ok(Duration::from_secs_f64(worst))
}

pub fn log_contains(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path)
        .map(|t| t.contains(needle))
        .unwrap_or(false)
}

/// Waits until `needle` is in the speaker's log; fails the test with the
/// log after `timeout`.
pub fn wait_log(s: &Speaker, needle: &str, timeout: Duration) {
    lvs_testkit::wait_until(
        &format!("{needle:?} in {}", s.log.display()),
        timeout,
        Duration::from_millis(50),
        || log_contains(&s.log, needle),
    )
    .with_context(|| log_text(s))
    .unwrap()
}

/// Waits until the speaker's stats file shows `state` (it is rewritten
/// every 100 ms); fails the test after `timeout`.
pub fn wait_state(s: &Speaker, want: &str, timeout: Duration) {
    lvs_testkit::wait_until(
        &format!("state {want}"),
        timeout,
        Duration::from_millis(20),
        || state(s) == want,
    )
    .unwrap()
}

/// A second interface `in0` in director `dir`, the end of a veth pair
/// whose other end `in0p` stays in the same namespace: setting `in0p` down
/// takes `in0`'s carrier away (NO-CARRIER) while `in0` stays up. Gone with
/// the namespace.
pub fn add_in0(lab: &Lab, dir: usize, addr: &str) {
    lab.ip_batch(
        lab.director_ns(dir),
        &format!(
            "link add in0 type veth peer name in0p\n\
             addr add {addr} dev in0\n\
             link set in0p up\n\
             link set in0 up\n"
        ),
    )
    .expect("veth in0");
}

/// Takes `in0`'s carrier away (`false`) or gives it back.
pub fn in0_carrier(lab: &Lab, dir: usize, on: bool) {
    let state = if on { "up" } else { "down" };
    lab.ip_batch(lab.director_ns(dir), &format!("link set in0p {state}\n"))
        .expect("in0p up/down");
}

/// Whether director `dir` holds `addr` (IPv4 or IPv6) on `ifname`.
pub fn addr_on(lab: &Lab, dir: usize, ifname: &str, addr: impl Into<IpAddr>) -> bool {
    let (ifname, addr) = (ifname.to_string(), addr.into());
    lab.run_in_netns(lab.director_ns(dir), move || {
        let Ok(l) = netlink::link_by_name(&ifname) else {
            return false;
        };
        match addr {
            IpAddr::V4(addr) => netlink::addrs(l.index)
                .unwrap_or_default()
                .iter()
                .any(|a| a.addr == addr),
            IpAddr::V6(addr) => netlink::addrs6(l.index)
                .unwrap_or_default()
                .iter()
                .any(|a| a.addr == addr),
        }
    })
    .unwrap()
}

/// `ip addr flush`-like: removes the VIP from director `dir`'s bond0
/// under its speaker.
pub fn flush_vip(lab: &Lab, dir: usize) {
    drop_vip(lab, dir)
}

pub fn priority_zero_received(s: &Speaker) -> u64 {
    stats(s)
        .and_then(|v| v["priority_zero_received"].as_u64())
        .unwrap_or(0)
}

/// A second segment `in0` between the two directors (198.19.3.2/24 and
/// .3/24) through a bridge in the lab's switch namespace; gone with the
/// namespaces.
pub fn add_shared_in0(lab: &Lab) {
    let sw = lab.switch_ns().to_string();
    for dir in 0..2 {
        lab.ip_batch(
            lab.director_ns(dir),
            &format!(
                "link add in0 type veth peer name in0d{dir} netns {sw}\n\
                 addr add 198.19.3.{}/24 dev in0\n\
                 link set in0 up\n",
                dir + 2
            ),
        )
        .expect("veth in0");
    }
    lab.ip_batch(
        &sw,
        "link add brin0 type bridge\n\
         link set in0d0 master brin0\n\
         link set in0d1 master brin0\n\
         link set in0d0 up\n\
         link set in0d1 up\n\
         link set brin0 up\n",
    )
    .expect("bridge brin0");
}

/// Cuts (`false`) or restores director `dir`'s cable on the shared `in0`
/// segment: its `in0` loses carrier, the other director's does not.
pub fn shared_in0_cable(lab: &Lab, dir: usize, on: bool) {
    let state = if on { "up" } else { "down" };
    lab.ip_batch(lab.switch_ns(), &format!("link set in0d{dir} {state}\n"))
        .expect("in0dN up/down");
}

/// Who runs a speaker: our `vrrp_only` or Debian's keepalived.
#[derive(Clone, Copy, Debug)]
pub enum Peer {
    Ours,
    Keepalived,
}

/// Starts `who` with `conf` in director `dir`.
pub fn start(lab: &Lab, dir: usize, conf: &Conf, who: Peer) -> Speaker {
    match who {
        Peer::Ours => start_ours(lab, dir, conf),
        Peer::Keepalived => start_keepalived(lab, dir, conf),
    }
}

pub fn have_keepalived() -> bool {
    Path::new("/usr/sbin/keepalived").exists()
}

/// Root-only tests that run keepalived: each is skipped, saying so, where
/// keepalived is not installed.
#[macro_export]
macro_rules! keepalived_tests {
    ($($name:ident => $body:expr;)+) => {$(
        #[test]
        #[ignore = "needs root: run cargo xtask test"]
        fn $name() {
            if !have_keepalived() {
                eprintln!("keepalived not installed: skipped");
                return;
            }
            $body;
        }
    )+};
}

/// `conf` run by `who` on director `dir`, alone: once it holds the VIP
/// (within [`Conf::start_within`]).
pub fn start_master(lab: &Lab, dir: usize, conf: &Conf, who: Peer) -> Speaker {
    let s = start(lab, dir, conf, who);
    conf.family
        .wait_master(lab, dir, conf.start_within())
        .unwrap();
    s
}

/// Our MASTER on director 0 (alone at first, so it takes the VIP), then
/// `backup` run by `who` on director 1, once it says it is BACKUP (within
/// 5 s, keepalived 10 s).
pub fn start_master_then_backup(
    lab: &Lab,
    master: &Conf,
    backup: &Conf,
    who: Peer,
) -> (Speaker, Speaker) {
    let m = start_master(lab, 0, master, Peer::Ours);
    let b = start(lab, 1, backup, who);
    let backup_within = match who {
        Peer::Ours => Duration::from_secs(5),
        Peer::Keepalived => Duration::from_secs(10),
    };
    wait_log(&b, "Entering BACKUP STATE", backup_within);
    (m, b)
}

/// The longest gap in the client's 10 ms pings to the VIP around `event`:
/// pings for `settle` first, then `event`, then `takeover` (which waits for
/// the new holder), then `settle` more.
pub fn ping_gap_across(
    lab: &Lab,
    fam: Family,
    settle: Duration,
    event: impl FnOnce(),
    takeover: impl FnOnce(),
) -> Duration {
    let ping = Ping::to(lab, fam);
    std::thread::sleep(settle);
    let at = now_s();
    event();
    takeover();
    std::thread::sleep(settle);
    gap_around(&ping.stop(lab), at).unwrap()
}

/// Stops every speaker of a test (SIGKILL through the lab).
pub fn stop_all(lab: &Lab, speakers: &[&Speaker]) {
    for s in speakers {
        let _ = lab.kill(s.pid);
    }
}

/// A VRRPv3 pair of ours at advert_int 0.1: the MASTER on director 0 with
/// `top` blocks and `extra` instance lines (what it tracks), the BACKUP on
/// director 1; then 0.5 s of adverts.
pub fn start_fast_pair(lab: &Lab, top: &'static str, extra: &'static str) -> (Speaker, Speaker) {
    let master = Conf {
        top,
        extra,
        ..Conf::master().v3("0.1")
    };
    let pair = start_master_then_backup(lab, &master, &Conf::backup().v3("0.1"), Peer::Ours);
    std::thread::sleep(Duration::from_millis(500));
    pair
}

/// The longest gap in the client's pings (for a second before and after)
/// while director 0's master goes (`event`) and director 1 takes the VIP
/// over. The wait for director 1 allows 10 s: the bound that matters is
/// the caller's on the gap, which spans the takeover.
pub fn handover_gap(lab: &Lab, fam: Family, event: impl FnOnce()) -> Duration {
    ping_gap_across(lab, fam, Duration::from_secs(1), event, || {
        fam.wait_master(lab, 1, Duration::from_secs(10)).unwrap()
    })
}

/// The seed's pair ([`Family::seed`]): our MASTER on director 0, our
/// BACKUP on director 1.
pub fn start_seed_pair(lab: &Lab, fam: Family) -> (Speaker, Speaker) {
    let (m, b) = fam.seed();
    start_master_then_backup(lab, &m, &b, Peer::Ours)
}

/// [`start_seed_pair`], then 1.5 s of adverts so both have settled.
pub fn settled_seed_pair(lab: &Lab, fam: Family) -> (Speaker, Speaker) {
    let pair = start_seed_pair(lab, fam);
    std::thread::sleep(Duration::from_millis(1500));
    pair
}

/// Director `dir` takes the VIP over within `within`, and `s` says why
/// within a second.
pub fn wait_takeover(lab: &Lab, dir: usize, within: Duration, s: &Speaker, says: &str) {
    wait_master(lab, dir, within).unwrap();
    wait_log(s, says, Duration::from_secs(1));
}

/// The master goes to FAULT saying `says`: director 1 takes the VIP over
/// within `within`, and the master says both within a second.
pub fn wait_fault_takeover(lab: &Lab, within: Duration, master: &Speaker, says: &str) {
    wait_takeover(lab, 1, within, master, says);
    wait_log(
        master,
        "(VI_1) Entering FAULT STATE",
        Duration::from_secs(1),
    );
}

/// Polls `cond` every 20 ms until it holds; fails the test naming `what`
/// after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    lvs_testkit::wait_until(what, timeout, Duration::from_millis(20), cond).unwrap()
}

/// Until both directors hold the VIP (split brain).
pub fn wait_both_masters(lab: &Lab, what: &str, timeout: Duration) {
    wait_for(what, timeout, || {
        vip_on(lab, 0).is_some() && vip_on(lab, 1).is_some()
    })
}

/// Our speaker `s`, a BACKUP, accepted at least `n` adverts of the master
/// (within 5 s).
pub fn wait_received(s: &Speaker, n: u64) {
    lvs_testkit::wait_until(
        &format!("{n} adverts accepted"),
        Duration::from_secs(5),
        Duration::from_millis(50),
        || received(s) >= n,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", log_text(s)))
}

/// Our speaker `s` is BACKUP under the master advertising from
/// `master_ip`, and refused none of its adverts.
pub fn assert_backup_of(s: &Speaker, master_ip: &str) {
    wait_state(s, "Backup", Duration::from_secs(1));
    let st = stats(s).unwrap();
    assert!(
        st["rejected"].as_object().unwrap().is_empty(),
        "rejections: {st}"
    );
    assert_eq!(st["master_ip"], master_ip, "{st}");
}

/// One test per peer of our speaker: ours, and keepalived (skipped where
/// it is not installed): `ours_test, keepalived_test => f;` runs
/// `f(Peer::Ours)` and `f(Peer::Keepalived)`.
#[macro_export]
macro_rules! peer_tests {
    ($($ours:ident, $keepalived:ident => $f:path;)+) => {$(
        #[test]
        #[ignore = "needs root: run cargo xtask test"]
        fn $ours() {
            $f(Peer::Ours);
        }
        $crate::keepalived_tests! {
            $keepalived => $f(Peer::Keepalived);
        }
    )+};
}
