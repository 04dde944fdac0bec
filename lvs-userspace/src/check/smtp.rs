//! SMTP_CHECK (keepalived check_smtp.c): connect, read the greeting (its
//! first line must carry status 220), send `HELO helo_name`, expect 250,
//! send `QUIT` and read its answer. Every read and write is bounded by
//! `connect_timeout`.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{
    error::CheckError,
    spec::{Conn, SmtpSpec},
    tcp,
};

/// keepalived's `smtp_get_status`: three digits, then a space or the end.
pub fn status(line: &str) -> Option<u16> {
    let line = line.trim_end_matches(['\r', '\n']);
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match line.as_bytes().get(3) {
        None | Some(b' ') => code.parse().ok(),
        _ => None,
    }
}

async fn line<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    t: Duration,
    server: &str,
) -> Result<String, CheckError> {
    let mut s = String::new();
    match tokio::time::timeout(t, r.read_line(&mut s)).await {
        Err(_) => Err(CheckError::Smtp(format!(
            "Read timeout from server {server}"
        ))),
        Ok(Err(_)) | Ok(Ok(0)) => Err(CheckError::Smtp(format!(
            "Read failure from server {server}"
        ))),
        Ok(Ok(_)) => Ok(s),
    }
}

async fn send<W: AsyncWriteExt + Unpin>(
    wr: &mut W,
    s: String,
    t: Duration,
    server: &str,
) -> Result<(), CheckError> {
    match tokio::time::timeout(t, wr.write_all(s.as_bytes())).await {
        Ok(Ok(())) => Ok(()),
        Err(_) => Err(CheckError::Smtp(format!(
            "Write timeout to server {server}"
        ))),
        Ok(Err(_)) => Err(CheckError::Smtp(format!(
            "Write failure to server {server}"
        ))),
    }
}

/// One SMTP_CHECK attempt.
pub async fn check(conn: &Conn, spec: &SmtpSpec) -> Result<(), CheckError> {
    // keepalived's FMT_SMTP_RS: [ip]:port.
    let server = format!("[{}]:{}", conn.target.ip(), conn.target.port());
    let stream = tcp::connect(conn).await.map_err(|e| match e {
        CheckError::ConnectTimeout(_) => {
            CheckError::Smtp(format!("Connection timeout to server {server}"))
        }
        CheckError::Connect(_) => CheckError::Smtp(format!("Error connecting to server {server}")),
        other => other,
    })?;
    let t = conn.connect_timeout;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let greeting = line(&mut rd, t, &server).await?;
    if status(&greeting) != Some(220) {
        return Err(CheckError::Smtp(format!(
            "Bad greeting banner from server {server}"
        )));
    }
    send(&mut wr, format!("HELO {}\r\n", spec.helo_name), t, &server).await?;
    let helo = line(&mut rd, t, &server).await?;
    if status(&helo) != Some(250) {
        return Err(CheckError::Smtp(format!(
            "Bad HELO response from server {server}"
        )));
    }
    send(&mut wr, "QUIT\r\n".to_string(), t, &server).await?;
    line(&mut rd, t, &server).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_as_keepalived_reads_it() {
        assert_eq!(status("220 mail.example ESMTP\r\n"), Some(220));
        assert_eq!(status("250\r\n"), Some(250));
        assert_eq!(status("220-multi line\r\n"), None);
        assert_eq!(status("22 short"), None);
        assert_eq!(status("abc def"), None);
    }
}
