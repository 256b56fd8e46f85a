//! `hbd check`: validate cluster.toml and the key file, print a short summary, and say
//! whether this host is ready to run it ([`host`]).

mod host;

use std::path::Path;

use crate::config::{self, Config, Link, keys};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not look at the key file (e.g. when checking a config on a workstation).
    #[arg(long)]
    pub no_key: bool,
    /// Print nothing but errors and warnings.
    #[arg(long, short)]
    pub quiet: bool,
    /// Do not look at this host (which node it is, its interfaces, addresses and serial
    /// devices), e.g. when checking a config off the cluster's nodes.
    #[arg(long)]
    pub no_host: bool,
    /// Which node this host is (default: the host name), as `hbd run --node`.
    #[arg(long)]
    pub node: Option<String>,
}

pub fn run(path: &Path, args: Args) -> Result<()> {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => {
            // Show warnings too: they often explain the error.
            let file = path.display().to_string();
            for w in e.diagnostics().iter().filter(|d| !d.is_error()) {
                eprintln!("{}", w.render(&file));
            }
            return Err(e.into());
        }
    };
    for w in loaded.render_warnings() {
        eprintln!("{w}");
    }
    let mut key_line = String::from("key: not checked (--no-key)");
    let mut key_warnings = 0;
    if !args.no_key {
        let (set, warnings) = keys::load(&loaded.config.auth)?;
        for w in &warnings {
            eprintln!("{}: warning: {w}", path.display());
        }
        key_warnings = warnings.len();
        key_line = format!(
            "key: {} ({}, signing with key {})",
            set.source.display(),
            set.algorithm,
            key_ids(set.send_id, &set.ids().collect::<Vec<_>>())
        );
        let m = &loaded.config.migration;
        if let (true, Some(a)) = (m.heartbeat(), &m.authkeys) {
            let ring = keys::load_heartbeat(a)?;
            let (id, method) = ring.outbound();
            key_line += &format!(
                "\n  heartbeat authkeys: {} ({method}, key {id}): signs Heartbeat's protocol until protocol = \"hbd\"",
                a.display()
            );
        }
    }
    let host = if args.no_host {
        host::Report {
            lines: vec!["host: not checked (--no-host)".into()],
            warnings: Vec::new(),
        }
    } else {
        host::probe(&loaded.config, args.node.as_deref(), &host::ThisHost)
    };
    for w in &host.warnings {
        eprintln!("{}: warning: {w}", path.display());
    }
    if !args.quiet {
        print!("{}", summary(&loaded.config, path));
        println!("  {key_line}");
        for l in &host.lines {
            println!("  {l}");
        }
        let n = loaded.warnings.len() + key_warnings + host.warnings.len();
        println!(
            "OK{}",
            if n == 0 {
                String::new()
            } else {
                format!(" ({n} warning{})", if n == 1 { "" } else { "s" })
            }
        );
    }
    Ok(())
}

/// A few lines that let an admin see the config the way hbd reads it.
pub fn summary(c: &Config, path: &Path) -> String {
    let mut s = format!(
        "{}: cluster \"{}\" (id {:#010x}), {}, {}, {}\n",
        path.display(),
        c.cluster.name,
        c.cluster_id(),
        plural(c.nodes.len(), "node"),
        plural(c.links.len(), "link"),
        plural(c.groups.len(), "group")
    );
    let t = &c.timing;
    s += &format!(
        "  timing: keepalive {}, warntime {}, deadtime {}, initdead {}\n",
        t.keepalive, t.warntime, t.deadtime, t.initdead
    );
    s += &format!(
        "  failover: auto_failback {}, hold_down {}\n",
        if c.failover.auto_failback {
            "on"
        } else {
            "off"
        },
        c.failover.hold_down
    );
    for n in &c.nodes {
        let addrs: Vec<String> = n.address.iter().map(|(l, a)| format!("{l}={a}")).collect();
        s += &format!(
            "  node {}{}\n",
            n.name,
            if addrs.is_empty() {
                String::new()
            } else {
                format!(" ({})", addrs.join(", "))
            }
        );
    }
    for l in &c.links {
        let detail = match l {
            Link::UdpUnicast(u) => format!(
                "port {}{}",
                u.port,
                u.interface
                    .as_ref()
                    .map(|i| format!(" on {i}"))
                    .unwrap_or_default()
            ),
            Link::UdpBroadcast(b) => format!("{} port {}", b.interface, b.port),
            Link::UdpMulticast(m) => {
                format!("{} {}:{} ttl {}", m.interface, m.group, m.port, m.ttl)
            }
            Link::Serial(r) => format!("{} {} baud", r.device.display(), r.baud),
        };
        s += &format!("  link {} ({}): {}\n", l.name(), l.kind(), detail);
    }
    for g in &c.groups {
        let res: Vec<String> = g.resources.iter().map(ToString::to_string).collect();
        s += &format!(
            "  group {} (preferred {}): {}\n",
            g.name,
            g.preferred,
            if res.is_empty() {
                "no resources".to_string()
            } else {
                res.join(" -> ")
            }
        );
    }
    s
}

/// "3; the file holds keys 1, 3" — which key signs, and every key accepted.
fn key_ids(send: u8, ids: &[u8]) -> String {
    match ids {
        [only] if *only == send => format!("{send}, the only key in the file"),
        _ => format!(
            "{send}; the file holds keys {}, all accepted",
            ids.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
