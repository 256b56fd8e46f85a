//! Resource groups brought up and down through systemd (units, mounts, legacy
//! scripts) and netlink (virtual IPs).
//!
//! The daemon talks to one [`Manager`]: start a group (in order, rolling back on
//! failure), stop it (in reverse order; a failed stop is reported, never ignored),
//! ask whether a group is already fully active (adoption after a daemon restart), and
//! receive [`Failure`]s for groups whose resources failed beyond their in-place
//! restart budget.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use crate::config::Config;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ResourceError {
    #[error("group index {0} is not in the configuration")]
    NoSuchGroup(usize),
    #[error("{0}")]
    Failed(String),
}

/// A group that failed at runtime and should move to another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub group: usize,
    pub reason: String,
}

/// Handle on the resource layer; cheap to clone into tasks.
#[derive(Clone)]
pub struct Manager {
    config: Arc<Mutex<Arc<Config>>>,
    #[allow(dead_code)]
    failures: UnboundedSender<Failure>,
}

impl Manager {
    pub async fn connect(
        config: Arc<Config>,
        failures: UnboundedSender<Failure>,
    ) -> Result<Manager, ResourceError> {
        Ok(Manager {
            config: Arc::new(Mutex::new(config)),
            failures,
        })
    }

    fn config(&self) -> Arc<Config> {
        match self.config.lock() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Use a reloaded configuration for later operations.
    pub fn set_config(&self, config: Arc<Config>) {
        match self.config.lock() {
            Ok(mut c) => *c = config,
            Err(p) => *p.into_inner() = config,
        }
    }

    /// Start the group's resources first to last; on failure stop the started ones
    /// last to first and return the first error.
    pub async fn start_group(&self, group: usize) -> Result<(), ResourceError> {
        let cfg = self.config();
        let g = cfg
            .groups
            .get(group)
            .ok_or(ResourceError::NoSuchGroup(group))?;
        if g.resources.is_empty() {
            return Ok(());
        }
        Err(ResourceError::Failed(
            "resource kinds are not implemented yet".into(),
        ))
    }

    /// Stop the group's resources last to first.
    pub async fn stop_group(&self, group: usize) -> Result<(), ResourceError> {
        let cfg = self.config();
        cfg.groups
            .get(group)
            .ok_or(ResourceError::NoSuchGroup(group))?;
        Ok(())
    }

    /// Whether every resource of the group is already active here (adoption).
    pub async fn is_active(&self, group: usize) -> Result<bool, ResourceError> {
        let cfg = self.config();
        cfg.groups
            .get(group)
            .ok_or(ResourceError::NoSuchGroup(group))?;
        Ok(false)
    }
}
