//! `vrrp_script`, `vrrp_sync_group` and `vrrp_instance`.

use std::net::IpAddr;
use std::time::Duration;

use super::{block, leaf, Kw, Parser};
use crate::diag::Span;
use crate::keywords::{SCRIPT_ALL, SYNC_GROUP_ALL, TRACK_PROCESS_ALL, VRRP_ALL};
use crate::model::{
    Auth, AuthType, Config, Notify, ParamMatch, TrackInterface, TrackProcess, TrackScript,
    VipEntry, VrrpInstance, VrrpScript, VrrpState, VrrpSyncGroup,
};
use crate::tree::Node;

const MAX_SECS: Duration = Duration::from_secs(u32::MAX as u64);

/// The block's name (second word), or an error.
fn block_name(p: &mut Parser, n: &Node) -> Option<String> {
    let name = p.string(n, 1)?;
    p.extra(n, 1);
    if n.block.is_none() {
        p.diags
            .fatal(n.span(), format!("`{}` needs a block", n.keyword()))
            .help(format!("write `{} {} {{ ... }}`", n.keyword(), name));
        return None;
    }
    Some(name)
}

// ---------------------------------------------------------------- vrrp_script

struct ScriptB {
    s: VrrpScript,
    has_script: bool,
}

static SCRIPT_KW: &[Kw<ScriptB>] = &[
    leaf("script", |p, b, n| {
        if let Some(s) = p.rest(n, 1) {
            b.s.script = s;
            b.has_script = true;
        }
    }),
    leaf("interval", |p, b, n| {
        // keepalived 2.3: 0.001 .. UINT_MAX/TIMER_HZ*1000; 0 means 1 s.
        if let Some(d) = p.timer(n, 1, Duration::ZERO, MAX_SECS) {
            whole_seconds_in_2_2_7(p, n, &b.s.name, d);
            b.s.interval = if d.is_zero() {
                Duration::from_secs(1)
            } else {
                d
            };
        }
    }),
    leaf("timeout", |p, b, n| {
        // keepalived vrrp_vscript_timeout_handler: 0 means 1 s.
        b.s.timeout = p.timer(n, 1, Duration::ZERO, MAX_SECS).map(|d| {
            whole_seconds_in_2_2_7(p, n, &b.s.name, d);
            if d.is_zero() {
                p.diags.error(
                    n.span(),
                    format!(
                        "({}): vrrp script timeout must be greater than 0, setting to 1",
                        b.s.name
                    ),
                );
                Duration::from_secs(1)
            } else {
                d
            }
        })
    }),
    leaf("weight", |p, b, n| {
        // keepalived vrrp_vscript_weight_handler: [-253, 253] [reverse].
        if let Some(w) = p.number(n, 1, -253, 253) {
            b.s.weight = w;
        }
        if let Some(w) = n.words.get(2) {
            if w.text == "reverse" {
                b.s.weight_reverse = true;
            } else {
                p.diags.error(
                    &w.span,
                    format!(
                        "unknown weight option `{}`; only `reverse` is allowed",
                        w.text
                    ),
                );
            }
        }
    }),
    leaf("rise", |p, b, n| {
        if let Some(v) = p.number(n, 1, 1, u32::MAX) {
            b.s.rise = v;
        }
    }),
    leaf("fall", |p, b, n| {
        if let Some(v) = p.number(n, 1, 1, u32::MAX) {
            b.s.fall = v;
        }
    }),
    leaf("user", |p, b, n| b.s.user = p.rest(n, 1)),
    leaf("init_fail", |_, b, _| b.s.init_fail = true),
];

// ---------------------------------------------------------- vrrp_track_process

fn tp_delay(p: &mut Parser, n: &Node) -> Option<Duration> {
    // keepalived: 0.000001 .. 3600 s.
    p.timer(n, 1, Duration::from_micros(1), Duration::from_secs(3600))
}

static TRACK_PROCESS_KW: &[Kw<TrackProcess>] = &[
    leaf("process", |p, t, n| {
        let Some(name) = p.string(n, 1) else { return };
        t.process = name;
        t.params = n.words.iter().skip(2).map(|w| w.text.clone()).collect();
        if !t.params.is_empty() {
            if t.param_match == ParamMatch::None {
                t.param_match = ParamMatch::Exact;
            }
            t.full_command = true;
        }
    }),
    leaf("param_match", |p, t, n| {
        t.full_command = true;
        t.param_match = match n.words.get(1).map(|w| w.text.as_str()) {
            None => ParamMatch::Exact,
            Some("initial") => ParamMatch::Initial,
            Some("partial") => ParamMatch::Partial,
            Some(other) => {
                p.diags.error(
                    &n.words[1].span,
                    format!("Invalid param_match type {other} - ignoring"),
                );
                t.param_match
            }
        };
    }),
    leaf("weight", |p, t, n| {
        if let Some(w) = p.number(n, 1, -254, 254) {
            t.weight = w;
        }
        if let Some(w) = n.words.get(2) {
            if w.text == "reverse" {
                t.weight_reverse = true;
            } else {
                p.diags.error(
                    &w.span,
                    format!(
                        "vrrp_track_process {} unknown weight option {}",
                        t.name, w.text
                    ),
                );
            }
        }
    }),
    leaf("quorum", |p, t, n| {
        if let Some(q) = p.number(n, 1, 1, 65535) {
            t.quorum = q;
        }
    }),
    leaf("quorum_max", |p, t, n| {
        if let Some(q) = p.number(n, 1, 0, 65535) {
            t.quorum_max = q;
            if q == 0 {
                t.quorum = 0;
            }
        }
    }),
    leaf("delay", |p, t, n| {
        if let Some(d) = tp_delay(p, n) {
            t.fork_delay = d;
            t.terminate_delay = d;
        }
    }),
    leaf("terminate_delay", |p, t, n| {
        if let Some(d) = tp_delay(p, n) {
            t.terminate_delay = d;
        }
    }),
    leaf("fork_delay", |p, t, n| {
        if let Some(d) = tp_delay(p, n) {
            t.fork_delay = d;
        }
    }),
    leaf("full_command", |_, t, _| t.full_command = true),
];

