//! TOML output of the importer, written by hand rather than by serde so the file
//! reads like the documented example: sections in a fixed order, only the keys
//! that matter, and comments saying where each value came from.
//!
//! Nothing host-specific goes in (no time, no host name, no import directory),
//! so every node of one Heartbeat cluster produces the very same bytes.

use crate::config::{Config, Link, Resource};

/// Where values came from, as comment text (without the leading `# `).
#[derive(Debug, Clone, Default)]
pub struct Comments {
    /// keepalive, warntime, deadtime, initdead.
    pub timing: [String; 4],
    pub failback: String,
    /// Where the ping nodes and their dampening came from.
    pub ping: String,
    pub ping_dampen: String,
    pub auth: String,
    /// One per link, in the config's link order.
    pub links: Vec<String>,
    /// One per group, in order.
    pub groups: Vec<String>,
    /// Per node (by name): where its fence came from.
    pub fences: std::collections::BTreeMap<String, String>,
}

/// A TOML basic string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A comment, with anything TOML does not allow in comments made a space.
fn c(s: &str) -> String {
    s.chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .collect()
}

fn kv(out: &mut String, key: &str, value: String, comment: &str) {
    let line = format!("{key} = {value}");
    if comment.is_empty() {
        out.push_str(&line);
    } else {
        out.push_str(&format!("{line:<28} # {}", c(comment)));
    }
    out.push('\n');
}

