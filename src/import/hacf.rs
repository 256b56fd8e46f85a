//! ha.cf: Heartbeat's main configuration, read the way Heartbeat 3.0.6 read it.
//!
//! Order matters in ha.cf (udpport and baud apply only to media declared after
//! them), so this parser walks the file once, in order, and records each medium
//! with the port or baud that was in force at its line. Everything hbd cannot
//! express is reported as dropped with its line and the reason; a directive
//! Heartbeat itself would refuse is an error naming file:line.

use std::net::{IpAddr, Ipv4Addr};

use crate::config::{BAUD_RATES, DEFAULT_PORT, MAX_NODES, did_you_mean};

use super::ImportError;
use super::report::Report;
use super::text::{lines, words};

pub const FILE: &str = "ha.cf";

/// A time value with the line it was written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed {
    pub ms: u64,
    pub line: usize,
}

/// Heartbeat's auto_failback setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoFailback {
    On,
    Off,
    Legacy,
}

/// One heartbeat medium, with the settings in force where it was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Medium {
    Bcast {
        iface: String,
        port: u16,
        line: usize,
    },
    Ucast {
        iface: String,
        /// An IP address or a host name, as written.
        peer: String,
        port: u16,
        line: usize,
    },
    Mcast {
        iface: String,
        group: Ipv4Addr,
        port: u16,
        ttl: u8,
        line: usize,
    },
    Serial {
        device: String,
        baud: u32,
        line: usize,
    },
}

impl Medium {
    pub fn line(&self) -> usize {
        match self {
            Medium::Bcast { line, .. }
            | Medium::Ucast { line, .. }
            | Medium::Mcast { line, .. }
            | Medium::Serial { line, .. } => *line,
        }
    }
}

/// What ha.cf says, in hbd's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HaCf {
    /// Node names, lower-cased as Heartbeat does, with their lines, in file order.
    pub nodes: Vec<(String, usize)>,
    pub media: Vec<Medium>,
    pub keepalive: Option<Timed>,
    pub deadtime: Option<Timed>,
    pub warntime: Option<Timed>,
    pub initdead: Option<Timed>,
    pub auto_failback: Option<(AutoFailback, usize)>,
    /// Line of `crm`/`pacemaker` when resources are managed by Pacemaker.
    pub pacemaker: Option<usize>,
    /// Line of `autojoin any|other`.
    pub autojoin: Option<usize>,
    /// Value and line of `cluster`.
    pub cluster: Option<(String, usize)>,
    /// Directives that carry over, with their line and what they become, for
    /// the report's `mapped` lines (every directive gets an answer).
    pub mapped: Vec<(usize, String)>,
    /// Lines of `mcast6` (no hbd equivalent; an error only if nothing else is left).
    pub mcast6: Vec<usize>,
    /// `ping` and `ping_group` targets (an address or an /etc/hosts name), in file
    /// order, with their line and the ping_group's name.
    pub ping: Vec<PingTarget>,
    /// Line of `respawn USER …/ipfail`, and the line as written.
    pub ipfail: Option<(usize, String)>,
    /// `deadping`: how long Heartbeat waited before calling a ping node dead, and
    /// the line as written.
    pub deadping: Option<(Timed, String)>,
    /// `stonith` and `stonith_host` lines, in file order (mapped to fencing in mod.rs).
    pub stonith: Vec<Stonith>,
}

/// One ping node of ha.cf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingTarget {
    pub target: String,
    pub line: usize,
    /// The `ping_group` it belongs to, if any.
    pub group: Option<String>,
}

/// A STONITH device of ha.cf: `stonith_host HOSTFROM TYPE PARAMS...` (the device is
/// usable from HOSTFROM, `*` = any node) or `stonith TYPE CONFIGFILE` (one device for
/// the whole cluster, its parameters in a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stonith {
    pub line: usize,
    /// The node the device is attached to; None: every node.
    pub from: Option<String>,
    pub kind: String,
    pub params: StonithParams,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StonithParams {
    Inline(Vec<String>),
    File(String),
}

