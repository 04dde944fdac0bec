//! SYN floods in the lab: spoofed SYNs from random sources in
//! 198.19.0.0/16, sent as raw frames from the second client namespace,
//! while 100 keep-alive connections stream a request every 200 ms each and
//! other clients keep opening new connections. A table of 4096 flooded
//! with 1000× its size and one of 65 536 with 50×, each with and without
//! persistence: no established connection breaks or moves. Reports the
//! flood rate and the share of legitimate new connections that succeeded.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::{
    net::SocketAddrV4,
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};
use common::{ensure_same_servers, keep_alive_clients, program_director, seed_spec, Streamer};
use lvs_common::event;
use lvs_testkit::{
    flood::{syn_flood, Flood},
    http_get, Lab,
};
use lvs_userspace::datapath::{AttachMode, Options};

struct PinGuard(String);

impl Drop for PinGuard {
    fn drop(&mut self) {
        let _ = lvs_userspace::datapath::flush_instance(
            std::path::Path::new(lvs_userspace::datapath::pins::DEFAULT_ROOT),
            &self.0,
        );
    }
}

fn flood_case(table: u32, factor: u64, persistence: Option<u32>) -> Result<()> {
    let mut spec = seed_spec(120);
    spec.second_client_addrs = 1;
    let lab = Lab::create(spec)?;
    // One instance per case: the cases may run side by side.
    let persist = persistence.map_or("np", |_| "p");
    let instance = format!("test-flood-{}-{table}-{persist}", std::process::id());
    let _guard = PinGuard(instance.clone());
    let mut opts = Options::new(&instance);
    opts.conn_table_size = table;
    let (dp, _) = program_director(&lab, AttachMode::Generic, &opts, persistence)?;

    let addrs = lab.client_addrs().to_vec();
    let conns = keep_alive_clients(&lab, &addrs[..100])?;
    let streamer = Streamer::start(conns);

    // The flood, from its own namespace, bounded in count and time.
    let count = table as u64 * factor;
    let flood = Flood {
        ifname: "eth0".into(),
        src_mac: lab.second_client_mac().context("second client")?,
        dst_mac: lab.director_mac(0),
        target: lab.service(),
        count,
        max_time: Duration::from_secs(180),
    };
    let ns = lab.second_client_ns().context("second client")?.to_owned();
    let flooder = lvs_testkit::netns::spawn_thread(&ns, move || syn_flood(&flood))?;

    // Legitimate clients keep opening new connections meanwhile.
    let (mut ok, mut failed) = (0u64, 0u64);
    let service: SocketAddrV4 = lab.service();
    let started = Instant::now();
    while !flooder.is_finished() && started.elapsed() < Duration::from_secs(200) {
        let results = lab.run_in_netns(lab.client_ns(), || {
            addrs[100..120]
                .iter()
                .map(|a| http_get(*a, service, Duration::from_secs(2)).is_ok())
                .collect::<Vec<_>>()
        })?;
        for r in results {
            if r {
                ok += 1
            } else {
                failed += 1
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = flooder
        .join()
        .map_err(|_| anyhow::anyhow!("flood thread panicked"))???;
    std::thread::sleep(Duration::from_millis(500));
    let (broken, done, mut conns) = streamer.finish();
    let events = dp.events()?;
    eprintln!(
        "table {table}, {factor}x, persistence {persistence:?}: {} SYNs in {:.1} s ({:.0}/s); half_open_new {}, promoted {}; {done} requests on 100 kept connections, {broken} failed or moved; new connections during the flood: {ok} ok, {failed} failed ({:.1} %)",
        report.sent,
        report.elapsed.as_secs_f64(),
        report.rate(),
        events[event::HALF_OPEN_NEW as usize],
        events[event::PROMOTED as usize],
        100.0 * ok as f64 / (ok + failed).max(1) as f64
    );
    ensure!(
        report.sent >= count,
        "the flood reached {} of {count} SYNs in {:?}",
        report.sent,
        report.elapsed
    );
    ensure!(
        events[event::HALF_OPEN_NEW as usize] >= count * 9 / 10,
        "the director saw the flood: {events:?}"
    );
    ensure!(
        broken == 0,
        "{broken} of {done} requests on established connections failed or moved"
    );
    ensure_same_servers(&lab, &mut conns, "after the flood")?;
    ensure!(
        ok > 0,
        "legitimate new connections succeeded during the flood"
    );
    dp.destroy()?;
    Ok(())
}

/// One lab test per flood case: `flood_case(table size, SYNs per table
/// entry, persistence)`.
macro_rules! flood_tests {
    ($($name:ident: $table:expr, $times:expr, $persistence:expr;)*) => {$(
        #[test]
        #[ignore = "needs root: run cargo xtask test"]
        fn $name() -> Result<()> {
            flood_case($table, $times, $persistence)
        }
    )*};
}

flood_tests! {
    syn_flood_1000x_a_4096_table_breaks_no_connection: 4096, 1000, None;
    syn_flood_1000x_a_4096_table_with_persistence_breaks_no_connection: 4096, 1000, Some(120);
    syn_flood_50x_a_65536_table_breaks_no_connection: 65536, 50, None;
    syn_flood_50x_a_65536_table_with_persistence_breaks_no_connection: 65536, 50, Some(120);
}