pub(super) fn parse_track_process(p: &mut Parser, cfg: &mut Config, n: &Node) {
    let Some(name) = block_name(p, n) else { return };
    let mut t = TrackProcess {
        span: n.span().clone(),
        name,
        process: String::new(),
        params: Vec::new(),
        param_match: ParamMatch::None,
        full_command: false,
        weight: 0,
        weight_reverse: false,
        // keepalived alloc_vrrp_process: quorum 1, quorum_max unlimited.
        quorum: 1,
        quorum_max: u32::MAX,
        fork_delay: Duration::ZERO,
        terminate_delay: Duration::ZERO,
    };
    p.dispatch(
        "vrrp_track_process",
        &[TRACK_PROCESS_KW],
        TRACK_PROCESS_ALL,
        &mut t,
        n.body(),
    );
    if t.process.is_empty() {
        p.diags.error(
            n.span(),
            format!("track process '{}' process name not specified", t.name),
        );
        return;
    }
    if t.quorum > t.quorum_max {
        p.diags.error(
            n.span(),
            format!(
                "vrrp_track_process {}: quorum is greater than quorum_max",
                t.name
            ),
        );
        return;
    }
    cfg.vrrp_track_processes.push(t);
}

pub(super) fn parse_script(p: &mut Parser, cfg: &mut Config, n: &Node) {
    let Some(name) = block_name(p, n) else { return };
    let mut b = ScriptB {
        s: VrrpScript {
            span: n.span().clone(),
            name,
            script: String::new(),
            // keepalived vrrp_script defaults: interval 1 s, rise 1, fall 1.
            interval: Duration::from_secs(1),
            timeout: None,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            init_fail: false,
        },
        has_script: false,
    };
    p.dispatch("vrrp_script", &[SCRIPT_KW], SCRIPT_ALL, &mut b, n.body());
    if !b.has_script {
        p.diags
            .error(
                n.span(),
                format!("vrrp_script `{}` has no `script`; ignored", b.s.name),
            )
            .help("add `script \"/path/to/check args\"`");
        return;
    }
    if cfg.vrrp_scripts.iter().any(|s| s.name == b.s.name) {
        p.diags.error(
            n.span(),
            format!(
                "vrrp_script `{}` defined twice; the second is ignored",
                b.s.name
            ),
        );
        return;
    }
    cfg.vrrp_scripts.push(b.s);
}

// ------------------------------------------------------------ shared entries

fn track_interfaces(p: &mut Parser, n: &Node) -> Vec<TrackInterface> {
    tracked(p, n, "track_interface", |span, name, weight, reverse| {
        TrackInterface {
            span,
            name,
            weight,
            reverse,
        }
    })
}

fn track_scripts(p: &mut Parser, n: &Node) -> Vec<TrackScript> {
    tracked(p, n, "track_script", track_entry)
}

fn track_entry(span: Span, name: String, weight: Option<i32>, reverse: bool) -> TrackScript {
    TrackScript {
        span,
        name,
        weight,
        reverse,
    }
}

/// The entries of a `track_interface` / `track_script` block: `NAME [weight
/// W [reverse]]`, W in -254..=254; other options are warned about and
/// ignored.
fn tracked<T>(
    p: &mut Parser,
    n: &Node,
    block: &str,
    make: impl Fn(Span, String, Option<i32>, bool) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    for e in n.block.iter().flatten() {
        let mut reverse = false;
        let weight = match e.words.get(1) {
            Some(w) if w.text == "weight" => match e.words.get(2) {
                Some(v) => {
                    match e.words.get(3) {
                        Some(r) if r.text == "reverse" => reverse = true,
                        Some(r) => {
                            p.diags.warn(
                                &r.span,
                                format!("unknown {block} weight option `{}`; ignored", r.text),
                            );
                        }
                        None => {}
                    }
                    p.number_word("weight", v, -254, 254)
                }
                None => {
                    p.diags.error(&w.span, "`weight` needs a value");
                    None
                }
            },
            Some(w) => {
                p.diags.warn(
                    &w.span,
                    format!("unknown {block} option `{}`; ignored", w.text),
                );
                None
            }
            None => None,
        };
        out.push(make(
            e.span().clone(),
            e.keyword().to_string(),
            weight,
            reverse,
        ));
    }
    out
}

fn notify(p: &mut Parser, notify: &mut Notify, n: &Node) {
    let v = p.rest(n, 1);
    match n.keyword() {
        "notify_master" => notify.master = v,
        "notify_backup" => notify.backup = v,
        "notify_fault" => notify.fault = v,
        "notify_stop" => notify.stop = v,
        _ => notify.any = v,
    }
}

