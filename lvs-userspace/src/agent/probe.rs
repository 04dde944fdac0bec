//! One attempt of each of keepalived's checkers: TCP_CHECK (connect),
//! HTTP_GET / SSL_GET (request each `url`, compare status code and the MD5
//! `digest` of the body, as keepalived's `genhash` prints it) and
//! MISC_CHECK (run a program: exit 0 up, 1 down, and with `misc_dynamic`
//! 2–255 up with weight exit−2).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use md5::{Digest, Md5};
use thiserror::Error;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("connect timeout")]
    Timeout,
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("I/O: {0}")]
    Io(std::io::Error),
    #[error("HTTP status code {got} (expected {want})")]
    Status { got: u16, want: String },
    #[error("MD5 digest of {path} is {got}, expected {want}")]
    Digest {
        path: String,
        got: String,
        want: String,
    },
    #[error("malformed HTTP response")]
    Http,
    #[error("{path} exited with {code}")]
    Exit { path: String, code: i32 },
    #[error("{0} did not finish in time: killed")]
    MiscTimeout(String),
    #[error("cannot run {path}: {source}")]
    Spawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One `url { }` to fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlSpec {
    pub path: String,
    pub digest: Option<String>,
    /// Inclusive ranges; empty = 200–299.
    pub status: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
}

/// What one attempt does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Tcp,
    Http {
        urls: Vec<UrlSpec>,
        tls: bool,
        sni: Option<String>,
        /// `HTTP/1.0` (keepalived's default) or `HTTP/1.1`.
        protocol: String,
    },
    Misc {
        path: String,
        timeout: Duration,
        dynamic: bool,
    },
}

/// An attempt's success: up, and a new weight for `misc_dynamic`.
pub type Outcome = Result<Option<u32>, ProbeError>;

pub async fn connect(
    target: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream, ProbeError> {
    let sock = if target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(ProbeError::Connect)?;
    if let Some(b) = bind {
        sock.bind(b).map_err(ProbeError::Connect)?;
    }
    match tokio::time::timeout(timeout, sock.connect(target)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ProbeError::Connect(e)),
        Err(_) => Err(ProbeError::Timeout),
    }
}

/// keepalived does not verify real servers' certificates (they are often
/// self-signed); neither do we. SSL_GET checks that TLS works and what the
/// server answers.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn status_ok(code: u16, ranges: &[(u16, u16)]) -> bool {
    if ranges.is_empty() {
        (200..=299).contains(&code)
    } else {
        ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&code))
    }
}

/// The lowercase hex MD5 of a body: what keepalived's `genhash` prints.
pub fn md5_hex(body: &[u8]) -> String {
    Md5::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sends one GET and returns (status, body).
pub async fn http_get<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    host: &str,
    path: &str,
    protocol: &str,
) -> Result<(u16, Vec<u8>), ProbeError> {
    let req = format!(
        "GET {path} {protocol}\r\nUser-Agent: KeepAliveClient\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.map_err(ProbeError::Io)?;
    let mut raw = Vec::new();
    // Bounded: a health check reads at most 1 MiB.
    let mut limited = (&mut s).take(1 << 20);
    let _ = limited.read_to_end(&mut raw).await;
    let text_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(ProbeError::Http)?;
    let head = std::str::from_utf8(&raw[..text_end]).map_err(|_| ProbeError::Http)?;
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(ProbeError::Http)?;
    let mut body = raw[text_end + 4..].to_vec();
    if let Some(len) = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    }) {
        body.truncate(len);
    }
    Ok((code, body))
}

/// One attempt of `probe` against `target`.
pub async fn attempt(
    probe: &Probe,
    target: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
) -> Outcome {
    match probe {
        Probe::Tcp => connect(target, bind, timeout).await.map(|_| None),
        Probe::Http {
            urls,
            tls,
            sni,
            protocol,
        } => {
            for url in urls {
                let stream = connect(target, bind, timeout).await?;
                let host = url
                    .virtualhost
                    .clone()
                    .unwrap_or_else(|| target.ip().to_string());
                let fetch = async {
                    if *tls {
                        let name = sni.clone().unwrap_or_else(|| target.ip().to_string());
                        let name = rustls::pki_types::ServerName::try_from(name)
                            .map_err(|e| ProbeError::Tls(std::io::Error::other(e)))?;
                        let s = tls_connector()
                            .connect(name, stream)
                            .await
                            .map_err(ProbeError::Tls)?;
                        http_get(s, &host, &url.path, protocol).await
                    } else {
                        http_get(stream, &host, &url.path, protocol).await
                    }
                };
                let (code, body) = tokio::time::timeout(timeout, fetch)
                    .await
                    .map_err(|_| ProbeError::Timeout)??;
                if !status_ok(code, &url.status) {
                    let want = if url.status.is_empty() {
                        "200-299".to_string()
                    } else {
                        url.status
                            .iter()
                            .map(|(a, b)| {
                                if a == b {
                                    a.to_string()
                                } else {
                                    format!("{a}-{b}")
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    return Err(ProbeError::Status { got: code, want });
                }
                if let Some(want) = &url.digest {
                    let got = md5_hex(&body);
                    if !got.eq_ignore_ascii_case(want) {
                        return Err(ProbeError::Digest {
                            path: url.path.clone(),
                            got,
                            want: want.clone(),
                        });
                    }
                }
            }
            Ok(None)
        }
        Probe::Misc {
            path,
            timeout,
            dynamic,
        } => misc(path, *timeout, *dynamic).await,
    }
}

/// Runs a MISC_CHECK program. Without shell syntax it is split on blanks
/// and run directly (no shell to quote around); with it, through `sh -c`.
async fn misc(path: &str, timeout: Duration, dynamic: bool) -> Outcome {
    let needs_shell = path.contains(['|', '&', ';', '<', '>', '$', '`', '"', '\'', '*']);
    let mut cmd = if needs_shell {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(path);
        c
    } else {
        let mut words = path.split_whitespace();
        let mut c = tokio::process::Command::new(words.next().unwrap_or(""));
        c.args(words);
        c
    };
    cmd.kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().map_err(|source| ProbeError::Spawn {
        path: path.to_owned(),
        source,
    })?;
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) => st,
        Ok(Err(e)) => return Err(ProbeError::Io(e)),
        Err(_) => {
            // kill_on_drop would do it too; do it now and reap: no zombie.
            let _ = child.kill().await;
            return Err(ProbeError::MiscTimeout(path.to_owned()));
        }
    };
    match status.code().unwrap_or(1) {
        0 => Ok(None),
        code @ 2..=255 if dynamic => Ok(Some(code as u32 - 2)),
        code => Err(ProbeError::Exit {
            path: path.to_owned(),
            code,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_genhash_md5_and_status_ranges() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(status_ok(204, &[]));
        assert!(!status_ok(404, &[]));
        assert!(status_ok(404, &[(200, 200), (400, 404)]));
    }

    #[tokio::test]
    async fn misc_exit_codes() {
        let t = Duration::from_secs(5);
        assert!(misc("/bin/true", t, false).await.is_ok());
        assert!(misc("/bin/false", t, false).await.is_err());
        assert_eq!(misc("sh -c 'exit 7'", t, true).await.unwrap(), Some(5));
        assert!(matches!(
            misc("/bin/sleep 5", Duration::from_millis(100), false).await,
            Err(ProbeError::MiscTimeout(_))
        ));
    }
}
