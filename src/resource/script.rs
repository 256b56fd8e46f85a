//! Legacy Heartbeat resource.d and LSB scripts, run by systemd as transient units.
//!
//! A transient `hbd-script-<name[::args]>.service` (escaped like `systemd-escape`):
//! Type=oneshot, RemainAfterExit=yes, ExecStart=`script args… start`,
//! ExecStop=`script args… stop` (D-Bus type a(sasb)), with the resource's timeout for
//! both. The script's output lands in the journal, systemd supervises it, and the
//! unit being active is the resource's status (adoption).

use futures::future::BoxFuture;
use zbus::Variant;

use super::group::{OpError, Resource};
use super::unit::{SystemdLink, is_up, start_transient, unit_is_up, usec};
use crate::config::ScriptResource;
use crate::systemd::escape;

/// A legacy script run as a transient oneshot service.
pub struct ScriptRes {
    pub sd: SystemdLink,
    pub cfg: ScriptResource,
}

/// The transient unit name for a script resource: `hbd-script-<name[::args]>.service`,
/// escaped like `systemd-escape`.
pub fn script_unit_name(cfg: &ScriptResource) -> String {
    let base = cfg
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "script".into());
    let mut id = base;
    for a in &cfg.args {
        id.push_str("::");
        id.push_str(a);
    }
    format!("hbd-script-{}.service", escape::escape(id.as_bytes()))
}

impl ScriptRes {
    fn exec(&self, action: &str) -> Vec<(String, Vec<String>, bool)> {
        let path = self.cfg.path.to_string_lossy().into_owned();
        let mut argv = vec![path.clone()];
        argv.extend(self.cfg.args.iter().cloned());
        argv.push(action.to_string());
        vec![(path, argv, false)]
    }
}

impl Resource for ScriptRes {
    fn name(&self) -> String {
        let mut n = format!("script {}", self.cfg.path.display());
        for a in &self.cfg.args {
            n.push_str("::");
            n.push_str(a);
        }
        n
    }
    fn start(&self) -> BoxFuture<'_, Result<(), OpError>> {
        Box::pin(async move {
            let sd = self.sd.get().await?;
            let unit = script_unit_name(&self.cfg);
            let t = usec(self.cfg.timeout.get());
            let props: Vec<(&str, Variant<'_>)> = vec![
                ("Description", Variant::from(format!("hbd {}", self.name()))),
                ("Type", Variant::from("oneshot")),
                ("RemainAfterExit", Variant::from(true)),
                ("ExecStart", Variant::from(self.exec("start"))),
                ("ExecStop", Variant::from(self.exec("stop"))),
                ("TimeoutStartUSec", Variant::from(t)),
                ("TimeoutStopUSec", Variant::from(t)),
            ];
            start_transient(&sd, &unit, &props, self.cfg.timeout.get()).await
        })
    }
    fn stop(&self) -> BoxFuture<'_, Result<(), OpError>> {
        Box::pin(async move {
            let sd = self.sd.get().await?;
            let unit = script_unit_name(&self.cfg);
            let before = sd.active_state(&unit).await?;
            if !is_up(&before) && before != "activating" {
                // Never started, or already down: the stop action would not run.
                return Ok(());
            }
            let out = sd.stop_unit(&unit, self.cfg.timeout.get()).await?;
            match out.active_state.as_str() {
                "inactive" => Ok(()),
                _ => Err(OpError::ScriptStop {
                    script: self.name(),
                    unit,
                    state: out.active_state,
                }),
            }
        })
    }
    fn is_active(&self) -> BoxFuture<'_, Result<bool, OpError>> {
        Box::pin(async move { unit_is_up(&self.sd, &script_unit_name(&self.cfg)).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;
    use std::path::PathBuf;

    #[test]
    fn script_names() {
        let s = ScriptResource {
            path: PathBuf::from("/etc/ha.d/resource.d/drbddisk"),
            args: vec!["r0".into()],
            timeout: HumanDuration::from_secs(5),
        };
        assert_eq!(script_unit_name(&s), "hbd-script-drbddisk::r0.service");
        let s2 = ScriptResource {
            path: PathBuf::from("/etc/init.d/my-app"),
            args: vec!["a b".into()],
            timeout: HumanDuration::from_secs(5),
        };
        assert_eq!(
            script_unit_name(&s2),
            "hbd-script-my\\x2dapp::a\\x20b.service"
        );
    }
}