// ------------------------------------------------------------ vrrp_sync_group

static SYNC_KW: &[Kw<VrrpSyncGroup>] = &[
    block("group", |_, g, n| {
        for e in n.block.iter().flatten() {
            g.group.extend(e.words.iter().map(|w| w.text.clone()));
        }
    }),
    block("track_interface", |p, g, n| {
        g.track_interface = track_interfaces(p, n)
    }),
    block("track_script", |p, g, n| {
        g.track_script = track_scripts(p, n)
    }),
    block("track_process", |p, g, n| {
        g.track_process = tracked(p, n, "track_process", track_entry)
    }),
    block("track_file", |p, g, n| {
        g.track_file = tracked(p, n, "track_file", track_entry)
    }),
    leaf("notify_master", |p, g, n| notify(p, &mut g.notify, n)),
    leaf("notify_backup", |p, g, n| notify(p, &mut g.notify, n)),
    leaf("notify_fault", |p, g, n| notify(p, &mut g.notify, n)),
    leaf("notify_stop", |p, g, n| notify(p, &mut g.notify, n)),
    leaf("notify", |p, g, n| notify(p, &mut g.notify, n)),
    leaf("smtp_alert", |p, g, n| {
        g.smtp_alert = p.flag(n).unwrap_or(false)
    }),
    leaf("global_tracking", |_, g, _| g.global_tracking = true),
    // The newer name of `global_tracking`.
    leaf("sync_group_tracking_weight", |_, g, _| {
        g.global_tracking = true
    }),
];

pub(super) fn parse_sync_group(p: &mut Parser, cfg: &mut Config, n: &Node) {
    let Some(name) = block_name(p, n) else { return };
    let mut g = VrrpSyncGroup {
        span: n.span().clone(),
        name,
        group: Vec::new(),
        notify: Notify::default(),
        track_interface: Vec::new(),
        track_script: Vec::new(),
        track_process: Vec::new(),
        track_file: Vec::new(),
        smtp_alert: false,
        global_tracking: false,
    };
    let body = n.body();
    // Old syntax (keepalived.conf.vrrp.lvs_syncd): instance names listed
    // directly in the block, without `group { }`. keepalived 2.2.7 no longer
    // reads them ("Unknown keyword 'VI_2'"): the instances are not synced.
    let (names, rest): (Vec<&Node>, Vec<&Node>) = body.iter().partition(|c| {
        c.block.is_none() && c.words.len() == 1 && !SYNC_GROUP_ALL.contains(&c.keyword())
    });
    for c in &names {
        p.diags
            .error(
                c.span(),
                format!(
                    "Unknown keyword '{}' in vrrp_sync_group `{}`: instance names listed without `group {{ }}` are ignored, as keepalived 2.2.7 ignores them",
                    c.keyword(),
                    g.name
                ),
            )
            .help("put them in a `group { ... }` block");
    }
    let rest: Vec<Node> = rest.into_iter().cloned().collect();
    p.dispatch("vrrp_sync_group", &[SYNC_KW], SYNC_GROUP_ALL, &mut g, &rest);
    if g.group.is_empty() {
        p.diags.error(
            n.span(),
            format!("vrrp_sync_group `{}` has no instances; ignored", g.name),
        );
        return;
    }
    let name = g.name.clone();
    known_scripts_only(p, cfg, &name, &mut g.track_script);
    cfg.vrrp_sync_groups.push(g);
}

/// keepalived looks a `track_script` name up when it reads it
/// (vrrp_track.c alloc_track_script): a script defined further down, or not
/// at all, is not tracked ("track script X not found, ignoring...").
fn known_scripts_only(p: &mut Parser, cfg: &Config, owner: &str, list: &mut Vec<TrackScript>) {
    list.retain(|t| {
        if cfg.vrrp_scripts.iter().any(|s| s.name == t.name) {
            return true;
        }
        p.diags
            .error(
                &t.span,
                format!("({owner}) track script {} not found, ignoring...", t.name),
            )
            .help(format!(
                "define `vrrp_script {} {{ ... }}` above this block: keepalived looks scripts up as it reads",
                t.name
            ));
        false
    });
}

// -------------------------------------------------------------- vrrp_instance

struct VrrpB {
    v: VrrpInstance,
    interface: Option<String>,
    vrid: Option<u8>,
    garp_delay: Option<Duration>,
    garp_repeat: Option<u32>,
    garp_refresh: Option<Option<Duration>>,
    priority_set: bool,
    /// The instance's family so far: `Some(true)` IPv6 (keepalived's
    /// `vrrp->family`, set by the first address or `native_ipv6`).
    family_v6: Option<bool>,
}

impl VrrpB {
    /// keepalived's rule: the first address fixes the instance's family;
    /// later ones of the other family are refused with keepalived's error
    /// at `span` (vrrp_data.c alloc_vrrp_vip, alloc_vrrp_unicast_peer,
    /// vrrp_parser.c). Returns whether `a` is of the instance's family.
    fn family_ok(&mut self, p: &mut Parser, a: IpAddr, span: &Span, role: AddrRole) -> bool {
        let v6 = *self.family_v6.get_or_insert(a.is_ipv6());
        if v6 == a.is_ipv6() {
            return true;
        }
        let name = &self.v.name;
        let (msg, help) = match role {
            AddrRole::Vip => (
                format!("({name}): address family must match VRRP instance [{a}] - ignoring"),
                "one instance carries one family in its adverts: put the other family's addresses in a second vrrp_instance, or in virtual_ipaddress_excluded",
            ),
            AddrRole::UnicastPeer => (
                format!("Configuration error: VRRP instance[{name}] and unicast peer address[{a}] MUST be of the same family !!! Skipping..."),
                "an instance talks to its peers in one family: the one of its virtual_ipaddress",
            ),
            AddrRole::Src => (
                format!("Configuration error: VRRP instance[{name}] and src address[{a}] MUST be of the same family !!! Skipping..."),
                "the source address must be of the family of the instance's virtual_ipaddress",
            ),
        };
        p.diags.error(span, msg).help(help);
        false
    }
}

