//! systemd's readiness protocol for `Type=notify` units: READY=1 once the
//! data path forwards, RELOADING=1 (with MONOTONIC_USEC, which systemd 253+
//! wants for `Type=notify-reload`) while a SIGHUP is applied and READY=1
//! after it, STOPPING=1 on SIGTERM/SIGINT. Nothing is sent without
//! `NOTIFY_SOCKET` (not started by systemd); a failed send is only logged,
//! as systemd's own sd_notify callers do.

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify: {e}");
    }
}

/// Started (or a reload applied): `status` is what `systemctl status` shows.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload begins; [`ready`] ends it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}
