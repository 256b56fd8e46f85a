//! Carrying out the core's fences through systemd, off the event loop.
//!
//! `fence = { unit = "U" }`: start U and wait for its job. A fence unit is
//! `Type=oneshot` without `RemainAfterExit` (units/fence-ipmi@.service): the start
//! job ends `done` when the agent exited 0 (the node is off), `failed` otherwise. A
//! unit still active from an earlier run is stopped first, so a start always runs the
//! agent again.
//!
//! `fence = { command = [...] }`: the command runs as a transient
//! `hbd-fence-NODE-ATTEMPT.service` (oneshot, collected when done), so its output
//! lands in the journal and systemd supervises it; exit 0 is success.
//!
//! The core owns the timeout (`fence_timeout`): on [`Action::CancelFence`] the task
//! is aborted and the unit stopped. A result that still arrives is ignored by the
//! core (its attempt is over).
//!
//! [`Action::CancelFence`]: crate::cluster::Action::CancelFence

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tracing::Instrument;
use zbus::Variant;

use crate::cluster::{FenceResult, NodeId};
use crate::config::{Config, Fence};
use crate::resource::group::OpError;
use crate::resource::unit::SystemdLink;
use crate::systemd::escape;
use crate::systemd::manager::SystemdError;

/// Extra time the systemd job wait gets over the core's timeout (the core decides).
const JOB_MARGIN: Duration = Duration::from_secs(5);
/// Longest the stop of a cancelled fence unit is waited for.
const CANCEL_STOP: Duration = Duration::from_secs(30);

/// Why a fence did not confirm the node is off (its sentence is the core's reason).
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// systemd could not be reached.
    #[error(transparent)]
    Connect(#[from] OpError),
    /// A call to systemd failed or its job did not finish in time.
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    /// The fence's start job ended other than `done` (the agent failed).
    #[error("{unit} ended {result} (unit {state}; see journalctl -u {unit})")]
    Ended {
        unit: String,
        result: String,
        state: String,
    },
}

/// A finished fence, for the loop: node, attempt, result.
pub type Done = (NodeId, u64, FenceResult);

/// The fences under way.
#[derive(Default)]
pub struct Fencer {
    sd: SystemdLink,
    running: HashMap<usize, (u64, String, JoinHandle<()>)>,
}

/// The unit a fence of `node` (attempt `attempt`) starts.
pub fn unit_name(node: &str, fence: &Fence, attempt: u64) -> String {
    match &fence.unit {
        Some(u) => u.clone(),
        None => format!(
            "hbd-fence-{}-{attempt}.service",
            escape::escape(node.as_bytes())
        ),
    }
}

impl Fencer {
    /// Start fencing `node` in the background; its result goes to `done`.
    pub fn start(
        &mut self,
        config: &Arc<Config>,
        node: NodeId,
        attempt: u64,
        done: UnboundedSender<Done>,
    ) {
        let Some(n) = config.nodes.get(node.0) else {
            return;
        };
        let name = n.name.clone();
        let Some(fence) = n.fence.clone() else {
            // Fencing was removed by a reload while owed: nothing can be run.
            let _ = done.send((
                node,
                attempt,
                FenceResult::FenceFailed {
                    reason: "no fence is configured for it any more".into(),
                },
            ));
            return;
        };
        let timeout = config.fence_timeout(node.0);
        let unit = unit_name(&name, &fence, attempt);
        tracing::warn!(PEER = %name, UNIT = %unit, "fencing {name}: starting {unit} (timeout {}s)", timeout.as_secs());
        let sd = self.sd.clone();
        let u = unit.clone();
        let task = tokio::spawn(
            async move {
                let result = match run(&sd, &name, &fence, &u, timeout + JOB_MARGIN).await {
                    Ok(()) => FenceResult::Fenced,
                    Err(e) => FenceResult::FenceFailed {
                        reason: e.to_string(),
                    },
                };
                let _ = done.send((node, attempt, result));
            }
            .in_current_span(),
        );
        if let Some((_, _, old)) = self.running.insert(node.0, (attempt, unit, task)) {
            old.abort();
        }
    }

    /// The core gave up on `attempt` (timed out, or confirmed by hand): abort it and
    /// stop its unit.
    pub fn cancel(&mut self, node: NodeId, attempt: u64) {
        let Some((a, unit, task)) = self.running.remove(&node.0) else {
            return;
        };
        if a != attempt {
            self.running.insert(node.0, (a, unit, task));
            return;
        }
        task.abort();
        let sd = self.sd.clone();
        tokio::spawn(
            async move {
                match sd.get().await {
                    Ok(sd) => {
                        if let Err(e) = sd.stop_unit(&unit, CANCEL_STOP).await {
                            tracing::warn!(UNIT = %unit, "cannot stop the cancelled fence {unit}: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("cannot stop the cancelled fence {unit}: {e}"),
                }
            }
            .in_current_span(),
        );
    }

    /// A fence finished: forget its task.
    pub fn finished(&mut self, node: NodeId, attempt: u64) {
        if self
            .running
            .get(&node.0)
            .is_some_and(|(a, _, _)| *a == attempt)
        {
            self.running.remove(&node.0);
        }
    }
}

async fn run(
    sd: &SystemdLink,
    node: &str,
    fence: &Fence,
    unit: &str,
    wait: Duration,
) -> Result<(), FenceError> {
    let sd = sd.get().await?;
    let outcome = if fence.unit.is_some() {
        let state = sd.active_state(unit).await?;
        if matches!(state.as_str(), "active" | "reloading" | "activating") {
            // A start of an active unit would be `done` without running anything.
            sd.stop_unit(unit, wait).await?;
        }
        let _ = sd.reset_failed(unit).await;
        sd.start_unit(unit, wait).await
    } else {
        let exec: Vec<(String, Vec<String>, bool)> =
            vec![(fence.command[0].clone(), fence.command.clone(), false)];
        let usec = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        let props: Vec<(&str, Variant<'_>)> = vec![
            ("Description", Variant::from(format!("hbd fence of {node}"))),
            ("Type", Variant::from("oneshot")),
            ("ExecStart", Variant::from(exec)),
            ("TimeoutStartUSec", Variant::from(usec)),
            ("CollectMode", Variant::from("inactive-or-failed")),
        ];
        sd.start_transient_unit(unit, &props, wait).await
    }?;
    if outcome.result == "done" {
        Ok(())
    } else {
        Err(FenceError::Ended {
            unit: unit.to_string(),
            result: outcome.result,
            state: outcome.active_state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        let f = Fence {
            unit: Some("fence-ipmi@n1.service".into()),
            command: Vec::new(),
            timeout: None,
            delay: None,
        };
        assert_eq!(unit_name("n1", &f, 3), "fence-ipmi@n1.service");
        let c = Fence {
            unit: None,
            command: vec!["/bin/true".into()],
            timeout: None,
            delay: None,
        };
        assert_eq!(unit_name("n-1", &c, 7), "hbd-fence-n\\x2d1-7.service");
    }

    /// The core's reason (and the journal's) for a fence whose agent failed.
    #[test]
    fn a_failed_fence_job_names_its_unit_and_result() {
        let e = FenceError::Ended {
            unit: "hbd-fence-n1-1.service".into(),
            result: "failed".into(),
            state: "failed".into(),
        };
        assert_eq!(
            e.to_string(),
            "hbd-fence-n1-1.service ended failed (unit failed; see journalctl -u hbd-fence-n1-1.service)"
        );
    }
}
