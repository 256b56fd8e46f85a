//! Units driven through systemd, and what the systemd kinds share (the connection,
//! transient units, job checks); mounts are in `mount`, legacy scripts in `script`.
//!
//! - `unit`: StartUnit/StopUnit. Before the first start hbd writes the runtime
//!   drop-in `/run/systemd/system/<unit>.d/50-hbd.conf` (like Pacemaker's
//!   50-pacemaker.conf): a Description that says the unit is cluster-managed and, for
//!   services, `Restart=no`, so systemd never restarts it behind hbd's back (hbd
//!   restarts in place itself, within the group's budget). The drop-in has **no**
//!   ordering against hbd.service, on purpose: with `Before=hbd.service`, every
//!   StopUnit hbd issues while its own stop job runs (`systemctl stop hbd`, shutdown)
//!   waits for that very job — systemd runs the stop of a unit ordered before X only
//!   after X's stop job is done — so each stop hangs until its timeout (measured in
//!   the lab: a manager whose SIGTERM handler runs `systemctl stop res` with
//!   res `Before=` the manager waits until the manager exits). hbd stops its groups
//!   itself, in order, on SIGTERM, and warns about a unit ordered `Before=hbd.service`.
//!   The drop-in stays after a stop (it lives in /run, so a reboot clears it) and is
//!   only rewritten, with a daemon-reload, when it changes.
//!   A unit that is `enabled` is logged as a warning: started at boot on two nodes, it
//!   is a split brain waiting to happen.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use zbus::Variant;

use super::group::{OpError, Resource};
use crate::systemd::manager::{Systemd, SystemdError};

/// Where runtime drop-ins go.
pub const RUNTIME_UNIT_DIR: &str = "/run/systemd/system";
const DROPIN_NAME: &str = "50-hbd.conf";
const MANAGED_SUFFIX: &str = " (managed by hbd)";

/// A systemd connection made on first use and shared by every resource.
#[derive(Clone, Default)]
pub struct SystemdLink(Arc<tokio::sync::Mutex<Option<Systemd>>>);

impl SystemdLink {
    pub async fn get(&self) -> Result<Systemd, OpError> {
        let mut g = self.0.lock().await;
        if let Some(sd) = g.as_ref()
            && !sd.is_closed()
        {
            return Ok(sd.clone());
        }
        let sd = Systemd::connect().await?;
        *g = Some(sd.clone());
        Ok(sd)
    }
}

pub(super) fn is_up(state: &str) -> bool {
    matches!(state, "active" | "reloading")
}

/// Whether `unit` is up now (ActiveState active or reloading): the `is_active` of every
/// systemd-backed resource kind.
pub(super) async fn unit_is_up(sd: &SystemdLink, unit: &str) -> Result<bool, OpError> {
    let sd = sd.get().await?;
    let s = sd.active_state(unit).await?;
    Ok(is_up(&s))
}

pub(super) fn journal_hint(unit: &str) -> String {
    format!("see journalctl -u {unit}")
}

/// The drop-in hbd writes for a unit it manages.
pub fn dropin_text(unit: &str, description: &str) -> String {
    let desc = if description.ends_with(MANAGED_SUFFIX) {
        description.to_string()
    } else {
        format!("{description}{MANAGED_SUFFIX}")
    };
    let mut s = format!(
        "# Written by hbd: {unit} is started and stopped by the cluster.\n\
         # Do not enable it: hbd starts it only on the node that owns its group.\n\
         [Unit]\nDescription={desc}\n"
    );
    if unit.ends_with(".service") {
        s.push_str("\n[Service]\nRestart=no\n");
    }
    s
}

/// Write `text` to `path` in `dir` as 0644 (dir 0755), whatever hbd's umask (its
/// unit sets 0077), so `systemctl cat` works for everyone as for any unit file.
fn write_world_readable(dir: &Path, path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    f.write_all(text.as_bytes())
}

