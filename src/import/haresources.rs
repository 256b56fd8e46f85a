//! haresources: one resource group per line, `NODE RESOURCE...`.
//!
//! Parsing is pure (text in, [`GroupLine`]s out); turning a resource into an hbd
//! [`Resource`] needs to know which scripts exist in resource.d, so
//! [`convert`] takes that lookup as a function. Every resource either becomes
//! an hbd resource or stops the import with its line: a resource is never
//! silently dropped, since a group missing a member would start half a service.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::config::{
    HumanDuration, IpCidr, IpResource, MountResource, Resource, ScriptResource, UnitResource,
};

use super::ImportError;
use super::report::Report;
use super::text::lines;

pub const FILE: &str = "haresources";

/// One resource as written: `Name::arg::arg`, or a bare address meaning IPaddr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub args: Vec<String>,
    /// The token as written, for messages.
    pub text: String,
}

/// One haresources line: the preferred node and its resources in start order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLine {
    pub line: usize,
    /// Lower-cased, as Heartbeat compares node names.
    pub node: String,
    pub resources: Vec<Spec>,
}

/// Most resources the importer takes from one haresources line.
pub const MAX_RESOURCES: usize = 128;

/// Parse haresources text into group lines.
pub fn parse(bytes: &[u8], file: &str, report: &mut Report) -> Result<Vec<GroupLine>, ImportError> {
    let mut out: Vec<GroupLine> = Vec::new();
    for l in lines(bytes, file, true, report)? {
        let mut toks = l.text.split_whitespace();
        let Some(node) = toks.next() else { continue };
        let rest: Vec<&str> = toks.collect();
        for t in std::iter::once(node).chain(rest.iter().copied()) {
            if t.contains("{{")
                || t.contains("}}")
                || t.contains("{%")
                || t.contains("${")
                || t.contains("<%")
            {
                return Err(ImportError::at(
                    file,
                    l.no,
                    format!(
                        "\"{t}\" is an unrendered template placeholder: import the haresources generated on the node, not the template"
                    ),
                ));
            }
        }
        if rest.is_empty() {
            return Err(ImportError::at(
                file,
                l.no,
                format!("node {node} has no resources on this line (expected `NODE RESOURCE ...`)"),
            ));
        }
        if rest.len() > MAX_RESOURCES {
            return Err(ImportError::at(
                file,
                l.no,
                format!(
                    "{} resources in one group: the importer takes at most {MAX_RESOURCES} per line (real groups have a handful)",
                    rest.len()
                ),
            ));
        }
        let resources: Vec<Spec> = rest.iter().map(|t| spec(t)).collect();
        for r in &resources {
            if r.name.is_empty() {
                return Err(ImportError::at(
                    file,
                    l.no,
                    format!("\"{}\" has no resource name before `::`", r.text),
                ));
            }
        }
        // Heartbeat's ResourceManager keys a group by its first resource.
        if let Some(prev) = out
            .iter()
            .find(|g| g.resources[0].text == resources[0].text)
        {
            return Err(ImportError::at(
                file,
                l.no,
                format!(
                    "the first resource \"{}\" already starts the group of line {} (Heartbeat requires the first resource of each line to be unique)",
                    resources[0].text, prev.line
                ),
            ));
        }
        if out.len() == crate::config::MAX_GROUPS {
            return Err(ImportError::at(
                file,
                l.no,
                format!(
                    "more than {} resource groups: hbd supports at most {}",
                    crate::config::MAX_GROUPS,
                    crate::config::MAX_GROUPS
                ),
            ));
        }
        out.push(GroupLine {
            line: l.no,
            node: node.to_ascii_lowercase(),
            resources,
        });
    }
    Ok(out)
}

/// Split one token; a token whose first part is an IPv4 address means `IPaddr::token`.
pub fn spec(token: &str) -> Spec {
    let mut parts = token.split("::");
    let first = parts.next().unwrap_or("");
    let args: Vec<String> = parts.map(str::to_string).collect();
    let head = first.split('/').next().unwrap_or("");
    if args.is_empty() && head.parse::<Ipv4Addr>().is_ok() {
        return Spec {
            name: "IPaddr".into(),
            args: vec![first.to_string()],
            text: token.to_string(),
        };
    }
    Spec {
        name: first.to_string(),
        args,
        text: token.to_string(),
    }
}

/// Heartbeat resource.d scripts that are not init scripts by another name: when
/// the imported tree lacks them, they are still scripts (installed by the heartbeat,
/// resource-agents or drbd packages), not systemd units.
const KNOWN_AGENTS: &[&str] = &[
    "AudibleAlarm",
    "Delay",
    "ICP",
    "IPsrcaddr",
    "IPv6addr",
    "LVM",
    "LinuxSCSI",
    "MailTo",
    "OCF",
    "Raid1",
    "SendArp",
    "ServeRAID",
    "WAS",
    "WinPopup",
    "Xinetd",
    "db2",
    "drbddisk",
    "ids",
    "portblock",
];

