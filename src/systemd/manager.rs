//! org.freedesktop.systemd1.Manager over D-Bus (system bus, or the private socket).
//!
//! [`Systemd::connect`] uses the system bus (`/run/dbus/system_bus_socket`); when no
//! bus daemon runs it falls back to a peer-to-peer connection on systemd's private
//! socket `/run/systemd/private`, as `systemctl` does. It calls `Subscribe` once, so
//! systemd sends the job and unit signals hbd waits on.
//!
//! Every job is run the same way: subscribe to `JobRemoved` *before* the call that
//! creates the job (so a job that finishes at once cannot be missed), call
//! StartUnit/StopUnit/StartTransientUnit with mode `replace`, wait for the
//! `JobRemoved` of that job path within the resource's timeout, then read the unit's
//! `ActiveState`: that, not the job result, is the truth.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use zbus::proxy::CacheProperties;
use zbus::{Connection, OwnedObjectPath, Variant, proxy};

/// Path of the system bus socket.
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// Path of systemd's private socket (peer-to-peer, no bus daemon needed).
pub const PRIVATE_SOCKET: &str = "/run/systemd/private";

#[proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait SystemdManager {
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    #[zbus(name = "GetUnitByPID")]
    fn get_unit_by_pid(&self, pid: u32) -> zbus::Result<OwnedObjectPath>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, Variant<'_>)],
        aux: &[(&str, &[(&str, Variant<'_>)])],
    ) -> zbus::Result<OwnedObjectPath>;
    fn subscribe(&self) -> zbus::Result<()>;
    fn reload(&self) -> zbus::Result<()>;

    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;

    #[zbus(property)]
    fn system_state(&self) -> zbus::Result<String>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
pub trait SystemdUnit {
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn unit_file_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn description(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn before(&self) -> zbus::Result<Vec<String>>;
    /// The job queued for the unit: (id, path), id 0 when there is none.
    #[zbus(property)]
    fn job(&self) -> zbus::Result<(u32, OwnedObjectPath)>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Job",
    default_service = "org.freedesktop.systemd1"
)]
pub trait SystemdJob {
    /// "start", "stop", "restart", "reload", …
    #[zbus(property)]
    fn job_type(&self) -> zbus::Result<String>;
}

/// What can go wrong talking to systemd.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SystemdError {
    #[error(
        "cannot reach systemd: neither the system bus ({bus}) nor systemd's private socket ({private}) answered"
    )]
    Connect {
        bus: ConnectError,
        private: ConnectError,
    },
    #[error("systemd refused to {action} {unit}: {message}")]
    Call {
        action: &'static str,
        unit: String,
        message: String,
    },
    #[error("{action} of {unit} did not finish within {timeout:?}")]
    Timeout {
        action: &'static str,
        unit: String,
        timeout: Duration,
    },
    #[error("lost the connection to systemd while waiting for {unit}")]
    Lost { unit: String },
    #[error("D-Bus error on {unit}: {message}")]
    Bus { unit: String, message: String },
}

/// Why one way to systemd (the system bus, the private socket) did not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The private socket could not be connected to.
    #[error("{PRIVATE_SOCKET}: {0}")]
    Socket(#[source] Arc<std::io::Error>),
    /// The D-Bus handshake or the `Subscribe` call failed (boxed: it is large, and
    /// every [`SystemdError`] would carry two).
    #[error(transparent)]
    Bus(Box<zbus::Error>),
    /// Only the private socket was asked for.
    #[error("not tried")]
    NotTried,
}

impl From<zbus::Error> for ConnectError {
    fn from(e: zbus::Error) -> Self {
        ConnectError::Bus(Box::new(e))
    }
}

/// How a job ended, and what state the unit is in afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    /// JobRemoved's result: "done", "failed", "timeout", "dependency", "canceled", …
    pub result: String,
    /// The unit's ActiveState after the job: "active", "inactive", "failed", …
    pub active_state: String,
    /// How long from the call to the JobRemoved signal.
    pub elapsed: Duration,
}

/// A connection to systemd's manager.
#[derive(Clone)]
pub struct Systemd {
    conn: Connection,
    manager: SystemdManagerProxy<'static>,
    via_bus: bool,
}

