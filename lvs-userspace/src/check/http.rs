//! HTTP_GET and SSL_GET, the way keepalived's check_http.c does them: one
//! `GET` per url with keepalived's request (`User-Agent: KeepAliveClient`,
//! `Host:` the virtualhost or `ip:port`, `Connection: close` for `1.0C` and
//! `1.1`), the response read to EOF (each read within `connect_timeout`),
//! the status code checked against the url's ranges and the MD5 of the
//! bytes after the header (up to `Content-Length`) compared with `digest`.
//! and, with `regex`, the body's first MiB searched for it (Rust `regex`
//! syntax, not PCRE2; `regex_no_match` and the offsets are not supported).
//!
//! The client is hand-written rather than hyper: keepalived digests the raw
//! bytes after the header (chunk framing included), and an operator's
//! digests from keepalived's `genhash` must keep matching.
//!
//! TLS is rustls with certificate verification off, as keepalived's SSL_GET
//! (it checks that the service answers, not who it is).
//!
//! Where rustls and keepalived (the system OpenSSL, Debian's default
//! policy) differ: both speak TLS 1.2 and 1.3 only (Debian's OpenSSL 3 at
//! SECLEVEL 2 refuses TLS 1.0/1.1 too) and accept RSA keys of 2048 bits and
//! more, ECDSA P-256, P-384 and P-521 (ring has no P-521: its handshake
//! signatures are checked, and the secp521r1 group offered, through the
//! RustCrypto `p521` crate; TLS 1.2 servers want the certificate's curve
//! among the client's groups) and Ed25519. rustls has no CBC and no finite-field DHE suites, which
//! OpenSSL has: a server offering only those fails the handshake, and the
//! log line carries the reason and says so, to tell a TLS mismatch from a
//! dead server.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use md5::{Digest, Md5};
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{
        alg_id, AlgorithmIdentifier, CertificateDer, InvalidSignature, ServerName,
        SignatureVerificationAlgorithm, UnixTime,
    },
    ClientConfig, DigitallySignedStruct, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{
    error::CheckError,
    spec::{Conn, HttpProtocol, HttpSpec, UrlSpec},
    tcp,
};

/// What a GET returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    /// MD5 of the body, lower-case hex (keepalived's genhash output).
    pub digest: String,
    pub body_len: u64,
    /// The body's first [`KEPT_BODY`] bytes, when asked for (regex).
    pub body: Vec<u8>,
}

/// How much of a body a `regex` is searched in.
pub const KEPT_BODY: usize = 1 << 20;

/// The largest response header we accept.
const MAX_HEADER: usize = 16 * 1024;

/// keepalived's GET request.
pub fn request(
    path: &str,
    host: &Option<String>,
    target: SocketAddr,
    proto: HttpProtocol,
) -> String {
    let minor = match proto {
        HttpProtocol::Http11 => 1,
        _ => 0,
    };
    let close = match proto {
        HttpProtocol::Http10 => "",
        _ => "Connection: close\r\n",
    };
    let host = match host {
        Some(h) => h.clone(),
        None => match target {
            SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        },
    };
    format!(
        "GET {path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n"
    )
}

/// The status code of a status line, as keepalived's `extract_status_code`
/// (0 when malformed).
pub fn status_code(head: &[u8]) -> u16 {
    let Some(sp) = head.iter().position(|&b| b == b' ' || b == b'\r') else {
        return 0;
    };
    if head[sp] != b' ' {
        return 0;
    }
    let code = &head[sp + 1..];
    if code.len() < 4 || code[3] != b' ' || !code[..3].iter().all(u8::is_ascii_digit) {
        return 0;
    }
    code[..3]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
}

