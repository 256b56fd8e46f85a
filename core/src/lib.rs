//! hbd-core: the sans-IO heart of hbd.
//!
//! [`config`] is the cluster.toml model and its validation, [`proto`] the wire codec,
//! [`cluster`] the membership and ownership state machine. Inputs (a packet, a
//! timeout at T, a group result, an operator command) go in, actions (send, start or
//! stop a group, an event) come out. Nothing here opens a socket or a file, reads a
//! clock, spawns a thread or talks to D-Bus: this crate does not depend on tokio,
//! zbus or rtnetlink, and its clippy.toml forbids the std calls that would (files,
//! sockets, clocks, processes), so `cargo clippy -- -D warnings` breaks on them.

pub mod cluster;
pub mod config;
pub mod proto;
