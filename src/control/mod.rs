//! The control API of a running hbd: one D-Bus interface, `org.hbd.Control1` at
//! `/org/hbd`, served on the system bus when one runs (well-known name
//! `org.hbd.Control1`, allowed by units/org.hbd.Control1.conf) and always on the
//! peer-to-peer socket `/run/hbd/control` (mode 0600, root's peers only), so that
//! the CLI works on a host without a bus daemon.
//!
//! ```text
//! Status() -> s                     the report as JSON (report.rs; README documents it)
//! Standby(s group, b force) -> s    "" = every group; returns the outcome as JSON
//! Takeover(s group, b force) -> s
//! Maintenance(b on) -> s
//! Clear(s group) -> s                "" = every group: forget standby/takeover here
//! Unblock(s group) -> s
//! FenceAck(s node) -> s              the operator confirms NODE is off
//! Reload() -> s
//! signal StateChanged(s summary)    on every state change (the STATUS= line)
//! ```
//!
//! A refused command is the D-Bus error `org.hbd.Control1.Error.Refused` whose
//! message is the one-sentence reason; a caller that is not root gets
//! `org.hbd.Control1.Error.AccessDenied` for every changing call.
//!
//! The daemon never waits on the API: method calls run in their own tasks and reach
//! the event loop through a bounded queue; the loop answers at once (a command is one
//! call into the core) over a oneshot channel. A slow or stuck client only stalls its
//! own connection.

pub mod client;
pub mod report;
mod server;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::cluster::{Command, CommandError, CommandOutcome, Status};

pub use server::{Server, start};

pub const INTERFACE: &str = "org.hbd.Control1";
pub const BUS_NAME: &str = "org.hbd.Control1";
pub const OBJECT_PATH: &str = "/org/hbd";
/// The peer-to-peer socket (in the unit's RuntimeDirectory).
pub const SOCKET: &str = "/run/hbd/control";

/// What the API asks of the daemon's event loop.
#[derive(Debug)]
pub enum Request {
    /// A snapshot of the core, now.
    Status { reply: oneshot::Sender<Snapshot> },
    Command {
        cmd: Command,
        reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
    },
    /// Reread cluster.toml and the key file (as SIGHUP does).
    Reload {
        reply: oneshot::Sender<Result<String, crate::daemon::ReloadRefused>>,
    },
}

/// The core's status and the wall-clock time it was taken.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: Status,
    /// Heartbeat gaps per peer and link, with the deadtime advice.
    pub gaps: Vec<report::GapReport>,
    pub cluster: String,
    pub taken: SystemTime,
}

/// What a changing call returns (as JSON): the outcome's sentence and what is still
/// moving because of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub message: String,
    #[serde(default)]
    pub wait: Vec<crate::cluster::Wait>,
}