/// What a directive that carries over becomes in cluster.toml.
fn maps_to(dir: &str) -> Option<&'static str> {
    Some(match dir {
        "node" => "[[node]] tables, in this order",
        "keepalive" => "[timing] keepalive",
        "deadtime" => "[timing] deadtime",
        "warntime" => "[timing] warntime",
        "initdead" => "[timing] initdead",
        "udpport" => "the port of the links declared after it",
        "baud" => "the baud rate of the serial links declared after it",
        "bcast" | "udp" => "a udp-broadcast [[link]] per interface",
        "mcast" => "a udp-multicast [[link]]",
        "ucast" => "a udp-unicast [[link]] on its interface, and the peer's address.LINK",
        "serial" => "a serial [[link]] per device",
        "auto_failback" => "[failover] auto_failback",
        "cluster" => "[cluster] name",
        _ => return None,
    })
}

/// Every directive Heartbeat 3.0.6 accepts (its hb_api.h KEY_ names, the media
/// types and the ping media), for did-you-mean on typos.
const DIRECTIVES: &[&str] = &[
    "node",
    "keepalive",
    "deadtime",
    "warntime",
    "initdead",
    "deadping",
    "udpport",
    "baud",
    "bcast",
    "mcast",
    "mcast6",
    "ucast",
    "serial",
    "udp",
    "ping",
    "ping_group",
    "hbaping",
    "auto_failback",
    "nice_failback",
    "stonith",
    "stonith_host",
    "respawn",
    "apiauth",
    "crm",
    "pacemaker",
    "autojoin",
    "logfacility",
    "logfile",
    "debugfile",
    "use_logd",
    "conn_logd_time",
    "debug",
    "watchdog",
    "hopfudge",
    "compression",
    "compression_threshold",
    "traditional_compression",
    "coredumps",
    "coreroot",
    "realtime",
    "rtprio",
    "hbgenmethod",
    "msgfmt",
    "max_rexmit_delay",
    "uuidfrom",
    "memreserve",
    "env",
    "use_apphbd",
    "failfast",
    "syslogmsgfmt",
    "crm_daemon_dir",
    "crmd_spawns_pengine",
    "log_badpack",
    "record_config_changes",
    "record_pengine_inputs",
    "enable_config_writes",
    "quorum_server",
    "cluster",
    "normalpoll",
];

const FACILITIES: &[&str] = &[
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user",
    "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7", "none",
];

/// Most heartbeat media (links) the importer takes from one ha.cf. Real clusters
/// use one to three; the cap keeps every per-medium check cheap.
pub const MAX_MEDIA: usize = 64;