fn bus_err(unit: &str, e: zbus::Error) -> SystemdError {
    SystemdError::Bus {
        unit: unit.to_string(),
        message: e.to_string(),
    }
}

fn call_err(action: &'static str, unit: &str, e: zbus::Error) -> SystemdError {
    let message = match &e {
        zbus::Error::MethodError(_, Some(m), _) => m.trim_end_matches('.').to_string(),
        other => other.to_string(),
    };
    SystemdError::Call {
        action,
        unit: unit.to_string(),
        message,
    }
}

fn is_no_such_unit(e: &zbus::Error) -> bool {
    match e {
        zbus::Error::MethodError(name, _, _) => {
            name.as_str() == "org.freedesktop.systemd1.NoSuchUnit"
        }
        _ => false,
    }
}

impl Systemd {
    /// Connect to the system bus, falling back to systemd's private socket.
    pub async fn connect() -> Result<Systemd, SystemdError> {
        let bus = match Self::connect_bus().await {
            Ok(s) => return Ok(s),
            Err(e) => e,
        };
        match Self::private_inner().await {
            Ok(s) => {
                tracing::info!("no system bus ({bus}); talking to systemd on {PRIVATE_SOCKET}");
                Ok(s)
            }
            Err(private) => Err(SystemdError::Connect { bus, private }),
        }
    }

    async fn connect_bus() -> Result<Systemd, ConnectError> {
        let conn = zbus::connection::Builder::address(format!("unix:path={SYSTEM_BUS}").as_str())
            .build()
            .await?;
        Ok(Self::with_connection(conn, true).await?)
    }

    /// Connect peer-to-peer to `/run/systemd/private` (root only).
    pub async fn connect_private() -> Result<Systemd, SystemdError> {
        Self::private_inner()
            .await
            .map_err(|private| SystemdError::Connect {
                bus: ConnectError::NotTried,
                private,
            })
    }

    async fn private_inner() -> Result<Systemd, ConnectError> {
        let stream = tokio::net::UnixStream::connect(PRIVATE_SOCKET)
            .await
            .map_err(|e| ConnectError::Socket(Arc::new(e)))?;
        // systemd's messages there carry a sender zbus refuses; see `private_socket`.
        let conn = zbus::connection::Builder::socket(private_socket::PrivateSocket(stream))
            .p2p()
            .build()
            .await?;
        Ok(Self::with_connection(conn, false).await?)
    }

    async fn with_connection(conn: Connection, via_bus: bool) -> zbus::Result<Systemd> {
        let manager = SystemdManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        manager.subscribe().await?;
        Ok(Systemd {
            conn,
            manager,
            via_bus,
        })
    }

    /// Whether this connection goes through the bus daemon (else the private socket).
    pub fn via_bus(&self) -> bool {
        self.via_bus
    }

    /// Whether the connection has gone (systemd re-executed, socket closed).
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Start a unit (mode "replace") and wait for its job.
    pub async fn start_unit(
        &self,
        unit: &str,
        timeout: Duration,
    ) -> Result<JobOutcome, SystemdError> {
        self.run_job("start", unit, timeout, || {
            self.manager.start_unit(unit, "replace")
        })
        .await
    }

    /// Stop a unit (mode "replace") and wait for its job. A unit systemd does not know
    /// is stopped already.
    pub async fn stop_unit(
        &self,
        unit: &str,
        timeout: Duration,
    ) -> Result<JobOutcome, SystemdError> {
        let r = self
            .run_job("stop", unit, timeout, || {
                self.manager.stop_unit(unit, "replace")
            })
            .await;
        match r {
            Err(SystemdError::Call { ref message, .. }) if message.contains("not loaded") => {
                Ok(JobOutcome {
                    result: "done".into(),
                    active_state: "inactive".into(),
                    elapsed: Duration::ZERO,
                })
            }
            other => other,
        }
    }

