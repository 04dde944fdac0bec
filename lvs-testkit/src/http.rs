//! A small HTTP/1.1 client (std only): single requests from a chosen source
//! address, a keep-alive connection, and a load generator that runs inside
//! a client namespace.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::netns;
use crate::topology::Lab;

const MAX_HEADER: usize = 64 * 1024;

/// A parsed HTTP response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub reason: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The body of a 2xx answer as [`HttpResponse::body_text`]; any other
    /// status is an error, `whence` (`from 198.19.0.1: `) before it.
    pub fn ok_body(&self, whence: &str) -> Result<String> {
        ensure!(
            (200..300).contains(&self.status),
            "{whence}status {} {}",
            self.status,
            self.reason
        );
        Ok(self.body_text())
    }
    /// The body as text, trailing newline removed (`rs1\n` → `rs1`).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .trim_end_matches(['\r', '\n'])
            .to_string()
    }
}

fn io_ctx(e: io::Error, what: &str) -> anyhow::Error {
    anyhow::Error::new(e).context(what.to_string())
}

/// Opens a TCP connection to `target`, from `bind` (port chosen by the
/// kernel at connect time: IP_BIND_ADDRESS_NO_PORT) if given, failing after
/// `timeout`. Uses the calling thread's network namespace.
pub fn connect_from(
    bind: Option<Ipv4Addr>,
    target: SocketAddrV4,
    timeout: Duration,
) -> io::Result<TcpStream> {
    connect_from_any(bind.map(IpAddr::V4), target.into(), timeout)
}

/// [`connect_from`] in either family (`bind` of `target`'s family).
pub fn connect_from_any(
    bind: Option<IpAddr>,
    target: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let owned = tcp_socket(target)?;
    let fd = owned.as_raw_fd();
    if let Some(b) = bind {
        setopt(fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1);
        let (sa, len) = sockaddr_any(SocketAddr::new(b, 0));
        // SAFETY: `sa` lives across the call and `len` is its size.
        if unsafe { libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: plain socket calls on the descriptor `owned` holds; every
    // pointer passed is to a live local.
    unsafe {
        let (sa, len) = sockaddr_any(target);
        let rc = libc::connect(fd, &sa as *const _ as *const libc::sockaddr, len);
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connect to {target} timed out"),
                    ));
                }
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                let n = libc::poll(&mut pfd, 1, left.as_millis().max(1) as libc::c_int);
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                if n > 0 {
                    break;
                }
            }
            let mut err: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                &mut err as *mut _ as *mut libc::c_void,
                &mut len,
            );
            if err != 0 {
                return Err(io::Error::from_raw_os_error(err));
            }
        }
        let stream = TcpStream::from(owned);
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

fn connect_error(e: io::Error, bind: Option<IpAddr>, target: SocketAddr) -> anyhow::Error {
    let hint = if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
        " (is this thread inside the namespace holding that address? see Lab::run_in_netns)"
    } else {
        ""
    };
    let from = bind.map_or("*".to_string(), |b| b.to_string());
    io_ctx(e, &format!("connect {from} -> {target}{hint}"))
}