/// Parse ha.cf text. `file` names the file in messages.
pub fn parse(bytes: &[u8], file: &str, report: &mut Report) -> Result<HaCf, ImportError> {
    let mut cf = HaCf::default();
    let mut port = DEFAULT_PORT;
    let mut baud = 19200u32;
    for l in lines(bytes, file, false, report)? {
        limits(&cf, file)?;
        let ws = words(&l.text);
        let Some((&dir, args)) = ws.split_first() else {
            continue;
        };
        // The line as Heartbeat saw it, for messages: words joined by one space.
        let shown = ws.join(" ");
        let n = l.no;
        let err = |msg: String| ImportError::at(file, n, msg);
        let need = |count: usize, usage: &str| -> Result<(), ImportError> {
            if args.len() < count {
                Err(ImportError::at(
                    file,
                    n,
                    format!("`{dir}` is incomplete: {usage}"),
                ))
            } else {
                Ok(())
            }
        };
        if let Some(to) = maps_to(dir) {
            cf.mapped.push((n, format!("{shown} → {to}")));
        }
        match dir {
            "node" => {
                need(1, "node NAME ...")?;
                for a in args {
                    limits(&cf, file)?;
                    let name = a.to_ascii_lowercase();
                    if cf.nodes.iter().any(|(m, _)| *m == name) {
                        report.warning(
                            file,
                            n,
                            format!("node {name} is listed twice; the repeat is ignored"),
                        );
                    } else {
                        if name != *a {
                            report.changed(
                                file,
                                n,
                                format!("node {a} is named {name}: Heartbeat lower-cases node names, so does the import"),
                            );
                        }
                        cf.nodes.push((name, n));
                    }
                }
            }
            "keepalive" | "deadtime" | "warntime" | "initdead" => {
                need(1, "a time in seconds, or with an ms/us suffix")?;
                let ms = parse_time(args[0]).map_err(|e| err(e.to_string()))?;
                let t = Some(Timed { ms, line: n });
                match dir {
                    "keepalive" => cf.keepalive = t,
                    "deadtime" => cf.deadtime = t,
                    "warntime" => cf.warntime = t,
                    _ => cf.initdead = t,
                }
            }
            "udpport" => {
                need(1, "udpport PORT")?;
                let p: u16 = match args[0].parse() {
                    Ok(p) if p > 0 => p,
                    _ => return Err(err(format!("\"{}\" is not a UDP port (1-65535)", args[0]))),
                };
                let earlier: Vec<String> = cf
                    .media
                    .iter()
                    .filter_map(|m| match m {
                        Medium::Bcast { iface, port: q, line, .. }
                        | Medium::Ucast { iface, port: q, line, .. }
                            if *q != p =>
                        {
                            Some(format!("line {line} ({iface}, port {q})"))
                        }
                        _ => None,
                    })
                    .collect();
                if !earlier.is_empty() {
                    report.warning(
                        file,
                        n,
                        format!(
                            "udpport {p} comes after media it does not apply to: {} keep{} the earlier port, as in Heartbeat (\"udpport setting must precede media statements\")",
                            earlier.join(", "),
                            if earlier.len() == 1 { "s" } else { "" }
                        ),
                    );
                }
                port = p;
            }
            "baud" => {
                need(1, "baud RATE")?;
                let earlier: Vec<String> = cf
                    .media
                    .iter()
                    .filter_map(|m| match m {
                        Medium::Serial { device, line, .. } => Some(format!("{device} (line {line})")),
                        _ => None,
                    })
                    .collect();
                if !earlier.is_empty() {
                    report.warning(
                        file,
                        n,
                        format!(
                            "baud comes after serial media it does not apply to: {} keep{} the earlier rate, as in Heartbeat",
                            earlier.join(", "),
                            if earlier.len() == 1 { "s" } else { "" }
                        ),
                    );
                }
                baud = match args[0].parse::<u32>() {
                    Ok(b) if BAUD_RATES.contains(&b) => b,
                    _ => {
                        return Err(err(format!(
                            "\"{}\" is not a serial baud rate (e.g. 19200, 38400, 115200)",
                            args[0]
                        )));
                    }
                };
            }
            "bcast" | "udp" => {
                need(1, "bcast INTERFACE ...")?;
                if dir == "udp" {
                    report.warning(
                        file,
                        n,
                        "`udp` is the pre-1.0 spelling of `bcast`; imported as bcast",
                    );
                }
                for iface in args {
                    limits(&cf, file)?;
                    check_iface(iface).map_err(|e| err(e.to_string()))?;
                    let dup = cf.media.iter().find_map(|m| match m {
                        Medium::Bcast { iface: i, line, .. } if i == iface => Some(*line),
                        _ => None,
                    });
                    if let Some(prev) = dup {
                        report.dropped(
                            file,
                            n,
                            format!("{dir} {iface} repeats the broadcast link of line {prev}"),
                        );
                        continue;
                    }
                    cf.media.push(Medium::Bcast {
                        iface: iface.to_string(),
                        port,
                        line: n,
                    });
                }
            }
            "ucast" => {
                need(2, "ucast INTERFACE PEER-ADDRESS")?;
                check_iface(args[0]).map_err(|e| err(e.to_string()))?;
                if args.len() > 2 {
                    report.dropped(
                        file,
                        n,
                        format!(
                            "ucast takes one peer per line; Heartbeat ignored the extra word{} {}",
                            if args.len() > 3 { "s" } else { "" },
                            args[2..].join(" ")
                        ),
                    );
                }
                cf.media.push(Medium::Ucast {
                    iface: args[0].to_string(),
                    peer: args[1].to_string(),
                    port,
                    line: n,
                });
            }
            "mcast" => {
                cf.media.push(parse_mcast(args, file, n, report)?);
            }
            "mcast6" => {
                cf.mcast6.push(n);
                report.warning(
                    file,
                    n,
                    format!("{shown} — hbd has no IPv6 multicast link yet: not imported; for IPv6 use ucast lines with IPv6 addresses (a udp-unicast link), or keep an IPv4 bcast/mcast link"),
                );
            }
            "serial" => {
                need(1, "serial DEVICE ...")?;
                for dev in args {
                    limits(&cf, file)?;
                    if !dev.starts_with('/') {
                        return Err(err(format!(
                            "serial device \"{dev}\" must be an absolute path like /dev/ttyS0"
                        )));
                    }
                    cf.media.push(Medium::Serial {
                        device: dev.to_string(),
                        baud,
                        line: n,
                    });
                }
            }
            "auto_failback" => {
                need(1, "auto_failback on|off|legacy")?;
                let v = match args[0].to_ascii_lowercase().as_str() {
                    "legacy" => AutoFailback::Legacy,
                    "on" | "yes" | "true" | "y" | "1" => AutoFailback::On,
                    "off" | "no" | "false" | "n" | "0" => AutoFailback::Off,
                    other => {
                        return Err(err(format!(
                            "auto_failback \"{other}\" is not on, off or legacy"
                        )));
                    }
                };
                cf.auto_failback = Some((v, n));
            }
            "nice_failback" => report.dropped(
                file,
                n,
                "nice_failback is obsolete (Heartbeat 3 ignores it); use auto_failback, which the import reads",
            ),
            "ping" => {
                need(1, "ping ADDRESS ...")?;
                for a in args {
                    limits(&cf, file)?;
                    cf.ping.push(PingTarget {
                        target: a.to_string(),
                        line: n,
                        group: None,
                    });
                }
            }
            "ping_group" => {
                need(2, "ping_group NAME ADDRESS ...")?;
                for a in &args[1..] {
                    limits(&cf, file)?;
                    cf.ping.push(PingTarget {
                        target: a.to_string(),
                        line: n,
                        group: Some(args[0].to_string()),
                    });
                }
            }
            "deadping" => {
                need(1, "a time in seconds, or with an ms/us suffix")?;
                let ms = parse_time(args[0]).map_err(|e| err(e.to_string()))?;
                cf.deadping = Some((Timed { ms, line: n }, shown.clone()));
            }
            "hbaping" => report.dropped(
                file,
                n,
                format!(
                    "{shown} — hbaping (Fibre Channel HBA ping) has no hbd equivalent: list IP ping nodes with ping instead"
                ),
            ),
            "respawn" | "failfast" => {
                let user = args.first().copied().unwrap_or("");
                let prog = args.get(1).copied().unwrap_or("");
                let base = prog.rsplit('/').next().unwrap_or(prog);
                if base == "ipfail" && dir == "respawn" {
                    // hbd's core does what ipfail did (failover.rs in the import).
                    cf.ipfail = Some((n, shown.clone()));
                    continue;
                }
                let why = match base {
                    "ipfail" => "failfast of ipfail: hbd acts on ping nodes itself (see respawn ipfail); nothing to run".to_string(),
                    "dopd" => "dopd (DRBD outdate-peer daemon) is not run by hbd; configure DRBD's own fence-peer handler".to_string(),
                    "" => "respawn without a program: nothing to run".to_string(),
                    _ => {
                        let unit = sanitize_unit(base);
                        let cmd = args[1..].join(" ");
                        // failfast: Heartbeat rebooted the node when the program died.
                        let reboot = if dir == "failfast" { " FailureAction=reboot" } else { "" };
                        format!(
                            "hbd does not supervise processes, systemd does: to keep {base} running beside hbd, write /etc/systemd/system/{unit}.service with `[Unit] PartOf=hbd.service After=hbd.service{reboot}` `[Service] User={user} ExecStart={cmd} Restart=always` `[Install] WantedBy=hbd.service`, then `systemctl enable {unit}.service`"
                        )
                    }
                };
                report.dropped(file, n, format!("{shown} — {why}"));
            }
            "apiauth" => report.dropped(
                file,
                n,
                format!("{shown} — not needed: hbd has no client API of Heartbeat's kind to authorise (it is driven by systemd and its config file, as root)"),
            ),
            "stonith" => {
                need(2, "stonith TYPE CONFIGFILE")?;
                cf.stonith.push(Stonith {
                    line: n,
                    from: None,
                    kind: args[0].to_string(),
                    params: StonithParams::File(args[1].to_string()),
                });
            }
            "stonith_host" => {
                need(2, "stonith_host HOSTFROM TYPE PARAMS...")?;
                cf.stonith.push(Stonith {
                    line: n,
                    from: (args[0] != "*").then(|| args[0].to_ascii_lowercase()),
                    kind: args[1].to_string(),
                    params: StonithParams::Inline(args[2..].iter().map(|a| a.to_string()).collect()),
                });
            }
            "crm" | "pacemaker" => {
                let v = args.first().map(|s| s.to_ascii_lowercase()).unwrap_or_default();
                if matches!(v.as_str(), "off" | "no" | "false" | "n" | "0") {
                    report.dropped(file, n, format!("{} — the haresources style is what hbd imports", shown));
                } else {
                    cf.pacemaker = Some(n);
                    report.warning(
                        file,
                        n,
                        format!("{} — this cluster was managed by Pacemaker: its resources live in the CIB, not in haresources, and are not imported; recreate them as [[group]] tables", shown),
                    );
                }
            }
            "autojoin" => {
                let v = args.first().map(|s| s.to_ascii_lowercase()).unwrap_or_default();
                if v == "none" {
                    report.dropped(file, n, "autojoin none — hbd only ever admits the listed nodes");
                } else {
                    cf.autojoin = Some(n);
                    report.warning(
                        file,
                        n,
                        format!("{} — hbd has no autojoin: every member must be a [[node]] in cluster.toml", shown),
                    );
                }
            }
            "logfacility" => {
                let v = args.first().copied().unwrap_or("");
                if !FACILITIES.contains(&v) {
                    report.warning(
                        file,
                        n,
                        format!("logfacility \"{v}\" is not a syslog facility (Heartbeat refuses it); dropped anyway: hbd logs to the journal"),
                    );
                } else {
                    report.dropped(file, n, format!("{} — hbd logs to the journal (journalctl -u hbd)", shown));
                }
            }
            "logfile" | "debugfile" | "use_logd" | "conn_logd_time" | "debug" | "log_badpack"
            | "syslogmsgfmt" => {
                report.dropped(file, n, format!("{} — hbd logs to the journal (journalctl -u hbd)", shown))
            }
            "watchdog" => report.dropped(
                file,
                n,
                format!("{} — use systemd's watchdog instead (RuntimeWatchdogSec= in system.conf; hbd.service has WatchdogSec=)", shown),
            ),
            "cluster" => {
                need(1, "cluster NAME")?;
                cf.cluster = Some((args[0].to_string(), n));
            }
            "hopfudge" | "compression" | "compression_threshold" | "traditional_compression"
            | "msgfmt" | "max_rexmit_delay" => report.dropped(
                file,
                n,
                format!("{} — Heartbeat wire-protocol setting; hbd's protocol has no equivalent", shown),
            ),
            "coredumps" | "coreroot" | "realtime" | "rtprio" | "memreserve" | "env"
            | "normalpoll" => report.dropped(
                file,
                n,
                format!("{} — process tuning is done by systemd for hbd (see hbd.service)", shown),
            ),
            "hbgenmethod" | "uuidfrom" => report.dropped(
                file,
                n,
                format!("{} — hbd identifies nodes by name only", shown),
            ),
            "use_apphbd" => report.dropped(
                file,
                n,
                format!("{} — registering with apphbd is what systemd's watchdog does for hbd (WatchdogSec= in hbd.service)", shown),
            ),
            "record_config_changes" | "record_pengine_inputs" | "enable_config_writes"
            | "quorum_server" | "crm_daemon_dir" | "crmd_spawns_pengine" => report.dropped(
                file,
                n,
                format!("{} — Pacemaker/CRM setting; hbd has no CRM", shown),
            ),
            other => {
                let mut msg = format!("unknown directive \"{other}\" (Heartbeat refuses it too: \"Illegal directive\")");
                if let Some(s) = did_you_mean(other, DIRECTIVES.iter().copied()) {
                    msg.push_str(&format!("; did you mean \"{s}\"?"));
                }
                return Err(err(msg));
            }
        }
    }
    limits(&cf, file)?;
    Ok(cf)
}