/// What an instance's address is, for the words of a family mismatch.
#[derive(Clone, Copy)]
enum AddrRole {
    Vip,
    UnicastPeer,
    Src,
}

fn vips(p: &mut Parser, n: &Node) -> Vec<VipEntry> {
    let mut out = Vec::new();
    for e in n.block.iter().flatten() {
        if let Some(v) = vip(p, e) {
            out.push(v);
        }
    }
    out
}

/// `ADDR[/LEN] [brd ADDR] [dev IF] [scope S] [label L] [no_track] ...`
fn vip(p: &mut Parser, e: &Node) -> Option<VipEntry> {
    let w = &e.words[0];
    let (addr_s, len_s) = match w.text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (w.text.as_str(), None),
    };
    let addr: IpAddr = match addr_s.parse() {
        Ok(a) => a,
        Err(_) => {
            p.diags
                .fatal(
                    &w.span,
                    format!("virtual_ipaddress: `{}` is not a valid IP address", w.text),
                )
                .help("write ADDRESS[/PREFIX], e.g. 192.0.2.10/24");
            return None;
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = match len_s {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(v) if v <= max => v,
            _ => {
                p.diags
                    .fatal(
                        &w.span,
                        format!(
                            "virtual_ipaddress: bad prefix length `/{l}` in `{}`",
                            w.text
                        ),
                    )
                    .help(format!("use a prefix length from 0 to {max}"));
                return None;
            }
        },
    };
    let mut v = VipEntry {
        span: w.span.clone(),
        addr,
        prefix_len,
        brd: None,
        brd_span: None,
        dev: None,
        scope: None,
        label: None,
        no_track: false,
        dad: false,
    };
    let mut i = 1;
    while i < e.words.len() {
        let opt = &e.words[i];
        let val = e.words.get(i + 1);
        let takes_value = matches!(
            opt.text.as_str(),
            "brd"
                | "broadcast"
                | "dev"
                | "scope"
                | "label"
                | "peer"
                | "preferred_lft"
                | "track_group"
        );
        if takes_value && val.is_none() {
            p.diags.error(
                &opt.span,
                format!("virtual_ipaddress option `{}` needs a value", opt.text),
            );
            break;
        }
        match (opt.text.as_str(), val) {
            ("brd" | "broadcast", Some(b)) => {
                if b.text == "+" || b.text == "-" {
                    // `brd +` / `brd -`: computed by the kernel / none.
                } else if addr.is_ipv4() {
                    v.brd = p.ipv4_word("brd", b);
                    v.brd_span = Some(b.span.clone());
                } else {
                    p.diags
                        .warn(&b.span, "`brd` does not apply to IPv6 addresses; ignored");
                }
            }
            ("dev", Some(b)) => v.dev = Some(b.text.clone()),
            ("scope", Some(b)) => v.scope = Some(b.text.clone()),
            ("label", Some(b)) => v.label = Some(b.text.clone()),
            ("no_track", _) => v.no_track = true,
            ("-nodad", _) => v.dad = true,
            ("peer" | "preferred_lft" | "track_group", Some(_))
            | ("home" | "nodad" | "noprefixroute" | "autojoin" | "use_vmac", _) => {
                p.warn_once(
                    &format!("vip/{}", opt.text),
                    e,
                    format!(
                        "virtual_ipaddress option `{}` is not supported yet, ignored",
                        opt.text
                    ),
                    None,
                );
            }
            _ => {
                p.diags
                    .warn(
                        &opt.span,
                        format!("unknown virtual_ipaddress option `{}`; ignored", opt.text),
                    )
                    .help("options are brd, dev, scope, label, no_track, -nodad");
            }
        }
        // Past the option and, for those that take one, its value.
        i += if takes_value { 2 } else { 1 };
    }
    Some(v)
}

fn is_link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

/// `unicast_src_ip` / `mcast_src_ip`: of the instance's family
/// (keepalived vrrp_srcip_handler).
fn src_ip(p: &mut Parser, b: &mut VrrpB, n: &Node) -> Option<IpAddr> {
    let a = p.ip(n, 1)?;
    b.family_ok(p, a, n.span(), AddrRole::Src).then_some(a)
}

