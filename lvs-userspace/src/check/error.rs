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
    /// UDP_CHECK: the reply is not what `require_reply` asks for.
    #[error("reply data mismatch")]
    ReplyMismatch,
    /// DNS_CHECK: the server answered with an error rcode.
    #[error("read error occurred. (rcode = {0})")]
    Rcode(u16),
    /// SMTP_CHECK: keepalived's words for the failed step.
    #[error("{0}")]
    Smtp(String),
    /// FILE_CHECK: the tracked file's value puts the server in FAULT.
    #[error("tracked file {0} in FAULT state")]
    FileFault(String),
    #[error("invalid: {0}")]
    Invalid(String),
}

impl CheckError {
    /// A failure on our side (no socket, an address we cannot bind): it
    /// says nothing about the server, so the check is rescheduled and the
    /// server's state left as it is (keepalived: "socket bind failed.
    /// Rescheduling.").
    pub fn is_local(&self) -> bool {
        matches!(self, CheckError::Bind { .. } | CheckError::Socket(_))
    }
}