/// Where resource.d scripts are looked up and what path the nodes will run.
pub struct Scripts<'a> {
    /// Finds `NAME` in the imported tree's resource.d: the path to write, if present.
    pub find: &'a dyn Fn(&str) -> Option<PathBuf>,
    /// resource.d on the nodes (for scripts not found in the imported tree).
    pub node_dir: &'a Path,
}

/// Convert one group line's resources.
pub fn convert(
    g: &GroupLine,
    file: &str,
    scripts: &Scripts<'_>,
    report: &mut Report,
) -> Result<Vec<Resource>, ImportError> {
    g.resources
        .iter()
        .map(|s| convert_one(s, g.line, file, scripts, report))
        .collect()
}

fn convert_one(
    s: &Spec,
    n: usize,
    file: &str,
    scripts: &Scripts<'_>,
    report: &mut Report,
) -> Result<Resource, ImportError> {
    let err = |msg: String| ImportError::at(file, n, msg);
    match s.name.as_str() {
        "IPaddr" | "IPaddr2" => {
            let [arg] = s.args.as_slice() else {
                return Err(err(format!(
                    "{} needs exactly one argument `ip[/prefix[/interface[/broadcast]]]`, found \"{}\"",
                    s.name, s.text
                )));
            };
            ip(arg, &s.text, n, file, report).map(Resource::Ip)
        }
        "Filesystem" => mount(s, n, file, report).map(Resource::Mount),
        name => {
            if let Some(path) = (scripts.find)(name) {
                return Ok(Resource::Script(ScriptResource {
                    path,
                    args: s.args.clone(),
                    timeout: HumanDuration::from_secs(90),
                }));
            }
            if name.contains(':') {
                report.warning(
                    file,
                    n,
                    format!("\"{name}\" contains a single ':'; arguments are separated by '::' (a documentation typo?)"),
                );
            }
            if KNOWN_AGENTS.contains(&name) || !s.args.is_empty() {
                let path = scripts.node_dir.join(name);
                report.warning(
                    file,
                    n,
                    format!(
                        "{} — no resource.d/{name} in the imported directory; imported as script {} which must exist on every node{}",
                        s.text,
                        path.display(),
                        if KNOWN_AGENTS.contains(&name) { " (it comes with Heartbeat's resource scripts or drbd-utils)" } else { "" }
                    ),
                );
                return Ok(Resource::Script(ScriptResource {
                    path,
                    args: s.args.clone(),
                    timeout: HumanDuration::from_secs(90),
                }));
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
            {
                return Err(err(format!(
                    "\"{name}\" is neither a resource.d script nor a possible init script / systemd unit name"
                )));
            }
            let unit = format!("{name}.service");
            report.note(
                file,
                n,
                format!("{name} — not in resource.d, so an init script: imported as unit {unit} (systemd's sysv generator provides it from /etc/init.d/{name} if the package has no native unit)"),
            );
            Ok(Resource::Unit(UnitResource {
                unit,
                timeout: HumanDuration::from_secs(90),
            }))
        }
    }
}

/// `ip[/prefix-or-netmask[/interface[/broadcast]]]`.
fn ip(
    arg: &str,
    text: &str,
    n: usize,
    file: &str,
    report: &mut Report,
) -> Result<IpResource, ImportError> {
    let err = |msg: String| ImportError::at(file, n, msg);
    let parts: Vec<&str> = arg.split('/').collect();
    if parts.len() > 4 {
        return Err(err(format!(
            "\"{text}\": too many '/' parts; expected ip[/prefix[/interface[/broadcast]]]"
        )));
    }
    let addr: IpAddr = parts[0].parse().map_err(|_| {
        err(format!(
            "\"{}\" in \"{text}\" is not an IP address",
            parts[0]
        ))
    })?;
    let prefix = match parts.get(1) {
        None => None,
        Some(&"") => {
            return Err(err(format!(
                "\"{text}\": the prefix after the address is empty (expected e.g. {}/24)",
                parts[0]
            )));
        }
        Some(p) => match p.parse::<u8>() {
            Ok(v) if v <= 32 || (addr.is_ipv6() && v <= 128) => Some(v),
            Ok(_) => return Err(err(format!("\"{text}\": prefix /{p} is out of range"))),
            Err(_) => match p.parse::<Ipv4Addr>() {
                Ok(mask) => {
                    let bits = u32::from(mask);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(err(format!("\"{text}\": netmask {p} is not contiguous")));
                    }
                    let len = bits.leading_ones() as u8;
                    report.changed(
                        file,
                        n,
                        format!("{text} — netmask {p} written as prefix /{len}"),
                    );
                    Some(len)
                }
                Err(_) => {
                    return Err(err(format!(
                        "\"{text}\": \"{p}\" is neither a prefix length nor a netmask"
                    )));
                }
            },
        },
    };
    let interface = match parts.get(2) {
        None => None,
        Some(&"") => return Err(err(format!("\"{text}\": the interface part is empty"))),
        Some(i) => {
            let (dev, label) = match i.split_once(':') {
                Some((d, l)) => (d, Some(l)),
                None => (*i, None),
            };
            if dev.is_empty() || dev.len() > 15 || !dev.chars().any(|c| c.is_ascii_alphabetic()) {
                return Err(err(format!(
                    "\"{text}\": \"{i}\" is not a network interface name"
                )));
            }
            if let Some(l) = label {
                report.changed(
                    file,
                    n,
                    format!("{text} — interface label {dev}:{l} dropped: hbd adds the address to {dev} without an alias label"),
                );
            }
            Some(dev.to_string())
        }
    };
    let broadcast = match parts.get(3) {
        None => None,
        Some(b) => match b.parse::<Ipv4Addr>() {
            Ok(v) if addr.is_ipv4() => Some(v),
            _ => {
                return Err(err(format!(
                    "\"{text}\": broadcast \"{b}\" is not an IPv4 address"
                )));
            }
        },
    };
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
        return Err(err(format!("\"{text}\": {addr} cannot be a virtual IP")));
    }
    Ok(IpResource {
        address: IpCidr { addr, prefix },
        interface,
        broadcast,
        arp_count: 5,
        arp_interval: HumanDuration::from_millis(200),
        probe_wait: crate::config::default_probe_wait(),
    })
}

