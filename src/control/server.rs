//! Serving `org.hbd.Control1`: on the system bus (best effort) and on the
//! peer-to-peer socket.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;
use zbus::message::Header;
use zbus::{Connection, DBusError, interface};

use super::{BUS_NAME, INTERFACE, OBJECT_PATH, Reply, Request, report};
use crate::cluster::Command;
use crate::resource::Manager;

/// How long a call waits for the event loop (which answers at once unless stopped).
const LOOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long resource states may take to ask for one status.
const RESOURCES_TIMEOUT: Duration = Duration::from_secs(3);
/// A client has this long to finish the D-Bus handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Peer-to-peer connections kept at once; the oldest goes first.
const MAX_CLIENTS: usize = 32;

#[derive(Debug, DBusError)]
#[zbus(prefix = "org.hbd.Control1.Error")]
pub enum ControlError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The command was refused; the message says why.
    Refused(String),
    AccessDenied(String),
    /// The daemon did not answer (shutting down).
    Unavailable(String),
}

/// The interface object; one per connection.
struct Control {
    requests: mpsc::Sender<Request>,
    manager: Manager,
    /// The peer's uid, checked when a peer-to-peer client connected.
    p2p_uid: Option<u32>,
}

impl Control {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, ControlError> {
        let (tx, rx) = oneshot::channel();
        let unavailable =
            || ControlError::Unavailable("hbd is not answering (shutting down?)".into());
        self.requests
            .send_timeout(make(tx), LOOP_TIMEOUT)
            .await
            .map_err(|_| unavailable())?;
        match tokio::time::timeout(LOOP_TIMEOUT, rx).await {
            Ok(Ok(v)) => Ok(v),
            _ => Err(unavailable()),
        }
    }

    /// Changing calls are root's only.
    async fn authorize(&self, header: &Header<'_>, conn: &Connection) -> Result<(), ControlError> {
        let uid = match self.p2p_uid {
            Some(uid) => Some(uid),
            None => match header.sender() {
                Some(sender) => {
                    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
                    Some(
                        dbus.get_connection_unix_user(sender.clone().into())
                            .await
                            .map_err(zbus::Error::from)?,
                    )
                }
                None => None,
            },
        };
        if uid == Some(0) {
            Ok(())
        } else {
            Err(ControlError::AccessDenied(
                "only root may change what hbd does".into(),
            ))
        }
    }

    async fn command(
        &self,
        header: &Header<'_>,
        conn: &Connection,
        cmd: Command,
    ) -> Result<String, ControlError> {
        self.authorize(header, conn).await?;
        let outcome = self
            .ask(|reply| Request::Command { cmd, reply })
            .await?
            .map_err(|e| ControlError::Refused(e.to_string()))?;
        let reply = Reply {
            message: outcome.message,
            wait: outcome.wait,
        };
        serde_json::to_string(&reply).map_err(|e| ControlError::Unavailable(e.to_string()))
    }
}

fn group_arg(group: String) -> Option<String> {
    (!group.is_empty()).then_some(group)
}

#[interface(name = "org.hbd.Control1")]
impl Control {
    /// The status report as JSON (shape: README, "hbd status --json").
    async fn status(&self) -> Result<String, ControlError> {
        let snap = self.ask(|reply| Request::Status { reply }).await?;
        let mut resources = Vec::new();
        let ask = async {
            // By name: a reload may have moved the groups since the snapshot.
            for g in &snap.status.groups {
                let states = match self.manager.group_named(&g.name) {
                    Some((i, cfg)) => self.manager.resource_states_of(&cfg, i).await,
                    None => Ok(Vec::new()),
                };
                resources.push(states.unwrap_or_default());
            }
        };
        // Resource states are a courtesy: a hung systemd must not hang status.
        let _ = tokio::time::timeout(RESOURCES_TIMEOUT, ask).await;
        let mut r = report::build(&snap.cluster, &snap.status, snap.taken, resources);
        r.heartbeat_gaps = snap.gaps;
        serde_json::to_string(&r).map_err(|e| ControlError::Unavailable(e.to_string()))
    }

    /// Give up GROUP ("" = every group) here; outcome as JSON.
    async fn standby(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        group: String,
        force: bool,
    ) -> Result<String, ControlError> {
        let group = group_arg(group);
        self.command(&header, conn, Command::Standby { group, force })
            .await
    }

