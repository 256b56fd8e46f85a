//! The CLI's side of the control API: connect (socket first, then the system bus)
//! and call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use zbus::proxy;

use super::report::Report;
use super::{BUS_NAME, Reply};
use crate::error::Error;

#[proxy(
    interface = "org.hbd.Control1",
    default_service = "org.hbd.Control1",
    default_path = "/org/hbd"
)]
pub trait Control {
    fn status(&self) -> zbus::Result<String>;
    fn standby(&self, group: &str, force: bool) -> zbus::Result<String>;
    fn takeover(&self, group: &str, force: bool) -> zbus::Result<String>;
    fn maintenance(&self, on: bool) -> zbus::Result<String>;
    fn clear(&self, group: &str) -> zbus::Result<String>;
    fn unblock(&self, group: &str) -> zbus::Result<String>;
    fn fence_ack(&self, node: &str) -> zbus::Result<String>;
    fn reload(&self) -> zbus::Result<String>;
}

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the control socket led to no hbd (a clause of the CLI's sentence).
#[derive(Debug, thiserror::Error)]
enum SocketError {
    #[error("no {}", .0.display())]
    Missing(PathBuf),
    #[error("nothing answers on {}", .0.display())]
    Refused(PathBuf),
    /// Not root: the socket is mode 0600.
    #[error("{} is root's only", .0.display())]
    Denied(PathBuf),
    #[error("{}: {source}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The connected socket could not be handed to zbus.
    #[error(transparent)]
    Detach(std::io::Error),
    #[error("{}: {source}", path.display())]
    Bus {
        path: PathBuf,
        #[source]
        source: zbus::Error,
    },
    #[error("no answer on {}", .0.display())]
    Silent(PathBuf),
}

/// A connection to the local hbd.
pub struct Client {
    proxy: ControlProxy<'static>,
}

impl Client {
    /// Connect over `socket`, or else over the system bus; `Error::NotRunning` when
    /// neither reaches an hbd.
    pub async fn connect(socket: &Path) -> Result<Client, Error> {
        let at = || socket.to_path_buf();
        let bus = |source| SocketError::Bus { path: at(), source };
        let via_socket = async {
            let stream =
                tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => SocketError::Missing(at()),
                        std::io::ErrorKind::ConnectionRefused => SocketError::Refused(at()),
                        std::io::ErrorKind::PermissionDenied => SocketError::Denied(at()),
                        _ => SocketError::Connect {
                            path: at(),
                            source: e,
                        },
                    })?;
            let std = stream.into_std().map_err(SocketError::Detach)?;
            let conn = zbus::connection::Builder::unix_stream(std)
                .p2p()
                .build()
                .await
                .map_err(bus)?;
            ControlProxy::new(&conn).await.map_err(bus)
        };
        let socket_err = match tokio::time::timeout(CALL_TIMEOUT, via_socket).await {
            Ok(Ok(proxy)) => return Ok(Client { proxy }),
            Ok(Err(e)) => e,
            Err(_) => SocketError::Silent(at()),
        };
        let via_bus = async {
            let conn = zbus::Connection::system().await?;
            let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
            let name = zbus::names::BusName::try_from(BUS_NAME)?;
            if !dbus.name_has_owner(name).await.map_err(zbus::Error::from)? {
                return Err(zbus::Error::NameTaken);
            }
            ControlProxy::new(&conn).await
        };
        match tokio::time::timeout(CALL_TIMEOUT, via_bus).await {
            Ok(Ok(proxy)) => Ok(Client { proxy }),
            _ if matches!(socket_err, SocketError::Denied(_)) => Err(Error::Runtime(format!(
                "permission denied: {socket_err}, and hbd is not on the system bus: run this as root"
            ))),
            _ => Err(Error::NotRunning(format!(
                "hbd is not running on this node ({socket_err}, and not on the system bus)"
            ))),
        }
    }

    pub async fn status(&self) -> Result<Report, Error> {
        let json = call(self.proxy.status()).await?;
        serde_json::from_str(&json)
            .map_err(|e| Error::Runtime(format!("hbd sent a status this hbd cannot read: {e}")))
    }

    pub async fn status_json(&self) -> Result<String, Error> {
        call(self.proxy.status()).await
    }

    pub async fn standby(&self, group: &str, force: bool) -> Result<Reply, Error> {
        reply(call(self.proxy.standby(group, force)).await?)
    }

    pub async fn takeover(&self, group: &str, force: bool) -> Result<Reply, Error> {
        reply(call(self.proxy.takeover(group, force)).await?)
    }

    pub async fn maintenance(&self, on: bool) -> Result<Reply, Error> {
        reply(call(self.proxy.maintenance(on)).await?)
    }

    pub async fn clear(&self, group: &str) -> Result<Reply, Error> {
        reply(call(self.proxy.clear(group)).await?)
    }

    pub async fn unblock(&self, group: &str) -> Result<Reply, Error> {
        reply(call(self.proxy.unblock(group)).await?)
    }

    pub async fn fence_ack(&self, node: &str) -> Result<Reply, Error> {
        reply(call(self.proxy.fence_ack(node)).await?)
    }

    pub async fn reload(&self) -> Result<Reply, Error> {
        reply(call(self.proxy.reload()).await?)
    }
}

/// The bus daemon's own refusal is a paragraph; this is the sentence that matters.
fn denied() -> Error {
    Error::Usage("permission denied: only root may change what hbd does".into())
}

fn reply(json: String) -> Result<Reply, Error> {
    serde_json::from_str(&json)
        .map_err(|e| Error::Runtime(format!("hbd sent an answer this hbd cannot read: {e}")))
}

async fn call<T>(f: impl std::future::Future<Output = zbus::Result<T>>) -> Result<T, Error> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(zbus::Error::MethodError(name, msg, _))) => {
            let msg = msg.unwrap_or_default();
            match name.as_str() {
                "org.hbd.Control1.Error.Refused" => Err(Error::Refused(msg)),
                "org.hbd.Control1.Error.AccessDenied"
                | "org.freedesktop.DBus.Error.AccessDenied" => Err(denied()),
                _ => Err(Error::Runtime(format!("hbd: {msg}"))),
            }
        }
        Ok(Err(zbus::Error::FDO(e))) => match *e {
            zbus::fdo::Error::AccessDenied(_) => Err(denied()),
            e => Err(Error::Runtime(format!("talking to hbd: {e}"))),
        },
        Ok(Err(e)) => Err(Error::Runtime(format!("talking to hbd: {e}"))),
        Err(_) => Err(Error::Runtime(format!(
            "hbd did not answer within {}s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}
