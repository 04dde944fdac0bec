//! Builds a lab, prints its layout and timings, optionally runs a command in
//! the client namespace, then tears it down.
//!
//! `cargo run -p lvs-testkit --example lab_shell -- [REAL_SERVERS] [CLIENT_ADDRS] [-- CMD…]`
//! (`{vip}` and `{rs1}`… in CMD are replaced by addresses).
//! `lab_shell --cleanup-stale` removes namespaces of dead lab runs instead.

use std::time::Instant;

use lvs_testkit::{Lab, LabSpec};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--cleanup-stale") {
        let removed = lvs_testkit::netns::cleanup_stale()?;
        println!("removed {} stale namespace(s): {removed:?}", removed.len());
        return Ok(());
    }
    let (nums, cmd) = match args.iter().position(|a| a == "--") {
        Some(p) => (&args[..p], &args[p + 1..]),
        None => (&args[..], &[][..]),
    };
    let real_servers = nums.first().map_or(Ok(5), |s| s.parse())?;
    let client_addrs = nums.get(1).map_or(Ok(200), |s| s.parse())?;
    let t0 = Instant::now();
    let lab = Lab::create(LabSpec {
        real_servers,
        client_addrs,
        ..LabSpec::default()
    })?;
    let created = t0.elapsed();
    println!(
        "lab {} created in {created:?}: {} director(s), {} real servers, {} client addresses",
        lab.prefix(),
        lab.directors(),
        lab.real_servers(),
        lab.client_addrs().len()
    );
    if !cmd.is_empty() {
        let mut argv: Vec<String> = cmd
            .iter()
            .map(|a| a.replace("{vip}", &lab.vip().to_string()))
            .collect();
        for i in 0..lab.real_servers() {
            let key = format!("{{{}}}", lab.real_server_name(i));
            let val = lab.real_server_addr(i).to_string();
            argv = argv.into_iter().map(|a| a.replace(&key, &val)).collect();
        }
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = lab.exec_timeout(lab.client_ns(), &argv, std::time::Duration::from_secs(300))?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    let t1 = Instant::now();
    lab.teardown()?;
    println!("torn down in {:?}", t1.elapsed());
    Ok(())
}