    /// Bring GROUP ("" = every group) here; outcome as JSON.
    async fn takeover(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        group: String,
        force: bool,
    ) -> Result<String, ControlError> {
        let group = group_arg(group);
        self.command(&header, conn, Command::Takeover { group, force })
            .await
    }

    /// Stop (true) or resume (false) managing groups on this node.
    async fn maintenance(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        on: bool,
    ) -> Result<String, ControlError> {
        self.command(&header, conn, Command::Maintenance(on)).await
    }

    /// Forget this node's standby or takeover for GROUP ("" = every group).
    async fn clear(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        group: String,
    ) -> Result<String, ControlError> {
        let group = group_arg(group);
        self.command(&header, conn, Command::Clear { group }).await
    }

    /// An operator cleaned up GROUP, blocked or failed here.
    async fn unblock(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        group: String,
    ) -> Result<String, ControlError> {
        self.command(&header, conn, Command::Unblock { group })
            .await
    }

    /// The operator confirms NODE is off: a takeover waiting for its fence proceeds.
    async fn fence_ack(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        node: String,
    ) -> Result<String, ControlError> {
        self.command(&header, conn, Command::FenceAck { node })
            .await
    }

    /// Reread cluster.toml and the key file.
    async fn reload(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, ControlError> {
        self.authorize(&header, conn).await?;
        let message = self
            .ask(|reply| Request::Reload { reply })
            .await?
            .map_err(|e| ControlError::Refused(e.to_string()))?;
        serde_json::to_string(&Reply {
            message,
            wait: Vec::new(),
        })
        .map_err(|e| ControlError::Unavailable(e.to_string()))
    }

    /// Emitted on every state change, with the STATUS= summary line.
    #[zbus(signal)]
    async fn state_changed(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        summary: &str,
    ) -> zbus::Result<()>;
}

/// The running API: what the event loop reads and feeds.
pub struct Server {
    /// Requests from API calls, for the event loop.
    pub requests: mpsc::Receiver<Request>,
    changes: watch::Sender<String>,
    /// The socket this hbd bound, removed when it exits.
    bound: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(p) = self.bound.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Server {
    /// Tell subscribers that the state changed (the summary line).
    pub fn changed(&self, summary: &str) {
        self.changes.send_replace(summary.to_string());
    }
}

/// Start serving on `socket` and (when there is one) the system bus. Never fails:
/// an API that cannot be set up is logged, and the daemon runs without it.
pub fn start(socket: PathBuf, manager: Manager) -> Server {
    let (req_tx, requests) = mpsc::channel(16);
    let (changes, changes_rx) = watch::channel(String::new());
    let conns: Shared = Arc::default();
    let bound = match bind(&socket) {
        Ok(listener) => {
            tracing::debug!("control API on {}", socket.display());
            tokio::spawn(
                serve_socket(listener, req_tx.clone(), manager.clone(), conns.clone())
                    .in_current_span(),
            );
            Some(socket)
        }
        Err(e) => {
            tracing::warn!(
                "control API: {e}; `hbd status` and the other commands will not reach this hbd"
            );
            None
        }
    };
    tokio::spawn(serve_bus(req_tx, manager, conns.clone()).in_current_span());
    tokio::spawn(signal_changes(changes_rx, conns).in_current_span());
    Server {
        requests,
        changes,
        bound,
    }
}

/// Connections to signal: (id, peer-to-peer, connection).
#[derive(Default)]
struct Conns {
    next: u64,
    list: Vec<(u64, bool, Connection)>,
}

impl Conns {
    fn add(&mut self, p2p: bool, conn: Connection) {
        self.list.retain(|(_, _, c)| !c.is_closed());
        if p2p
            && self.list.iter().filter(|(_, p, _)| *p).count() >= MAX_CLIENTS
            && let Some(i) = self.list.iter().position(|(_, p, _)| *p)
        {
            drop(self.list.remove(i));
        }
        self.next += 1;
        self.list.push((self.next, p2p, conn));
    }
}

type Shared = Arc<Mutex<Conns>>;

fn lock(conns: &Mutex<Conns>) -> std::sync::MutexGuard<'_, Conns> {
    match conns.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

async fn serve_bus(requests: mpsc::Sender<Request>, manager: Manager, conns: Shared) {
    let control = Control {
        requests,
        manager,
        p2p_uid: None,
    };
    let build = async {
        zbus::connection::Builder::system()
            .serve_at(OBJECT_PATH, control)
            .name(BUS_NAME)
            .build()
            .await
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, build).await {
        Ok(Ok(conn)) => {
            tracing::info!("control API on the system bus as {BUS_NAME}");
            lock(&conns).add(false, conn);
        }
        Ok(Err(e)) => tracing::info!(
            "control API not on the system bus ({e}; is units/org.hbd.Control1.conf installed?): the socket serves it alone"
        ),
        Err(_) => tracing::info!("control API not on the system bus: no answer within 5s"),
    }
}

/// Why the control socket could not be served (logged as "control API: <it>; ...").
#[derive(Debug, thiserror::Error)]
enum BindError {
    #[error("cannot create {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another hbd is serving {}", .0.display())]
    Taken(PathBuf),
    #[error("cannot remove the stale {}: {source}", path.display())]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} exists and is not a socket: not touching it", .0.display())]
    NotSocket(PathBuf),
    #[error("cannot listen on {}: {source}", path.display())]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make {} mode 0600: {source}", path.display())]
    Mode {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Bind the socket, refusing to clobber another hbd's live socket or anything that
/// is not a socket.
fn bind(path: &Path) -> Result<UnixListener, BindError> {
    let at = || path.to_path_buf();
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|source| BindError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(BindError::Taken(at()));
            }
            std::fs::remove_file(path)
                .map_err(|source| BindError::RemoveStale { path: at(), source })?;
        }
        Ok(_) => return Err(BindError::NotSocket(at())),
        Err(_) => {}
    }
    let l = UnixListener::bind(path).map_err(|source| BindError::Listen { path: at(), source })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| BindError::Mode { path: at(), source })?;
    Ok(l)
}

