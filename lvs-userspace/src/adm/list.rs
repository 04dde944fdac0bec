//! `-L -n` and its variants, `--timeout`: ipvsadm.c's print_title,
//! print_service_entry and list_timeout, format for format.

use std::fmt::Write as _;

use lvs_common::tcp;

use super::{
    cut, endpoint, largenum, persistence, proto_name, rate::Rates, AdmError, Format, Select,
    Snapshot, IPVS_VERSION,
};

/// print_title.
fn title(out: &mut String, f: Format) {
    if f.stats {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
    } else if f.rate {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        );
    } else if f.thresholds {
        let _ = writeln!(
            out,
            "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        );
    } else if f.persistent_conn {
        let _ = writeln!(
            out,
            "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        );
    } else {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    }
}

/// `-L -n` (list_all, or list_service with `select`: no version line then,
/// as ipvsadm). `rate` is the earlier snapshot and the seconds between the
/// two, for `--rate`.
pub fn list(
    snap: &Snapshot,
    f: Format,
    select: Option<Select>,
    rate: Option<(&Snapshot, f64)>,
) -> Result<String, AdmError> {
    let services = snap.sorted_services(select);
    if let Some(sel) = select {
        if services.is_empty() {
            return Err(AdmError::NoSuchService(sel));
        }
    }
    let mut out = String::new();
    if select.is_none() {
        let _ = writeln!(
            out,
            "IP Virtual Server version {IPVS_VERSION} (size={})",
            snap.table_size
        );
    }
    title(&mut out, f);
    for s in services {
        // "%-4s %s" cut at 33, as ipvsadm's svc_name for IPv4 (an IPv6
        // `[addr]:port` is not cut).
        let svc_name = format!("{:<4} {}", proto_name(s), endpoint(s.vip, s.port));
        let svc_name = if s.vip.is_ipv4() {
            cut(svc_name, 33)
        } else {
            svc_name
        };
        let before = rate.and_then(|(b, _)| {
            b.services
                .iter()
                .find(|p| p.vip == s.vip && p.port == s.port && p.proto == s.proto)
        });
        let secs = rate.map(|(_, secs)| secs).unwrap_or(1.0);
        if f.stats {
            let _ = write!(out, "{svc_name:<33}");
            for v in [s.stats.conns, s.stats.packets, 0, s.stats.bytes, 0] {
                largenum(&mut out, v, f.exact);
            }
        } else if f.rate {
            let _ = write!(out, "{svc_name:<33}");
            let r = Rates::between(&s.stats, before.map(|b| &b.stats), secs);
            for v in r.columns() {
                largenum(&mut out, v, f.exact);
            }
        } else {
            let _ = write!(out, "{svc_name} {}", snap.scheduler(s));
            if let Some(flags) = snap.sched_flags(s) {
                let _ = write!(out, " ({flags})");
            }
            if let Some((timeout, mask)) = persistence(s) {
                let _ = write!(out, " persistent {timeout}");
                if let Some(mask) = mask {
                    let _ = write!(out, " mask {mask}");
                }
            }
        }
        out.push('\n');
        for b in snap.listed_backends(s) {
            let dname = endpoint(b.addr, b.port);
            let dname = if b.addr.is_ipv4() {
                cut(dname, 28)
            } else {
                dname
            };
            if f.stats {
                let _ = write!(out, "  -> {dname:<28}");
                for v in [b.stats.conns, b.stats.packets, 0, b.stats.bytes, 0] {
                    largenum(&mut out, v, f.exact);
                }
                out.push('\n');
            } else if f.rate {
                let prev = before.and_then(|p| {
                    p.backends
                        .iter()
                        .find(|x| x.addr == b.addr && x.port == b.port)
                });
                let r = Rates::between(&b.stats, prev.map(|p| &p.stats), secs);
                // ipvsadm: "%8llu" for the first three (never K/M), then
                // print_largenum for the byte rates.
                let _ = write!(
                    out,
                    "  -> {dname:<28} {:>8} {:>8} {:>8}",
                    r.cps, r.inpps, r.outpps
                );
                largenum(&mut out, r.inbps, f.exact);
                largenum(&mut out, r.outbps, f.exact);
                out.push('\n');
            } else if f.thresholds {
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                    b.u_threshold, b.l_threshold, b.active, b.inactive
                );
            } else if f.persistent_conn {
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                    b.weight, b.templates, b.active, b.inactive
                );
            } else {
                // Forward is always Route: lvs-xdp is a DR director.
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                    "Route", b.weight, b.active, b.inactive
                );
            }
        }
    }
    Ok(out)
}

/// The three timeouts `--timeout` prints (tcp, tcpfin, udp).
pub(crate) fn timeouts(snap: &Snapshot) -> [u32; 3] {
    [
        snap.timeouts_s[tcp::ESTABLISHED as usize],
        snap.timeouts_s[tcp::FIN_WAIT as usize],
        snap.timeouts_s[tcp::STATE_UDP as usize],
    ]
}

/// `--timeout` (list_timeout).
pub fn timeout(snap: &Snapshot) -> String {
    let [tcp, fin, udp] = timeouts(snap);
    format!("Timeout (tcp tcpfin udp): {tcp} {fin} {udp}\n")
}