/// Write the drop-in unless it is already there as it should be; true when it was
/// written (systemd then needs a daemon-reload to see it). A drop-in that cannot be
/// written is a warning, not a failure.
pub async fn write_dropin(sd: &Systemd, dir: &Path, unit: &str) -> Result<bool, SystemdError> {
    let Some(desc) = sd.description(unit).await? else {
        // No such unit: leave no drop-in behind; StartUnit says what is wrong.
        return Ok(false);
    };
    let desc = if desc.is_empty() {
        unit.to_string()
    } else {
        desc
    };
    let text = dropin_text(unit, &desc);
    let ddir = dir.join(format!("{unit}.d"));
    let path = ddir.join(DROPIN_NAME);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    if let Err(e) = write_world_readable(&ddir, &path, &text) {
        // Not fatal: the unit still runs under hbd's control, only systemd's own
        // Restart= setting stays in force.
        tracing::warn!(
            "cannot write {}: {e}; {unit} keeps its own Restart= setting (if hbd runs sandboxed, give it ReadWritePaths=/run/systemd/system)",
            path.display()
        );
        return Ok(false);
    }
    Ok(true)
}

/// Write the drop-in (and daemon-reload) unless it is already there as it should be.
pub async fn ensure_dropin(sd: &Systemd, dir: &Path, unit: &str) -> Result<(), SystemdError> {
    if write_dropin(sd, dir, unit).await? {
        sd.reload().await?;
    }
    Ok(())
}

/// The warnings about a unit that hbd manages: enabled (started at boot on every
/// node), ordered before hbd.service (its stops would wait for hbd's own).
async fn warn_about(sd: &Systemd, unit: &str) {
    if let Ok(Some(state)) = sd.unit_file_state(unit).await
        && state.starts_with("enabled")
    {
        tracing::warn!(
            "{unit} is {state}: systemd may start it at boot on every node, outside the cluster's control; run `systemctl disable {unit}`"
        );
    }
    if let Ok(before) = sd.ordered_before(unit).await
        && before.iter().any(|b| b == "hbd.service")
    {
        tracing::warn!(
            "{unit} is ordered Before=hbd.service: while hbd.service stops, systemd holds every stop job of {unit} until hbd has exited, so hbd cannot stop its group in order (each stop waits for its timeout); remove that ordering"
        );
    }
}