    /// Create and start a transient unit and wait for its job.
    pub async fn start_transient_unit(
        &self,
        unit: &str,
        properties: &[(&str, Variant<'_>)],
        timeout: Duration,
    ) -> Result<JobOutcome, SystemdError> {
        self.run_job("start", unit, timeout, || {
            self.manager
                .start_transient_unit(unit, "replace", properties, &[])
        })
        .await
    }

    async fn run_job<F, Fut>(
        &self,
        action: &'static str,
        unit: &str,
        timeout: Duration,
        call: F,
    ) -> Result<JobOutcome, SystemdError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = zbus::Result<OwnedObjectPath>>,
    {
        // Subscribe before the call: a job may finish before its reply reaches us.
        let mut removed = self
            .manager
            .receive_job_removed()
            .await
            .map_err(|e| bus_err(unit, e))?;
        let t0 = Instant::now();
        let job = call().await.map_err(|e| call_err(action, unit, e))?;
        let wait = async {
            while let Some(sig) = removed.next().await {
                let Ok(args) = sig.args() else { continue };
                if args.job == job {
                    return Some(args.result);
                }
            }
            None
        };
        let result = match tokio::time::timeout(timeout, wait).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(SystemdError::Lost {
                    unit: unit.to_string(),
                });
            }
            Err(_) => {
                return Err(SystemdError::Timeout {
                    action,
                    unit: unit.to_string(),
                    timeout,
                });
            }
        };
        let elapsed = t0.elapsed();
        let active_state = self.active_state(unit).await?;
        tracing::debug!(unit, action, result, active_state, ?elapsed, "job finished");
        Ok(JobOutcome {
            result,
            active_state,
            elapsed,
        })
    }

    /// The unit's object, or None when systemd has not loaded it.
    pub async fn unit(
        &self,
        unit: &str,
    ) -> Result<Option<SystemdUnitProxy<'static>>, SystemdError> {
        let path = match self.manager.get_unit(unit).await {
            Ok(p) => p,
            Err(e) if is_no_such_unit(&e) => return Ok(None),
            Err(e) => return Err(bus_err(unit, e)),
        };
        let proxy = SystemdUnitProxy::builder(&self.conn)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| bus_err(unit, e))?;
        Ok(Some(proxy))
    }

    /// The type of the job queued for the unit that contains process `pid` ("stop",
    /// "restart", …), or None when no job is queued. hbd asks this about itself on
    /// SIGTERM to tell `systemctl restart hbd` from `systemctl stop hbd`.
    pub async fn job_type_of_pid(&self, pid: u32) -> Result<Option<String>, SystemdError> {
        let what = format!("the unit of pid {pid}");
        let path = self
            .manager
            .get_unit_by_pid(pid)
            .await
            .map_err(|e| bus_err(&what, e))?;
        let unit = SystemdUnitProxy::builder(&self.conn)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| bus_err(&what, e))?;
        let (id, job) = unit.job().await.map_err(|e| bus_err(&what, e))?;
        if id == 0 {
            return Ok(None);
        }
        let job = SystemdJobProxy::builder(&self.conn)
            .path(job)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| bus_err(&what, e))?;
        job.job_type()
            .await
            .map(Some)
            .map_err(|e| bus_err(&what, e))
    }

    /// The unit's ActiveState; "inactive" for a unit systemd has not loaded.
    pub async fn active_state(&self, unit: &str) -> Result<String, SystemdError> {
        match self.unit(unit).await? {
            None => Ok("inactive".into()),
            Some(u) => u.active_state().await.map_err(|e| bus_err(unit, e)),
        }
    }

    /// The unit's UnitFileState ("enabled", "disabled", "static", "transient", …), or
    /// None when it is not loaded.
    pub async fn unit_file_state(&self, unit: &str) -> Result<Option<String>, SystemdError> {
        match self.unit(unit).await? {
            None => Ok(None),
            Some(u) => u
                .unit_file_state()
                .await
                .map(Some)
                .map_err(|e| bus_err(unit, e)),
        }
    }

    /// The units this unit is ordered before (its `Before=`), empty when not loaded.
    pub async fn ordered_before(&self, unit: &str) -> Result<Vec<String>, SystemdError> {
        match self.unit(unit).await? {
            None => Ok(vec![]),
            Some(u) => u.before().await.map_err(|e| bus_err(unit, e)),
        }
    }

    /// The unit's Description (loading the unit if needed), or None when no such
    /// unit exists.
    pub async fn description(&self, unit: &str) -> Result<Option<String>, SystemdError> {
        let path = self
            .manager
            .load_unit(unit)
            .await
            .map_err(|e| call_err("load", unit, e))?;
        let u = SystemdUnitProxy::builder(&self.conn)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| bus_err(unit, e))?;
        if u.load_state().await.map_err(|e| bus_err(unit, e))? == "not-found" {
            return Ok(None);
        }
        u.description()
            .await
            .map(Some)
            .map_err(|e| bus_err(unit, e))
    }

    /// Forget a unit's failed state (so a transient unit of that name can be created
    /// again). A unit that is not loaded or not failed is fine.
    pub async fn reset_failed(&self, unit: &str) -> Result<(), SystemdError> {
        match self.manager.reset_failed_unit(unit).await {
            Ok(()) => Ok(()),
            Err(e) if is_no_such_unit(&e) => Ok(()),
            Err(e) => Err(call_err("reset the failed state of", unit, e)),
        }
    }

    /// `systemctl daemon-reload`.
    pub async fn reload(&self) -> Result<(), SystemdError> {
        self.manager
            .reload()
            .await
            .map_err(|e| call_err("reload", "the manager", e))
    }

    /// The manager's SystemState ("running", "degraded", "stopping", …).
    pub async fn system_state(&self) -> Result<String, SystemdError> {
        self.manager
            .system_state()
            .await
            .map_err(|e| bus_err("the manager", e))
    }

    /// A stream of the unit's ActiveState changes (from PropertiesChanged signals).
    /// The unit must be loaded; the stream ends when the connection goes.
    pub async fn watch_active_state(
        &self,
        unit: &str,
    ) -> Result<impl futures::Stream<Item = String> + Send + 'static, SystemdError> {
        let path = self
            .manager
            .get_unit(unit)
            .await
            .map_err(|e| call_err("watch", unit, e))?;
        let props = zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination("org.freedesktop.systemd1")
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| bus_err(unit, e))?;
        let stream = props
            .receive_properties_changed()
            .await
            .map_err(|e| bus_err(unit, e))?;
        Ok(stream.filter_map(|sig| async move {
            let args = sig.args().ok()?;
            if args.interface_name.as_str() != "org.freedesktop.systemd1.Unit" {
                return None;
            }
            let changed: &HashMap<&str, Variant<'_>> = &args.changed_properties;
            let v = changed.get("ActiveState")?;
            String::try_from(v).ok()
        }))
    }
}

