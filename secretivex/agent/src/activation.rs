//! systemd integration: socket activation (`LISTEN_FDS`) and readiness notification
//! (`NOTIFY_SOCKET`). (Skeleton: filled in by the service work of issue 6.)

/// The listening socket systemd passed us, when started by socket activation.
pub fn inherited_listener() -> std::io::Result<Option<std::os::unix::net::UnixListener>> {
    Ok(None)
}

/// Tells the service manager the agent is ready (no-op when not run by systemd).
pub fn notify_ready() {}

/// Tells the service manager a reload has started (no-op when not run by systemd).
pub fn notify_reloading() {}