/// A systemd unit name from a program name: letters, digits, `-`, `_`, `.`.
fn sanitize_unit(prog: &str) -> String {
    let s: String = prog
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() { "helper".into() } else { s }
}

/// Refuse more media or nodes than hbd supports, at the line that went over.
fn limits(cf: &HaCf, file: &str) -> Result<(), ImportError> {
    if cf.media.len() > MAX_MEDIA {
        let line = cf.media.last().map(Medium::line).unwrap_or(0);
        return Err(ImportError::at(
            file,
            line,
            format!(
                "more than {MAX_MEDIA} heartbeat media (bcast, mcast, ucast, serial): hbd imports at most {MAX_MEDIA} links; real clusters use two or three"
            ),
        ));
    }
    if cf.nodes.len() > MAX_NODES {
        let line = cf.nodes.last().map(|n| n.1).unwrap_or(0);
        return Err(ImportError::at(
            file,
            line,
            format!("more than {MAX_NODES} nodes: hbd supports at most {MAX_NODES}"),
        ));
    }
    Ok(())
}

fn parse_mcast(
    args: &[&str],
    file: &str,
    n: usize,
    report: &mut Report,
) -> Result<Medium, ImportError> {
    let err = |msg: String| ImportError::at(file, n, msg);
    let usage =
        "expected `mcast INTERFACE GROUP PORT TTL LOOP`, e.g. `mcast eth0 239.0.0.1 694 1 0`";
    let (Some(iface), Some(group)) = (args.first(), args.get(1)) else {
        return Err(err(usage.into()));
    };
    check_iface(iface).map_err(|e| err(e.to_string()))?;
    let group_ip: Ipv4Addr = match group.parse::<IpAddr>() {
        Ok(IpAddr::V4(g)) if g.is_multicast() => g,
        Ok(_) => {
            return Err(err(format!(
                "\"{group}\" is not an IPv4 multicast group (224.0.0.0-239.255.255.255); {usage}"
            )));
        }
        Err(_) => {
            let hint = if group.parse::<u16>().is_ok() {
                " — the multicast group is missing (a line copied from the DRBD guide?)"
            } else {
                ""
            };
            return Err(err(format!(
                "\"{group}\" is not a multicast group{hint}; {usage}"
            )));
        }
    };
    if args.len() < 5 {
        return Err(err(format!(
            "mcast needs 5 values, found {}; {usage}",
            args.len()
        )));
    }
    let port = match args[2].parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => return Err(err(format!("\"{}\" is not a UDP port; {usage}", args[2]))),
    };
    let ttl = match args[3].parse::<u8>() {
        Ok(t) if t > 0 => t,
        _ => {
            return Err(err(format!(
                "mcast ttl \"{}\" must be 1-255; {usage}",
                args[3]
            )));
        }
    };
    match args[4] {
        "0" => {}
        "1" => report.dropped(
            file,
            n,
            "mcast loop 1 — hbd never loops its own heartbeats back (Heartbeat's docs also say to set 0)",
        ),
        other => return Err(err(format!("mcast loop \"{other}\" must be 0 or 1; {usage}"))),
    }
    if args.len() > 5 {
        report.dropped(
            file,
            n,
            format!("extra words after mcast: {}", args[5..].join(" ")),
        );
    }
    Ok(Medium::Mcast {
        iface: iface.to_string(),
        group: group_ip,
        port,
        ttl,
        line: n,
    })
}

