//! Ordered groups: start first→last, stop last→first, roll back on failure.
//!
//! The sequencing is written against [`Resource`], a small trait for "something
//! that can be started, stopped and checked", so it is tested here with fakes and
//! used by the real kinds (units, mounts, scripts, IPs) in the parent module.
//!
//! Rules:
//! - start: each resource waits for the previous one. When one fails, it and every
//!   resource started before it are stopped in reverse order (the failing one too,
//!   as it may be half up), and the error names the resource and why.
//! - stop: last→first. The first stop that fails ends the stop: the resources before
//!   it stay up (they are what it depends on), and the group is *blocked* here.
//! - a stop that fails during a rollback blocks the group too. Nothing is ignored.

use futures::future::BoxFuture;

use super::ip::IpError;
use crate::systemd::escape::EscapeError;
use crate::systemd::manager::SystemdError;

/// Why one resource could not be started, stopped or checked; one sentence each.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error(transparent)]
    Ip(#[from] IpError),
    #[error(transparent)]
    Escape(#[from] EscapeError),
    /// The start job ended with the unit not up.
    #[error("start job {result}, unit is {state} (see journalctl -u {unit})")]
    NotStarted {
        unit: String,
        result: String,
        state: String,
    },
    /// The stop job ended with the unit still up (or in between).
    #[error("stop job {result}, unit is still {state} (see journalctl -u {unit})")]
    NotStopped {
        unit: String,
        result: String,
        state: String,
    },
    /// A legacy script's `stop` failed.
    #[error("`{script} stop` failed, unit is {state} (see journalctl -u {unit})")]
    ScriptStop {
        script: String,
        unit: String,
        state: String,
    },
    /// A scripted outcome (the sequencer's tests).
    #[cfg(test)]
    #[error("{0}")]
    Scripted(&'static str),
}

/// A resource the group sequencer can drive.
pub trait Resource: Send + Sync {
    /// Human name for messages, e.g. "unit nginx.service".
    fn name(&self) -> String;
    /// Bring it up; Ok only when it is really up.
    fn start(&self) -> BoxFuture<'_, Result<(), OpError>>;
    /// Bring it down; Ok only when it is really down (absent counts as down).
    fn stop(&self) -> BoxFuture<'_, Result<(), OpError>>;
    /// Whether it is up here now.
    fn is_active(&self) -> BoxFuture<'_, Result<bool, OpError>>;
}

/// Why a group operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    /// A start failed and everything was rolled back: the group is down here, and
    /// another node may try.
    #[error("{resource} failed to start: {reason}; rolled back")]
    StartFailed { resource: String, reason: OpError },
    /// A start failed and then the rollback could not stop something: blocked.
    #[error(
        "{resource} failed to start: {reason}; then the rollback could not stop {stuck}: {stop_reason} (group blocked here)"
    )]
    RollbackFailed {
        resource: String,
        reason: OpError,
        stuck: String,
        stop_reason: OpError,
    },
    /// A stop failed: the group is blocked here; `still_up` lists what was not stopped.
    #[error("{resource} failed to stop: {reason} (group blocked here; still up: {still_up})")]
    StopFailed {
        resource: String,
        reason: OpError,
        still_up: String,
    },
}

impl GroupError {
    /// Whether the group is left blocked (some resource may still be up here).
    pub fn is_blocked(&self) -> bool {
        !matches!(self, GroupError::StartFailed { .. })
    }
}

/// Start resources first→last; on failure stop the started ones (and the failing
/// one) last→first.
pub async fn start_all<R: AsRef<dyn Resource>>(resources: &[R]) -> Result<(), GroupError> {
    start_from(resources, 0).await
}

/// Start resources `from..` in order (used for restarts in place).
pub async fn start_from<R: AsRef<dyn Resource>>(
    resources: &[R],
    from: usize,
) -> Result<(), GroupError> {
    for i in from..resources.len() {
        let r = resources[i].as_ref();
        if let Err(reason) = r.start().await {
            let resource = r.name();
            tracing::warn!("{resource} failed to start: {reason}; rolling back");
            for j in (0..=i).rev() {
                let s = resources[j].as_ref();
                if let Err(stop_reason) = s.stop().await {
                    return Err(GroupError::RollbackFailed {
                        resource,
                        reason,
                        stuck: s.name(),
                        stop_reason,
                    });
                }
            }
            return Err(GroupError::StartFailed { resource, reason });
        }
    }
    Ok(())
}

/// Stop resources last→first.
pub async fn stop_all<R: AsRef<dyn Resource>>(resources: &[R]) -> Result<(), GroupError> {
    stop_down_to(resources, 0).await
}

/// Stop resources last→`to` (inclusive), in reverse order.
pub async fn stop_down_to<R: AsRef<dyn Resource>>(
    resources: &[R],
    to: usize,
) -> Result<(), GroupError> {
    for i in (to..resources.len()).rev() {
        let r = resources[i].as_ref();
        if let Err(reason) = r.stop().await {
            let still_up = resources[..=i]
                .iter()
                .map(|r| r.as_ref().name())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(GroupError::StopFailed {
                resource: r.name(),
                reason,
                still_up,
            });
        }
    }
    Ok(())
}

