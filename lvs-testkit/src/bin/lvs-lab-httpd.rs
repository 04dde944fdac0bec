//! `lvs-lab-httpd`: the lab's real-server HTTP server.
//!
//! ```text
//! lvs-lab-httpd --name rs1 --listen 0.0.0.0:80 [--listen 198.18.10.1-198.18.13.232:8080 …]
//!               [--freebind] [--backlog N] [--verbose]
//! ```
//!
//! Answers every request (any method, any path) with `200 OK` and the body
//! `<name>\n`, plus headers `X-Server: <name>`, `X-Client: <peer ip:port>`
//! and `X-Local: <local ip:port>`. HTTP/1.1 keep-alive (and pipelining);
//! `Connection: close` honoured; HTTP/1.0 closes unless
//! `Connection: keep-alive`. One thread, epoll, non-blocking sockets: many
//! thousands of connections and listeners. `--listen` is repeatable and
//! takes `ADDR:PORT` or an address range `FIRST-LAST:PORT`.
//! Prints `READY …` on stdout once every listener is bound.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::process::exit;

use lvs_testkit::http::{setopt, sockaddr_any, tcp_socket};

struct Opts {
    name: String,
    listen: Vec<SocketAddr>,
    freebind: bool,
    backlog: i32,
    verbose: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!("lvs-lab-httpd: {msg}");
    eprintln!(
        "usage: lvs-lab-httpd --name NAME --listen ADDR:PORT|FIRST-LAST:PORT [--listen …] \
         [--freebind] [--backlog N] [--verbose]"
    );
    exit(2)
}

fn parse_listen(spec: &str, out: &mut Vec<SocketAddr>) -> Result<(), String> {
    // `[2001:2::11]:80` or `[::]:80`: one IPv6 address.
    if spec.starts_with('[') {
        out.push(
            spec.parse()
                .map_err(|_| format!("{spec:?}: expected [ADDR]:PORT"))?,
        );
        return Ok(());
    }
    let (addrs, port) = spec
        .rsplit_once(':')
        .ok_or_else(|| format!("{spec:?}: expected ADDR:PORT"))?;
    let port: u16 = port.parse().map_err(|_| format!("{spec:?}: bad port"))?;
    let (first, last) = match addrs.split_once('-') {
        Some((a, b)) => (a, b),
        None => (addrs, addrs),
    };
    let first: Ipv4Addr = first
        .parse()
        .map_err(|_| format!("{spec:?}: bad address"))?;
    let last: Ipv4Addr = last.parse().map_err(|_| format!("{spec:?}: bad address"))?;
    let (a, b) = (u32::from(first), u32::from(last));
    if b < a || b - a > 1 << 20 {
        return Err(format!("{spec:?}: bad range"));
    }
    for x in a..=b {
        out.push(SocketAddrV4::new(Ipv4Addr::from(x), port).into());
    }
    Ok(())
}

fn parse_args() -> Opts {
    let mut o = Opts {
        name: "httpd".into(),
        listen: Vec::new(),
        freebind: false,
        backlog: 4096,
        verbose: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |what: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{what} needs a value")))
        };
        match a.as_str() {
            "--name" => o.name = val("--name"),
            "--listen" => {
                let v = val("--listen");
                if let Err(e) = parse_listen(&v, &mut o.listen) {
                    usage(&e);
                }
            }
            "--backlog" => {
                o.backlog = val("--backlog")
                    .parse()
                    .unwrap_or_else(|_| usage("bad --backlog"))
            }
            "--freebind" => o.freebind = true,
            "--verbose" | "-v" => o.verbose = true,
            "--help" | "-h" => usage("help"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if o.listen.is_empty() {
        usage("at least one --listen is needed");
    }
    o
}

fn from_sockaddr(ss: &libc::sockaddr_storage) -> SocketAddr {
    if ss.ss_family as i32 == libc::AF_INET6 {
        // SAFETY: the kernel wrote a sockaddr_in6 (its family says so) into
        // storage large and aligned enough for it.
        let sa = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
        return SocketAddrV6::new(
            Ipv6Addr::from(sa.sin6_addr.s6_addr),
            u16::from_be(sa.sin6_port),
            0,
            sa.sin6_scope_id,
        )
        .into();
    }
    // SAFETY: as above, a sockaddr_in.
    let sa = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))),
        u16::from_be(sa.sin_port),
    )
}