/// The transport for systemd's private socket.
///
/// systemd stamps every message on its private (peer-to-peer) socket with the sender
/// `org.freedesktop.systemd1` — a well-known name where D-Bus allows only unique names
/// (sd-bus does that so its own clients know who speaks), and zbus 6 rejects such
/// messages outright. This transport frames each incoming message after the
/// authentication lines and drops that SENDER header field (a peer-to-peer connection
/// has no use for it) before zbus parses the message. Everything else passes unchanged.
mod private_socket {
    use std::io;
    use std::os::fd::{BorrowedFd, OwnedFd};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;
    use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
    use zbus::connection::socket::{ReadHalf, Socket, Split, WriteHalf};
    use zbus::export::async_trait::async_trait;

    #[derive(Debug)]
    pub struct PrivateSocket(pub UnixStream);

    impl Socket for PrivateSocket {
        type ReadHalf = Reader;
        type WriteHalf = Writer;
        fn split(self) -> Split<Reader, Writer> {
            let (r, w) = self.0.into_split();
            Split::new(
                Reader {
                    inner: r,
                    raw: Vec::new(),
                    ready: Vec::new(),
                    ready_pos: 0,
                    binary: false,
                },
                Writer(w),
            )
        }
    }

    #[derive(Debug)]
    pub struct Reader {
        inner: OwnedReadHalf,
        /// Bytes read but not yet framed.
        raw: Vec<u8>,
        /// Bytes ready for zbus.
        ready: Vec<u8>,
        ready_pos: usize,
        /// Past the authentication lines.
        binary: bool,
    }

    const SENDER: u8 = 7;

    fn align(x: usize, a: usize) -> usize {
        x.div_ceil(a) * a
    }

