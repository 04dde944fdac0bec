//! `lvs-lab-responder`: the lab's UDP echo and minimal SMTP server, for
//! the UDP_CHECK and SMTP_CHECK tests.
//!
//! ```text
//! lvs-lab-responder --name rs1 [--udp-echo ADDR:PORT …] [--smtp ADDR:PORT …]
//! ```
//!
//! `--udp-echo`: every datagram is sent back to its sender unchanged.
//! `--smtp`: an RFC 5321 greeting (`220 NAME ESMTP lvs-lab`), then `HELO`/
//! `EHLO` → `250 NAME`, `QUIT` → `221 NAME closing` and close, `NOOP`/
//! `RSET` → `250 OK`, anything else → `502 not implemented`. One thread per
//! listener and per SMTP connection (the checkers open a few).
//! Prints `READY …` on stdout once every socket is bound; runs until killed.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::exit;
use std::thread;

fn usage(msg: &str) -> ! {
    eprintln!("lvs-lab-responder: {msg}");
    eprintln!("usage: lvs-lab-responder --name NAME [--udp-echo ADDR:PORT …] [--smtp ADDR:PORT …]");
    exit(2)
}

fn udp_echo(sock: UdpSocket) {
    let mut buf = [0u8; 65536];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, peer)) => {
                let _ = sock.send_to(&buf[..n], peer);
            }
            Err(e) => eprintln!("udp recv: {e}"),
        }
    }
}

fn smtp_session(s: TcpStream, name: &str) -> std::io::Result<()> {
    let mut w = s.try_clone()?;
    write!(w, "220 {name} ESMTP lvs-lab\r\n")?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "HELO" | "EHLO" => write!(w, "250 {name}\r\n")?,
            "NOOP" | "RSET" => write!(w, "250 OK\r\n")?,
            "QUIT" => {
                write!(w, "221 {name} closing\r\n")?;
                return Ok(());
            }
            _ => write!(w, "502 not implemented\r\n")?,
        }
    }
}

fn main() {
    let mut name = "responder".to_string();
    let mut udp: Vec<SocketAddr> = Vec::new();
    let mut smtp: Vec<SocketAddr> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--name" => name = val(),
            "--udp-echo" => udp.push(val().parse().unwrap_or_else(|_| usage("bad ADDR:PORT"))),
            "--smtp" => smtp.push(val().parse().unwrap_or_else(|_| usage("bad ADDR:PORT"))),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if udp.is_empty() && smtp.is_empty() {
        usage("nothing to serve");
    }
    let mut threads = Vec::new();
    for a in &udp {
        let sock = UdpSocket::bind(a).unwrap_or_else(|e| usage(&format!("bind udp {a}: {e}")));
        threads.push(thread::spawn(move || udp_echo(sock)));
    }
    for a in &smtp {
        let l = TcpListener::bind(a).unwrap_or_else(|e| usage(&format!("bind tcp {a}: {e}")));
        let name = name.clone();
        threads.push(thread::spawn(move || {
            for s in l.incoming().flatten() {
                let name = name.clone();
                thread::spawn(move || {
                    let _ = smtp_session(s, &name);
                });
            }
        }));
    }
    println!("READY {name}: udp echo on {udp:?}, smtp on {smtp:?}");
    let _ = std::io::stdout().flush();
    for t in threads {
        let _ = t.join();
    }
}
