//! What lvsd does with the keepalived features an operator would miss: one
//! table, read by the parser (`lvsd -t` warnings and errors), by the lints
//! (forwarding methods), by lvsd's plan (services refused) and checked
//! against the README's feature table by a test.
//!
//! Three answers, as `lvsd -t` gives them:
//! - [`Support::Runs`]: lvsd does it; nothing is said.
//! - [`Support::Ignored`]: accepted, not acted on; the warning says what
//!   traffic will see instead.
//! - [`Support::Refused`]: lvsd will not run what carries it (the virtual
//!   server); an error, so `lvsd -t` exits 4 (keepalived's "errors but
//!   would run") and the rest of the config runs.
//!
//! Keywords keepalived knows that appear in no row here and have no model
//! get the generic "not supported yet, ignored" warning (keywords.rs).
//! Flip a row when the agent grows.

/// What lvsd does with a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    Runs,
    /// What traffic sees instead.
    Ignored(&'static str),
    /// Why the block carrying it is not run.
    Refused(&'static str),
}

/// One row: a keyword in a block, optionally only for one value.
#[derive(Clone, Copy, Debug)]
pub struct Capability {
    /// The block: `global_defs`, `vrrp_instance`, `vrrp_sync_group` (the
    /// block itself at the top level: `root`), `virtual_server`, `real_server`.
    pub ctx: &'static str,
    pub keyword: &'static str,
    /// Only when the keyword's first value is this (e.g. `lb_kind NAT`).
    pub value: Option<&'static str>,
    pub support: Support,
}

const fn runs(ctx: &'static str, keyword: &'static str) -> Capability {
    Capability {
        ctx,
        keyword,
        value: None,
        support: Support::Runs,
    }
}

const fn ignored(ctx: &'static str, keyword: &'static str, what: &'static str) -> Capability {
    Capability {
        ctx,
        keyword,
        value: None,
        support: Support::Ignored(what),
    }
}

const fn refused(
    ctx: &'static str,
    keyword: &'static str,
    value: &'static str,
    why: &'static str,
) -> Capability {
    Capability {
        ctx,
        keyword,
        value: Some(value),
        support: Support::Refused(why),
    }
}

const UNCHECKED: &str =
    "a real server checked only by it counts as up and keeps receiving connections";
const NOT_DR_NAT: &str = "lvsd forwards by Direct Routing only (the destination MAC is rewritten); real servers set up for NAT send replies through the director, which does not translate them back, so the service would not answer";
const NOT_DR_TUN: &str = "lvsd forwards by Direct Routing only (the destination MAC is rewritten, nothing is encapsulated); real servers set up for IP-in-IP tunnelling on another network would not receive the frames";

/// The table. Order: as in the README.
pub const CAPABILITIES: &[Capability] = &[
    // Forwarding.
    Capability {
        ctx: "virtual_server",
        keyword: "lb_kind",
        value: Some("DR"),
        support: Support::Runs,
    },
    refused("virtual_server", "lb_kind", "NAT", NOT_DR_NAT),
    refused("virtual_server", "lb_kind", "TUN", NOT_DR_TUN),
    refused("virtual_server", "lvs_method", "NAT", NOT_DR_NAT),
    refused("virtual_server", "lvs_method", "TUN", NOT_DR_TUN),
    refused("real_server", "lvs_method", "NAT", NOT_DR_NAT),
    refused("real_server", "lvs_method", "TUN", NOT_DR_TUN),
    runs("virtual_server", "ops"),
    runs("virtual_server", "persistence_timeout"),
    runs("virtual_server", "persistence_granularity"),
    ignored(
        "virtual_server",
        "persistence_engine",
        "persistence is by client address only; SIP Call-ID persistence does not apply",
    ),
    // Health and quorum.
    runs("virtual_server", "quorum"),
    runs("virtual_server", "hysteresis"),
    runs("virtual_server", "quorum_up"),
    runs("virtual_server", "quorum_down"),
    runs("virtual_server", "sorry_server"),
    ignored(
        "virtual_server",
        "sorry_server_inhibit",
        "the sorry server leaves the schedule when quorum returns (it is not kept at weight 0); its connections move to the real servers",
    ),
    ignored(
        "virtual_server",
        "sorry_server_lvs_method",
        "the sorry server is reached by Direct Routing",
    ),
    runs("virtual_server", "ha_suspend"),
    runs("virtual_server", "inhibit_on_failure"),
    runs("real_server", "inhibit_on_failure"),
    runs("real_server", "uthreshold"),
    runs("real_server", "lthreshold"),
    runs("real_server", "TCP_CHECK"),
    runs("real_server", "HTTP_GET"),
    runs("real_server", "SSL_GET"),
    runs("real_server", "MISC_CHECK"),
    runs("real_server", "SMTP_CHECK"),
    runs("real_server", "DNS_CHECK"),
    runs("real_server", "UDP_CHECK"),
    runs("real_server", "PING_CHECK"),
    runs("real_server", "FILE_CHECK"),
    ignored("real_server", "BFD_CHECK", UNCHECKED),
    runs("real_server", "notify_up"),
    runs("real_server", "notify_down"),
    runs("virtual_server", "alpha"),
    runs("virtual_server", "omega"),
    // VRRP.
    runs("vrrp_instance", "track_script"),
    runs("vrrp_instance", "lvs_sync_daemon_interface"),
    runs("global_defs", "lvs_sync_daemon"),
    runs("global_defs", "lvs_timeouts"),
    ignored(
        "vrrp_instance",
        "use_vmac",
        "no VMAC interface: the VIPs go on the interface itself and are announced with its own MAC",
    ),
    runs("root", "vrrp_sync_group"),
    runs("vrrp_instance", "track_interface"),
    runs("vrrp_instance", "track_process"),
    runs("vrrp_instance", "track_file"),
    runs("root", "vrrp_track_process"),
    runs("global_defs", "notify_fifo"),
    runs("global_defs", "vrrp_notify_fifo"),
    runs("global_defs", "enable_script_security"),
    // Alerts.
    ignored("virtual_server", "smtp_alert", "no e-mail is sent"),
    ignored("real_server", "smtp_alert", "no e-mail is sent"),
    ignored("vrrp_instance", "smtp_alert", "no e-mail is sent"),
    ignored("vrrp_sync_group", "smtp_alert", "no e-mail is sent"),
];

/// What lvsd does with `keyword` (whose first value is `value`) in `ctx`:
/// the row for that value if there is one, else the keyword's own row.
pub fn lookup(ctx: &str, keyword: &str, value: Option<&str>) -> Option<Support> {
    let rows = || {
        CAPABILITIES
            .iter()
            .filter(|c| c.ctx == ctx && c.keyword == keyword)
    };
    rows()
        .find(|c| c.value.is_some() && c.value == value)
        .or_else(|| rows().find(|c| c.value.is_none()))
        .map(|c| c.support)
}

/// The README's feature table, rendered from [`CAPABILITIES`] (a test
/// keeps the README's copy equal to it).
pub fn markdown_table() -> String {
    let mut s = String::from("| block | keyword | lvsd |\n| --- | --- | --- |\n");
    for c in CAPABILITIES {
        let kw = match c.value {
            Some(v) => format!("`{} {v}`", c.keyword),
            None => format!("`{}`", c.keyword),
        };
        let what = match c.support {
            Support::Runs => "runs".to_owned(),
            Support::Ignored(w) => format!("accepted, ignored: {w}"),
            Support::Refused(w) => format!("**refused** (an error, exit 4; not run): {w}"),
        };
        s += &format!("| {} | {kw} | {what} |\n", c.ctx);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_override_the_keyword_row() {
        assert_eq!(
            lookup("virtual_server", "lb_kind", Some("DR")),
            Some(Support::Runs)
        );
        assert!(matches!(
            lookup("virtual_server", "lb_kind", Some("NAT")),
            Some(Support::Refused(_))
        ));
        assert_eq!(
            lookup("virtual_server", "quorum", Some("2")),
            Some(Support::Runs)
        );
        assert_eq!(lookup("virtual_server", "nonsense", None), None);
    }

    #[test]
    fn one_row_per_keyword_and_value() {
        let mut seen = std::collections::HashSet::new();
        for c in CAPABILITIES {
            assert!(seen.insert((c.ctx, c.keyword, c.value)), "twice: {c:?}");
        }
    }
}
