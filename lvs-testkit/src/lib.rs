//! The lab: network namespaces, a bridge, directors, real servers, clients.
//!
//! Used by the integration tests, `cargo xtask demo` and the benches. Needs
//! root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), `ip` (iproute2) and `ethtool`.
//!
//! # Topology
//!
//! Everything lives in namespaces named `<prefix><role>` with a per-run
//! prefix `lvs-<pid>-<n>-`, on one L2 segment 198.18.0.0/16 (no default
//! route, nothing routes out, the root namespace is never touched):
//!
//! | namespace | interface | addresses |
//! | --- | --- | --- |
//! | `<prefix>sw` | bridge `br0` (stp off, forward_delay 0) + one veth peer per host, named `dir1`, `rs1`, `cl`, … | none |
//! | `<prefix>dir1` … | `spec.director_if` (default `bond0`) | 198.18.0.2, .3, … (/16); the VIPs (/32) on dir1 if `director_holds_vip` |
//! | `<prefix>rs1` … | `eth0`; VIPs on `lo` (/32) | 198.18.0.11, .12, … (/16); arp_ignore=1, arp_announce=2, rp_filter=0; `lvs-lab-httpd` on 0.0.0.0:`service_port` answering its name (`rs1`) |
//! | `<prefix>cl` | `eth0`, tx checksum offload off | 198.18.1.1 … 198.18.1.254, then 198.18.16.1 … (/16) |
//! | `<prefix>cl2` (optional) | `eth0`, tx checksum offload off | 198.18.2.1 … (/16) |
//!
//! The VIP defaults to 198.18.0.100. MACs are fixed: directors
//! `02:00:00:00:01:0i`, real servers `02:00:00:00:02:0i`, clients
//! `02:00:00:00:03:01/02`; bridge-side peers `02:00:00:01:…`. By default the
//! hosts get permanent neighbour entries for each other's addresses (see
//! [`LabSpec::static_neighbors`]); the VIPs are always resolved by real ARP.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use lvs_testkit::{http_get, http_load, Lab, LabSpec};
//!
//! let lab = Lab::create(LabSpec { real_servers: 3, client_addrs: 120, ..LabSpec::default() })?;
//! // Directly to real server 0 from the client's first address:
//! let body = lab.run_in_netns(lab.client_ns(), || {
//!     http_get(lab.client_addrs()[0], lab.real_server_service(0), Duration::from_secs(5))
//! })??;
//! assert_eq!(body, "rs1");
//! // 2 requests from each of 120 addresses through the VIP, 32 at a time:
//! let report = http_load(&lab, lab.client_ns(), lab.client_addrs(), lab.service(), 2, 32)?;
//! report.ensure_weights(&[("rs1", 1), ("rs2", 1), ("rs3", 1)], 0.1)?;
//! drop(lab); // kills the processes, deletes the namespaces
//! # anyhow::Ok(())
//! ```
//!
//! # Processes
//!
//! [`Lab::spawn`] starts `ip netns exec NS argv…` (output to a log file in
//! [`Lab::log_dir`]) and tracks the pid; [`Lab::kill`] and teardown send
//! SIGTERM, then SIGKILL after 3 s, and reap. [`Lab::exec`] runs a command
//! with a 30 s bound. [`Lab::run_in_netns`] runs a closure on a thread that
//! has `setns`'d into a namespace, so test code opens sockets there directly.
//!
//! # The HTTP server
//!
//! `lvs-lab-httpd` (this crate's binary) is found by [`httpd_path`]:
//! `$LVS_LAB_HTTPD`, next to the running executable (or one directory up, for
//! test binaries in `target/*/deps`), then `target/{debug,release}` under
//! `$CARGO_TARGET_DIR` and the workspace. Tests of this crate get it built by
//! cargo automatically; others should `cargo build -p lvs-testkit --bins`
//! first (or set `LVS_LAB_HTTPD`).
//!
//! # Environment
//!
//! `LVS_LAB_VERBOSE=1` prints timings and process exits; `LVS_LAB_KEEP_LOGS=1`
//! keeps the log directory (it is always kept when the lab is dropped during
//! a panic).

pub mod flood;
pub mod frr;
pub mod http;
pub mod netns;
pub mod process;
pub mod topology;
mod wait;

pub use http::{
    connect_from, http_get, http_load, http_load_with, http_request, HttpResponse, KeepAliveClient,
    LoadOptions, LoadReport,
};
pub use process::{httpd_path, responder_path, Pid, SpawnOutput};
pub use topology::{
    Lab, LabSpec, DEFAULT_VIP, DEFAULT_VIP6, ROUTED_CLIENT_ADDR, ROUTED_NET, ROUTER_ADDR,
};
pub use wait::wait_until;