async fn serve_socket(
    listener: UnixListener,
    requests: mpsc::Sender<Request>,
    manager: Manager,
    conns: Shared,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("control API: accept: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let uid = match stream.peer_cred() {
            Ok(c) => c.uid(),
            Err(_) => continue,
        };
        if uid != 0 {
            // The socket is 0600; this is a second fence.
            continue;
        }
        let control = Control {
            requests: requests.clone(),
            manager: manager.clone(),
            p2p_uid: Some(uid),
        };
        let conns = conns.clone();
        tokio::spawn(async move {
            let build = async {
                let std = stream.into_std()?;
                zbus::connection::Builder::unix_stream(std)
                    .server(zbus::Guid::generate())
                    .p2p()
                    .serve_at(OBJECT_PATH, control)
                    .build()
                    .await
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, build).await {
                Ok(Ok(conn)) => lock(&conns).add(true, conn),
                Ok(Err(e)) => tracing::debug!("control API: a client failed the handshake: {e}"),
                Err(_) => tracing::debug!("control API: a client did not finish the handshake"),
            }
        });
    }
}

/// Emit StateChanged on every connection when the summary changes.
async fn signal_changes(mut changes: watch::Receiver<String>, conns: Shared) {
    while changes.changed().await.is_ok() {
        let summary = changes.borrow_and_update().clone();
        let targets: Vec<(u64, bool, Connection)> = {
            let mut c = lock(&conns);
            c.list.retain(|(_, _, c)| !c.is_closed());
            c.list.clone()
        };
        for (id, p2p, conn) in targets {
            let body = (summary.as_str(),);
            let emit =
                conn.emit_signal(None::<&str>, OBJECT_PATH, INTERFACE, "StateChanged", &body);
            // A client that does not read its socket loses its connection, not our time.
            let sent = tokio::time::timeout(Duration::from_secs(1), emit).await;
            if p2p && !matches!(sent, Ok(Ok(()))) {
                lock(&conns).list.retain(|(i, _, _)| *i != id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file where the socket should be is left alone; a live socket is another
    /// hbd's; each is refused with its sentence.
    #[tokio::test]
    async fn bind_refuses_a_file_and_a_live_socket() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("control");
        std::fs::write(&file, "mine").unwrap();
        let e = bind(&file).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} exists and is not a socket: not touching it",
                file.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");

        let socket = dir.path().join("run/control");
        let _live = bind(&socket).unwrap();
        let e = bind(&socket).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("another hbd is serving {}", socket.display())
        );
    }
}