static VRRP_KW: &[Kw<VrrpB>] = &[
    leaf("state", |p, b, n| {
        let Some(w) = p.arg(n, 1) else { return };
        b.v.state = match w.text.as_str() {
            "MASTER" => Some(VrrpState::Master),
            "BACKUP" => Some(VrrpState::Backup),
            other => {
                p.diags
                    .error(&w.span, format!("unknown state `{other}`, using BACKUP"))
                    .help("write `state MASTER` or `state BACKUP`");
                Some(VrrpState::Backup)
            }
        };
    }),
    leaf("interface", |p, b, n| {
        b.interface = p.string(n, 1);
        p.extra(n, 1);
    }),
    leaf("virtual_router_id", |p, b, n| {
        // keepalived vrrp_vrid_handler: 1..=255.
        b.vrid = p.number(n, 1, 1, u8::MAX);
    }),
    leaf("priority", |p, b, n| {
        // keepalived vrrp_prio_handler: 1..=255 (VRRP_PRIO_OWNER), else the
        // default 100.
        if let Some(v) = p.number(n, 1, 1, u8::MAX) {
            b.v.priority = v;
            b.priority_set = true;
        }
    }),
    leaf("advert_int", |p, b, n| {
        // keepalived vrrp_adv_handler: 0.01 .. 255 s.
        if let Some(d) = p.timer(n, 1, Duration::from_millis(10), Duration::from_secs(255)) {
            b.v.advert_int = d;
        }
    }),
    leaf("version", |p, b, n| {
        let Some(v) = p.number(n, 1, 2u8, 3) else {
            return;
        };
        if v == 2 && b.family_v6 == Some(true) {
            // keepalived vrrp_version_handler: VRRPv2 is IPv4 only.
            p.diags
                .error(
                    n.span(),
                    format!(
                    "({}) vrrp_version 2 conflicts with configured or deduced version 3; ignoring.",
                    b.v.name
                ),
                )
                .help("IPv6 instances run VRRPv3: remove `version 2`");
            return;
        }
        b.v.version = Some(v);
    }),
    leaf("native_ipv6", |p, b, n| {
        if b.family_v6 == Some(false) {
            p.diags
                .error(
                    n.span(),
                    format!(
                        "({}) Cannot specify native_ipv6 with IPv4 addresses",
                        b.v.name
                    ),
                )
                .help("remove `native_ipv6`, or give the instance IPv6 addresses only");
            return;
        }
        b.family_v6 = Some(true);
        b.v.native_ipv6 = true;
        b.v.version = Some(3);
    }),
    leaf("nopreempt", |_, b, _| b.v.preempt = false),
    leaf("preempt", |_, b, _| b.v.preempt = true),
    leaf("preempt_delay", |p, b, n| {
        // keepalived: 0 .. TIMER_MAX_SEC (1000 s).
        if let Some(d) = p.timer(n, 1, Duration::ZERO, Duration::from_secs(1000)) {
            b.v.preempt_delay = d;
        }
    }),
    block("authentication", |p, b, n| {
        let mut ty = None;
        let mut pass = None;
        for e in n.block.iter().flatten() {
            match e.keyword() {
                "auth_type" => {
                    let Some(w) = p.arg(e, 1) else { continue };
                    ty = match w.text.as_str() {
                        "PASS" => Some(AuthType::Pass),
                        "AH" => Some(AuthType::Ah),
                        other => {
                            p.diags
                                .fatal(&w.span, format!("unknown auth_type `{other}`"))
                                .help("write `auth_type PASS` or `auth_type AH`");
                            None
                        }
                    };
                }
                "auth_pass" => {
                    let Some(w) = p.arg(e, 1) else { continue };
                    let mut s = w.text.clone();
                    // keepalived vrrp_auth_pass_handler: truncated to 8 bytes.
                    if s.len() > 8 {
                        let mut cut = 8;
                        while !s.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        s.truncate(cut);
                        p.diags
                            .warn(
                                &w.span,
                                format!(
                                    "auth_pass is longer than 8 characters; only `{s}` is used"
                                ),
                            )
                            .help(format!("write `auth_pass {s}` on every router"));
                    }
                    pass = Some(s);
                }
                other => {
                    p.diags.warn(
                        e.span(),
                        format!("unknown keyword `{other}` in authentication; ignored"),
                    );
                }
            }
        }
        match ty {
            Some(ty) => {
                b.v.authentication = Some(Auth {
                    span: n.span().clone(),
                    ty,
                    pass: pass.unwrap_or_default(),
                })
            }
            None => p
                .diags
                .error(
                    n.span(),
                    "authentication without a valid auth_type; ignored",
                )
                .help("add `auth_type PASS`"),
        }
    }),
    block("virtual_ipaddress", |p, b, n| {
        for v in vips(p, n) {
            if b.family_ok(p, v.addr, &v.span, AddrRole::Vip) {
                b.v.virtual_ipaddress.push(v);
            }
        }
    }),
    block("virtual_ipaddress_excluded", |p, b, n| {
        let v = vips(p, n);
        b.v.virtual_ipaddress_excluded.extend(v);
    }),
    leaf("unicast_src_ip", |p, b, n| {
        b.v.unicast_src_ip = src_ip(p, b, n)
    }),
    leaf("mcast_src_ip", |p, b, n| b.v.mcast_src_ip = src_ip(p, b, n)),
    block("unicast_peer", |p, b, n| {
        for e in n.block.iter().flatten() {
            let Some(a) = p.ip_word("unicast_peer", &e.words[0]) else {
                continue;
            };
            if b.family_ok(p, a, &e.words[0].span, AddrRole::UnicastPeer) {
                b.v.unicast_peer.push(a);
            }
        }
    }),
    block("track_interface", |p, b, n| {
        let t = track_interfaces(p, n);
        b.v.track_interface.extend(t);
    }),
    block("track_script", |p, b, n| {
        let t = track_scripts(p, n);
        b.v.track_script.extend(t);
    }),
    block("track_process", |p, b, n| {
        let t = tracked(p, n, "track_process", track_entry);
        b.v.track_process.extend(t);
    }),
    block("track_file", |p, b, n| {
        let t = tracked(p, n, "track_file", track_entry);
        b.v.track_file.extend(t);
    }),
    leaf("dont_track_primary", |_, b, _| {
        b.v.dont_track_primary = true
    }),
    leaf("notify_master", |p, b, n| notify(p, &mut b.v.notify, n)),
    leaf("notify_backup", |p, b, n| notify(p, &mut b.v.notify, n)),
    leaf("notify_fault", |p, b, n| notify(p, &mut b.v.notify, n)),
    leaf("notify_stop", |p, b, n| notify(p, &mut b.v.notify, n)),
    leaf("notify", |p, b, n| notify(p, &mut b.v.notify, n)),
    leaf("smtp_alert", |p, b, n| {
        b.v.smtp_alert = p.flag(n).unwrap_or(false)
    }),
    leaf("lvs_sync_daemon_interface", |p, b, n| {
        p.diags
            .warn(
                n.span(),
                format!(
                    "({}) Specifying lvs_sync_daemon_interface against a vrrp is deprecated.",
                    b.v.name
                ),
            )
            .help("Please use global lvs_sync_daemon");
        b.v.lvs_sync_daemon_interface = p.string(n, 1)
    }),
    leaf("garp_master_delay", |p, b, n| {
        b.garp_delay = p
            .number(n, 1, 0, u32::MAX)
            .map(|v| Duration::from_secs(v.into()));
    }),
    leaf("garp_master_repeat", |p, b, n| {
        // keepalived: 0 is taken as 1.
        b.garp_repeat = p.number(n, 1, 0, u32::MAX).map(|v| v.max(1));
    }),
    leaf("garp_master_refresh", |p, b, n| {
        b.garp_refresh = p
            .number(n, 1, 0, u32::MAX)
            .map(|v| (v > 0).then(|| Duration::from_secs(v.into())));
    }),
    leaf("garp_master_refresh_repeat", |p, b, n| {
        if let Some(v) = p.number(n, 1, 0, u32::MAX) {
            b.v.garp_master_refresh_repeat = v.max(1);
        }
    }),
    leaf("use_vmac", |_, b, n| {
        b.v.use_vmac = Some(n.words.get(1).map(|w| w.text.clone()).unwrap_or_default());
    }),
    leaf("accept", |_, b, _| b.v.accept = Some(true)),
    block("auth_hmac", |p, _, n| {
        // keepalived 2.4's HMAC-SHA256 advert trailer: not implemented, so
        // refused rather than ignored (a peer with it set drops our
        // adverts, and we would not check theirs: two masters).
        p.diags
            .error(
                n.span(),
                "`auth_hmac` (keepalived 2.4's HMAC-SHA256 advert authentication) is not supported by lvs-xdp: \
                    peers using it would drop our adverts and we could not check theirs"
                .to_string(),
            )
            .help("remove `auth_hmac` from this instance on every router of it, or keep this instance on keepalived");
    }),
    leaf("no_accept", |_, b, _| b.v.accept = Some(false)),
];