/// `Content-Length` of a header block, if any.
fn content_length(head: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(head);
    text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

fn find_header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Reads a response to EOF, each read within `read_timeout`.
pub async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    read_timeout: Duration,
    keep_body: bool,
) -> Result<Fetched, CheckError> {
    let mut kept = Vec::new();
    let mut keep = |part: &[u8]| {
        if keep_body && kept.len() < KEPT_BODY {
            let n = part.len().min(KEPT_BODY - kept.len());
            kept.extend_from_slice(&part[..n]);
        }
    };
    let mut head = Vec::with_capacity(1024);
    let mut status = 0;
    let mut remaining: Option<u64> = None;
    let mut in_body = false;
    let mut md5 = Md5::new();
    let mut body_len = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        let n = match tokio::time::timeout(read_timeout, stream.read(&mut buf)).await {
            Err(_) => return Err(CheckError::ReadTimeout(read_timeout)),
            Ok(Ok(n)) => n,
            // A TLS peer that closes without close_notify: EOF for us.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof && in_body => 0,
            Ok(Err(e)) => return Err(CheckError::Read(e)),
        };
        if n == 0 {
            break;
        }
        let mut data = &buf[..n];
        if !in_body {
            head.extend_from_slice(data);
            let Some(end) = find_header_end(&head) else {
                if head.len() > MAX_HEADER {
                    return Err(CheckError::Invalid("response header too long".into()));
                }
                continue;
            };
            in_body = true;
            status = status_code(&head[..end]);
            remaining = content_length(&head[..end]);
            let body = head.split_off(end);
            let take = body_part(&body, &mut remaining);
            keep(take);
            md5.update(take);
            body_len += take.len() as u64;
            continue;
        }
        data = body_part(data, &mut remaining);
        keep(data);
        md5.update(data);
        body_len += data.len() as u64;
    }
    if !in_body {
        return Err(CheckError::NoData);
    }
    Ok(Fetched {
        status,
        digest: hex(&md5.finalize()),
        body_len,
        body: kept,
    })
}

