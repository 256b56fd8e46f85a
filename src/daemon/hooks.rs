//! Event hooks (`[events] unit = "hbd-event@.service"`): on every peer and group
//! transition hbd starts the admin's template unit with the event's name as
//! instance (`hbd-event@peer-dead.service`), after writing the event's details to
//! `/run/hbd/events/<event>.env` (`EnvironmentFile=/run/hbd/events/%i.env` in the
//! unit reads them).
//!
//! One at a time and in order: the loop only queues ([`Hooks::push`] never waits);
//! a task of its own starts each unit and waits for its start job (a `Type=oneshot`
//! hook's job ends when the hook does), at most `[events] timeout`, then goes on with
//! the next event. A hook that hangs is stopped after the timeout (so that the next
//! event of its name gets a hook of its own): it delays only the hooks queued after
//! it, by about the timeout, and never a failover. Failures are logged. When more
//! than [`QUEUE`] events wait, new ones are dropped (counted, logged).

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::systemd::manager::{Systemd, SystemdError};

/// Events waiting at most.
pub const QUEUE: usize = 1024;
pub const DIR: &str = "/run/hbd/events";
/// Longest the stop of a hook that timed out may take.
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// One event for the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The event's name (the unit's instance), e.g. "peer-dead", "group-running".
    pub event: String,
    /// HBD_* variables for the environment file.
    pub env: Vec<(String, String)>,
}

/// Why an event hook failed (logged as "event hook for EVENT failed: <it>").
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("cannot create {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The blocking task writing the file did not finish (panicked, cancelled).
    #[error("cannot write {}: {source}", path.display())]
    WriteTask {
        path: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    /// The hook's start job ended other than `done`.
    #[error("{unit}: job {result}, unit {state}")]
    Job {
        unit: String,
        result: String,
        state: String,
    },
    /// The hook ran past its timeout and was stopped.
    #[error("{unit} did not finish within {}s; stopped it", timeout.as_secs_f64())]
    Hung { unit: String, timeout: Duration },
    /// The hook ran past its timeout and stopping it failed too.
    #[error(
        "{unit} did not finish within {}s; stopping it failed: {source}",
        timeout.as_secs_f64()
    )]
    HungUnstopped {
        unit: String,
        timeout: Duration,
        #[source]
        source: SystemdError,
    },
}

pub struct Hooks {
    tx: mpsc::Sender<Hook>,
    seq: u64,
}

impl Hooks {
    /// Start the hook task for `template` (validated: `NAME@.service`).
    pub fn start(template: String, timeout: Duration) -> Hooks {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dir = PathBuf::from(DIR);
        tokio::spawn(async move {
            let limit = timeout + STOP_LIMIT + Duration::from_secs(1);
            drain(rx, limit, None, move |hook, conn: Option<Systemd>| {
                let unit = instance(&template, &hook.event);
                let file = dir.join(format!("{}.env", hook.event));
                async move {
                    let mut conn = conn.filter(|c| !c.is_closed());
                    let r = run_one(&file, &hook, &unit, timeout, &mut conn).await;
                    (r, conn)
                }
            })
            .await;
        });
        Hooks { tx, seq: 0 }
    }

    /// Queue an event (never waits). Adds HBD_EVENT and HBD_SEQ.
    pub fn push(&mut self, mut hook: Hook, dropped: &prometheus_client::metrics::counter::Counter) {
        self.seq += 1;
        hook.env.insert(0, ("HBD_SEQ".into(), self.seq.to_string()));
        hook.env.insert(0, ("HBD_EVENT".into(), hook.event.clone()));
        if let Err(e) = self.tx.try_send(hook) {
            dropped.inc();
            let name = match &e {
                mpsc::error::TrySendError::Full(h) | mpsc::error::TrySendError::Closed(h) => {
                    h.event.clone()
                }
            };
            tracing::warn!(
                "event hook for {name} not run: more than {QUEUE} events wait for their hooks"
            );
        }
    }
}