/// A non-blocking, close-on-exec TCP socket of `a`'s family (the lab
/// clients' and the lab httpd's).
pub fn tcp_socket(a: SocketAddr) -> io::Result<OwnedFd> {
    let family = if a.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket() takes no pointers; a descriptor it returns is owned
    // by `OwnedFd` right away.
    let fd = unsafe { libc::socket(family, ty, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets an integer socket option (best effort: a lab socket works without
/// any of the ones set here, only less conveniently).
pub fn setopt(fd: RawFd, level: i32, opt: i32, v: i32) {
    // SAFETY: `v` outlives the call and the length passed is its size.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &v as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

/// `a` as a C socket address of its family, with its length.
pub fn sockaddr_any(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain integers; all zeroes is valid, and
    // it is large and aligned enough for either sockaddr written into it.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(a) => {
            // SAFETY: see above.
            unsafe { *(&mut ss as *mut _ as *mut libc::sockaddr_in) = sockaddr(a) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: see above.
            unsafe { *(&mut ss as *mut _ as *mut libc::sockaddr_in6) = sin6 };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// `a` as the C socket address (for the lab's raw socket calls).
pub fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// Reads one response from `stream`, using and refilling `buf` (bytes past
/// the response stay in `buf` for the next one). `head` is true for HEAD.
fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    head: bool,
) -> Result<HttpResponse> {
    let mut chunk = [0u8; 16 * 1024];
    let mut fill = |stream: &mut TcpStream, buf: &mut Vec<u8>| -> Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out reading the response");
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                bail!("timed out reading the response")
            }
            Err(e) => Err(io_ctx(e, "reading the response")),
        }
    };
    let head_end = loop {
        if let Some(p) = find(buf, b"\r\n\r\n") {
            break p + 4;
        }
        ensure!(buf.len() <= MAX_HEADER, "response header too long");
        if fill(stream, buf)? == 0 {
            bail!(
                "connection closed before the end of the response header ({} bytes read)",
                buf.len()
            );
        }
    };
    let text = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    ensure!(
        version.starts_with("HTTP/1."),
        "bad status line {status_line:?}"
    );
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let reason = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let (k, v) = l
            .split_once(':')
            .with_context(|| format!("bad header line {l:?}"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let content_length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse::<usize>())
        .transpose()
        .context("bad Content-Length")?;
    ensure!(
        !headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked")),
        "chunked responses are not supported"
    );
    buf.drain(..head_end);
    let body = if head || status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if let Some(n) = content_length {
        while buf.len() < n {
            if fill(stream, buf)? == 0 {
                bail!("connection closed after {} of {n} body bytes", buf.len());
            }
        }
        buf.drain(..n).collect()
    } else {
        while fill(stream, buf)? > 0 {}
        std::mem::take(buf)
    };
    Ok(HttpResponse {
        status,
        reason,
        headers,
        body,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn host_header(target: SocketAddr) -> String {
    match (target, target.port() == 80) {
        (SocketAddr::V4(t), true) => t.ip().to_string(),
        (SocketAddr::V6(t), true) => format!("[{}]", t.ip()),
        (t, false) => t.to_string(),
    }
}

/// One `GET path` with `Connection: close`, from `bind` (None: the kernel
/// picks the source), everything within `timeout`. Any status is returned.
pub fn http_request(
    bind: Option<Ipv4Addr>,
    target: SocketAddrV4,
    path: &str,
    timeout: Duration,
) -> Result<HttpResponse> {
    http_request_any(bind.map(IpAddr::V4), target.into(), path, timeout)
}

/// [`http_request`] in either family.
pub fn http_request_any(
    bind: Option<IpAddr>,
    target: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<HttpResponse> {
    let deadline = Instant::now() + timeout;
    let mut s =
        connect_from_any(bind, target, timeout).map_err(|e| connect_error(e, bind, target))?;
    s.set_write_timeout(Some(timeout))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: lvs-testkit\r\nConnection: close\r\n\r\n",
        host_header(target)
    );
    s.write_all(req.as_bytes())
        .map_err(|e| io_ctx(e, "sending the request"))?;
    let mut buf = Vec::new();
    read_response(&mut s, &mut buf, deadline, false)
        .with_context(|| format!("GET http://{target}{path}"))
}

/// `GET /` with `Connection: close` from source address `bind` to `target`;
/// returns the body (trailing newline removed, so a lab real server answers
/// `rs1`). Fails on a non-2xx status, a connection error or after `timeout`.
pub fn http_get(bind: Ipv4Addr, target: SocketAddrV4, timeout: Duration) -> Result<String> {
    let r =
        http_request(Some(bind), target, "/", timeout).with_context(|| format!("from {bind}"))?;
    r.ok_body(&format!("GET http://{target}/ from {bind}: "))
}

/// A long-lived HTTP/1.1 keep-alive connection (for tests that reload or
/// fail over while connections stay open).
///
/// A socket stays in the namespace it was created in: connect inside
/// `lab.run_in_netns(lab.client_ns(), ..)`, return the client from the
/// closure and keep using it from any thread.
pub struct KeepAliveClient {
    stream: TcpStream,
    target: SocketAddr,
    buf: Vec<u8>,
    timeout: Duration,
}

impl KeepAliveClient {
    /// Connects from `bind` (None: any) to `target`; `timeout` bounds the
    /// connect and each later request.
    pub fn connect(
        bind: Option<Ipv4Addr>,
        target: SocketAddrV4,
        timeout: Duration,
    ) -> Result<Self> {
        Self::connect_any(bind.map(IpAddr::V4), target.into(), timeout)
    }

    /// [`KeepAliveClient::connect`] in either family.
    pub fn connect_any(
        bind: Option<IpAddr>,
        target: SocketAddr,
        timeout: Duration,
    ) -> Result<Self> {
        let stream =
            connect_from_any(bind, target, timeout).map_err(|e| connect_error(e, bind, target))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(KeepAliveClient {
            stream,
            target,
            buf: Vec::new(),
            timeout,
        })
    }

    /// The connection's local address.
    pub fn local_addr(&self) -> Result<std::net::SocketAddr> {
        Ok(self.stream.local_addr()?)
    }

    /// Sends `GET path` (keep-alive) and reads the response.
    pub fn request(&mut self, path: &str) -> Result<HttpResponse> {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: lvs-testkit\r\n\r\n",
            host_header(self.target)
        );
        self.stream
            .write_all(req.as_bytes())
            .map_err(|e| io_ctx(e, "sending the request"))?;
        read_response(
            &mut self.stream,
            &mut self.buf,
            Instant::now() + self.timeout,
            false,
        )
    }

    /// `GET /` on this connection; returns the body (trailing newline
    /// removed). Fails on non-2xx.
    pub fn get(&mut self) -> Result<String> {
        let r = self.request("/")?;
        r.ok_body("")
    }

    /// The underlying stream.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// Result of [`http_load`].
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Successful responses per body (`rs1` → 240, …).
    pub per_body: BTreeMap<String, u64>,
    /// Successful responses per client address and body (for persistence
    /// checks: each client address should see one body).
    pub per_client: BTreeMap<IpAddr, BTreeMap<String, u64>>,
    /// Requests that failed (errors, non-2xx, timeouts, not attempted
    /// before the deadline).
    pub failures: u64,
    /// The first few error messages.
    pub errors: Vec<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Successful responses.
    pub fn ok(&self) -> u64 {
        self.per_body.values().sum()
    }
    /// All requests (successes and failures).
    pub fn total(&self) -> u64 {
        self.ok() + self.failures
    }
    /// Responses with this body.
    pub fn count(&self, body: &str) -> u64 {
        self.per_body.get(body).copied().unwrap_or(0)
    }
    /// Fraction of successful responses with this body.
    pub fn share(&self, body: &str) -> f64 {
        let ok = self.ok();
        if ok == 0 {
            0.0
        } else {
            self.count(body) as f64 / ok as f64
        }
    }
    /// Distinct bodies seen by each client address (1 everywhere means every
    /// client stuck to one server).
    pub fn max_servers_per_client(&self) -> usize {
        self.per_client.values().map(|m| m.len()).max().unwrap_or(0)
    }
    /// Fails (with the report) if any request failed.
    pub fn ensure_no_failures(&self) -> Result<()> {
        ensure!(
            self.failures == 0,
            "{} requests failed: {}",
            self.failures,
            self.summary()
        );
        Ok(())
    }
    /// Largest absolute difference between each server's observed share and
    /// its weight share `w / Σw` (servers with weight 0 must get 0).
    /// Bodies not named in `weights` count as deviation too.
    pub fn max_weight_deviation(&self, weights: &[(&str, u32)]) -> f64 {
        let sum: u32 = weights.iter().map(|(_, w)| *w).sum();
        let mut dev: f64 = 0.0;
        for (name, w) in weights {
            let expect = if sum == 0 {
                0.0
            } else {
                *w as f64 / sum as f64
            };
            dev = dev.max((self.share(name) - expect).abs());
        }
        for body in self.per_body.keys() {
            if !weights.iter().any(|(n, _)| n == body) {
                dev = dev.max(self.share(body));
            }
        }
        dev
    }
    /// Fails unless every server's share is within `tolerance` (absolute,
    /// e.g. 0.05 = 5 percentage points) of its weight share.
    pub fn ensure_weights(&self, weights: &[(&str, u32)], tolerance: f64) -> Result<()> {
        let dev = self.max_weight_deviation(weights);
        ensure!(
            dev <= tolerance,
            "distribution deviates from weights {weights:?} by {dev:.3} (> {tolerance}): {}",
            self.summary()
        );
        Ok(())
    }
    /// One line: counts, shares, failures, elapsed, first error.
    pub fn summary(&self) -> String {
        let counts: Vec<String> = self
            .per_body
            .iter()
            .map(|(k, v)| format!("{k}={v} ({:.1}%)", 100.0 * self.share(k)))
            .collect();
        format!(
            "ok={} failures={} [{}] in {:.2?}{}",
            self.ok(),
            self.failures,
            counts.join(" "),
            self.elapsed,
            self.errors
                .first()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default()
        )
    }
}

/// Options of [`http_load_with`].
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Requests from each address.
    pub requests_per_addr: usize,
    /// Worker threads (simultaneous connections).
    pub concurrency: usize,
    /// Bound on each request.
    pub request_timeout: Duration,
    /// Bound on the whole run; requests not started by then are failures.
    pub deadline: Duration,
    /// Request path.
    pub path: String,
    /// How many error messages to keep.
    pub keep_errors: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            requests_per_addr: 1,
            concurrency: 32,
            request_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(120),
            path: "/".into(),
            keep_errors: 10,
        }
    }
}

/// Sends `requests_per_addr` `GET /` requests (`Connection: close`) from
/// each of `addrs` to `target`, interleaving the addresses, with
/// `concurrency` simultaneous connections, from inside `client_ns`.
/// Bounded: 5 s per request, 120 s in all.
pub fn http_load<A: Copy + Into<IpAddr> + Sync>(
    lab: &Lab,
    client_ns: &str,
    addrs: &[A],
    target: impl Into<SocketAddr>,
    requests_per_addr: usize,
    concurrency: usize,
) -> Result<LoadReport> {
    http_load_with(
        lab,
        client_ns,
        addrs,
        target,
        &LoadOptions {
            requests_per_addr,
            concurrency,
            ..LoadOptions::default()
        },
    )
}

/// [`http_load`] with all the options.
pub fn http_load_with<A: Copy + Into<IpAddr> + Sync>(
    _lab: &Lab,
    client_ns: &str,
    addrs: &[A],
    target: impl Into<SocketAddr>,
    opts: &LoadOptions,
) -> Result<LoadReport> {
    ensure!(!addrs.is_empty(), "no client addresses");
    let target: SocketAddr = target.into();
    let jobs: Vec<IpAddr> = (0..opts.requests_per_addr)
        .flat_map(|_| addrs.iter().map(|a| (*a).into()))
        .collect();
    let next = AtomicUsize::new(0);
    let report = Mutex::new(LoadReport::default());
    let t0 = Instant::now();
    let deadline = t0 + opts.deadline;
    let workers = opts.concurrency.clamp(1, jobs.len().max(1));
    let record = |addr: IpAddr, res: Result<String>| {
        let mut r = report.lock().unwrap();
        match res {
            Ok(body) => {
                *r.per_client
                    .entry(addr)
                    .or_default()
                    .entry(body.clone())
                    .or_default() += 1;
                *r.per_body.entry(body).or_default() += 1;
            }
            Err(e) => {
                r.failures += 1;
                if r.errors.len() < opts.keep_errors {
                    r.errors.push(format!("{e:#}"));
                }
            }
        }
    };
    thread::scope(|s| -> Result<()> {
        let mut hs = Vec::new();
        for _ in 0..workers {
            hs.push(
                thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn_scoped(s, || -> Result<()> {
                        netns::enter(client_ns)?;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&addr) = jobs.get(i) else { break };
                            let now = Instant::now();
                            if now >= deadline {
                                record(addr, Err(anyhow::anyhow!("load deadline reached")));
                                continue;
                            }
                            let timeout = opts.request_timeout.min(deadline - now);
                            let res = http_request_any(Some(addr), target, &opts.path, timeout)
                                .with_context(|| format!("from {addr}"))
                                .and_then(|r| r.ok_body(&format!("from {addr}: ")));
                            record(addr, res);
                        }
                        Ok(())
                    })
                    .context("cannot spawn a load worker")?,
            );
        }
        for h in hs {
            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        }
        Ok(())
    })?;
    let mut r = report.into_inner().unwrap();
    r.elapsed = t0.elapsed();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_deviation() {
        let mut r = LoadReport::default();
        r.per_body.insert("rs1".into(), 200);
        r.per_body.insert("rs2".into(), 300);
        r.per_body.insert("rs3".into(), 500);
        assert_eq!(r.ok(), 1000);
        assert!((r.share("rs2") - 0.3).abs() < 1e-9);
        let w = [("rs1", 2), ("rs2", 3), ("rs3", 5)];
        assert!(r.max_weight_deviation(&w) < 1e-9);
        r.ensure_weights(&w, 0.01).unwrap();
        let w = [("rs1", 1), ("rs2", 1), ("rs3", 1)];
        assert!((r.max_weight_deviation(&w) - (0.5 - 1.0 / 3.0)).abs() < 1e-9);
        assert!(r.ensure_weights(&w, 0.1).is_err());
        // A server missing from the weights counts as deviation.
        let w = [("rs1", 2), ("rs2", 3)];
        assert!((r.max_weight_deviation(&w) - 0.5).abs() < 1e-9);
        r.failures = 1;
        assert!(r.ensure_no_failures().is_err());
        assert_eq!(r.total(), 1001);
    }
}
