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
}

/// What can go wrong talking to systemd.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SystemdError {
    #[error(
        "cannot reach systemd: neither the system bus ({bus}) nor systemd's private socket ({private}) answered"
    )]
    Connect { bus: String, private: String },
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
        zbus::Error::MethodError(_, Some(m), _) => m.clone(),
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
        match Self::connect_private().await {
            Ok(s) => {
                tracing::info!("no system bus ({bus}); talking to systemd on {PRIVATE_SOCKET}");
                Ok(s)
            }
            Err(private) => Err(SystemdError::Connect {
                bus,
                private: private.to_string(),
            }),
        }
    }

    async fn connect_bus() -> Result<Systemd, String> {
        let conn = zbus::connection::Builder::address(format!("unix:path={SYSTEM_BUS}").as_str())
            .build()
            .await
            .map_err(|e| e.to_string())?;
        Self::with_connection(conn, true)
            .await
            .map_err(|e| e.to_string())
    }

    /// Connect peer-to-peer to `/run/systemd/private` (root only).
    pub async fn connect_private() -> Result<Systemd, SystemdError> {
        let fail = |e: String| SystemdError::Connect {
            bus: "not tried".into(),
            private: e,
        };
        let conn =
            zbus::connection::Builder::address(format!("unix:path={PRIVATE_SOCKET}").as_str())
                .p2p()
                .build()
                .await
                .map_err(|e| fail(e.to_string()))?;
        Self::with_connection(conn, false)
            .await
            .map_err(|e| fail(e.to_string()))
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
