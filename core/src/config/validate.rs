//! Cross-checks that serde cannot express: names that must match, timing that must
//! make sense, addresses that must not collide. Pure: takes a model, returns
//! diagnostics keyed by path (positions are attached by the caller).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::diagnostic::{Diagnostic, did_you_mean};
use super::duration::HumanDuration;
use super::model::*;
use crate::proto::wire;

/// Upper bounds that keep a heartbeat packet inside one UDP datagram; the wire
/// module owns the limits, validation enforces them (see also `heartbeat_fits`).
pub const MAX_NODES: usize = 32;
pub const MAX_GROUPS: usize = wire::MAX_CLAIMS;
pub const MAX_NAME: usize = wire::MAX_NAME;

pub fn validate(c: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    cluster(c, &mut out);
    timing(c, &mut out);
    links(c, &mut out);
    nodes(c, &mut out);
    groups(c, &mut out);
    failover(c, &mut out);
    fencing(c, &mut out);
    observability(c, &mut out);
    migration(c, &mut out);
    heartbeat_fits(c, &mut out);
    out
}

/// `[migration]`: what speaking Heartbeat's protocol needs, and what it leaves unused.
fn migration(c: &Config, out: &mut Vec<Diagnostic>) {
    let m = &c.migration;
    if !m.heartbeat() {
        return;
    }
    match &m.authkeys {
        None => out.push(
            Diagnostic::error(
                "migration.authkeys",
                "protocol = \"heartbeat\" needs migration.authkeys: Heartbeat's messages are signed with its authkeys file",
            )
            .with_help("authkeys = \"/etc/ha.d/authkeys\""),
        ),
        Some(p) if !p.is_absolute() => out.push(Diagnostic::error(
            "migration.authkeys",
            format!("migration.authkeys \"{}\" must be an absolute path", p.display()),
        )),
        Some(_) => {}
    }
    if c.nodes.len() != 2 {
        out.push(Diagnostic::error(
            "migration.protocol",
            format!(
                "protocol = \"heartbeat\" needs exactly two nodes (Heartbeat's haresources mode is for two), not {}",
                c.nodes.len()
            ),
        ));
    }
    for (i, l) in c.links.iter().enumerate() {
        if matches!(l, Link::Serial(_)) {
            out.push(
                Diagnostic::error(
                    format!("link[{i}]"),
                    format!(
                        "serial link \"{}\": hbd speaks Heartbeat's protocol on UDP links only",
                        l.name()
                    ),
                )
                .with_help("keep Heartbeat's serial line out of the migration (it is added back after the switch to protocol = \"hbd\")"),
            );
        }
    }
    let unused = [
        (c.nodes.iter().any(|n| n.fence.is_some()), "fence"),
        (!c.failover.ping.is_empty(), "failover.ping"),
    ];
    for (set, what) in unused {
        if set {
            out.push(Diagnostic::warning(
                "migration.protocol",
                format!(
                    "{what} is not used while protocol = \"heartbeat\": the cluster follows Heartbeat's resource rules until the switch to \"hbd\""
                ),
            ));
        }
    }
}

/// `[metrics]` and `[events]`.
fn observability(c: &Config, out: &mut Vec<Diagnostic>) {
    if let Some(a) = c.metrics.listen {
        if a.port() == 0 {
            out.push(
                Diagnostic::error("metrics.listen", format!("metrics.listen {a} has port 0"))
                    .with_help("name a port, e.g. \"127.0.0.1:9694\""),
            );
        } else if !a.ip().is_loopback() {
            out.push(Diagnostic::warning(
                "metrics.listen",
                format!(
                    "metrics.listen {a} is not a loopback address: anyone who reaches it reads the cluster's state (the endpoint has no authentication)"
                ),
            ));
        }
    }
    if let Some(u) = &c.events.unit {
        let ok_chars = |s: &str| {
            !s.is_empty()
                && s.chars().all(|ch| {
                    ch.is_ascii_alphanumeric() || matches!(ch, ':' | '_' | '.' | '-' | '\\')
                })
        };
        let prefix = u.strip_suffix("@.service");
        if !prefix.is_some_and(ok_chars) || u.len() > 200 {
            out.push(
                Diagnostic::error(
                    "events.unit",
                    format!("events.unit \"{u}\" is not a systemd template service name"),
                )
                .with_help("name a template unit such as \"hbd-event@.service\": the event name becomes its instance"),
            );
        }
    }
    let t = c.events.timeout.as_millis();
    if !(100..=3_600_000).contains(&t) {
        out.push(Diagnostic::error(
            "events.timeout",
            format!("events.timeout {} is outside 100ms..1h", c.events.timeout),
        ));
    }
}

