//! keepalived's keyword inventory, from keepalived's parsers
//! (keepalived/core/global_parser.c, keepalived/vrrp/vrrp_parser.c,
//! keepalived/check/check_parser.c, check_api.c and the check_*.c files,
//! keepalived/bfd/bfd_parser.c, keepalived/trackers/track_file.c, at
//! acassen/keepalived 9cbce3e) and keepalived.conf(5).
//!
//! The keywords we model have handlers in the `parse` module's tables; the
//! lists here name every other keyword keepalived accepts in each block, so
//! that they parse with one "not supported yet, ignored" warning instead of
//! "unknown keyword" (or with the capability table's own warning, which
//! says what traffic sees: `capability`).

/// How lvs-xdp reads a top-level keyword keepalived knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RootKind {
    /// A block with a typed model (a handler in `parse::parse_root`).
    Modelled,
    /// Another name keepalived accepts for a modelled block.
    Alias,
    /// Known to keepalived, not modelled: skipped whole with a warning.
    Ignored,
    /// `include`, resolved while the files are read (`source`).
    Include,
}

/// One top-level keyword.
#[derive(Debug)]
pub(crate) struct RootKw {
    pub name: &'static str,
    pub kind: RootKind,
    /// Opens a block that only exists at the top level: seen inside a
    /// block, it almost always means a `}` is missing above it. (Not
    /// `track_file`, which is also a block inside `vrrp_instance`.)
    pub root_only_block: bool,
}

const fn root(name: &'static str, kind: RootKind, root_only_block: bool) -> RootKw {
    RootKw {
        name,
        kind,
        root_only_block,
    }
}

/// Every top-level keyword: the one list from which the parser's "did you
/// mean", "not supported yet, ignored" and "top-level blocks are" and the
/// tree's missing-`}` check are derived.
pub(crate) const ROOT: &[RootKw] = {
    use RootKind::*;
    &[
        root("global_defs", Modelled, true),
        root("vrrp_script", Modelled, true),
        root("vrrp_sync_group", Modelled, true),
        root("vrrp_instance", Modelled, true),
        root("virtual_server_group", Modelled, true),
        root("virtual_server", Modelled, true),
        root("vrrp_track_process", Modelled, true),
        root("track_file", Modelled, false),
        root("vrrp_track_file", Alias, true),
        root("bgp_announce", Modelled, false),
        root("static_ipaddress", Ignored, true),
        root("static_routes", Ignored, true),
        root("static_rules", Ignored, true),
        root("garp_group", Ignored, true),
        root("linkbeat_interfaces", Ignored, true),
        root("track_group", Ignored, true),
        root("interface_up_down_delays", Ignored, true),
        root("bfd_instance", Ignored, true),
        root("SSL", Ignored, false),
        root("linkbeat_use_polling", Ignored, false),
        root("net_namespace", Ignored, false),
        root("net_namespace_ipvs", Ignored, false),
        root("namespace_with_ipsets", Ignored, false),
        root("use_pid_dir", Ignored, false),
        root("instance", Ignored, false),
        root("child_wait_time", Ignored, false),
        root("include", Include, false),
    ]
};

/// The top-level keyword `name`, if keepalived knows it.
pub(crate) fn root_keyword(name: &str) -> Option<&'static RootKw> {
    ROOT.iter().find(|k| k.name == name)
}

/// The top-level keywords of one kind.
pub(crate) fn root_names(kind: RootKind) -> impl Iterator<Item = &'static str> {
    ROOT.iter().filter(move |k| k.kind == kind).map(|k| k.name)
}

/// The health checkers a `real_server` block may hold (check_*.c).
pub(crate) const CHECKERS: [&str; 10] = [
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
];