fn last_err() -> io::Error {
    io::Error::last_os_error()
}

fn listen_on(a: SocketAddr, freebind: bool, backlog: i32) -> io::Result<RawFd> {
    let owned = tcp_socket(a)?;
    let fd = owned.as_raw_fd();
    setopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
    if freebind {
        setopt(fd, libc::IPPROTO_IP, libc::IP_FREEBIND, 1);
    }
    if a.is_ipv6() {
        // `[::]:80` beside `0.0.0.0:80`: IPv6 only.
        setopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1);
    }
    let (sa, len) = sockaddr_any(a);
    // SAFETY: `sa` lives across bind() and the length passed is its size;
    // on failure `owned` closes the descriptor.
    if unsafe {
        libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len) != 0
            || libc::listen(fd, backlog) != 0
    } {
        return Err(last_err());
    }
    Ok(owned.into_raw_fd())
}

struct Conn {
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    close_after: bool,
    want_out: bool,
    peer: SocketAddr,
    local: SocketAddr,
}

impl Conn {
    /// A connection just accepted: nothing read, nothing to write.
    fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        Conn {
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            close_after: false,
            want_out: false,
            peer,
            local,
        }
    }
}

const MAX_HEAD: usize = 64 * 1024;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses and answers every complete request in `c.inbuf`.
fn process(c: &mut Conn, name: &str) {
    loop {
        if c.close_after {
            c.inbuf.clear();
            return;
        }
        let Some(p) = find(&c.inbuf, b"\r\n\r\n") else {
            if c.inbuf.len() > MAX_HEAD {
                respond(
                    c,
                    name,
                    431,
                    "Request Header Fields Too Large",
                    false,
                    false,
                );
                c.close_after = true;
            }
            return;
        };
        let head_end = p + 4;
        let head = String::from_utf8_lossy(&c.inbuf[..p]).into_owned();
        let mut lines = head.split("\r\n");
        let req_line = lines.next().unwrap_or_default();
        let mut parts = req_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let _path = parts.next();
        let version = parts.next().unwrap_or("HTTP/1.0");
        if method.is_empty() || !version.starts_with("HTTP/1.") {
            respond(c, name, 400, "Bad Request", false, false);
            c.close_after = true;
            continue;
        }
        let mut content_length = 0usize;
        let mut conn_close = false;
        let mut conn_keep = false;
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim();
                let v = v.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("connection") {
                    for t in v.split(',') {
                        let t = t.trim();
                        conn_close |= t.eq_ignore_ascii_case("close");
                        conn_keep |= t.eq_ignore_ascii_case("keep-alive");
                    }
                }
            }
        }
        if c.inbuf.len() < head_end + content_length {
            return; // body not complete yet
        }
        c.inbuf.drain(..head_end + content_length);
        let keep = if version == "HTTP/1.0" {
            conn_keep && !conn_close
        } else {
            !conn_close
        };
        respond(c, name, 200, "OK", keep, method == "HEAD");
        if !keep {
            c.close_after = true;
        }
    }
}

fn respond(c: &mut Conn, name: &str, status: u16, reason: &str, keep: bool, head: bool) {
    let body = if status == 200 {
        format!("{name}\n")
    } else {
        format!("{status} {reason}\n")
    };
    let _ = write!(
        c.out,
        "HTTP/1.1 {status} {reason}\r\nServer: lvs-lab-httpd\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nX-Server: {name}\r\nX-Client: {}\r\nX-Local: {}\r\n\
         Connection: {}\r\n\r\n",
        body.len(),
        c.peer,
        c.local,
        if keep { "keep-alive" } else { "close" }
    );
    if !head {
        c.out.extend_from_slice(body.as_bytes());
    }
}

