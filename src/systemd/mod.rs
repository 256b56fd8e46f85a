//! systemd: the manager's D-Bus API, unit name escaping, and sd_notify.

pub mod escape;
pub mod manager;
pub mod notify;
