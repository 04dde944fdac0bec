//! TCP_CHECK: a connect within `connect_timeout` (from `bindto:bind_port`,
//! on `bind_if`, with `fwmark`) is a success; the connection is closed at
//! once. Also the connect step of HTTP_GET / SSL_GET.

use tokio::net::{TcpSocket, TcpStream};

use super::{error::CheckError, spec::Conn};

/// Connects as the checker's connection options say.
pub async fn connect(conn: &Conn) -> Result<TcpStream, CheckError> {
    let sock = if conn.target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(CheckError::Socket)?;
    if let Some(dev) = &conn.bind_if {
        sock.bind_device(Some(dev.as_bytes()))
            .map_err(CheckError::Socket)?;
    }
    if let Some(mark) = conn.fwmark {
        socket2::SockRef::from(&sock)
            .set_mark(mark)
            .map_err(CheckError::Socket)?;
    }
    if let Some(b) = conn.bind {
        if b.port() != 0 {
            // A fixed source port is reused by every probe.
            sock.set_reuseaddr(true).map_err(CheckError::Socket)?;
        }
        sock.bind(b)
            .map_err(|source| CheckError::Bind { addr: b, source })?;
    }
    match tokio::time::timeout(conn.connect_timeout, sock.connect(conn.target)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(CheckError::Connect(e)),
        Err(_) => Err(CheckError::ConnectTimeout(conn.connect_timeout)),
    }
}

/// One TCP_CHECK attempt.
pub async fn check(conn: &Conn) -> Result<(), CheckError> {
    // Closed at once with a FIN, as keepalived does.
    connect(conn).await.map(drop)
}
