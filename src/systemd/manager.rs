//! org.freedesktop.systemd1.Manager over D-Bus (system bus, or the private socket).