/// The part of `data` inside `Content-Length`.
fn body_part<'a>(data: &'a [u8], remaining: &mut Option<u64>) -> &'a [u8] {
    match remaining {
        None => data,
        Some(r) => {
            let n = (*r).min(data.len() as u64) as usize;
            *r -= n as u64;
            &data[..n]
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends the request and reads the response.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    req: &str,
    read_timeout: Duration,
    keep_body: bool,
) -> Result<Fetched, CheckError> {
    tokio::time::timeout(read_timeout, stream.write_all(req.as_bytes()))
        .await
        .map_err(|_| CheckError::ReadTimeout(read_timeout))?
        .map_err(CheckError::Send)?;
    stream.flush().await.map_err(CheckError::Send)?;
    read_response(stream, read_timeout, keep_body).await
}

/// One GET of one url.
pub async fn fetch(
    conn: &Conn,
    tls: bool,
    url: &UrlSpec,
    proto: HttpProtocol,
) -> Result<Fetched, CheckError> {
    let mut tcp = tcp::connect(conn).await?;
    let req = request(&url.path, &url.virtualhost, conn.target, proto);
    if !tls {
        return exchange(&mut tcp, &req, conn.connect_timeout, url.regex.is_some()).await;
    }
    let name = url
        .sni
        .as_ref()
        .and_then(|n| ServerName::try_from(n.clone()).ok())
        // An IP address as server name: rustls then sends no SNI.
        .unwrap_or_else(|| ServerName::IpAddress(conn.target.ip().into()));
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    let mut stream = tokio::time::timeout(conn.connect_timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| CheckError::ConnectTimeout(conn.connect_timeout))?
        .map_err(|e| CheckError::Tls(with_tls_hint(e)))?;
    exchange(&mut stream, &req, conn.connect_timeout, url.regex.is_some()).await
}

/// Adds what a failed handshake usually means when the peer found nothing
/// in common with us (rustls' reach; see the module doc).
fn with_tls_hint(e: std::io::Error) -> std::io::Error {
    let text = e.to_string();
    let mismatch = [
        "HandshakeFailure",
        "PeerIncompatible",
        "NoSignatureSchemesInCommon",
        "ProtocolVersion",
        "InsufficientSecurity",
        "IllegalParameter",
    ];
    if mismatch.iter().any(|m| text.contains(m)) {
        std::io::Error::new(
            e.kind(),
            format!(
                "{text} (no TLS version, cipher suite or key type in common: lvsd's SSL_GET \
                 speaks TLS 1.2/1.3 with RSA >= 2048 bits, ECDSA P-256/P-384/P-521 or Ed25519 \
                 keys; not TLS <= 1.1, DHE or CBC suites)"
            ),
        )
    } else {
        e
    }
}

/// One HTTP_GET / SSL_GET attempt: every url must pass. On success, the
/// keepalived words of the last url (`HTTP status code` or `MD5 digest`)
/// and its path.
pub async fn check(conn: &Conn, spec: &HttpSpec) -> Result<(&'static str, String), CheckError> {
    let mut what = ("HTTP status code", String::new());
    for url in &spec.urls {
        let got = fetch(conn, spec.tls, url, spec.protocol).await?;
        if !url
            .status
            .iter()
            .any(|&(a, b)| (a..=b).contains(&got.status))
        {
            return Err(CheckError::Status {
                got: got.status,
                want: fmt_ranges(&url.status),
            });
        }
        match &url.digest {
            Some(want) if *want != got.digest => {
                return Err(CheckError::Digest {
                    got: got.digest,
                    want: want.clone(),
                })
            }
            Some(_) => what = ("MD5 digest", url.path.clone()),
            None => what = ("HTTP status code", url.path.clone()),
        }
        if let Some(re) = &url.regex {
            if !re.0.is_match(&got.body) {
                return Err(CheckError::Regex(re.0.as_str().to_owned()));
            }
            what = ("Regex match", url.path.clone());
        }
    }
    Ok(what)
}

fn fmt_ranges(r: &[(u16, u16)]) -> String {
    r.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// keepalived's messages for a failed HTTP attempt (`timeout_epilog`).
pub fn failure_words(e: &CheckError) -> &'static str {
    match e {
        CheckError::ConnectTimeout(_) => "Timeout connecting",
        CheckError::Connect(_) | CheckError::Bind { .. } | CheckError::Socket(_) => {
            "Error connecting"
        }
        CheckError::Tls(_) => "SSL handshake/communication error connecting to",
        CheckError::Send(_) => "Cannot send get request to",
        CheckError::ReadTimeout(_) => "Timeout HTTP read",
        CheckError::Read(_) => "Read error with",
        CheckError::NoData | CheckError::Invalid(_) => "Read, no data received from",
        CheckError::Status { .. } => "HTTP status code error to",
        CheckError::Digest { .. } => "MD5 digest error to",
        CheckError::Regex(_) => "Regex match failed",
        _ => "Connection failed",
    }
}

/// Options of [`genhash`] (keepalived's `genhash` flags).
#[derive(Clone, Debug)]
pub struct GenhashOptions {
    /// `-S`: TLS.
    pub tls: bool,
    /// `-I`: send SNI (the virtualhost).
    pub sni: bool,
    /// `-V`: the `Host:` header.
    pub virtualhost: Option<String>,
    /// `-P`: `1.0`, `1.0C`, `1.1`.
    pub protocol: HttpProtocol,
    /// `-t`: connect and read timeout.
    pub timeout: Duration,
    /// Source address to bind.
    pub bind: Option<SocketAddr>,
}

impl Default for GenhashOptions {
    fn default() -> Self {
        GenhashOptions {
            tls: false,
            sni: false,
            virtualhost: None,
            protocol: HttpProtocol::Http10,
            timeout: Duration::from_secs(5),
            bind: None,
        }
    }
}

/// The `digest` to write in a `url { }` for `path` on `target`: the MD5 of
/// the body as keepalived's `genhash` prints it (lower-case hex).
pub async fn genhash(
    target: SocketAddr,
    path: &str,
    opts: &GenhashOptions,
) -> Result<Fetched, CheckError> {
    let conn = Conn {
        target,
        bind: opts.bind,
        bind_if: None,
        fwmark: None,
        connect_timeout: opts.timeout,
    };
    let url = UrlSpec {
        path: path.to_owned(),
        digest: None,
        status: vec![(100, 599)],
        virtualhost: opts.virtualhost.clone(),
        regex: None,
        sni: opts.sni.then(|| opts.virtualhost.clone()).flatten(),
    };
    fetch(&conn, opts.tls, &url, opts.protocol).await
}

fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut provider = rustls::crypto::ring::default_provider();
            // Last: preferred groups stay first, TLS 1.3 key shares unchanged.
            provider.kx_groups.push(&Secp521r1);
            let provider = Arc::new(provider);
            let verifier = Arc::new(NoVerify(provider.clone()));
            let cfg = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            Arc::new(cfg)
        })
        .clone()
}