/// `Filesystem::device::mountpoint[::fstype[::options]]`.
fn mount(
    s: &Spec,
    n: usize,
    file: &str,
    report: &mut Report,
) -> Result<MountResource, ImportError> {
    let err = |msg: String| ImportError::at(file, n, msg);
    let usage = "expected Filesystem::DEVICE::MOUNTPOINT[::FSTYPE[::OPTIONS]]";
    if s.args.len() < 2 || s.args.len() > 4 {
        return Err(err(format!("\"{}\": {usage}", s.text)));
    }
    let dev = s.args[0].as_str();
    let what = if let Some(l) = dev.strip_prefix("-L") {
        report.changed(
            file,
            n,
            format!("{} — device {dev} (mount -L) written as LABEL={l}", s.text),
        );
        format!("LABEL={l}")
    } else if let Some(u) = dev.strip_prefix("-U") {
        report.changed(
            file,
            n,
            format!("{} — device {dev} (mount -U) written as UUID={u}", s.text),
        );
        format!("UUID={u}")
    } else {
        dev.to_string()
    };
    if what.trim().is_empty() {
        return Err(err(format!("\"{}\": the device is empty; {usage}", s.text)));
    }
    let r#where = PathBuf::from(&s.args[1]);
    if !r#where.is_absolute() || r#where == Path::new("/") {
        return Err(err(format!(
            "\"{}\": mount point \"{}\" must be an absolute path other than /; {usage}",
            s.text, s.args[1]
        )));
    }
    let nonempty = |v: Option<&String>| v.filter(|x| !x.is_empty()).cloned();
    Ok(MountResource {
        what,
        r#where,
        fstype: nonempty(s.args.get(2)),
        options: nonempty(s.args.get(3)),
        timeout: HumanDuration::from_secs(90),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_ip_means_ipaddr() {
        let s = spec("10.0.0.1/24/eth0");
        assert_eq!(s.name, "IPaddr");
        assert_eq!(s.args, ["10.0.0.1/24/eth0"]);
        let s = spec("Filesystem::server:/data1::/data1::nfs::ro");
        assert_eq!(s.args, ["server:/data1", "/data1", "nfs", "ro"]);
    }

    #[test]
    fn continuation_and_comments() {
        let mut r = Report::default();
        let g = parse(
            b"# c\nalpha 10.0.0.1 \\\n  nginx # web\nbeta 10.0.0.2\n",
            "haresources",
            &mut r,
        )
        .unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].line, 2);
        assert_eq!(g[0].resources.len(), 2);
        assert_eq!(g[1].line, 4);
    }

    #[test]
    fn netmask_and_labels() {
        let mut r = Report::default();
        let ip = ip(
            "10.0.0.1/255.255.255.0/eth0:1/10.0.0.255",
            "x",
            1,
            "h",
            &mut r,
        )
        .unwrap();
        assert_eq!(ip.address.to_string(), "10.0.0.1/24");
        assert_eq!(ip.interface.as_deref(), Some("eth0"));
        assert_eq!(r.entries.len(), 2);
        assert!(super::ip("10.0.30.15//8/eth0:10", "x", 1, "h", &mut r).is_err());
        assert!(super::ip("virtual_ip/mask", "x", 1, "h", &mut r).is_err());
    }
}