/// A name in ha.cf that cannot be a network interface's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a network interface name (at most 15 characters, no '/')")]
pub struct IfaceError(String);

fn check_iface(iface: &str) -> Result<(), IfaceError> {
    if iface.is_empty() || iface.len() > 15 || iface.contains('/') {
        Err(IfaceError(iface.to_string()))
    } else {
        Ok(())
    }
}

/// A value in ha.cf that is no Heartbeat time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a Heartbeat time: write seconds (\"2\") or milliseconds (\"2000ms\")")]
pub struct TimeError(String);

/// Heartbeat's time values: seconds (fractions allowed), or with an `ms`/`us` suffix.
pub fn parse_time(v: &str) -> Result<u64, TimeError> {
    let bad = || TimeError(v.to_string());
    let (num, scale_us) = if let Some(x) = v.strip_suffix("ms") {
        (x, 1000u64)
    } else if let Some(x) = v.strip_suffix("us") {
        (x, 1u64)
    } else {
        (v, 1_000_000u64)
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let int: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut us = int.checked_mul(scale_us).ok_or_else(bad)?;
    let mut scale = scale_us;
    for c in frac.chars() {
        scale /= 10;
        let d = u64::from(c.to_digit(10).ok_or_else(bad)?);
        us = us.checked_add(d * scale).ok_or_else(bad)?;
    }
    Ok(us / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("2"), Ok(2000));
        assert_eq!(parse_time("1500ms"), Ok(1500));
        assert_eq!(parse_time("1.5"), Ok(1500));
        assert_eq!(parse_time("250000us"), Ok(250));
        assert!(parse_time("10s").is_err());
        assert!(parse_time("ms").is_err());
        assert!(parse_time("").is_err());
    }

    #[test]
    fn udpport_applies_forward_only() {
        let mut r = Report::default();
        let cf = parse(b"bcast eth0\nudpport 700\nbcast eth1\n", "ha.cf", &mut r).unwrap();
        assert!(matches!(&cf.media[0], Medium::Bcast { port: 694, .. }));
        assert!(matches!(&cf.media[1], Medium::Bcast { port: 700, .. }));
        assert_eq!(r.entries.len(), 1, "{r:?}");
        let cf = parse(
            b"serial /dev/ttyS0\nbaud 38400\nserial /dev/ttyS1\n",
            "ha.cf",
            &mut r,
        )
        .unwrap();
        assert!(matches!(&cf.media[0], Medium::Serial { baud: 19200, .. }));
        assert!(matches!(&cf.media[1], Medium::Serial { baud: 38400, .. }));
        assert_eq!(r.entries.len(), 2, "{r:?}");
    }

    #[test]
    fn typo_is_an_error_with_suggestion() {
        let mut r = Report::default();
        let e = parse(b"node a\n\nundport 694\n", "ha.cf", &mut r).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("ha.cf:3: "), "{s}");
        assert!(s.contains("udpport"), "{s}");
    }

    #[test]
    fn every_heartbeat_directive_is_known() {
        for d in DIRECTIVES {
            let mut r = Report::default();
            let text = format!("node a b\n{d} x y z\n");
            if let Err(e) = parse(text.as_bytes(), "ha.cf", &mut r) {
                assert!(!e.to_string().contains("unknown directive"), "{d}: {e}");
            }
        }
    }

    #[test]
    fn nodes_split_on_commas_and_lowercase() {
        let mut r = Report::default();
        let cf = parse(b"node Alpha, beta\n", "ha.cf", &mut r).unwrap();
        let names: Vec<&str> = cf.nodes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["alpha", "beta"]);
    }
}