pub fn render(cfg: &Config, cm: &Comments) -> String {
    let mut o = String::new();
    o.push_str(
        "# /etc/hbd/cluster.toml, converted from Heartbeat's ha.cf, haresources and authkeys\n",
    );
    o.push_str(
        "# by `hbd import`. Identical on every node: copy this file, never edit it per node.\n",
    );
    o.push_str("# The import report lists everything that changed or was not carried over.\n\n");

    o.push_str("[cluster]\n");
    kv(&mut o, "name", q(&cfg.cluster.name), "");
    o.push('\n');

    o.push_str("[timing]\n");
    let t = &cfg.timing;
    for (i, (k, v)) in [
        ("keepalive", t.keepalive),
        ("warntime", t.warntime),
        ("deadtime", t.deadtime),
        ("initdead", t.initdead),
    ]
    .into_iter()
    .enumerate()
    {
        kv(
            &mut o,
            k,
            q(&v.to_string()),
            cm.timing.get(i).map(String::as_str).unwrap_or(""),
        );
    }
    o.push('\n');

    o.push_str("[auth]\n");
    kv(&mut o, "algorithm", q(&cfg.auth.algorithm.to_string()), "");
    kv(
        &mut o,
        "key_file",
        q(&cfg.auth.key_file.display().to_string()),
        "",
    );
    kv(&mut o, "key_id", cfg.auth.key_id.to_string(), &cm.auth);
    o.push('\n');

    o.push_str("[failover]\n");
    kv(
        &mut o,
        "auto_failback",
        cfg.failover.auto_failback.to_string(),
        &cm.failback,
    );
    if !cfg.failover.ping.is_empty() {
        let list: Vec<String> = cfg
            .failover
            .ping
            .iter()
            .map(|a| q(&a.to_string()))
            .collect();
        kv(&mut o, "ping", format!("[{}]", list.join(", ")), &cm.ping);
        kv(
            &mut o,
            "ping_dampen",
            q(&cfg.failover.ping_dampen.to_string()),
            &cm.ping_dampen,
        );
    }
    o.push('\n');

    if cfg.migration.heartbeat() {
        o.push_str("# Rolling migration (`hbd import --migration`): while any node still runs Heartbeat,\n");
        o.push_str(
            "# hbd speaks Heartbeat's protocol, signed with authkeys. Once every node runs hbd,\n",
        );
        o.push_str("# set protocol = \"hbd\" on every node (contrib/legacy-import/README.md).\n");
        o.push_str("[migration]\n");
        kv(&mut o, "protocol", q("heartbeat"), "");
        if let Some(a) = &cfg.migration.authkeys {
            kv(&mut o, "authkeys", q(&a.display().to_string()), "");
        }
        o.push('\n');
    }

    for (i, l) in cfg.links.iter().enumerate() {
        if let Some(cmt) = cm.links.get(i) {
            o.push_str(&format!("# {}\n", c(cmt)));
        }
        o.push_str("[[link]]\n");
        kv(&mut o, "name", q(l.name()), "");
        kv(&mut o, "kind", q(l.kind()), "");
        match l {
            Link::UdpBroadcast(b) => {
                kv(&mut o, "interface", q(&b.interface), "");
                kv(&mut o, "port", b.port.to_string(), "");
            }
            Link::UdpMulticast(m) => {
                kv(&mut o, "interface", q(&m.interface), "");
                kv(&mut o, "group", q(&m.group.to_string()), "");
                kv(&mut o, "port", m.port.to_string(), "");
                kv(&mut o, "ttl", m.ttl.to_string(), "");
            }
            Link::UdpUnicast(u) => {
                if let Some(i) = &u.interface {
                    kv(&mut o, "interface", q(i), "");
                }
                kv(&mut o, "port", u.port.to_string(), "");
            }
            Link::Serial(s) => {
                kv(&mut o, "device", q(&s.device.display().to_string()), "");
                kv(&mut o, "baud", s.baud.to_string(), "");
            }
        }
        o.push('\n');
    }

    for n in &cfg.nodes {
        o.push_str("[[node]]\n");
        kv(&mut o, "name", q(&n.name), "");
        for (link, addr) in &n.address {
            kv(&mut o, &format!("address.{link}"), q(&addr.to_string()), "");
        }
        if let Some(f) = &n.fence {
            let mut parts = Vec::new();
            if let Some(u) = &f.unit {
                parts.push(format!("unit = {}", q(u)));
            }
            if !f.command.is_empty() {
                let args: Vec<String> = f.command.iter().map(|a| q(a)).collect();
                parts.push(format!("command = [{}]", args.join(", ")));
            }
            if let Some(t) = f.timeout {
                parts.push(format!("timeout = {}", q(&t.to_string())));
            }
            let cmt = cm.fences.get(&n.name).map(String::as_str).unwrap_or("");
            kv(&mut o, "fence", format!("{{ {} }}", parts.join(", ")), cmt);
        }
        o.push('\n');
    }

    for (i, g) in cfg.groups.iter().enumerate() {
        if let Some(cmt) = cm.groups.get(i) {
            o.push_str(&format!("# {}\n", c(cmt)));
        }
        o.push_str("[[group]]\n");
        kv(&mut o, "name", q(&g.name), "");
        kv(&mut o, "preferred", q(&g.preferred), "");
        for r in &g.resources {
            o.push('\n');
            o.push_str("[[group.resource]]\n");
            kv(&mut o, "kind", q(r.kind()), "");
            match r {
                Resource::Ip(ip) => {
                    kv(&mut o, "address", q(&ip.address.to_string()), "");
                    if let Some(i) = &ip.interface {
                        kv(&mut o, "interface", q(i), "");
                    }
                    if let Some(b) = ip.broadcast {
                        kv(&mut o, "broadcast", q(&b.to_string()), "");
                    }
                }
                Resource::Unit(u) => kv(&mut o, "unit", q(&u.unit), ""),
                Resource::Mount(m) => {
                    kv(&mut o, "what", q(&m.what), "");
                    kv(&mut o, "where", q(&m.r#where.display().to_string()), "");
                    if let Some(t) = &m.fstype {
                        kv(&mut o, "type", q(t), "");
                    }
                    if let Some(opt) = &m.options {
                        kv(&mut o, "options", q(opt), "");
                    }
                }
                Resource::Script(s) => {
                    kv(&mut o, "path", q(&s.path.display().to_string()), "");
                    if !s.args.is_empty() {
                        let args: Vec<String> = s.args.iter().map(|a| q(a)).collect();
                        kv(&mut o, "args", format!("[{}]", args.join(", ")), "");
                    }
                }
            }
        }
        o.push('\n');
    }
    while o.ends_with("\n\n") {
        o.pop();
    }
    o
}