pub(super) fn parse_instance(p: &mut Parser, cfg: &mut Config, n: &Node) {
    let Some(name) = block_name(p, n) else { return };
    let mut b = VrrpB {
        v: VrrpInstance {
            span: n.span().clone(),
            name,
            state: None,
            interface: String::new(),
            virtual_router_id: 0,
            // keepalived vrrp.h: VRRP_PRIO_DFL 100, advert 1 s.
            priority: 100,
            advert_int: Duration::from_secs(1),
            version: None,
            preempt: true,
            preempt_delay: Duration::ZERO,
            authentication: None,
            virtual_ipaddress: Vec::new(),
            virtual_ipaddress_excluded: Vec::new(),
            unicast_src_ip: None,
            unicast_peer: Vec::new(),
            mcast_src_ip: None,
            track_interface: Vec::new(),
            track_script: Vec::new(),
            track_process: Vec::new(),
            track_file: Vec::new(),
            dont_track_primary: false,
            notify: Notify::default(),
            smtp_alert: false,
            lvs_sync_daemon_interface: None,
            garp_master_delay: cfg.global.vrrp_garp_master_delay,
            garp_master_repeat: cfg.global.vrrp_garp_master_repeat,
            garp_master_refresh: cfg.global.vrrp_garp_master_refresh,
            garp_master_refresh_repeat: 1,
            use_vmac: None,
            accept: None,
            native_ipv6: false,
            ipv6: false,
        },
        interface: None,
        vrid: None,
        garp_delay: None,
        garp_repeat: None,
        garp_refresh: None,
        priority_set: false,
        family_v6: None,
    };
    p.dispatch("vrrp_instance", &[VRRP_KW], VRRP_ALL, &mut b, n.body());

    // End of block: required items and cross-field checks.
    let interface = p.required(
        b.interface
            .take()
            .or_else(|| cfg.global.default_interface.clone()),
        n.span(),
        format!("vrrp_instance `{}` has no `interface`", b.v.name),
        "add `interface IFNAME` (the interface VRRP adverts are sent on)",
    );
    let vrid = p.required(
        b.vrid,
        n.span(),
        format!(
            "vrrp_instance `{}` has no valid `virtual_router_id`",
            b.v.name
        ),
        "add `virtual_router_id N` with N from 1 to 255, the same on all routers of this instance",
    );
    let ok = interface.is_some() && vrid.is_some();
    b.v.interface = interface.unwrap_or_default();
    b.v.virtual_router_id = vrid.unwrap_or_default();
    if let Some(d) = b.garp_delay {
        b.v.garp_master_delay = d;
    }
    if let Some(r) = b.garp_repeat {
        b.v.garp_master_repeat = r;
    }
    if let Some(r) = b.garp_refresh {
        b.v.garp_master_refresh = r;
    }
    // keepalived vrrp.c vrrp_complete_instance: an IPv6 instance without
    // `version` is VRRPv3.
    b.v.ipv6 = b.family_v6 == Some(true);
    if b.v.ipv6 && b.v.version.is_none() {
        b.v.version = Some(3);
    }
    if b.v.ipv6 && cfg.global.vrrp_strict {
        // keepalived vrrp_complete_instance, strict mode only (otherwise
        // an explicit `version 2` stays, and the note below is info).
        if b.v.version == Some(2) {
            p.diags
                .error(
                    n.span(),
                    format!(
                        "({}) cannot use IPv6 with VRRP version 2; setting version 3",
                        b.v.name
                    ),
                )
                .help("remove `version 2`");
            b.v.version = Some(3);
        }
        if b.v.unicast_peer.is_empty()
            && b.v
                .virtual_ipaddress
                .first()
                .is_some_and(|v| !is_link_local(v.addr))
        {
            p.diags
                .error(
                    &b.v.virtual_ipaddress[0].span,
                    format!(
                        "({}) the first IPv6 VIP address must be link local",
                        b.v.name
                    ),
                )
                .help("vrrp_strict (RFC 5798 §5.2.9): list a link-local (fe80::/10) address first");
        }
    }
    let version = b.v.version.unwrap_or(cfg.global.vrrp_version);
    let ai = b.v.advert_int;
    if version == 2 && ai.subsec_nanos() != 0 {
        // VRRPv2 adverts carry whole seconds; keepalived rounds to the
        // nearest (1.5 → 2), at least 1.
        let rounded = Duration::from_secs(((ai.as_millis() + 500) / 1000).max(1) as u64);
        p.diags
            .warn(
                n.span(),
                format!(
                    "vrrp_instance `{}`: advert_int {} is not whole seconds, VRRPv2 uses {} s",
                    b.v.name,
                    super::values::fmt_secs(ai),
                    rounded.as_secs()
                ),
            )
            .help("use whole seconds, or `version 3` for centisecond intervals");
        b.v.advert_int = rounded;
    } else if version == 3 && ai > Duration::from_millis(40950) {
        p.diags
            .error(
                n.span(),
                format!(
                    "vrrp_instance `{}`: VRRPv3 advert_int must be at most 40.95 s",
                    b.v.name
                ),
            )
            .help("use a smaller advert_int");
    }
    // keepalived vrrp.c vrrp_complete_instance: no priority and state
    // MASTER makes the address owner (255); no state follows the priority.
    if !b.priority_set && b.v.state == Some(VrrpState::Master) {
        p.diags.warn(
            n.span(),
            format!(
                "vrrp_instance `{}`: state MASTER without `priority`: keepalived makes it the address owner, priority 255",
                b.v.name
            ),
        );
        b.v.priority = 255;
    }
    if b.v.state.is_none() {
        b.v.state = Some(if b.v.priority == 255 {
            VrrpState::Master
        } else {
            VrrpState::Backup
        });
    }
    if b.v.state == Some(VrrpState::Master)
        && b.v.priority != 255
        && b.v
            .authentication
            .as_ref()
            .is_some_and(|a| a.ty == AuthType::Ah)
    {
        // keepalived vrrp.c: an AH instance cannot start as master.
        p.diags.warn(
            n.span(),
            format!(
                "({}) Initial state master is incompatible with AH authentication - clearing",
                b.v.name
            ),
        );
        b.v.state = Some(VrrpState::Backup);
    }
    // keepalived vrrp.c vrrp_complete_instance: the address owner always
    // preempts; a MASTER start clears nopreempt and preempt_delay.
    if b.v.priority == 255 && !b.v.preempt {
        p.diags.warn(
            n.span(),
            format!(
                "({}) nopreempt is incompatible with priority 255. resetting nopreempt",
                b.v.name
            ),
        );
        b.v.preempt = true;
    }
    if b.v.state == Some(VrrpState::Master) {
        if !b.v.preempt {
            p.diags.warn(
                n.span(),
                format!(
                    "({}) Warning - nopreempt will not work with initial state MASTER - clearing",
                    b.v.name
                ),
            );
            b.v.preempt = true;
        }
        if !b.v.preempt_delay.is_zero() {
            p.diags.warn(
                n.span(),
                format!(
                    "({}) Warning - preempt delay will not work with initial state MASTER - clearing",
                    b.v.name
                ),
            );
            b.v.preempt_delay = Duration::ZERO;
        }
    }
    if !b.v.preempt && !b.v.preempt_delay.is_zero() {
        p.diags.warn(
            n.span(),
            format!(
                "({}) preempt_delay is incompatible with nopreempt mode - resetting",
                b.v.name
            ),
        );
        b.v.preempt_delay = Duration::ZERO;
    }
    if b.v.priority == 255 && b.v.state == Some(VrrpState::Backup) {
        p.diags.warn(
            n.span(),
            format!(
                "vrrp_instance `{}`: priority 255 (address owner) with state BACKUP",
                b.v.name
            ),
        );
    }
    if b.v.virtual_ipaddress.is_empty() {
        p.diags.warn(
            n.span(),
            format!("vrrp_instance `{}` has no virtual_ipaddress", b.v.name),
        );
    }
    if cfg.vrrp_instances.iter().any(|v| v.name == b.v.name) {
        p.diags.error(
            n.span(),
            format!(
                "vrrp_instance `{}` defined twice; the second is ignored",
                b.v.name
            ),
        );
        return;
    }
    if ok {
        let name = b.v.name.clone();
        known_scripts_only(p, cfg, &name, &mut b.v.track_script);
        cfg.vrrp_instances.push(b.v);
    }
}