/// `global_defs` keywords (global_parser.c `init_global_keywords`).
pub(crate) const GLOBAL_ALL: &[&str] = &[
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "lvs_process_name",
    "bfd_process_name",
    "use_symlink_paths",
    "set_supplementary_groups",
    "router_id",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "notification_email",
    "smtp_alert",
    "startup_script",
    "startup_script_timeout",
    "shutdown_script",
    "shutdown_script_timeout",
    "max_auto_priority",
    "min_auto_priority_delay",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "checker_log_all_failures",
    "dynamic_interfaces",
    "no_email_faults",
    "default_interface",
    "disable_local_igmp",
    "v3_checksum_as_v2",
    "lvs_timeouts",
    "lvs_flush",
    "lvs_flush_on_stop",
    "lvs_flush_onstop",
    "lvs_sync_daemon",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_down_timer_adverts",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "vrrp_min_garp",
    "vrrp_garp_extra_if",
    "vrrp_vmac_garp_intvl",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "vrrp_version",
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables",
    "nftables_priority",
    "nftables_ifindex",
    "vrrp_check_unicast_src",
    "vrrp_skip_check_adv_addr",
    "vrrp_strict",
    "vrrp_priority",
    "vrrp_no_swap",
    "vrrp_rt_priority",
    "vrrp_cpu_affinity",
    "vrrp_rlimit_rttime",
    "vrrp_rlimit_rtime",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "nftables_counters",
    "notify_fifo",
    "notify_fifo_script",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "vrrp_notify_priority_changes",
    "fifo_write_vrrp_states_on_reload",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "checker_priority",
    "checker_no_swap",
    "checker_rt_priority",
    "checker_cpu_affinity",
    "checker_rlimit_rttime",
    "checker_rlimit_rtime",
    "bfd_priority",
    "bfd_no_swap",
    "bfd_rt_priority",
    "bfd_cpu_affinity",
    "bfd_rlimit_rttime",
    "bfd_rlimit_rtime",
    "snmp_socket",
    "enable_traps",
    "enable_snmp_vrrp",
    "enable_snmp_keepalived",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_snmp_checker",
    "snmp_vs_stats_update_interval",
    "snmp_rs_stats_update_interval",
    "enable_dbus",
    "dbus_service_name",
    "dbus_no_interface_name",
    "script_user",
    "enable_script_security",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "rs_init_notifies",
    "no_checker_emails",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "vrrp_startup_delay",
    "vrrp_delay_after_boot",
    "log_unknown_vrids",
    "vrrp_owner_ignore_adverts",
    "vmac_prefix",
    "vmac_addr_prefix",
    "umask",
    "random_seed",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "include_check",
    "config_save_dir",
    "tmp_config_directory",
    "data_use_instance",
    "json_version",
    "iproute_usr_dir",
    "iproute_etc_dir",
    "state_dump_file",
    "stats_dump_file",
    "json_dump_file",
];

/// `vrrp_instance` keywords (vrrp_parser.c `init_vrrp_keywords`).
pub(crate) const VRRP_ALL: &[&str] = &[
    "use_vmac",
    "use_vmac_addr",
    "vmac_xmit_base",
    "use_ipvlan",
    "unicast_peer",
    "unicast_fault_no_peer",
    "check_unicast_src",
    "old_unicast_checksum",
    "native_ipv6",
    "state",
    "interface",
    "vrf",
    "dont_track_primary",
    "track_interface",
    "track_script",
    "track_file",
    "track_process",
    "track_bfd",
    "mcast_src_ip",
    "unicast_src_ip",
    "mcast_dst_ip",
    "track_src_ip",
    "virtual_router_id",
    "unicast_ttl",
    "version",
    "priority",
    "advert_int",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "no_virtual_ipaddress",
    "promote_secondaries",
    "linkbeat_use_polling",
    "v3_checksum_as_v2",
    "virtual_routes",
    "virtual_rules",
    "accept",
    "no_accept",
    "skip_check_adv_addr",
    "strict_mode",
    "preempt",
    "nopreempt",
    "preempt_delay",
    "debug",
    "notify_backup",
    "notify_master",
    "notify_fault",
    "notify_stop",
    "notify_deleted",
    "notify",
    "notify_master_rx_lower_pri",
    "smtp_alert",
    "notify_priority_changes",
    "lvs_sync_daemon_interface",
    "garp_master_delay",
    "garp_master_refresh",
    "garp_master_repeat",
    "garp_master_refresh_repeat",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "down_timer_adverts",
    "timer_expired_backup",
    "thread_timer_expired",
    "garp_extra_if",
    "vmac_garp_intvl",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "owner_ignore_adverts",
    "kernel_rx_buf_size",
    "authentication",
    "auth_hmac",
];