/// Most ping nodes: each costs one echo per keepalive, and the count travels in one byte.
pub const MAX_PING: usize = 16;

/// `[failover]`: ping nodes, their dampening, the quorum policy.
fn failover(c: &Config, out: &mut Vec<Diagnostic>) {
    let f = &c.failover;
    if f.ping.len() > MAX_PING {
        out.push(Diagnostic::error(
            "failover.ping",
            format!(
                "{} ping nodes is more than the {MAX_PING} allowed: a few reference addresses (a router, a switch) are enough",
                f.ping.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, a) in f.ping.iter().enumerate() {
        let key = format!("failover.ping[{i}]");
        let why = if a.is_unspecified() {
            Some("is the unspecified address")
        } else if a.is_loopback() {
            Some("is a loopback address, which every node always reaches: it tells nothing")
        } else if a.is_multicast() {
            Some("is a multicast address: a ping node must be one host")
        } else if *a == IpAddr::from([255, 255, 255, 255]) {
            Some("is the broadcast address: a ping node must be one host")
        } else {
            None
        };
        if let Some(why) = why {
            out.push(Diagnostic::error(key, format!("ping node {a} {why}")));
        } else if !seen.insert(*a) {
            out.push(Diagnostic::error(
                key,
                format!("ping node {a} is listed twice"),
            ));
        }
    }
    let (ka, dampen) = (c.timing.keepalive.as_millis(), f.ping_dampen.as_millis());
    if !f.ping.is_empty() && dampen < 2 * ka {
        out.push(
            Diagnostic::error(
                "failover.ping_dampen",
                format!(
                    "ping_dampen {} must be at least twice keepalive {}: one lost echo would move groups",
                    f.ping_dampen, c.timing.keepalive
                ),
            )
            .with_help(format!(
                "try ping_dampen = \"{}\"",
                HumanDuration::from_millis(ka * 5)
            )),
        );
    }
    if !f.ping.is_empty() && dampen >= c.timing.deadtime.as_millis() && dampen >= 2 * ka {
        out.push(Diagnostic::warning(
            "failover.ping_dampen",
            format!(
                "ping_dampen {} is not shorter than deadtime {}: a holder cut off from its peers and the ping nodes keeps its groups for ping_dampen, while its peers take them over after deadtime, so both run them meanwhile",
                f.ping_dampen, c.timing.deadtime
            ),
        ));
    }
    if f.no_quorum != NoQuorum::Stop && c.nodes.len() < 3 {
        out.push(Diagnostic::warning(
            "failover.no_quorum",
            "no_quorum has no effect with fewer than three nodes: two-node clusters have no quorum rule (use ping nodes or fencing as tie-breakers)",
        ));
    }
}

/// Longest fence timeout accepted: a takeover waits for it.
const MAX_FENCE_TIMEOUT_MS: u64 = 3_600_000;

/// `[failover] fence_timeout` and each `[[node]] fence`: exactly one of unit and
/// command, a real unit name, an absolute program, a sane timeout.
fn fencing(c: &Config, out: &mut Vec<Diagnostic>) {
    let timeout = |key: String, d: HumanDuration, out: &mut Vec<Diagnostic>| {
        if d.as_millis() == 0 || d.as_millis() > MAX_FENCE_TIMEOUT_MS {
            out.push(
                Diagnostic::error(
                    key,
                    format!("fence timeout {d} must be more than 0s and at most 1h"),
                )
                .with_help("fence agents need 10-60s to power a node off; try \"60s\""),
            );
        }
    };
    timeout(
        "failover.fence_timeout".into(),
        c.failover.fence_timeout,
        out,
    );
    let fenced = c.nodes.iter().filter(|n| n.fence.is_some()).count();
    if fenced > 0 && fenced < c.nodes.len() {
        if let Some(i) = c.nodes.iter().position(|n| n.fence.is_none()) {
            out.push(
                Diagnostic::warning(
                    format!("node[{i}]"),
                    format!(
                        "node \"{}\" has no fence while other nodes have one: a takeover from it never waits for a fence",
                        c.nodes[i].name
                    ),
                )
                .with_help("give every node a `fence`, or none"),
            );
        }
    }
    for (i, n) in c.nodes.iter().enumerate() {
        let Some(f) = &n.fence else { continue };
        let key = format!("node[{i}].fence");
        match (&f.unit, f.command.is_empty()) {
            (Some(_), false) => out.push(
                Diagnostic::error(
                    &key,
                    format!("node \"{}\" sets both fence.unit and fence.command", n.name),
                )
                .with_help("keep one: a unit to start, or a command to run"),
            ),
            (None, true) => out.push(
                Diagnostic::error(
                    &key,
                    format!("node \"{}\"'s fence sets neither unit nor command", n.name),
                )
                .with_help(format!(
                    "e.g. fence = {{ unit = \"fence-ipmi@{}.service\" }}",
                    n.name
                )),
            ),
            (Some(u), true) => {
                if let Err(e) = check_unit_name(u) {
                    out.push(Diagnostic::error(format!("{key}.unit"), e.to_string()));
                }
            }
            (None, false) => {
                let prog = &f.command[0];
                if !prog.starts_with('/') {
                    out.push(
                        Diagnostic::error(
                            format!("{key}.command[0]"),
                            format!("fence program \"{prog}\" is not an absolute path"),
                        )
                        .with_help(format!("write the full path, e.g. \"/usr/sbin/{prog}\"")),
                    );
                }
                if let Some(j) = f
                    .command
                    .iter()
                    .position(|a| a.is_empty() || a.contains('\0'))
                {
                    out.push(Diagnostic::error(
                        format!("{key}.command[{j}]"),
                        "a fence command argument is empty or contains a NUL byte",
                    ));
                }
            }
        }
        if let Some(t) = f.timeout {
            timeout(format!("{key}.timeout"), t, out);
        }
        let t = f.timeout.unwrap_or(c.failover.fence_timeout);
        if t.as_millis() < 1000 {
            out.push(Diagnostic::warning(
                format!("{key}.timeout"),
                format!("fence timeout {t} for node \"{}\" is under a second: fence agents take seconds to power a node off, so every fence would time out", n.name),
            ));
        }
        if let Some(d) = f.delay
            && d.as_millis() > MAX_FENCE_TIMEOUT_MS
        {
            out.push(Diagnostic::error(
                format!("{key}.delay"),
                format!(
                    "fence delay {d} is over 1h: every takeover from this node would wait that long"
                ),
            ));
        }
    }
}

/// Every node's heartbeat claims every group by name: refuse a configuration whose
/// largest heartbeat would not fit in one packet (the node would fall silent).
fn heartbeat_fits(c: &Config, out: &mut Vec<Diagnostic>) {
    let Some(sender) = c.nodes.iter().max_by_key(|n| n.name.len()) else {
        return;
    };
    if c.groups.is_empty() || c.groups.len() > MAX_GROUPS {
        return;
    }
    let len = wire::heartbeat_len(
        c.auth.algorithm,
        sender.name.len(),
        c.groups.iter().map(|g| g.name.len().min(MAX_NAME)),
        c.nodes.len(),
    ) + if c.failover.ping.is_empty() {
        0
    } else {
        wire::PING_FIELD_LEN
    };
    if len > wire::MAX_PACKET {
        let names: usize = c.groups.iter().map(|g| g.name.len()).sum();
        out.push(
            Diagnostic::error(
                format!("group[{}].name", c.groups.len() - 1),
                format!(
                    "node \"{}\"'s heartbeat would be {len} bytes, over the {}-byte limit of one \
                     heartbeat packet: it carries every group's name ({} groups, {names} bytes of names), \
                     10 bytes per group and 8 per node",
                    sender.name,
                    wire::MAX_PACKET,
                    c.groups.len()
                ),
            )
            .with_help(format!(
                "shorten the group names or use fewer groups: {} bytes too many",
                len - wire::MAX_PACKET
            )),
        );
    }
}

fn check_name(key: &str, what: &str, name: &str, out: &mut Vec<Diagnostic>) {
    if name.is_empty() {
        out.push(Diagnostic::error(key, format!("{what} name is empty")));
    } else if name.len() > MAX_NAME {
        out.push(Diagnostic::error(
            key,
            format!("{what} name \"{name}\" is longer than {MAX_NAME} characters"),
        ));
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        out.push(Diagnostic::error(
            key,
            format!("{what} name \"{name}\" may only contain letters, digits, '-', '_' and '.'"),
        ));
    }
}

fn cluster(c: &Config, out: &mut Vec<Diagnostic>) {
    check_name("cluster.name", "cluster", &c.cluster.name, out);
    if c.auth.key_id == 0 {
        out.push(Diagnostic::error(
            "auth.key_id",
            "key ids run from 1 to 255",
        ));
    }
}

fn timing(c: &Config, out: &mut Vec<Diagnostic>) {
    let t = &c.timing;
    let (ka, warn, dead, init) = (
        t.keepalive.as_millis(),
        t.warntime.as_millis(),
        t.deadtime.as_millis(),
        t.initdead.as_millis(),
    );
    if ka < 10 {
        out.push(Diagnostic::error(
            "timing.keepalive",
            format!("keepalive {} is below the 10ms minimum", t.keepalive),
        ));
        return;
    }
    if dead <= 2 * ka {
        out.push(
            Diagnostic::error(
                "timing.deadtime",
                format!(
                    "deadtime {} must be more than twice keepalive {}: one lost packet would kill a peer",
                    t.deadtime, t.keepalive
                ),
            )
            .with_help(format!("try deadtime = \"{}\"", HumanDuration::from_millis(ka * 5))),
        );
    } else if dead < 4 * ka {
        out.push(Diagnostic::warning(
            "timing.deadtime",
            format!(
                "deadtime {} is less than four keepalives ({}): a short burst of loss will cause a failover",
                t.deadtime, t.keepalive
            ),
        ));
    }
    if warn >= dead {
        out.push(Diagnostic::error(
            "timing.warntime",
            format!(
                "warntime {} must be shorter than deadtime {}",
                t.warntime, t.deadtime
            ),
        ));
    } else if warn <= ka {
        out.push(Diagnostic::warning(
            "timing.warntime",
            format!(
                "warntime {} is not longer than keepalive {}: every jitter will be reported as a late peer",
                t.warntime, t.keepalive
            ),
        ));
    }
    if init < dead {
        out.push(Diagnostic::error(
            "timing.initdead",
            format!(
                "initdead {} must be at least deadtime {}",
                t.initdead, t.deadtime
            ),
        ));
    } else if init < 2 * dead {
        out.push(Diagnostic::warning(
            "timing.initdead",
            format!(
                "initdead {} is less than twice deadtime {}: a peer still booting may be declared dead",
                t.initdead, t.deadtime
            ),
        ));
    }
}

fn links(c: &Config, out: &mut Vec<Diagnostic>) {
    if c.links.is_empty() {
        out.push(Diagnostic::error(
            "",
            "no [[link]]: the nodes need at least one heartbeat link",
        ));
        return;
    }
    if c.links.len() == 1 {
        out.push(Diagnostic::warning(
            "link[0]",
            "only one heartbeat link: losing it looks exactly like a dead peer; add a second link (another NIC or a serial line)",
        ));
    }
    let mut seen = BTreeSet::new();
    let mut endpoints = BTreeSet::new();
    for (i, l) in c.links.iter().enumerate() {
        let key = format!("link[{i}]");
        check_name(&format!("{key}.name"), "link", l.name(), out);
        if !seen.insert(l.name()) {
            out.push(Diagnostic::error(
                format!("{key}.name"),
                format!("link name \"{}\" is used twice", l.name()),
            ));
        }
        let port = match l {
            Link::UdpUnicast(u) => Some((u.interface.clone().unwrap_or_default(), u.port)),
            Link::UdpBroadcast(b) => Some((b.interface.clone(), b.port)),
            Link::UdpMulticast(m) => Some((m.interface.clone(), m.port)),
            Link::Serial(_) => None,
        };
        if let Some((iface, port)) = port {
            if port == 0 {
                out.push(Diagnostic::error(
                    format!("{key}.port"),
                    "port 0 is not a usable UDP port",
                ));
            }
            if !endpoints.insert((l.kind(), iface.clone(), port)) {
                out.push(Diagnostic::error(
                    format!("{key}.port"),
                    format!(
                        "another {} link already uses interface \"{iface}\" port {port}",
                        l.kind()
                    ),
                ));
            }
            if iface.is_empty() && !matches!(l, Link::UdpUnicast(_)) {
                out.push(Diagnostic::error(
                    format!("{key}.interface"),
                    "interface is empty",
                ));
            }
            if iface.len() > 15 {
                out.push(Diagnostic::error(
                    format!("{key}.interface"),
                    format!("interface name \"{iface}\" is longer than Linux allows (15)"),
                ));
            }
        }
        match l {
            Link::UdpMulticast(m) => {
                if !m.group.is_multicast() {
                    out.push(Diagnostic::error(
                        format!("{key}.group"),
                        format!("{} is not a multicast address (224.0.0.0/4)", m.group),
                    ));
                }
                if m.ttl == 0 {
                    out.push(Diagnostic::error(
                        format!("{key}.ttl"),
                        "ttl 0 never leaves this host",
                    ));
                }
            }
            Link::Serial(s) => {
                if !s.device.is_absolute() {
                    out.push(Diagnostic::error(
                        format!("{key}.device"),
                        format!(
                            "serial device \"{}\" must be an absolute path",
                            s.device.display()
                        ),
                    ));
                }
                if !BAUD_RATES.contains(&s.baud) {
                    out.push(
                        Diagnostic::error(
                            format!("{key}.baud"),
                            format!("baud {} is not a standard rate", s.baud),
                        )
                        .with_help(format!(
                            "use one of {}",
                            BAUD_RATES
                                .iter()
                                .map(u32::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    );
                }
            }
            _ => {}
        }
    }
}

fn nodes(c: &Config, out: &mut Vec<Diagnostic>) {
    if c.nodes.len() < 2 {
        out.push(Diagnostic::error(
            if c.nodes.is_empty() { "" } else { "node[0]" },
            format!(
                "a cluster needs at least two [[node]] tables, found {}",
                c.nodes.len()
            ),
        ));
    }
    if c.nodes.len() > MAX_NODES {
        out.push(Diagnostic::error(
            format!("node[{MAX_NODES}]"),
            format!("at most {MAX_NODES} nodes are supported"),
        ));
    }
    let mut names = BTreeMap::new();
    let link_names: Vec<&str> = c.links.iter().map(Link::name).collect();
    // (link, address) -> node index, to find two nodes sharing an address.
    let mut used: BTreeMap<(&str, IpAddr), usize> = BTreeMap::new();
    for (i, n) in c.nodes.iter().enumerate() {
        let key = format!("node[{i}]");
        check_name(&format!("{key}.name"), "node", &n.name, out);
        if let Some(prev) = names.insert(n.name.to_ascii_lowercase(), i) {
            out.push(Diagnostic::error(
                format!("{key}.name"),
                format!("node \"{}\" is already declared as node[{prev}]", n.name),
            ));
        }
        for (link, addr) in &n.address {
            let akey = format!("{key}.address.{link}");
            match c.links.iter().find(|l| l.name() == link) {
                None => {
                    let mut d = Diagnostic::error(&akey, format!("no link is named \"{link}\""));
                    if let Some(s) = did_you_mean(link, link_names.iter().copied()) {
                        d = d.with_help(format!("did you mean \"{s}\"?"));
                    }
                    out.push(d);
                }
                Some(Link::UdpUnicast(_)) => {}
                Some(l) => out.push(Diagnostic::warning(
                    &akey,
                    format!(
                        "link \"{link}\" is {}; node addresses are only used by udp-unicast links",
                        l.kind()
                    ),
                )),
            }
            if addr.is_unspecified() || addr.is_multicast() {
                out.push(Diagnostic::error(
                    &akey,
                    format!("{addr} cannot be a node's address"),
                ));
            }
            if let Some(other) = used.insert((link.as_str(), *addr), i) {
                out.push(Diagnostic::error(
                    &akey,
                    format!(
                        "address {addr} on link \"{link}\" is also node \"{}\"'s",
                        c.nodes[other].name
                    ),
                ));
            }
        }
    }
    for (li, l) in c.links.iter().enumerate() {
        if let Link::UdpUnicast(u) = l {
            for (i, n) in c.nodes.iter().enumerate() {
                if !n.address.contains_key(&u.name) {
                    out.push(Diagnostic::error(
                        format!("node[{i}]"),
                        format!(
                            "node \"{}\" has no address for udp-unicast link \"{}\" (link[{li}])",
                            n.name, u.name
                        ),
                    ).with_help(format!("add `address.{} = \"IP\"` to this node", u.name)));
                }
            }
        }
    }
}

fn groups(c: &Config, out: &mut Vec<Diagnostic>) {
    if c.groups.len() > MAX_GROUPS {
        out.push(Diagnostic::error(
            format!("group[{MAX_GROUPS}]"),
            format!("at most {MAX_GROUPS} groups are supported"),
        ));
    }
    let node_names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    let mut names = BTreeMap::new();
    let mut ips: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut units: BTreeMap<String, String> = BTreeMap::new();
    let mut mounts: BTreeMap<String, String> = BTreeMap::new();
    for (gi, g) in c.groups.iter().enumerate() {
        let key = format!("group[{gi}]");
        check_name(&format!("{key}.name"), "group", &g.name, out);
        if let Some(prev) = names.insert(g.name.as_str(), gi) {
            out.push(Diagnostic::error(
                format!("{key}.name"),
                format!("group \"{}\" is already declared as group[{prev}]", g.name),
            ));
        }
        if c.node_index(&g.preferred).is_none() {
            let mut d = Diagnostic::error(
                format!("{key}.preferred"),
                format!("no node is named \"{}\"", g.preferred),
            );
            if let Some(s) = did_you_mean(&g.preferred, node_names.iter().copied()) {
                d = d.with_help(format!("did you mean \"{s}\"?"));
            }
            out.push(d);
        }
        if g.restart_window.as_millis() == 0 && g.max_restarts > 0 {
            out.push(Diagnostic::error(
                format!("{key}.restart_window"),
                "restart_window must be longer than 0s when max_restarts is above 0",
            ));
        }
        for (ri, r) in g.resources.iter().enumerate() {
            let rkey = format!("{key}.resource[{ri}]");
            if r.timeout().as_millis() == 0 {
                out.push(Diagnostic::error(
                    format!("{rkey}.timeout"),
                    "timeout must be longer than 0s",
                ));
            }
            match r {
                Resource::Ip(ip) => {
                    let a = ip.address.addr;
                    if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                        out.push(Diagnostic::error(
                            format!("{rkey}.address"),
                            format!("{a} cannot be a virtual IP"),
                        ));
                    }
                    if ip.broadcast.is_some() && a.is_ipv6() {
                        out.push(Diagnostic::error(
                            format!("{rkey}.broadcast"),
                            "IPv6 addresses have no broadcast address",
                        ));
                    }
                    if let Some(prev) = ips.insert(a, g.name.clone()) {
                        out.push(Diagnostic::error(
                            format!("{rkey}.address"),
                            format!("{a} is already a resource of group \"{prev}\""),
                        ));
                    }
                    if ip.arp_count > 100 {
                        out.push(Diagnostic::error(
                            format!("{rkey}.arp_count"),
                            "arp_count above 100 floods the network",
                        ));
                    }
                    if ip.probe_wait.get() > std::time::Duration::from_secs(10) {
                        out.push(Diagnostic::error(
                            format!("{rkey}.probe_wait"),
                            "probe_wait above 10s holds every takeover of the group that long; \
                             a LAN answers within milliseconds",
                        ));
                    }
                }
                Resource::Unit(u) => {
                    if let Err(why) = check_unit_name(&u.unit) {
                        out.push(Diagnostic::error(format!("{rkey}.unit"), why.to_string()));
                    }
                    if let Some(prev) = units.insert(u.unit.clone(), g.name.clone()) {
                        out.push(Diagnostic::error(
                            format!("{rkey}.unit"),
                            format!("{} is already a resource of group \"{prev}\"", u.unit),
                        ));
                    }
                }
                Resource::Mount(m) => {
                    if m.what.trim().is_empty() {
                        out.push(Diagnostic::error(
                            format!("{rkey}.what"),
                            "what (the device to mount) is empty",
                        ));
                    }
                    if !m.r#where.is_absolute() || m.r#where == std::path::Path::new("/") {
                        out.push(Diagnostic::error(
                            format!("{rkey}.where"),
                            format!(
                                "mount point \"{}\" must be an absolute path other than /",
                                m.r#where.display()
                            ),
                        ));
                    }
                    let w = m.r#where.display().to_string();
                    if let Some(prev) = mounts.insert(w.clone(), g.name.clone()) {
                        out.push(Diagnostic::error(
                            format!("{rkey}.where"),
                            format!("{w} is already a resource of group \"{prev}\""),
                        ));
                    }
                }
                Resource::Script(s) => {
                    if !s.path.is_absolute() {
                        out.push(Diagnostic::error(
                            format!("{rkey}.path"),
                            format!("script \"{}\" must be an absolute path", s.path.display()),
                        ));
                    }
                }
            }
        }
    }
}

const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "target",
    "mount",
    "automount",
    "swap",
    "path",
    "timer",
    "device",
    "scope",
    "slice",
];

/// Why a name is not a full systemd unit name (the message of its diagnostic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitNameError {
    #[error("\"{0}\" is not a full unit name: write \"{0}.service\"")]
    NoSuffix(String),
    #[error("\"{name}\" has unknown unit type \".{suffix}\": did you mean \"{stem}.{near}\"?")]
    UnknownTypeNear {
        name: String,
        stem: String,
        suffix: String,
        near: &'static str,
    },
    #[error(
        "\"{name}\" has unknown unit type \".{suffix}\" (expected .service, .socket, .target, ...)"
    )]
    UnknownType { name: String, suffix: String },
    #[error("\"{0}\" is not a valid systemd unit name")]
    Invalid(String),
}