/// Accepts any certificate (keepalived's SSL_GET does not verify unless
/// given a CA; we have no `ssl { }` block yet). Handshake signatures are still
/// checked, so the peer must hold the key of the certificate it sends.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // In TLS 1.2 an ECDSA scheme names only the hash: a P-521 key may
        // sign with any of them.
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
        .or_else(|e| verify_p521(message, cert, dss).map_err(|_| e))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme == SignatureScheme::ECDSA_NISTP521_SHA512 {
            return verify_p521(message, cert, dss);
        }
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut v = self.0.signature_verification_algorithms.supported_schemes();
        v.push(SignatureScheme::ECDSA_NISTP521_SHA512);
        v
    }
}

/// A handshake signature by a P-521 certificate key: the key is taken from
/// the certificate by webpki (which also checks that it is a P-521 key),
/// the signature checked by `p521` over the scheme's hash.
fn verify_p521(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let alg = match dss.scheme {
        SignatureScheme::ECDSA_NISTP256_SHA256 => EcdsaP521(Hash::Sha256),
        SignatureScheme::ECDSA_NISTP384_SHA384 => EcdsaP521(Hash::Sha384),
        SignatureScheme::ECDSA_NISTP521_SHA512 => EcdsaP521(Hash::Sha512),
        _ => {
            return Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::NoSignatureSchemesInCommon,
            ))
        }
    };
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    ee.verify_signature(&alg, message, dss.signature())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}

/// ECDHE over secp521r1 (P-521), which ring lacks.
#[derive(Debug)]
struct Secp521r1;

struct Secp521r1Kx {
    secret: p521::SecretKey,
    public: Vec<u8>,
}

impl rustls::crypto::SupportedKxGroup for Secp521r1 {
    fn start(&self) -> Result<Box<dyn rustls::crypto::ActiveKeyExchange>, rustls::Error> {
        // A uniformly random scalar below the group order: 521 random bits
        // (66 octets, the top one masked), redrawn in the rare case it is
        // out of range or zero.
        let secret = loop {
            let mut b = [0u8; 66];
            getrandom(&mut b).map_err(|e| rustls::Error::General(format!("getrandom: {e}")))?;
            b[0] &= 0x01;
            if let Ok(k) = p521::SecretKey::from_slice(&b) {
                break k;
            }
        };
        use p521::elliptic_curve::sec1::ToEncodedPoint;
        let public = secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        Ok(Box::new(Secp521r1Kx { secret, public }))
    }

    fn name(&self) -> rustls::NamedGroup {
        rustls::NamedGroup::secp521r1
    }
}

