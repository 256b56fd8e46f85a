//! `hbd check` on a node: is this host ready for the configuration?
//!
//! The configuration is identical on every node, so `hbd check` can pass on a host where
//! `hbd run` then refuses to start (the host name matches no node) or runs with links
//! that cannot open (the interface, the node's address or the serial device is not
//! here). This module answers, for the host it runs on: which node it is, and for each
//! link whether its interface, address and device exist here. Everything it finds is a
//! warning, never an error: a config is often checked off its nodes (a workstation, a
//! config repository), `systemctl reload` runs `hbd check` too and must not refuse a
//! good config because a VLAN is being rebuilt, and `--no-host` skips it all.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::config::{Config, Link, Resource};

/// What the probe needs to know about a host (a trait so tests can describe one).
pub trait Host {
    fn hostname(&self) -> Option<String>;
    /// Interfaces by name: (is up, addresses).
    fn interfaces(&self) -> BTreeMap<String, (bool, Vec<IpAddr>)>;
    /// What is at `path`: None if nothing, else whether it is a character device.
    fn device(&self, path: &Path) -> Option<bool>;
}

/// The host this process runs on.
pub struct ThisHost;

impl Host for ThisHost {
    fn hostname(&self) -> Option<String> {
        crate::daemon::hostname().ok()
    }

    fn interfaces(&self) -> BTreeMap<String, (bool, Vec<IpAddr>)> {
        let mut map: BTreeMap<String, (bool, Vec<IpAddr>)> = BTreeMap::new();
        let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
            return map;
        };
        for a in addrs {
            let up = a.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP);
            let entry = map
                .entry(a.interface_name.clone())
                .or_insert((up, Vec::new()));
            entry.0 |= up;
            let ip = a.address.as_ref().and_then(|s| {
                s.as_sockaddr_in()
                    .map(|v4| IpAddr::V4(v4.ip()))
                    .or_else(|| s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
            });
            entry.1.extend(ip);
        }
        map
    }

    fn device(&self, path: &Path) -> Option<bool> {
        std::fs::metadata(path)
            .ok()
            .map(|m| m.file_type().is_char_device())
    }
}

/// What the probe found: lines for the summary, and the problems (warnings).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