/// keepalived vrrp.c: in a sync group, if some member would start as backup
/// (state BACKUP, or not the address owner), the members wanting MASTER
/// start as BACKUP too, so the group starts in one state.
pub(super) fn resolve_sync_group_states(p: &mut Parser, cfg: &mut Config) {
    drop_weighted_tracking(p, cfg);
    for g in &cfg.vrrp_sync_groups {
        let members: Vec<usize> = g
            .group
            .iter()
            .filter_map(|name| cfg.vrrp_instances.iter().position(|v| &v.name == name))
            .collect();
        let inst = |i: usize| &cfg.vrrp_instances[i];
        let have_backup = members
            .iter()
            .any(|&i| inst(i).state != Some(VrrpState::Master) || inst(i).priority != 255);
        let masters: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| inst(i).state == Some(VrrpState::Master))
            .collect();
        if !have_backup || masters.is_empty() {
            continue;
        }
        let names: Vec<&str> = masters.iter().map(|&i| inst(i).name.as_str()).collect();
        p.diags
            .warn(
                &g.span,
                format!(
                    "vrrp_sync_group {}: {} start as BACKUP, not MASTER: keepalived starts a sync group as MASTER only when every member is an address owner (priority 255)",
                    g.name,
                    names.join(", ")
                ),
            )
            .help("write `state BACKUP` (the instance with the highest priority becomes master)");
        for i in masters {
            cfg.vrrp_instances[i].state = Some(VrrpState::Backup);
        }
    }
}

