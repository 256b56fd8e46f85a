//! Unit name escaping, exactly as `systemd-escape --path` does it.