async fn run_one(
    file: &Path,
    hook: &Hook,
    unit: &str,
    timeout: Duration,
    conn: &mut Option<Systemd>,
) -> Result<(), HookError> {
    // Off the loop's thread (a file system write, however quick on /run).
    let (f, env) = (file.to_path_buf(), hook.env.clone());
    tokio::task::spawn_blocking(move || write_env(&f, &env))
        .await
        .map_err(|source| HookError::WriteTask {
            path: file.to_path_buf(),
            source,
        })??;
    let c = match conn {
        Some(c) => c,
        None => conn.insert(Systemd::connect().await?),
    };
    match c.start_unit(unit, timeout).await {
        Ok(out) if out.result == "done" => Ok(()),
        Ok(out) => Err(HookError::Job {
            unit: unit.to_string(),
            result: out.result,
            state: out.active_state,
        }),
        Err(SystemdError::Timeout { .. }) => {
            // Stopped, so that the next event of this name runs its own hook (a
            // start of a unit still starting would only join the hung one).
            Err(match c.stop_unit(unit, STOP_LIMIT).await {
                Ok(_) => HookError::Hung {
                    unit: unit.to_string(),
                    timeout,
                },
                Err(source) => HookError::HungUnstopped {
                    unit: unit.to_string(),
                    timeout,
                    source,
                },
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The unit for one event: `hbd-event@.service` + `peer-dead` → `hbd-event@peer-dead.service`.
pub fn instance(template: &str, event: &str) -> String {
    match template.split_once("@.") {
        Some((name, suffix)) => format!("{name}@{event}.{suffix}"),
        None => template.to_string(),
    }
}

/// Run the hooks one after the other, in the order queued, each for at most
/// `limit` (the hook's timeout, the stop of a hung one, and a little grace); `run`
/// gets and hands back a state kept between hooks (the systemd connection), dropped
/// when a hook overran the limit.
pub async fn drain<S, F, Fut>(
    mut rx: mpsc::Receiver<Hook>,
    limit: Duration,
    mut state: Option<S>,
    mut run: F,
) where
    F: FnMut(Hook, Option<S>) -> Fut,
    Fut: Future<Output = (Result<(), HookError>, Option<S>)>,
{
    while let Some(hook) = rx.recv().await {
        let event = hook.event.clone();
        match tokio::time::timeout(limit, run(hook, state.take())).await {
            Ok((r, s)) => {
                state = s;
                match r {
                    Ok(()) => tracing::debug!("event hook for {event} done"),
                    Err(e) => tracing::warn!("event hook for {event} failed: {e}"),
                }
            }
            Err(_) => tracing::warn!(
                "event hook for {event} did not finish within {}s: going on with the next event",
                limit.as_secs_f64()
            ),
        }
    }
}

/// Write the environment file (systemd's EnvironmentFile= syntax, values quoted),
/// replacing the previous one atomically.
fn write_env(path: &Path, env: &[(String, String)]) -> Result<(), HookError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| HookError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    let mut text = String::new();
    for (k, v) in env {
        text += &format!("{k}={}\n", quote(v));
    }
    let tmp = path.with_extension("env.tmp");
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HookError::Write { path, source }
    };
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(write_err(&tmp))?;
    f.write_all(text.as_bytes()).map_err(write_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(write_err(path))
}

/// A value for EnvironmentFile=: double-quoted, backslash and quote escaped, on one line.
fn quote(v: &str) -> String {
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' | '\r' => s.push(' '),
            c if c.is_control() => {}
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn hook(e: &str) -> Hook {
        Hook {
            event: e.into(),
            env: vec![],
        }
    }

    #[test]
    fn instances_and_quoting() {
        assert_eq!(
            instance("hbd-event@.service", "peer-dead"),
            "hbd-event@peer-dead.service"
        );
        assert_eq!(quote("a \"b\" \\ c\nd"), "\"a \\\"b\\\" \\\\ c d\"");
    }

    #[test]
    fn env_files_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events/peer-dead.env");
        write_env(&p, &[("HBD_PEER".into(), "n1".into())]).unwrap();
        write_env(&p, &[("HBD_PEER".into(), "n2 \"x\"".into())]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "HBD_PEER=\"n2 \\\"x\\\"\"\n"
        );
    }

    /// The sentences the journal shows after "event hook for EVENT failed: ".
    #[test]
    fn hook_errors_are_one_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events");
        std::fs::write(&file, "").unwrap();
        let e = write_env(&file.join("peer-dead.env"), &[]).unwrap_err();
        assert!(matches!(e, HookError::CreateDir { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("cannot create {}: ", file.display())),
            "{e}"
        );
        let hung = HookError::Hung {
            unit: "hbd-event@peer-dead.service".into(),
            timeout: Duration::from_millis(1500),
        };
        assert_eq!(
            hung.to_string(),
            "hbd-event@peer-dead.service did not finish within 1.5s; stopped it"
        );
        let job = HookError::Job {
            unit: "hbd-event@peer-dead.service".into(),
            result: "failed".into(),
            state: "failed".into(),
        };
        assert_eq!(
            job.to_string(),
            "hbd-event@peer-dead.service: job failed, unit failed"
        );
    }

    /// Hooks run in the order queued, one at a time; one that hangs is given up
    /// after the timeout and the next ones still run, in order; queuing never waits.
    #[tokio::test]
    async fn hooks_run_in_order_and_a_hanging_one_delays_only_its_successors() {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut hooks = Hooks { tx, seq: 0 };
        let dropped = prometheus_client::metrics::counter::Counter::default();
        let ran = Arc::new(Mutex::new(Vec::<String>::new()));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for e in [
            "peer-late",
            "link-down",
            "peer-dead",
            "group-starting",
            "group-running",
        ] {
            hooks.push(hook(e), &dropped);
        }
        // Queuing five hooks took no time, whatever they do.
        assert!(dropped.get() == 0);
        drop(hooks);
        let (r, n) = (ran.clone(), running.clone());
        drain(
            rx,
            Duration::from_millis(100),
            None::<()>,
            move |h: Hook, _s: Option<()>| {
                let (r, n) = (r.clone(), n.clone());
                async move {
                    assert_eq!(
                        n.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                        0,
                        "one at a time"
                    );
                    let seq = h
                        .env
                        .iter()
                        .find(|(k, _)| k == "HBD_SEQ")
                        .map(|(_, v)| v.clone());
                    r.lock()
                        .unwrap()
                        .push(format!("{}#{}", h.event, seq.unwrap_or_default()));
                    if h.event == "link-down" {
                        // Hangs: given up after the timeout (the future is dropped).
                        struct Done(Arc<std::sync::atomic::AtomicUsize>);
                        impl Drop for Done {
                            fn drop(&mut self) {
                                self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                            }
                        }
                        let _d = Done(n.clone());
                        std::future::pending::<()>().await;
                    }
                    n.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    (
                        if h.event == "peer-dead" {
                            Err(HookError::Job {
                                unit: "hbd-event@peer-dead.service".into(),
                                result: "failed".into(),
                                state: "failed".into(),
                            })
                        } else {
                            Ok(())
                        },
                        None::<()>,
                    )
                }
            },
        )
        .await;
        assert_eq!(
            *ran.lock().unwrap(),
            vec![
                "peer-late#1",
                "link-down#2",
                "peer-dead#3",
                "group-starting#4",
                "group-running#5"
            ]
        );
        assert_eq!(running.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (tx, _rx) = mpsc::channel(2);
        let mut hooks = Hooks { tx, seq: 0 };
        let dropped = prometheus_client::metrics::counter::Counter::default();
        for _ in 0..5 {
            hooks.push(hook("peer-up"), &dropped);
        }
        assert_eq!(dropped.get(), 3);
    }
}
