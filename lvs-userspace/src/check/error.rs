//! Why a probe failed. The `Display` text is what goes into
//! [`super::CheckEvent::Down`]'s reason and `lvsadm --health`.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("connect timeout after {0:?}")]
    ConnectTimeout(Duration),
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("TLS handshake: {0}")]
    Tls(#[source] std::io::Error),
    #[error("send request: {0}")]
    Send(#[source] std::io::Error),
    #[error("read timeout after {0:?}")]
    ReadTimeout(Duration),
    #[error("read: {0}")]
    Read(#[source] std::io::Error),
    #[error("no data received")]
    NoData,
    #[error("HTTP status code {got} not in {want}")]
    Status { got: u16, want: String },
    #[error("MD5 digest {got} != {want}")]
    Digest { got: String, want: String },
    #[error("body does not match regex {0}")]
    Regex(String),
    #[error("script {0}")]
    Script(String),
    #[error("script timed out after {0:?}")]
    ScriptTimeout(Duration),
    #[error("cannot run script: {0}")]
    Spawn(String),
    #[error("invalid: {0}")]
    Invalid(String),
}