/// Probe `host` for `config`; `node` is `--node` if given (else the host name decides).
pub fn probe(config: &Config, node: Option<&str>, host: &impl Host) -> Report {
    let mut r = Report::default();
    let hostname = host.hostname().unwrap_or_default();
    let me = match crate::daemon::local_node(config, node, &hostname) {
        Ok(i) => &config.nodes[i],
        Err(e) => {
            r.lines
                .push("host: not a node of this cluster: host checks skipped".to_string());
            r.warnings.push(format!(
                "{e}; where this is not one of the nodes, pass --no-host to skip the host checks"
            ));
            return r;
        }
    };
    r.lines.push(match node {
        Some(_) => format!("host: node {} (--node)", me.name),
        None => format!("host: node {} (host name \"{hostname}\")", me.name),
    });
    let ifaces = host.interfaces();
    let mut problems = Vec::new();
    // An interface named by the config: is it here, and up?
    let iface = |what: &str, name: &str, problems: &mut Vec<String>| -> String {
        match ifaces.get(name) {
            None => {
                problems.push(format!(
                    "{what}: interface {name} does not exist on this host"
                ));
                format!("interface {name} MISSING")
            }
            Some((false, _)) => {
                problems.push(format!("{what}: interface {name} is down on this host"));
                format!("interface {name} DOWN")
            }
            Some((true, _)) => format!("interface {name} up"),
        }
    };
    for link in &config.links {
        let what = format!("link {}", link.name());
        let mut parts = Vec::new();
        match link {
            Link::UdpUnicast(u) => {
                if let Some(i) = &u.interface {
                    parts.push(iface(&what, i, &mut problems));
                }
                if let Some(addr) = me.address.get(&u.name) {
                    let holders: Vec<&str> = ifaces
                        .iter()
                        .filter(|(_, (_, ips))| ips.contains(addr))
                        .map(|(n, _)| n.as_str())
                        .collect();
                    let on_named = u
                        .interface
                        .as_ref()
                        .is_none_or(|i| holders.contains(&i.as_str()));
                    if holders.is_empty() {
                        problems.push(format!(
                            "{what}: node {}'s address {addr} is not on any interface of this host",
                            me.name
                        ));
                        parts.push(format!("address {addr} MISSING"));
                    } else if !on_named {
                        problems.push(format!(
                            "{what}: node {}'s address {addr} is on {}, not on {}",
                            me.name,
                            holders.join(", "),
                            u.interface.as_deref().unwrap_or_default()
                        ));
                        parts.push(format!("address {addr} on {}", holders.join(", ")));
                    } else {
                        parts.push(format!("address {addr} on {}", holders.join(", ")));
                    }
                }
            }
            Link::UdpBroadcast(b) => parts.push(iface(&what, &b.interface, &mut problems)),
            Link::UdpMulticast(m) => parts.push(iface(&what, &m.interface, &mut problems)),
            Link::Serial(s) => {
                let dev = s.device.display();
                parts.push(match host.device(&s.device) {
                    None => {
                        problems.push(format!("{what}: serial device {dev} does not exist"));
                        format!("{dev} MISSING")
                    }
                    Some(false) => {
                        problems.push(format!(
                            "{what}: {dev} is not a character device (a serial line)"
                        ));
                        format!("{dev} NOT A TTY")
                    }
                    Some(true) => format!("{dev} present"),
                });
            }
        }
        r.lines.push(format!("host: {what}: {}", parts.join(", ")));
    }
    // Virtual IPs name their interface: a node that takes the group needs it.
    for g in &config.groups {
        for res in &g.resources {
            if let Resource::Ip(ip) = res {
                if let Some(i) = &ip.interface {
                    if !ifaces.contains_key(i) {
                        problems.push(format!(
                            "group {}: interface {i} for {} does not exist on this host",
                            g.name, ip.address
                        ));
                    }
                }
            }
        }
    }
    r.lines.push(if problems.is_empty() {
        "host: ready".to_string()
    } else {
        format!(
            "host: NOT READY ({} problem{})",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        )
    });
    r.warnings.extend(problems);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        name: &'static str,
        ifaces: Vec<(&'static str, bool, Vec<&'static str>)>,
        ttys: Vec<&'static str>,
    }

    impl Host for Fake {
        fn hostname(&self) -> Option<String> {
            Some(self.name.to_string())
        }
        fn interfaces(&self) -> BTreeMap<String, (bool, Vec<IpAddr>)> {
            self.ifaces
                .iter()
                .map(|(n, up, ips)| {
                    (
                        n.to_string(),
                        (*up, ips.iter().map(|i| i.parse().unwrap()).collect()),
                    )
                })
                .collect()
        }
        fn device(&self, path: &Path) -> Option<bool> {
            self.ttys
                .iter()
                .any(|t| path == Path::new(t))
                .then_some(true)
        }
    }

    fn config() -> Config {
        crate::config::parse_str(
            r#"
[cluster]
name = "t"
[[link]]
name = "lan"
kind = "udp-unicast"
interface = "eth1"
[[link]]
name = "bc"
kind = "udp-broadcast"
interface = "eth2"
[[link]]
name = "cable"
kind = "serial"
device = "/dev/ttyS0"
[[node]]
name = "alpha"
address.lan = "192.168.77.1"
[[node]]
name = "beta"
address.lan = "192.168.77.2"
[[group]]
name = "web"
preferred = "alpha"
[[group.resource]]
kind = "ip"
address = "192.168.1.100/24"
interface = "eth0"
"#,
            Path::new("t.toml"),
        )
        .unwrap()
        .config
    }

    #[test]
    fn a_ready_node() {
        let host = Fake {
            name: "alpha.example.com",
            ifaces: vec![
                ("eth0", true, vec![]),
                ("eth1", true, vec!["192.168.77.1"]),
                ("eth2", true, vec![]),
            ],
            ttys: vec!["/dev/ttyS0"],
        };
        let r = probe(&config(), None, &host);
        assert!(r.warnings.is_empty(), "{r:?}");
        assert_eq!(
            r.lines,
            [
                "host: node alpha (host name \"alpha.example.com\")",
                "host: link lan: interface eth1 up, address 192.168.77.1 on eth1",
                "host: link bc: interface eth2 up",
                "host: link cable: /dev/ttyS0 present",
                "host: ready",
            ]
        );
    }

    #[test]
    fn what_is_missing_is_named() {
        let host = Fake {
            name: "beta",
            ifaces: vec![
                ("eth1", true, vec!["192.168.77.1"]),
                ("eth2", false, vec![]),
            ],
            ttys: vec![],
        };
        let r = probe(&config(), None, &host);
        assert_eq!(
            r.warnings,
            [
                "link lan: node beta's address 192.168.77.2 is not on any interface of this host",
                "link bc: interface eth2 is down on this host",
                "link cable: serial device /dev/ttyS0 does not exist",
                "group web: interface eth0 for 192.168.1.100/24 does not exist on this host",
            ]
        );
        assert_eq!(r.lines.last().unwrap(), "host: NOT READY (4 problems)");
        // --node picks the node whatever the host name.
        let r = probe(&config(), Some("alpha"), &host);
        assert_eq!(r.lines[0], "host: node alpha (--node)");
    }

    #[test]
    fn off_node_is_one_warning_with_the_fix() {
        let host = Fake {
            name: "workstation",
            ifaces: vec![],
            ttys: vec![],
        };
        let r = probe(&config(), None, &host);
        assert_eq!(r.warnings.len(), 1);
        assert!(
            r.warnings[0].contains("host name \"workstation\" matches no node")
                && r.warnings[0].contains("--node NAME")
                && r.warnings[0].contains("--no-host"),
            "{:?}",
            r.warnings
        );
        assert_eq!(
            r.lines,
            ["host: not a node of this cluster: host checks skipped"]
        );
    }
}