impl rustls::crypto::ActiveKeyExchange for Secp521r1Kx {
    fn complete(
        self: Box<Self>,
        peer_pub_key: &[u8],
    ) -> Result<rustls::crypto::SharedSecret, rustls::Error> {
        let peer = p521::PublicKey::from_sec1_bytes(peer_pub_key)
            .map_err(|_| rustls::Error::from(rustls::PeerMisbehaved::InvalidKeyShare))?;
        let shared = p521::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        Ok(rustls::crypto::SharedSecret::from(
            shared.raw_secret_bytes().as_slice(),
        ))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> rustls::NamedGroup {
        rustls::NamedGroup::secp521r1
    }
}

/// The kernel's random bytes (getrandom(2), blocking only before the pool
/// is seeded at boot).
fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of
        // `buf`, which is valid for writes for the whole call.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        } else {
            filled += n as usize;
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// ECDSA over P-521 with the given hash, for webpki.
#[derive(Debug)]
struct EcdsaP521(Hash);

impl SignatureVerificationAlgorithm for EcdsaP521 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use p521::ecdsa::{signature::hazmat::PrehashVerifier, Signature, VerifyingKey};
        use sha2::Digest as _;
        let key = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
        let sig = Signature::from_der(signature).map_err(|_| InvalidSignature)?;
        let digest = match self.0 {
            Hash::Sha256 => sha2::Sha256::digest(message).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(message).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(message).to_vec(),
        };
        key.verify_prehash(&digest, &sig)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_P521
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        match self.0 {
            Hash::Sha256 => alg_id::ECDSA_SHA256,
            Hash::Sha384 => alg_id::ECDSA_SHA384,
            Hash::Sha512 => alg_id::ECDSA_SHA512,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secp521r1_key_exchange_agrees() {
        use rustls::crypto::SupportedKxGroup;
        let (a, b) = (Secp521r1.start().unwrap(), Secp521r1.start().unwrap());
        assert_eq!(a.pub_key().len(), 133);
        let (pa, pb) = (a.pub_key().to_vec(), b.pub_key().to_vec());
        let sa = a.complete(&pb).unwrap();
        let sb = b.complete(&pa).unwrap();
        assert_eq!(sa.secret_bytes(), sb.secret_bytes());
        assert!(Secp521r1.start().unwrap().complete(&[4, 1, 2]).is_err());
    }

    #[test]
    fn request_is_keepalived_s() {
        let t: SocketAddr = "198.18.0.11:80".parse().unwrap();
        assert_eq!(
            request("/", &None, t, HttpProtocol::Http10),
            "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 198.18.0.11:80\r\n\r\n"
        );
        assert_eq!(
            request("/x", &Some("www".into()), t, HttpProtocol::Http11),
            "GET /x HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www\r\n\r\n"
        );
        let t6: SocketAddr = "[2001:db8::1]:8080".parse().unwrap();
        assert!(request("/", &None, t6, HttpProtocol::Http10Close)
            .contains("Host: [2001:db8::1]:8080\r\n"));
    }

    #[test]
    fn status_line() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), 200);
        assert_eq!(status_code(b"HTTP/1.0 404 Not Found\r\n"), 404);
        assert_eq!(status_code(b"HTTP/1.0 2000 x\r\n"), 0);
        assert_eq!(status_code(b"garbage\r\n"), 0);
    }

    #[tokio::test]
    async fn digest_of_body_up_to_content_length() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nrs1\nEXTRA";
        let got = read_response(&mut &resp[..], Duration::from_secs(1), true)
            .await
            .unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.body_len, 4);
        assert_eq!(got.body, b"rs1\n");
        // md5("rs1\n")
        assert_eq!(got.digest, hex(&Md5::digest(b"rs1\n")));
        let resp = b"HTTP/1.0 500 x\r\n\r\nabc";
        let got = read_response(&mut &resp[..], Duration::from_secs(1), true)
            .await
            .unwrap();
        assert_eq!((got.status, got.body_len), (500, 3));
        assert_eq!(got.digest, "900150983cd24fb0d6963f7d28e17f72");
        let resp = b"HTTP/1.0 200";
        assert!(matches!(
            read_response(&mut &resp[..], Duration::from_secs(1), true).await,
            Err(CheckError::NoData)
        ));
    }
}
