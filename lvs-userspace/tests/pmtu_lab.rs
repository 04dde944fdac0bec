//! Path MTU discovery through the director: a client sits behind a router
//! whose link to it has an MTU of 1280 while the client advertises a
//! full-size MSS. The real server's full-size segments make the router send
//! "fragmentation needed" to their source, the VIP, which lands on the
//! director; the director forwards it to the connection's real server
//! (as IPVS does), which shrinks its segments, and the transfer completes.
//! Without the forwarding it would hang: a PMTU black hole.
//!
//! Needs root, `ip`, `ethtool`.

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddrV4, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::{ensure, Context, Result};
use common::{program_director, seed_spec};
use lvs_common::event;
use lvs_testkit::Lab;
use lvs_userspace::datapath::{self, AttachMode, Options};

const PORT: u16 = 9000;
const BODY: usize = 256 * 1024;

struct PinGuard(String);

impl Drop for PinGuard {
    fn drop(&mut self) {
        let _ =
            datapath::flush_instance(std::path::Path::new(datapath::pins::DEFAULT_ROOT), &self.0);
    }
}

/// In a real server's namespace: answers every connection on PORT with
/// BODY bytes, until `stop`.
fn bulk_server(lab: &Lab, i: usize, stop: Arc<AtomicBool>) -> Result<()> {
    let ready = Arc::new(AtomicBool::new(false));
    let r = ready.clone();
    lvs_testkit::netns::spawn_thread(lab.real_server_ns(i), move || -> Result<()> {
        let l = TcpListener::bind(("0.0.0.0", PORT))?;
        l.set_nonblocking(true)?;
        r.store(true, Ordering::SeqCst);
        let body = vec![b'x'; BODY];
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false)?;
                    s.set_write_timeout(Some(Duration::from_secs(15)))?;
                    let _ = s.write_all(&body);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        Ok(())
    })?;
    lvs_testkit::wait_until(
        "bulk server listening",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || ready.load(Ordering::SeqCst),
    )
}

#[test]
#[ignore = "needs root: run cargo xtask test"]
fn fragmentation_needed_reaches_the_real_server_and_the_transfer_completes() -> Result<()> {
    let spec = seed_spec(1);
    let mut lab = Lab::create(spec)?;
    lab.add_routed_client(1280)?;
    let instance = format!("test-pmtu-{}", std::process::id());
    let _guard = PinGuard(instance.clone());
    let mut opts = Options::new(&instance);
    opts.conn_table_size = 4096;
    let (mut dp, _) = program_director(&lab, AttachMode::Generic, &opts, None)?;
    // The seed service, moved to PORT.
    let ifindex =
        lab.run_in_netns(lab.director_ns(0), || datapath::ifindex(lab.director_if()))??;
    let mut state = common::seed_service(&lab, ifindex, None);
    state.services[0].port = PORT;
    for b in &mut state.services[0].backends {
        b.port = PORT;
    }
    dp.apply(&state)?;

    let stop = Arc::new(AtomicBool::new(false));
    for i in 0..lab.real_servers() {
        bulk_server(&lab, i, stop.clone())?;
    }
    let vip = SocketAddrV4::new(lab.vip(), PORT);
    let far = lab.routed_client_ns().context("routed client")?.to_owned();
    let got = lab.run_in_netns(&far, || -> Result<usize> {
        let mut s = TcpStream::connect_timeout(&vip.into(), Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut buf = Vec::with_capacity(BODY);
        s.read_to_end(&mut buf)
            .context("reading the transfer (a PMTU black hole hangs here)")?;
        Ok(buf.len())
    })??;
    stop.store(true, Ordering::Relaxed);
    let forwarded = dp.events()?[event::ICMP_ERROR_FORWARDED as usize];
    eprintln!(
        "transfer of {got} bytes through a 1280-byte link; {forwarded} ICMP errors forwarded"
    );
    ensure!(got == BODY, "the whole transfer arrived: {got} of {BODY}");
    ensure!(
        forwarded >= 1,
        "the router's fragmentation-needed went to the real server"
    );
    dp.destroy()?;
    Ok(())
}
