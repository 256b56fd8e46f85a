//! What the operator commands share: a small runtime, the connection, and waiting
//! until a command's outcome shows in the status.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cluster::{Command, Until};
use crate::control::Reply;
use crate::control::client::Client;
use crate::control::report::{GroupReport, Report};
use crate::error::{Error, Result};

/// Options every changing command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// Return as soon as hbd accepted the command.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting for the outcome after this many seconds (the command stays in force).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

/// Run `f` on a fresh current-thread runtime.
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?
        .block_on(f)
}

/// Connect, send one command, print its answer, and (unless --no-wait) wait until
/// what it set moving has arrived.
pub fn command<F, Fut>(socket: &Path, wait: &WaitArgs, send: F) -> Result<()>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<(Client, Reply)>>,
{
    block_on(async {
        let client = Client::connect(socket).await?;
        let (client, reply) = send(client).await?;
        println!("{}", reply.message);
        if wait.no_wait || reply.wait.is_empty() {
            return Ok(());
        }
        wait_for(&client, &reply, Duration::from_secs(wait.timeout)).await
    })
}

/// `hbd standby` and `hbd takeover`: send `cmd` (the one or the other, from the
/// command's arguments), print its answer and wait as [`command`] does.
pub fn move_group(socket: &Path, wait: &WaitArgs, cmd: Command) -> Result<()> {
    command(socket, wait, |c| async move {
        let r = match &cmd {
            Command::Standby { group, force } => {
                c.standby(group.as_deref().unwrap_or_default(), *force)
                    .await?
            }
            Command::Takeover { group, force } => {
                c.takeover(group.as_deref().unwrap_or_default(), *force)
                    .await?
            }
            other => {
                return Err(Error::Runtime(format!(
                    "{other} is neither a standby nor a takeover"
                )));
            }
        };
        Ok((c, r))
    })
}

enum Progress {
    Pending(String),
    Done(String),
    Failed(String),
}

fn progress(r: &Report, g: &GroupReport, until: Until) -> Progress {
    let here = r.node.as_str();
    let why = g
        .reason
        .as_deref()
        .map(|w| format!(": {w}"))
        .unwrap_or_default();
    match until {
        Until::Here => match g.local_state.as_str() {
            "running" => Progress::Done(format!("{} is running on {here}", g.name)),
            "failed" | "blocked" => Progress::Failed(format!(
                "group {} is {} on {here}{why}",
                g.name, g.local_state
            )),
            s => Progress::Pending(format!(
                "{}: {} here; held by {}",
                g.name,
                s,
                g.holder.as_deref().unwrap_or("nobody")
            )),
        },
        Until::Away => match (
            g.local_state.as_str(),
            g.holder.as_deref(),
            g.state.as_str(),
        ) {
            ("blocked", ..) => {
                Progress::Failed(format!("group {} is blocked on {here}{why}", g.name))
            }
            ("stopped" | "failed", Some(h), "running") if h != here => {
                Progress::Done(format!("{} is running on {h}", g.name))
            }
            ("stopped" | "failed", None, _) if !g.failed_on.is_empty() => {
                Progress::Failed(format!(
                    "group {} failed to start on {} and runs nowhere now",
                    g.name,
                    g.failed_on.join(", ")
                ))
            }
            (s, h, hs) => Progress::Pending(format!(
                "{}: {s} here; {}",
                g.name,
                match h {
                    Some(h) if h != here => format!("{hs} on {h}"),
                    _ => "no other node runs it yet".to_string(),
                }
            )),
        },
    }
}

async fn wait_for(client: &Client, reply: &Reply, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut pending: Vec<_> = reply.wait.clone();
    let mut last_line: Vec<String> = vec![String::new(); pending.len()];
    loop {
        let report = client.status().await?;
        let mut still = Vec::new();
        let mut lines = Vec::new();
        for (w, last) in pending.iter().zip(&last_line) {
            let Some(g) = report.groups.iter().find(|g| g.name == w.group) else {
                return Err(Error::Runtime(format!(
                    "group {} is gone from the status",
                    w.group
                )));
            };
            match progress(&report, g, w.until) {
                Progress::Done(s) => println!("{s} ({:.1}s)", start.elapsed().as_secs_f64()),
                Progress::Failed(s) => return Err(Error::Runtime(s)),
                Progress::Pending(s) => {
                    if &s != last {
                        println!("{s}");
                    }
                    still.push(w.clone());
                    lines.push(s);
                }
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(Error::Runtime(format!(
                "still waiting after {}s: {}",
                timeout.as_secs(),
                lines.join("; ")
            )));
        }
        pending = still;
        last_line = lines;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
