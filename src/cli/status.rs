//! `hbd status`: the cluster at a glance as this node sees it (nodes and links,
//! groups and their resources, the last transitions), `--json` for scripts (the
//! report's stable shape, documented in the README), `--watch` to refresh in place.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::control::block_on;
use crate::control::client::Client;
use crate::control::report::Report;
use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the report as JSON (stable shape, see the README).
    #[arg(long, conflicts_with = "watch")]
    pub json: bool,
    /// Refresh in place every second until interrupted.
    #[arg(long, short)]
    pub watch: bool,
    /// How many of the last transitions to show.
    #[arg(long, default_value_t = 10)]
    pub transitions: usize,
}

pub fn run(socket: &Path, args: Args) -> Result<()> {
    block_on(async {
        if args.json {
            let client = Client::connect(socket).await?;
            let json = client.status_json().await?;
            // Through the typed report, so that fields keep their documented order.
            let report: Report = serde_json::from_str(&json).map_err(|e| {
                Error::Runtime(format!("hbd sent a status this hbd cannot read: {e}"))
            })?;
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or(json));
            return Ok(());
        }
        if !args.watch {
            let report = Client::connect(socket).await?.status().await?;
            print!("{}", render(&report, args.transitions));
            return Ok(());
        }
        let mut client: Option<Client> = None;
        loop {
            if client.is_none() {
                client = Client::connect(socket).await.ok();
            }
            let text = match &client {
                Some(c) => match c.status().await {
                    Ok(r) => render(&r, args.transitions),
                    Err(e) => {
                        client = None;
                        format!("{e}\n")
                    }
                },
                None => format!(
                    "hbd is not running on this node (no answer on {})\n",
                    socket.display()
                ),
            };
            // Home, clear to the end of the screen: the picture is replaced in place.
            print!("\x1b[H\x1b[2J{text}");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// The time part of an RFC 3339 stamp when it is on the report's day, else all of it.
fn when(report: &Report, t: &str) -> String {
    match (t.split_once('T'), report.time.split_once('T')) {
        (Some((d, time)), Some((today, _))) if d == today => time.trim_end_matches('Z').to_string(),
        _ => t.to_string(),
    }
}

fn short(digest: &str) -> &str {
    digest.get(..8).unwrap_or(digest)
}

/// The text `hbd status` prints.
pub fn render(r: &Report, transitions: usize) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Cluster {}, seen from {} at {} UTC (hbd {}, config {})",
        r.cluster,
        r.node,
        when(r, &r.time),
        r.version,
        short(&r.config_digest)
    );
    let mut flags = Vec::new();
    if !r.ready {
        flags.push("STARTING UP (listening for peers)");
    }
    if r.protocol == "heartbeat" {
        flags.push("MIXED CLUSTER: speaking Heartbeat 3.0.6's protocol and resource rules ([migration]); set protocol = \"hbd\" once every node runs hbd");
    }
    if r.maintenance {
        flags.push("MAINTENANCE: resources are not managed on this node");
    }
    if r.shutting_down {
        flags.push("SHUTTING DOWN");
    }
    for f in flags {
        let _ = writeln!(o, "  {f}");
    }
    if let Some(q) = &r.quorum {
        if q.quorate {
            let _ = writeln!(o, "  quorum: {} of {} nodes heard", q.heard, q.nodes);
        } else {
            let _ = writeln!(
                o,
                "  NO QUORUM: {} of {} nodes heard, no majority (no group starts here)",
                q.heard, q.nodes
            );
        }
    }

    let _ = writeln!(o, "\nNodes:");
    let width = r.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    for n in &r.nodes {
        let mut line = format!("  {:width$}  {:<5}", n.name, n.state);
        if n.local {
            line += "  (this node";
            if let Some(s) = &n.since {
                let _ = write!(line, ", hbd up since {}", when(r, s));
            }
            line += ")";
        } else if let Some(s) = &n.since {
            let _ = write!(line, "  since {}", when(r, s));
        }
        if !n.links.is_empty() {
            let links: Vec<String> = n
                .links
                .iter()
                .map(|l| format!("{} {}", l.name, if l.up { "up" } else { "down" }))
                .collect();
            let _ = write!(line, "  links: {}", links.join(", "));
        }
        if r.ping_nodes > 0 {
            match n.ping_reached {
                Some(c) => {
                    let _ = write!(line, "  ping {c}/{}", r.ping_nodes);
                }
                None if n.local || n.state == "up" || n.state == "late" => {
                    let _ = write!(line, "  ping ?/{}", r.ping_nodes);
                }
                None => {}
            }
        }
        if n.maintenance && !n.local {
            line += "  MAINTENANCE";
        }
        if n.config_differs {
            let _ = write!(
                line,
                "  CONFIG DIFFERS ({} here {})",
                n.config_digest.as_deref().map_or("?", short),
                short(&r.config_digest)
            );
        }
        if let Some(f) = &n.fence {
            let why = f
                .why
                .as_deref()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            let _ = match f.state.as_str() {
                "pending" => write!(
                    line,
                    "  FENCING{why} since {}",
                    when(r, f.attempt_since.as_deref().unwrap_or(&f.since))
                ),
                "failed" => write!(
                    line,
                    "  FENCE FAILED{why}: {}; retry at {}",
                    f.reason.as_deref().unwrap_or("?"),
                    f.retry_at.as_deref().map_or("?".into(), |t| when(r, t))
                ),
                "owed" => write!(line, "  fence owed{why}"),
                _ => write!(
                    line,
                    "  fenced {}{}",
                    when(r, &f.since),
                    if f.by_ack { " (fence-ack)" } else { "" }
                ),
            };
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }

    let _ = writeln!(o, "\nGroups:");
    let width = r.groups.iter().map(|g| g.name.len()).max().unwrap_or(0);
    for g in &r.groups {
        let mut line = format!("  {:width$}  ", g.name);
        match &g.holder {
            Some(h) => {
                let _ = write!(line, "{} on {h}", g.state);
            }
            None => line += "stopped (no node holds it)",
        }
        if g.local_state != g.state && g.holder.as_deref() != Some(&r.node) {
            let _ = write!(line, ", {} here", g.local_state);
        }
        if let Some(s) = &g.since {
            let _ = write!(line, "  since {}", when(r, s));
        }
        let _ = write!(line, "  (preferred {})", g.preferred);
        match g.admin.as_str() {
            "standby" => line += "  STANDBY here",
            "wanted" => line += "  wanted here",
            _ => {}
        }
        if let Some(w) = &g.wanted_by {
            let _ = write!(line, "  wanted by {w}");
        }
        if !g.failed_on.is_empty() {
            let _ = write!(line, "  failed on {}", g.failed_on.join(", "));
        }
        if let Some(n) = &g.fence_wait {
            let _ = write!(line, "  waiting for the fence of {n}");
        }
        let _ = writeln!(o, "{line}");
        if let Some(why) = &g.reason {
            let _ = writeln!(o, "  {:width$}    why: {why}", "");
        }
        let rw = g
            .resources
            .iter()
            .map(|x| x.kind.len() + 1 + x.name.len())
            .max()
            .unwrap_or(0);
        for res in &g.resources {
            let name = format!("{} {}", res.kind, res.name);
            let _ = writeln!(o, "  {:width$}    {name:rw$}  {}", "", res.state);
        }
    }

    for g in &r.removed_groups {
        let _ = if g.state == "blocked" {
            writeln!(
                o,
                "  {}  removed from cluster.toml, BLOCKED here (its stop failed): clean it up, then `hbd unblock {}`",
                g.name, g.name
            )
        } else {
            writeln!(o, "  {}  removed from cluster.toml, stopping here", g.name)
        };
    }

    if !r.heartbeat_gaps.is_empty() {
        let _ = writeln!(o, "\nHeartbeat gaps seen by {} (deadtime advice):", r.node);
        let width = r
            .heartbeat_gaps
            .iter()
            .map(|g| g.peer.len() + 1 + g.link.len())
            .max()
            .unwrap_or(0);
        for g in &r.heartbeat_gaps {
            let _ = writeln!(
                o,
                "  {:width$}  {}",
                format!("{} {}", g.peer, g.link),
                g.advice
            );
        }
    }

    if transitions > 0 && !r.transitions.is_empty() {
        let _ = writeln!(o, "\nLast transitions on {}:", r.node);
        let skip = r.transitions.len().saturating_sub(transitions);
        for t in &r.transitions[skip..] {
            let mut line = format!(
                "  {}  {}  {} -> {}",
                when(r, &t.time),
                t.group,
                t.from,
                t.to
            );
            if let Some(why) = &t.reason {
                let _ = write!(line, ": {why}");
            }
            let _ = writeln!(o, "{line}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::report::{
        GroupReport, LinkReport, NodeReport, RemovedGroupReport, ResourceReport,
    };

    fn report() -> Report {
        let node = |name: &str, local: bool| NodeReport {
            name: name.into(),
            local,
            state: "up".into(),
            since: (!local).then(|| "2026-12-01T11:00:00Z".into()),
            config_digest: Some(if local { "aaaaaaaa11" } else { "bbbbbbbb22" }.into()),
            config_differs: !local,
            maintenance: !local,
            wire_version: Some(2),
            ping_reached: Some(if local { 2 } else { 1 }),
            links: if local {
                vec![]
            } else {
                vec![LinkReport {
                    name: "lan".into(),
                    up: false,
                    since: None,
                    last_heard: None,
                }]
            },
            fence: None,
        };
        Report {
            format: 1,
            version: "0.1.0".into(),
            cluster: "web".into(),
            node: "alpha".into(),
            time: "2026-12-01T11:00:05Z".into(),
            ready: true,
            maintenance: true,
            shutting_down: false,
            config_digest: "aaaaaaaa11".into(),
            protocol: "hbd".into(),
            nodes: vec![node("alpha", true), node("beta", false)],
            groups: vec![GroupReport {
                name: "web".into(),
                preferred: "alpha".into(),
                holder: Some("alpha".into()),
                state: "blocked".into(),
                local_state: "blocked".into(),
                admin: "standby".into(),
                wanted_by: Some("beta".into()),
                failed_on: vec![],
                reason: Some("stop failed: busy".into()),
                since: Some("2026-11-30T23:59:59Z".into()),
                resources: vec![ResourceReport {
                    kind: "unit".into(),
                    name: "nginx.service".into(),
                    state: "failed".into(),
                }],
                fence_wait: None,
            }],
            transitions: vec![],
            ping_nodes: 2,
            quorum: None,
            removed_groups: vec![RemovedGroupReport {
                name: "db".into(),
                state: "blocked".into(),
            }],
            heartbeat_gaps: vec![],
        }
    }

    #[test]
    fn renders_trouble_at_a_glance() {
        let text = render(&report(), 10);
        for want in [
            "Cluster web, seen from alpha at 11:00:05 UTC (hbd 0.1.0, config aaaaaaaa)",
            "  MAINTENANCE: resources are not managed on this node",
            "  beta   up     since 11:00:00  links: lan down  ping 1/2  MAINTENANCE  CONFIG DIFFERS (bbbbbbbb here aaaaaaaa)",
            "  web  blocked on alpha  since 2026-11-30T23:59:59Z  (preferred alpha)  STANDBY here  wanted by beta",
            "why: stop failed: busy",
            "unit nginx.service  failed",
            "  db  removed from cluster.toml, BLOCKED here (its stop failed): clean it up, then `hbd unblock db`",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(!text.contains("Last transitions"), "none to show");
    }

    #[test]
    fn the_report_round_trips_through_json() {
        let r = report();
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.starts_with("{\"format\":1,"), "{json}");
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
    }
}
