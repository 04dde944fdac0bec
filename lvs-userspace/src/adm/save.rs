//! `-S -n`: the table in ipvsadm-restore syntax (print_service_entry with
//! FMT_RULE), so an operator can load it into a kernel IPVS if they must.

use std::fmt::Write as _;

use super::{endpoint, persistence, Snapshot};
use crate::datapath::Protocol;

pub fn save(snap: &Snapshot) -> String {
    let mut out = String::new();
    for s in snap.sorted_services(None) {
        let opt = match s.proto {
            Some(Protocol::Udp) => "-u",
            Some(Protocol::Tcp) => "-t",
            Some(Protocol::Sctp) => "--sctp-service",
            None => "--xxx-service",
        };
        let svc = format!("{opt} {}", endpoint(s.vip, s.port));
        let _ = write!(out, "-A {svc} -s {}", snap.scheduler(s));
        if let Some((timeout, mask)) = persistence(s) {
            let _ = write!(out, " -p {timeout}");
            if let Some(mask) = mask {
                let _ = write!(out, " -M {mask}");
            }
        }
        // ipvsadm prints the scheduler flags after -p/-M (and --pe, -o).
        if let Some(flags) = snap.sched_flags(s) {
            let _ = write!(out, " -b {flags}");
        }
        out.push('\n');
        for b in snap.listed_backends(s) {
            // -g: gatewaying, i.e. Direct Routing.
            let _ = writeln!(
                out,
                "-a {svc} -r {} -g -w {}",
                endpoint(b.addr, b.port),
                b.weight
            );
        }
    }
    out
}
