//! hbd: a failover daemon in the model of Linux-HA Heartbeat v1, driven through systemd.
//!
//! Layout: the sans-IO core is its own crate, `hbd-core` (core/): the config model,
//! the wire codec ([`proto`]) and the membership/ownership state machine ([`cluster`]),
//! driven by inputs and a clock passed in, re-exported here. [`config`] adds reading
//! the files; `transport`, `systemd`, `resource` and `daemon` are the I/O shells;
//! `import` converts Heartbeat's /etc/ha.d; [`cli`] is the command line.

pub use hbd_core::{cluster, proto};

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod error;
pub mod files;
pub mod import;
pub mod resource;
pub mod systemd;
pub mod transport;

pub use error::{Error, Result};
