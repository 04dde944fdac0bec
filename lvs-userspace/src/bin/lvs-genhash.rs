//! `lvs-genhash`: keepalived's `genhash`. Prints the MD5 digest of a url's
//! body, the value to write as `digest` in an HTTP_GET / SSL_GET `url { }`.
//!
//! ```text
//! lvs-genhash -s 198.18.0.11 -p 80 -u /index.html [-S] [-I] [-V host] [-P 1.0|1.0C|1.1] [-t secs] [-v]
//! ```

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use lvs_userspace::check::{genhash, GenhashOptions, HttpProtocol};

#[derive(Parser, Debug)]
#[command(
    name = "lvs-genhash",
    version,
    // -V is genhash's --use-virtualhost: --version has no short form.
    disable_version_flag = true,
    about = "MD5 digest of a url's body, as keepalived's genhash prints it"
)]
struct Args {
    /// Use TLS (SSL_GET).
    #[arg(short = 'S', long = "use-ssl")]
    ssl: bool,
    /// Send SNI during the TLS handshake (the virtualhost, see -V).
    #[arg(short = 'I', long = "use-sni")]
    sni: bool,
    /// Server address.
    #[arg(short = 's', long = "server")]
    server: std::net::IpAddr,
    /// Server port (default 80, 443 with -S).
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    /// Path of the url.
    #[arg(short = 'u', long = "url", default_value = "/")]
    url: String,
    /// Host header (virtualhost).
    #[arg(short = 'V', long = "use-virtualhost")]
    virtualhost: Option<String>,
    /// HTTP protocol: 1.0, 1.0C, 1.1.
    #[arg(short = 'P', long = "protocol", default_value = "1.0")]
    protocol: String,
    /// Timeout in seconds.
    #[arg(short = 't', long = "timeout", default_value_t = 5)]
    timeout: u64,
    /// Also print the status code and body length.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Print version.
    #[arg(long, action = clap::ArgAction::Version)]
    version: (),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let protocol = match args.protocol.to_ascii_lowercase().as_str() {
        "1.0" | "1.0c" | "1.1" => HttpProtocol::parse(Some(&args.protocol)),
        other => {
            eprintln!("invalid HTTP protocol version '{other}'");
            return ExitCode::from(2);
        }
    };
    let port = args.port.unwrap_or(if args.ssl { 443 } else { 80 });
    let opts = GenhashOptions {
        tls: args.ssl,
        sni: args.sni,
        virtualhost: args.virtualhost.clone(),
        protocol,
        timeout: Duration::from_secs(args.timeout.max(1)),
        bind: None,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lvs-genhash: {e}");
            return ExitCode::FAILURE;
        }
    };
    let target = SocketAddr::new(args.server, port);
    match rt.block_on(genhash(target, &args.url, &opts)) {
        Ok(f) => {
            if args.verbose {
                eprintln!("status {} body {} bytes", f.status, f.body_len);
            }
            println!("{}", f.digest);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lvs-genhash: {target}{}: {e}", args.url);
            ExitCode::FAILURE
        }
    }
}