/// Writes pending output; returns false if the connection is broken.
fn flush(fd: RawFd, c: &mut Conn) -> bool {
    while c.out_pos < c.out.len() {
        let rest = &c.out[c.out_pos..];
        // SAFETY: `rest` is a live slice and the length passed is its own.
        let n = unsafe {
            libc::send(
                fd,
                rest.as_ptr() as *const libc::c_void,
                rest.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = last_err();
            match e.kind() {
                io::ErrorKind::WouldBlock => break,
                io::ErrorKind::Interrupted => continue,
                _ => return false,
            }
        }
        c.out_pos += n as usize;
    }
    if c.out_pos == c.out.len() {
        c.out.clear();
        c.out_pos = 0;
    }
    true
}

fn epoll_mod(ep: RawFd, op: i32, fd: RawFd, events: u32) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call.
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } != 0 {
        return Err(last_err());
    }
    Ok(())
}

fn raise_nofile() {
    // SAFETY: `r` is a local rlimit the calls read and write.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn main() {
    let o = parse_args();
    raise_nofile();
    // SAFETY: no pointers; the result is checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        eprintln!("lvs-lab-httpd: epoll_create1: {}", last_err());
        exit(1);
    }
    let mut listeners = std::collections::HashSet::new();
    for a in &o.listen {
        match listen_on(*a, o.freebind, o.backlog) {
            Ok(fd) => {
                epoll_mod(ep, libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32).expect("epoll_ctl");
                listeners.insert(fd);
            }
            Err(e) => {
                eprintln!("lvs-lab-httpd {}: cannot listen on {a}: {e}", o.name);
                exit(1);
            }
        }
    }
    println!(
        "READY {} listening on {} socket(s){}",
        o.name,
        o.listen.len(),
        if o.listen.len() == 1 {
            format!(" ({})", o.listen[0])
        } else {
            String::new()
        }
    );
    let _ = io::stdout().flush();

    let mut conns: HashMap<RawFd, Conn> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = vec![0u8; 64 * 1024];
    let mut emfile_reported = false;
    loop {
        // SAFETY: `events` is a live buffer of `events.len()` entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            if last_err().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            eprintln!("lvs-lab-httpd: epoll_wait: {}", last_err());
            exit(1);
        }
        for ev in &events[..n as usize] {
            let fd = ev.u64 as RawFd;
            let flags = ev.events;
            if listeners.contains(&fd) {
                loop {
                    // SAFETY: sockaddr_storage is plain integers; all zeroes is a valid value.
                    let mut sa: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
                    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                    // SAFETY: `sa` and `len` are live locals; `len` holds `sa`'s size.
                    let cfd = unsafe {
                        libc::accept4(
                            fd,
                            &mut sa as *mut _ as *mut libc::sockaddr,
                            &mut len,
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        )
                    };
                    if cfd < 0 {
                        let e = last_err();
                        match e.raw_os_error() {
                            Some(libc::EAGAIN) => {}
                            Some(libc::EINTR) | Some(libc::ECONNABORTED) => continue,
                            _ => {
                                if !emfile_reported {
                                    eprintln!("lvs-lab-httpd {}: accept: {e}", o.name);
                                    emfile_reported = true;
                                }
                            }
                        }
                        break;
                    }
                    let peer = from_sockaddr(&sa);
                    // SAFETY: sockaddr_storage is plain integers; all zeroes is a valid value.
                    let mut la: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
                    let mut llen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                    // SAFETY: `la` and `llen` are live locals; `llen` holds `la`'s size.
                    unsafe {
                        libc::getsockname(cfd, &mut la as *mut _ as *mut libc::sockaddr, &mut llen)
                    };
                    setopt(cfd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
                    if epoll_mod(ep, libc::EPOLL_CTL_ADD, cfd, libc::EPOLLIN as u32).is_err() {
                        // SAFETY: `cfd` was just accepted here and is owned by nobody else.
                        unsafe { libc::close(cfd) };
                        continue;
                    }
                    if o.verbose {
                        eprintln!("{}: connection from {peer}", o.name);
                    }
                    conns.insert(cfd, Conn::new(peer, from_sockaddr(&la)));
                }
                continue;
            }
            let Some(c) = conns.get_mut(&fd) else {
                continue;
            };
            let mut alive = true;
            if flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                loop {
                    // SAFETY: `buf` is a live buffer and the length passed is its own.
                    let r = unsafe {
                        libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0)
                    };
                    if r > 0 {
                        if !c.close_after {
                            c.inbuf.extend_from_slice(&buf[..r as usize]);
                        }
                        if (r as usize) < buf.len() {
                            break;
                        }
                        continue;
                    }
                    if r == 0 {
                        alive = false;
                        break;
                    }
                    match last_err().kind() {
                        io::ErrorKind::WouldBlock => break,
                        io::ErrorKind::Interrupted => continue,
                        _ => {
                            alive = false;
                            break;
                        }
                    }
                }
                process(c, &o.name);
            }
            let ok = flush(fd, c);
            let pending = !c.out.is_empty();
            // Done when broken, or when nothing is left to send and either
            // side wants the connection closed. A peer that half-closed
            // after its request still gets the pending answer.
            if !ok || (!pending && (c.close_after || !alive)) {
                conns.remove(&fd);
                // SAFETY: `fd` was removed from `conns`, its only owner; closed once.
                unsafe { libc::close(fd) };
                continue;
            }
            if !alive {
                // Output pending but the peer closed its side: try once more
                // on EPOLLOUT, reading nothing further.
                c.close_after = true;
            }
            if pending != c.want_out {
                c.want_out = pending;
                let evs = if pending {
                    (libc::EPOLLIN | libc::EPOLLOUT) as u32
                } else {
                    libc::EPOLLIN as u32
                };
                let _ = epoll_mod(ep, libc::EPOLL_CTL_MOD, fd, evs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        Conn::new(
            "198.18.1.1:40000".parse().unwrap(),
            "198.18.0.11:80".parse().unwrap(),
        )
    }

    #[test]
    fn listen_specs() {
        let mut v = Vec::new();
        parse_listen("0.0.0.0:80", &mut v).unwrap();
        parse_listen("198.18.10.254-198.18.11.1:8080", &mut v).unwrap();
        assert_eq!(v.len(), 5);
        assert_eq!(v[4], "198.18.11.1:8080".parse().unwrap());
        assert!(parse_listen("198.18.0.2-198.18.0.1:80", &mut v).is_err());
        assert!(parse_listen("198.18.0.1", &mut v).is_err());
        parse_listen("[::]:80", &mut v).unwrap();
        assert_eq!(v[5], "[::]:80".parse().unwrap());
    }

    #[test]
    fn keep_alive_pipelining_and_close() {
        let mut c = conn();
        c.inbuf
            .extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n");
        process(&mut c, "rs1");
        let out = String::from_utf8(c.out.clone()).unwrap();
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
        assert_eq!(out.matches("Connection: keep-alive").count(), 2);
        assert_eq!(out.matches("Connection: close").count(), 1);
        assert!(out.ends_with("\r\n\r\nrs1\n"));
        assert!(out.contains("X-Client: 198.18.1.1:40000"));
        assert!(c.close_after);
    }

    #[test]
    fn http10_and_partial_requests() {
        let mut c = conn();
        c.inbuf.extend_from_slice(b"GET / HTTP/1.0\r\n");
        process(&mut c, "rs2");
        assert!(c.out.is_empty());
        c.inbuf.extend_from_slice(b"\r\n");
        process(&mut c, "rs2");
        let out = String::from_utf8(c.out.clone()).unwrap();
        assert!(out.contains("Connection: close") && out.ends_with("rs2\n"));
        assert!(c.close_after);

        let mut c = conn();
        c.inbuf
            .extend_from_slice(b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        process(&mut c, "rs2");
        let out = String::from_utf8(c.out.clone()).unwrap();
        assert!(out.contains("Connection: keep-alive") && out.ends_with("\r\n\r\n"));
        assert!(!c.close_after);
    }
}