/// `vrrp_sync_group` keywords.
pub(crate) const SYNC_GROUP_ALL: &[&str] = &[
    "group",
    "track_interface",
    "track_script",
    "track_file",
    "track_process",
    "track_bfd",
    "notify_backup",
    "notify_master",
    "notify_fault",
    "notify_stop",
    "notify",
    "smtp_alert",
    "global_tracking",
    "sync_group_tracking_weight",
    "notify_priority_changes",
];

/// `vrrp_track_process` keywords (vrrp_parser.c).
pub(crate) const TRACK_PROCESS_ALL: &[&str] = &[
    "process",
    "param_match",
    "weight",
    "quorum",
    "quorum_max",
    "delay",
    "terminate_delay",
    "fork_delay",
    "full_command",
];

/// `vrrp_script` keywords.
pub(crate) const SCRIPT_ALL: &[&str] = &[
    "script",
    "interval",
    "timeout",
    "weight",
    "rise",
    "fall",
    "user",
    "init_fail",
];

/// `virtual_server` keywords (check_parser.c `init_check_keywords`).
pub(crate) const VS_ALL: &[&str] = &[
    "ip_family",
    "retry",
    "delay_before_retry",
    "warmup",
    "connect_timeout",
    "delay_loop",
    "inhibit_on_failure",
    "lb_algo",
    "lvs_sched",
    "hashed",
    "ops",
    "flag-1",
    "flag-2",
    "flag-3",
    "sh-port",
    "sh-fallback",
    "mh-port",
    "mh-fallback",
    "lb_kind",
    "lvs_method",
    "persistence_engine",
    "persistence_timeout",
    "persistence_granularity",
    "protocol",
    "ha_suspend",
    "smtp_alert",
    "virtualhost",
    "snmp_name",
    "alpha",
    "omega",
    "quorum_up",
    "quorum_down",
    "quorum",
    "hysteresis",
    "weight",
    "sorry_server",
    "sorry_server_inhibit",
    "sorry_server_lvs_method",
    "real_server",
];

/// `real_server` keywords (the checkers are in [`CHECKERS`]).
pub(crate) const RS_ALL: &[&str] = &[
    "weight",
    "lvs_method",
    "uthreshold",
    "lthreshold",
    "inhibit_on_failure",
    "notify_up",
    "notify_down",
    "alpha",
    "retry",
    "delay_before_retry",
    "warmup",
    "connect_timeout",
    "delay_loop",
    "smtp_alert",
    "virtualhost",
    "snmp_name",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(text: &str) -> Vec<String> {
        let r = crate::parse_str("root.conf", text, &Default::default());
        r.diagnostics.iter().map(|d| d.message.clone()).collect()
    }

    /// The parser reads each top-level keyword as the list says: modelled
    /// ones by a handler, ignored ones with the "not supported yet" warning,
    /// none as unknown.
    #[test]
    fn every_root_keyword_is_read_as_its_kind_says() {
        for k in ROOT.iter().filter(|k| k.kind != RootKind::Include) {
            let msgs = messages(&format!("{} x {{\n}}\n", k.name));
            assert!(
                !msgs.iter().any(|m| m.contains("unknown top-level keyword")),
                "{}: {msgs:?}",
                k.name
            );
            let ignored = format!("`{}` is not supported yet, ignored", k.name);
            assert_eq!(
                msgs.contains(&ignored),
                k.kind == RootKind::Ignored,
                "{}: {msgs:?}",
                k.name
            );
        }
    }

    /// A root-only block inside another block: the missing `}` is named.
    #[test]
    fn a_root_block_inside_a_block_is_a_missing_brace() {
        for k in ROOT.iter().filter(|k| k.root_only_block) {
            let msgs = messages(&format!(
                "vrrp_instance VI_1 {{\n state MASTER\n{} x {{\n}}\n",
                k.name
            ));
            let want = format!(
                "missing '}}': block `vrrp_instance VI_1` opened here is not closed before `{}`",
                k.name
            );
            assert!(
                msgs.iter().any(|m| m.starts_with(&want)),
                "{}: {msgs:?}",
                k.name
            );
        }
    }
}