/// Whether every resource is active (adoption). False on the first inactive one.
pub async fn all_active<R: AsRef<dyn Resource>>(resources: &[R]) -> Result<bool, OpError> {
    for r in resources {
        if !r.as_ref().is_active().await? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A fake resource that records what happened to it in a shared log.
    pub struct Fake {
        pub name: &'static str,
        pub log: Arc<Mutex<Vec<String>>>,
        pub fail_start: bool,
        pub fail_stop: bool,
        pub up: Mutex<bool>,
    }

    impl Fake {
        pub fn new(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Fake {
            Fake {
                name,
                log: log.clone(),
                fail_start: false,
                fail_stop: false,
                up: Mutex::new(false),
            }
        }
    }

    impl Resource for Fake {
        fn name(&self) -> String {
            self.name.to_string()
        }
        fn start(&self) -> BoxFuture<'_, Result<(), OpError>> {
            Box::pin(async move {
                self.log
                    .lock()
                    .unwrap()
                    .push(format!("start {}", self.name));
                if self.fail_start {
                    return Err(OpError::Scripted("exit status 1"));
                }
                *self.up.lock().unwrap() = true;
                Ok(())
            })
        }
        fn stop(&self) -> BoxFuture<'_, Result<(), OpError>> {
            Box::pin(async move {
                self.log.lock().unwrap().push(format!("stop {}", self.name));
                if self.fail_stop {
                    return Err(OpError::Scripted("device busy"));
                }
                *self.up.lock().unwrap() = false;
                Ok(())
            })
        }
        fn is_active(&self) -> BoxFuture<'_, Result<bool, OpError>> {
            Box::pin(async move { Ok(*self.up.lock().unwrap()) })
        }
    }

    fn group(log: &Arc<Mutex<Vec<String>>>, names: &[&'static str]) -> Vec<Box<dyn Resource>> {
        names
            .iter()
            .map(|n| Box::new(Fake::new(n, log)) as Box<dyn Resource>)
            .collect()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn starts_in_order_and_stops_in_reverse() {
        let log = Arc::new(Mutex::new(vec![]));
        let g = group(&log, &["ip", "unit", "mount"]);
        rt().block_on(async {
            start_all(&g).await.unwrap();
            assert!(all_active(&g).await.unwrap());
            stop_all(&g).await.unwrap();
            assert!(!all_active(&g).await.unwrap());
        });
        assert_eq!(
            *log.lock().unwrap(),
            [
                "start ip",
                "start unit",
                "start mount",
                "stop mount",
                "stop unit",
                "stop ip"
            ]
        );
    }

    #[test]
    fn failure_in_the_middle_rolls_back_in_reverse() {
        let log = Arc::new(Mutex::new(vec![]));
        let mut bad = Fake::new("unit", &log);
        bad.fail_start = true;
        let g: Vec<Box<dyn Resource>> = vec![
            Box::new(Fake::new("ip", &log)),
            Box::new(bad),
            Box::new(Fake::new("mount", &log)),
        ];
        let err = rt().block_on(start_all(&g)).unwrap_err();
        assert!(
            matches!(&err, GroupError::StartFailed { resource, reason: OpError::Scripted("exit status 1") } if resource == "unit"),
            "{err:?}"
        );
        assert!(!err.is_blocked());
        assert!(
            err.to_string()
                .contains("unit failed to start: exit status 1")
        );
        assert_eq!(
            *log.lock().unwrap(),
            ["start ip", "start unit", "stop unit", "stop ip"]
        );
    }

    #[test]
    fn rollback_stop_failure_blocks() {
        let log = Arc::new(Mutex::new(vec![]));
        let mut stuck = Fake::new("ip", &log);
        stuck.fail_stop = true;
        let mut bad = Fake::new("unit", &log);
        bad.fail_start = true;
        let g: Vec<Box<dyn Resource>> = vec![Box::new(stuck), Box::new(bad)];
        let err = rt().block_on(start_all(&g)).unwrap_err();
        assert!(err.is_blocked());
        assert!(matches!(err, GroupError::RollbackFailed { ref stuck, .. } if stuck == "ip"));
        assert_eq!(
            *log.lock().unwrap(),
            ["start ip", "start unit", "stop unit", "stop ip"]
        );
    }

    #[test]
    fn stop_failure_stops_there_and_blocks() {
        let log = Arc::new(Mutex::new(vec![]));
        let mut busy = Fake::new("unit", &log);
        busy.fail_stop = true;
        let g: Vec<Box<dyn Resource>> = vec![
            Box::new(Fake::new("ip", &log)),
            Box::new(busy),
            Box::new(Fake::new("mount", &log)),
        ];
        let err = rt().block_on(stop_all(&g)).unwrap_err();
        assert!(err.is_blocked());
        assert!(
            matches!(&err, GroupError::StopFailed { resource, reason: OpError::Scripted("device busy"), still_up } if resource == "unit" && still_up == "ip, unit"),
            "{err:?}"
        );
        assert_eq!(*log.lock().unwrap(), ["stop mount", "stop unit"]);
    }

    #[test]
    fn restart_from_the_middle() {
        let log = Arc::new(Mutex::new(vec![]));
        let g = group(&log, &["ip", "unit", "mount"]);
        rt().block_on(async {
            stop_down_to(&g, 1).await.unwrap();
            start_from(&g, 1).await.unwrap();
        });
        assert_eq!(
            *log.lock().unwrap(),
            ["stop mount", "stop unit", "start unit", "start mount"]
        );
    }

    #[test]
    fn empty_group_is_trivially_fine() {
        let g: Vec<Box<dyn Resource>> = vec![];
        rt().block_on(async {
            start_all(&g).await.unwrap();
            stop_all(&g).await.unwrap();
            assert!(all_active(&g).await.unwrap());
        });
    }
}