/// Whether `name` is a full systemd unit name (`nginx.service`, `getty@tty1.service`).
pub fn check_unit_name(name: &str) -> Result<(), UnitNameError> {
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return Err(UnitNameError::NoSuffix(name.to_string()));
    };
    if !UNIT_SUFFIXES.contains(&suffix) {
        let (name, suffix) = (name.to_string(), suffix.to_string());
        return Err(match did_you_mean(&suffix, UNIT_SUFFIXES.iter().copied()) {
            Some(near) => UnitNameError::UnknownTypeNear {
                name,
                stem: stem.to_string(),
                suffix,
                near,
            },
            None => UnitNameError::UnknownType { name, suffix },
        });
    }
    if stem.is_empty()
        || name.len() > 255
        || !stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
    {
        return Err(UnitNameError::Invalid(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_name_reasons_read_as_before() {
        let why = |n: &str| check_unit_name(n).unwrap_err().to_string();
        assert_eq!(
            why("nginx"),
            "\"nginx\" is not a full unit name: write \"nginx.service\""
        );
        assert_eq!(
            why("nginx.servce"),
            "\"nginx.servce\" has unknown unit type \".servce\": did you mean \"nginx.service\"?"
        );
        assert_eq!(
            why("nginx.zzzzzzzz"),
            "\"nginx.zzzzzzzz\" has unknown unit type \".zzzzzzzz\" (expected .service, .socket, .target, ...)"
        );
        assert_eq!(
            why("ng inx.service"),
            "\"ng inx.service\" is not a valid systemd unit name"
        );
        assert_eq!(check_unit_name("getty@tty1.service"), Ok(()));
    }
}