    fn read_u32(b: &[u8], at: usize, big: bool) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }

    /// Total length of the message at the start of `b`, once its 16-byte primary
    /// header is in.
    pub fn message_len(b: &[u8]) -> Option<usize> {
        let big = match b.first()? {
            b'l' => false,
            b'B' => true,
            _ => return None,
        };
        let body = read_u32(b, 4, big)? as usize;
        let fields = read_u32(b, 12, big)? as usize;
        Some(align(16 + fields, 8) + body)
    }

    /// The message without a SENDER field that is not a unique name; None when
    /// the header cannot be walked (then it is passed on as it is).
    pub fn strip_sender(msg: &[u8]) -> Option<Vec<u8>> {
        let big = msg.first()? == &b'B';
        let fields_len = read_u32(msg, 12, big)? as usize;
        let end = 16 + fields_len;
        let body_start = align(end, 8);
        if msg.len() < body_start {
            return None;
        }
        // Walk the fields: (start, end) of each, and where the sender is.
        let mut pos = 16;
        let mut spans = Vec::new();
        let mut sender = None;
        while pos < end {
            pos = align(pos, 8);
            let start = pos;
            let code = *msg.get(pos)?;
            let siglen = *msg.get(pos + 1)? as usize;
            let sig = msg.get(pos + 2..pos + 2 + siglen)?;
            pos += 2 + siglen + 1;
            let value_at;
            match sig {
                b"s" | b"o" => {
                    pos = align(pos, 4);
                    let n = read_u32(msg, pos, big)? as usize;
                    value_at = pos + 4..pos + 4 + n;
                    pos += 4 + n + 1;
                }
                b"g" => {
                    let n = *msg.get(pos)? as usize;
                    value_at = pos + 1..pos + 1 + n;
                    pos += 1 + n + 1;
                }
                b"u" => {
                    pos = align(pos, 4);
                    value_at = pos..pos + 4;
                    pos += 4;
                }
                _ => return None,
            }
            if pos > end {
                return None;
            }
            if code == SENDER && msg.get(value_at)?.first() != Some(&b':') {
                sender = Some(spans.len());
            }
            spans.push((start, pos));
        }
        let s = sender?;
        let mut fields = Vec::with_capacity(fields_len);
        for (i, &(a, b)) in spans.iter().enumerate() {
            if i == s {
                continue;
            }
            // Keep every field 8-aligned relative to the message start.
            let want = align(16 + fields.len(), 8) - 16;
            fields.resize(want, 0);
            fields.extend_from_slice(&msg[a..b]);
        }
        let mut out = Vec::with_capacity(msg.len());
        out.extend_from_slice(&msg[..12]);
        let n = fields.len() as u32;
        out.extend_from_slice(&if big {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        });
        out.extend_from_slice(&fields);
        out.resize(align(out.len(), 8), 0);
        out.extend_from_slice(&msg[body_start..]);
        Some(out)
    }

    impl Reader {
        /// Move what can be handed on from `raw` to `ready`; false when more bytes are needed.
        fn frame(&mut self) -> bool {
            if !self.binary {
                let Some(i) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                    return false;
                };
                let line: Vec<u8> = self.raw.drain(..i + 2).collect();
                // After "OK <guid>" the client sends BEGIN (hbd never negotiates fds),
                // and messages follow.
                if line.starts_with(b"OK ") {
                    self.binary = true;
                }
                self.ready = line;
                self.ready_pos = 0;
                return true;
            }
            if self.raw.len() < 16 {
                return false;
            }
            let Some(total) = message_len(&self.raw) else {
                // Not a message we understand: hand it on and let zbus judge.
                self.ready = std::mem::take(&mut self.raw);
                self.ready_pos = 0;
                return true;
            };
            if self.raw.len() < total {
                return false;
            }
            let msg: Vec<u8> = self.raw.drain(..total).collect();
            self.ready = strip_sender(&msg).unwrap_or(msg);
            self.ready_pos = 0;
            true
        }
    }

    #[async_trait]
    impl ReadHalf for Reader {
        async fn recvmsg(&mut self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
            loop {
                if self.ready_pos < self.ready.len() {
                    let n = buf.len().min(self.ready.len() - self.ready_pos);
                    buf[..n].copy_from_slice(&self.ready[self.ready_pos..self.ready_pos + n]);
                    self.ready_pos += n;
                    return Ok((n, vec![]));
                }
                if self.frame() {
                    continue;
                }
                let mut chunk = [0u8; 8192];
                let n = self.inner.read(&mut chunk).await?;
                if n == 0 {
                    // End of stream: hand on whatever is left, then EOF.
                    if self.raw.is_empty() {
                        return Ok((0, vec![]));
                    }
                    self.ready = std::mem::take(&mut self.raw);
                    self.ready_pos = 0;
                    continue;
                }
                self.raw.extend_from_slice(&chunk[..n]);
            }
        }
    }

    #[derive(Debug)]
    pub struct Writer(OwnedWriteHalf);

    #[async_trait]
    impl WriteHalf for Writer {
        async fn sendmsg(&mut self, buf: &[u8], _fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
            self.0.write(buf).await
        }
        async fn flush(&mut self) -> io::Result<()> {
            self.0.flush().await
        }
        async fn close(&mut self) -> io::Result<()> {
            self.0.shutdown().await
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn strips_a_well_known_sender() {
            // A signal as sd-bus sends it on the private socket, built by hand:
            // fields PATH(o) "/a", INTERFACE(s) "b.c", MEMBER(s) "D", SENDER(s)
            // "org.freedesktop.systemd1", SIGNATURE(g) "s"; body: string "x".
            fn field(out: &mut Vec<u8>, code: u8, sig: u8, val: &[u8]) {
                out.resize(out.len().div_ceil(8) * 8, 0);
                out.extend_from_slice(&[code, 1, sig, 0]);
                if sig == b'g' {
                    out.push(val.len() as u8);
                } else {
                    out.resize(out.len().div_ceil(4) * 4, 0);
                    out.extend_from_slice(&(val.len() as u32).to_le_bytes());
                }
                out.extend_from_slice(val);
                out.push(0);
            }
            let mut m = vec![b'l', 4, 1, 1];
            let body = [1u8, 0, 0, 0, b'x', 0];
            m.extend_from_slice(&(body.len() as u32).to_le_bytes());
            m.extend_from_slice(&7u32.to_le_bytes());
            m.extend_from_slice(&[0; 4]);
            field(&mut m, 1, b'o', b"/a");
            field(&mut m, 2, b's', b"b.c");
            field(&mut m, 3, b's', b"D");
            field(&mut m, 7, b's', b"org.freedesktop.systemd1");
            field(&mut m, 8, b'g', b"s");
            let flen = (m.len() - 16) as u32;
            m[12..16].copy_from_slice(&flen.to_le_bytes());
            m.resize(m.len().div_ceil(8) * 8, 0);
            m.extend_from_slice(&body);
            assert_eq!(message_len(&m), Some(m.len()));

            let out = strip_sender(&m).expect("stripped");
            assert_eq!(message_len(&out), Some(out.len()));
            assert!(!out.windows(24).any(|w| w == b"org.freedesktop.systemd1"));
            assert!(out.windows(3).any(|w| w == b"b.c"));
            assert!(out.ends_with(&body));
            // The result has the same shape as a message built without the sender.
            let mut want = m[..16].to_vec();
            field(&mut want, 1, b'o', b"/a");
            field(&mut want, 2, b's', b"b.c");
            field(&mut want, 3, b's', b"D");
            field(&mut want, 8, b'g', b"s");
            let flen = (want.len() - 16) as u32;
            want[12..16].copy_from_slice(&flen.to_le_bytes());
            want.resize(want.len().div_ceil(8) * 8, 0);
            want.extend_from_slice(&body);
            assert_eq!(out, want);
            // A unique sender is left alone.
            let mut u = m[..16].to_vec();
            field(&mut u, 7, b's', b":1.5");
            let flen = (u.len() - 16) as u32;
            u[12..16].copy_from_slice(&flen.to_le_bytes());
            u.resize(u.len().div_ceil(8) * 8, 0);
            u[4..8].copy_from_slice(&0u32.to_le_bytes());
            assert_eq!(strip_sender(&u), None);
        }
    }
}