/// Units whose drop-in is in place and seen by systemd, and whose warnings were
/// given: their start is one StartUnit. Filled ahead of any takeover by [`prepare`].
#[derive(Clone, Default)]
pub struct Prepared(Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl Prepared {
    fn contains(&self, unit: &str) -> bool {
        match self.0.lock() {
            Ok(s) => s.contains(unit),
            Err(p) => p.into_inner().contains(unit),
        }
    }
    fn insert(&self, unit: &str) {
        match self.0.lock() {
            Ok(mut s) => s.insert(unit.to_string()),
            Err(p) => p.into_inner().insert(unit.to_string()),
        };
    }
}

/// Ahead of any takeover (at start-up and after a reload): write every managed unit's
/// drop-in, with one daemon-reload for all of them, and give the warnings, so that a
/// takeover only starts units. A unit that fails here is prepared at its start.
pub async fn prepare(sd: &SystemdLink, prepared: &Prepared, units: &[String]) {
    if units.is_empty() {
        return;
    }
    let sd = match sd.get().await {
        Ok(sd) => sd,
        Err(e) => {
            tracing::debug!("cannot prepare the units ahead: {e}");
            return;
        }
    };
    let t0 = std::time::Instant::now();
    let mut written = false;
    let mut ready = Vec::new();
    for unit in units {
        warn_about(&sd, unit).await;
        match write_dropin(&sd, Path::new(RUNTIME_UNIT_DIR), unit).await {
            Ok(w) => {
                written |= w;
                ready.push(unit);
            }
            Err(e) => tracing::debug!("cannot prepare {unit} ahead: {e}"),
        }
    }
    if written && let Err(e) = sd.reload().await {
        tracing::warn!("daemon-reload after writing the drop-ins failed: {e}");
        return;
    }
    for unit in ready {
        prepared.insert(unit);
    }
    tracing::debug!("{} unit(s) prepared ({:?})", units.len(), t0.elapsed());
}

/// A systemd unit (service, socket, target, …).
pub struct UnitRes {
    pub sd: SystemdLink,
    pub unit: String,
    pub timeout: Duration,
    pub prepared: Prepared,
}

pub(super) async fn check_started(
    sd: &Systemd,
    unit: &str,
    r: Result<crate::systemd::manager::JobOutcome, SystemdError>,
) -> Result<(), OpError> {
    let out = r?;
    if is_up(&out.active_state) {
        tracing::info!("{unit} is {} ({:?})", out.active_state, out.elapsed);
        return Ok(());
    }
    let _ = sd;
    Err(OpError::NotStarted {
        unit: unit.to_string(),
        result: out.result,
        state: out.active_state,
    })
}

pub(super) async fn stop_checked(
    sd: &Systemd,
    unit: &str,
    timeout: Duration,
) -> Result<String, OpError> {
    let out = sd.stop_unit(unit, timeout).await?;
    match out.active_state.as_str() {
        "inactive" => Ok(out.active_state),
        "failed" => {
            // Down, but remembered as failed: clear it so the next start is clean.
            tracing::warn!("{unit} is failed after stopping ({})", journal_hint(unit));
            sd.reset_failed(unit).await?;
            Ok(out.active_state)
        }
        _ => Err(OpError::NotStopped {
            unit: unit.to_string(),
            result: out.result,
            state: out.active_state,
        }),
    }
}

impl Resource for UnitRes {
    fn name(&self) -> String {
        format!("unit {}", self.unit)
    }
    fn start(&self) -> BoxFuture<'_, Result<(), OpError>> {
        Box::pin(async move {
            let sd = self.sd.get().await?;
            if !self.prepared.contains(&self.unit) {
                // Not prepared ahead (systemd was not reachable then, or the unit did
                // not exist yet): do it now.
                warn_about(&sd, &self.unit).await;
                ensure_dropin(&sd, Path::new(RUNTIME_UNIT_DIR), &self.unit).await?;
                self.prepared.insert(&self.unit);
            }
            let r = sd.start_unit(&self.unit, self.timeout).await;
            check_started(&sd, &self.unit, r).await
        })
    }
    fn stop(&self) -> BoxFuture<'_, Result<(), OpError>> {
        Box::pin(async move {
            let sd = self.sd.get().await?;
            stop_checked(&sd, &self.unit, self.timeout)
                .await
                .map(|_| ())
        })
    }
    fn is_active(&self) -> BoxFuture<'_, Result<bool, OpError>> {
        Box::pin(unit_is_up(&self.sd, &self.unit))
    }
}

/// Start a transient unit, adopting one that is already active; a unit of that name
/// that exists but is not transient (e.g. from fstab) is started as it is.
pub(super) async fn start_transient(
    sd: &Systemd,
    unit: &str,
    props: &[(&str, Variant<'_>)],
    timeout: Duration,
) -> Result<(), OpError> {
    let state = sd.active_state(unit).await?;
    if is_up(&state) {
        tracing::info!("{unit} is already active; adopting it");
        return Ok(());
    }
    sd.reset_failed(unit).await?;
    let r = match sd.start_transient_unit(unit, props, timeout).await {
        Err(SystemdError::Call { message, .. })
            if message.contains("already exists") || message.contains("already loaded") =>
        {
            sd.start_unit(unit, timeout).await
        }
        other => other,
    };
    check_started(sd, unit, r).await
}

pub(super) fn usec(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropin_for_services_has_restart_no() {
        let t = dropin_text("web.service", "Web server");
        assert!(t.contains("Description=Web server (managed by hbd)\n"));
        assert!(t.contains("[Service]\nRestart=no\n"));
        assert!(!t.contains("Before="));
        let t2 = dropin_text("web.socket", "Web server (managed by hbd)");
        assert!(t2.contains("Description=Web server (managed by hbd)\n"));
        assert!(!t2.contains("[Service]"));
    }
}