/// keepalived 2.2.7 reads a vrrp_script `interval`/`timeout` as whole
/// seconds (a running keepalived truncates `1.5` to 1, and 0 to 1 s); 2.3
/// reads decimals, as lvs-xdp does (README: deliberate differences).
fn whole_seconds_in_2_2_7(p: &mut Parser, n: &Node, script: &str, d: Duration) {
    if d.subsec_nanos() == 0 {
        return;
    }
    let truncated = d.as_secs().max(1);
    p.diags
        .warn(
            n.span(),
            format!(
                "({script}): vrrp script {} {}: keepalived 2.2.7 reads whole seconds only and would use {truncated} s; lvs-xdp uses {} s (as keepalived 2.3 does)",
                n.keyword(),
                super::values::fmt_secs(d),
                super::values::fmt_secs(d)
            ),
        )
        .help(format!("write `{} {truncated}` if the file is also read by keepalived 2.2.7", n.keyword()));
}

/// keepalived vrrp.c: an address owner (priority 255), or a member of a
/// sync group without `sync_group_tracking_weight`, cannot float its
/// priority: weighted track_scripts are dropped, tracked interfaces lose
/// their weight (sync group) or are dropped (owner).
fn drop_weighted_tracking(p: &mut Parser, cfg: &mut Config) {
    for i in 0..cfg.vrrp_instances.len() {
        let name = cfg.vrrp_instances[i].name.clone();
        let sync = cfg
            .vrrp_sync_groups
            .iter()
            .find(|g| g.group.contains(&name))
            .map(|g| !g.global_tracking);
        let owner = cfg.vrrp_instances[i].priority == 255;
        let in_sync = sync == Some(true);
        if !in_sync && !owner {
            continue;
        }
        let why = if in_sync {
            "SYNC group"
        } else {
            "address_owner"
        };
        let scripts = &cfg.vrrp_scripts;
        let v = &mut cfg.vrrp_instances[i];
        v.track_script.retain(|t| {
            let w = t.weight.unwrap_or_else(|| {
                scripts
                    .iter()
                    .find(|s| s.name == t.name)
                    .map_or(0, |s| s.weight)
            });
            if w == 0 {
                return true;
            }
            p.diags
                .warn(
                    &t.span,
                    format!(
                        "({name}) ignoring tracked script {} with weights due to {why}",
                        t.name
                    ),
                )
                .help("track it with `weight 0` (fault when it fails), or use sync_group_tracking_weight in the group");
            false
        });
        let mut keep = Vec::new();
        for mut t in std::mem::take(&mut v.track_interface) {
            if t.weight.is_some_and(|w| w != 0) {
                p.diags.warn(
                    &t.span,
                    format!(
                        "({name}) ignoring {} tracked interface {}due to {}",
                        t.name,
                        if in_sync { "weight " } else { "" },
                        if in_sync {
                            "SYNC group"
                        } else {
                            "address owner"
                        }
                    ),
                );
                if !in_sync {
                    continue;
                }
                t.weight = Some(0);
            }
            keep.push(t);
        }
        v.track_interface = keep;
    }
}
