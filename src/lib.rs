//! hbd: a failover daemon in the model of Linux-HA Heartbeat v1, driven through systemd.
//!
//! Layout: [`config`] is the shared model; `proto` and `cluster` are the sans-IO core
//! (wire codec and the membership/ownership state machine, driven by inputs and a clock
//! passed in); `transport`, `systemd`, `resource` and `daemon` are the I/O shells;
//! `import` converts Heartbeat's /etc/ha.d; [`cli`] is the command line.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod control;
pub mod daemon;
pub mod error;
pub mod import;
pub mod proto;
pub mod resource;
pub mod systemd;
pub mod transport;

pub use error::{Error, Result};
