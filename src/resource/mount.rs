//! Filesystems mounted through transient systemd mount units.
//!
//! `StartTransientUnit("<escaped where>.mount", "replace", [Description, What, Where,
//! Type, Options, TimeoutUSec])`, named exactly as systemd names the mount point's
//! unit; stopped with StopUnit. A mount unit already active there (a transient one
//! from before hbd restarted, or one from fstab) is adopted; one that exists but is
//! not transient is started as it is.

use futures::future::BoxFuture;
use zbus::Variant;

use super::group::{OpError, Resource};
use super::unit::{SystemdLink, start_transient, stop_checked, unit_is_up, usec};
use crate::config::MountResource;
use crate::systemd::escape;

/// A filesystem mounted through a transient mount unit.
pub struct MountRes {
    pub sd: SystemdLink,
    pub cfg: MountResource,
}

impl MountRes {
    pub fn unit(&self) -> Result<String, OpError> {
        Ok(escape::mount_unit_name(&self.cfg.r#where)?)
    }
}

impl Resource for MountRes {
    fn name(&self) -> String {
        format!("mount {}", self.cfg.r#where.display())
    }
    fn start(&self) -> BoxFuture<'_, Result<(), OpError>> {
        Box::pin(async move {
            let sd = self.sd.get().await?;
            let unit = self.unit()?;
            let c = &self.cfg;
            let where_ = c.r#where.to_string_lossy().into_owned();
            let mut props: Vec<(&str, Variant<'_>)> = vec![
                (
                    "Description",
                    Variant::from(format!("hbd mount of {} on {}", c.what, where_)),
                ),
                ("What", Variant::from(c.what.clone())),
                ("Where", Variant::from(where_.clone())),
                ("TimeoutUSec", Variant::from(usec(c.timeout.get()))),
            ];
            if let Some(t) = &c.fstype {
                props.push(("Type", Variant::from(t.clone())));
            }
            if let Some(o) = &c.options {
                props.push(("Options", Variant::from(o.clone())));
            }
            start_transient(&sd, &unit, &props, c.timeout.get()).await
        })
    }
    fn stop(&self) -> BoxFuture<'_, Result<(), OpError>> {
        Box::pin(async move {
            let sd = self.sd.get().await?;
            let unit = self.unit()?;
            stop_checked(&sd, &unit, self.cfg.timeout.get())
                .await
                .map(|_| ())
        })
    }
    fn is_active(&self) -> BoxFuture<'_, Result<bool, OpError>> {
        Box::pin(async move { unit_is_up(&self.sd, &self.unit()?).await })
    }
}
