//! `hbd import`: turn a Heartbeat v1 /etc/ha.d (ha.cf, haresources, authkeys) into
//! one cluster.toml, a key, and a line-numbered report of everything that changed.
//!
//! Why a separate module: Heartbeat's files differ per node (a ucast line names
//! the peer, not the node itself) while hbd's cluster.toml must be identical on
//! every node. The parsers ([`hacf`], [`haresources`], [`authkeys`]) are pure;
//! this module joins their results with what only the host can tell (its name,
//! its interface addresses, /etc/hosts, which resource.d scripts exist), all
//! behind the [`Host`] trait so tests can simulate any node. The output is
//! checked with the same validation `hbd check` runs before it is returned.

pub mod authkeys;
pub mod hacf;
pub mod haresources;
pub mod render;
pub mod report;
mod text;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::config::{
    self, Auth, BroadcastLink, ClusterSection, Config, Failover, Group, HumanDuration, Link,
    MulticastLink, Node, Resource, SerialLink, Timing, UnicastLink, keys,
};

use hacf::{AutoFailback, HaCf, Medium};
pub use render::Comments;
pub use report::{Entry, Report, Severity};

/// Where Heartbeat lived on the nodes; scripts found there keep this path.
pub const HA_DIR: &str = "/etc/ha.d";

/// Why an import could not produce a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A problem in one of the Heartbeat files (line 0: the file as a whole).
    #[error("{}", at_text(file, *line, message))]
    At {
        file: String,
        line: usize,
        message: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} already exists: pass --force to replace it", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("{0}")]
    Usage(String),
    /// The converted configuration failed hbd's own validation.
    #[error("the imported configuration does not pass `hbd check`:\n{0}")]
    Invalid(String),
}

fn at_text(file: &str, line: usize, message: &str) -> String {
    if line == 0 {
        format!("{file}: {message}")
    } else {
        format!("{file}:{line}: {message}")
    }
}

impl ImportError {
    pub fn at(file: &str, line: usize, message: impl Into<String>) -> Self {
        ImportError::At {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }
}

/// What the importer needs from the machine it runs on.
///
/// File access has defaults on the real filesystem; the network facts are what a
/// test replaces to play "node A" and "node B" of one cluster.
pub trait Host {
    /// A Heartbeat file's bytes: only a regular file of at most [`MAX_FILE_BYTES`]
    /// (a FIFO or device is refused without blocking on it).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        read_small_file(path)
    }
    /// Permission bits of a file, if it exists.
    fn mode(&self, path: &Path) -> Option<u32> {
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    }
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
    /// This machine's host name (`uname -n`).
    fn hostname(&self) -> Option<String>;
    /// Addresses with prefix lengths configured on `iface`.
    fn interface_addrs(&self, iface: &str) -> Vec<(IpAddr, u8)>;
    /// A name's address from /etc/hosts (never DNS: the import must not depend on it).
    fn resolve(&self, name: &str) -> Option<IpAddr>;
}

/// The largest ha.cf, haresources or authkeys the importer reads. Real ones are a
/// few KiB (the largest in the shared corpus, mostly comments, is 11 KiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Read a Heartbeat file, refusing what is not a regular file of sane size, with an
/// error whose text says why (kind `InvalidData`; NotFound stays NotFound). The
/// checks are `files::read_regular`'s, shared with the key file and cluster.toml.
pub fn read_small_file(path: &Path) -> io::Result<Vec<u8>> {
    use crate::files::{self, FileError, Links};
    let refuse = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    match files::read_regular(path, MAX_FILE_BYTES, Links::Follow) {
        Ok((bytes, _)) => Ok(bytes),
        Err(FileError::NotFound) => Err(io::ErrorKind::NotFound.into()),
        Err(FileError::Io(e)) => Err(e),
        Err(FileError::NotRegular(kind)) => {
            Err(refuse(format!("it is {kind}, not a regular file")))
        }
        Err(FileError::TooLarge { size, .. }) => Err(refuse(format!(
            "it is {size} bytes, more than the {MAX_FILE_BYTES} bytes (1 MiB) the importer reads; Heartbeat's files are a few KiB"
        ))),
        Err(e @ FileError::Symlink(_)) => Err(refuse(format!("it is {e}"))),
    }
}

/// The machine the importer runs on.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealHost;

impl Host for RealHost {
    fn hostname(&self) -> Option<String> {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }
    fn interface_addrs(&self, iface: &str) -> Vec<(IpAddr, u8)> {
        let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for a in addrs.filter(|a| a.interface_name == iface) {
            let (Some(addr), Some(mask)) = (a.address, a.netmask) else {
                continue;
            };
            if let (Some(ad), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
                out.push((IpAddr::V4(ad.ip()), m.ip().to_bits().count_ones() as u8));
            } else if let (Some(ad), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
                let bits: u32 = m.ip().octets().iter().map(|b| b.count_ones()).sum();
                out.push((IpAddr::V6(ad.ip()), bits as u8));
            }
        }
        out
    }
    fn resolve(&self, name: &str) -> Option<IpAddr> {
        let text = std::fs::read_to_string("/etc/hosts").ok()?;
        hosts_lookup(&text, name)
    }
}

/// Look a name up in /etc/hosts text (first match, case-insensitive).
pub fn hosts_lookup(text: &str, name: &str) -> Option<IpAddr> {
    text.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or("");
        let mut w = l.split_whitespace();
        let ip: IpAddr = w.next()?.parse().ok()?;
        w.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
    })
}

/// A simulated host: a name, interfaces and /etc/hosts entries given by the caller,
/// files read from the real filesystem. For tests and for dry runs elsewhere.
#[derive(Debug, Default, Clone)]
pub struct SimHost {
    pub hostname: Option<String>,
    pub interfaces: BTreeMap<String, Vec<(IpAddr, u8)>>,
    pub hosts: BTreeMap<String, IpAddr>,
    /// Permission bits reported for every existing file (None: the real ones).
    pub file_mode: Option<u32>,
}

impl SimHost {
    pub fn new(hostname: &str) -> Self {
        SimHost {
            hostname: Some(hostname.to_string()),
            ..SimHost::default()
        }
    }
    /// Add an address (`"10.0.0.1/24"`) to an interface. Panics on a bad literal (tests only).
    pub fn with_addr(mut self, iface: &str, cidr: &str) -> Self {
        let (a, p) = cidr.split_once('/').unwrap_or((cidr, "32"));
        let ip: IpAddr = a.parse().expect("address literal");
        let p: u8 = p.parse().expect("prefix literal");
        self.interfaces
            .entry(iface.to_string())
            .or_default()
            .push((ip, p));
        self
    }
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.file_mode = Some(mode);
        self
    }
    pub fn with_host(mut self, name: &str, ip: &str) -> Self {
        self.hosts.insert(
            name.to_ascii_lowercase(),
            ip.parse().expect("address literal"),
        );
        self
    }
}

impl Host for SimHost {
    fn hostname(&self) -> Option<String> {
        self.hostname.clone()
    }
    fn interface_addrs(&self, iface: &str) -> Vec<(IpAddr, u8)> {
        self.interfaces.get(iface).cloned().unwrap_or_default()
    }
    fn resolve(&self, name: &str) -> Option<IpAddr> {
        self.hosts.get(&name.to_ascii_lowercase()).copied()
    }
    fn mode(&self, path: &Path) -> Option<u32> {
        let real = std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)?;
        Some(self.file_mode.unwrap_or(real))
    }
}

/// Choices the caller makes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Which node this host is (default: the host name); only needed for ucast links.
    pub node: Option<String>,
    /// Where the Heartbeat directory lives on the nodes, for script paths
    /// (default: /etc/ha.d when importing /etc/ha.d, else the imported directory).
    pub node_dir: Option<PathBuf>,
    /// This node's address on ucast links, keyed by hbd link name (`ucast-eth1`) or
    /// by interface (`eth1`): `--address LINK=ADDR`, for imports off the node.
    /// Interfaces are not consulted for a link given here.
    pub addresses: Vec<(String, IpAddr)>,
    /// Never look at this machine's interfaces (the import runs off the nodes).
    pub off_node: bool,
    /// `auth.key_file` to write (default /etc/hbd/authkey): `--key-output`.
    pub key_file: Option<PathBuf>,
    /// Where `addresses` came from, for the report (default: `--address`).
    pub address_source: Option<String>,
    /// Write `[migration] protocol = "heartbeat"` (`--migration`): the node joins the
    /// running Heartbeat cluster instead of replacing it all at once.
    pub migration: bool,
}

/// The key the imported cluster signs with.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportedKey {
    pub id: u8,
    pub secret: String,
    /// True when the secret was generated (crc or no authkeys): it differs on every run.
    pub fresh: bool,
}

impl std::fmt::Debug for ImportedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedKey")
            .field("id", &self.id)
            .field("fresh", &self.fresh)
            .finish_non_exhaustive()
    }
}

impl ImportedKey {
    /// The key file in hbd's format.
    pub fn file_text(&self) -> String {
        keys::render(&BTreeMap::from([(self.id, self.secret.clone())]))
    }
}

/// A successful import.
#[derive(Debug, Clone)]
pub struct Imported {
    pub config: Config,
    /// cluster.toml text, identical on every node of the cluster.
    pub toml: String,
    pub key: ImportedKey,
    pub report: Report,
}

/// Import the Heartbeat directory `dir`.
pub fn import(dir: &Path, opts: &Options, host: &dyn Host) -> Result<Imported, ImportError> {
    let mut report = Report::default();
    let mut comments = Comments::default();

    let hacf_bytes = read_required(host, dir, hacf::FILE)?;
    let cf = hacf::parse(&hacf_bytes, hacf::FILE, &mut report)?;

    // Members.
    if cf.nodes.is_empty() {
        let line = cf.autojoin.unwrap_or(0);
        return Err(ImportError::at(
            hacf::FILE,
            line,
            "no `node` lines: hbd needs every member of the cluster listed (it has no autojoin)",
        ));
    }
    for (name, line) in &cf.nodes {
        if name.len() > 63
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ImportError::at(
                hacf::FILE,
                *line,
                format!("node name \"{name}\" must be at most 63 letters, digits, '-', '_' or '.'"),
            ));
        }
    }
    if cf.nodes.len() < 2 {
        return Err(ImportError::at(
            hacf::FILE,
            cf.nodes[0].1,
            "only one node is listed: a cluster needs at least two `node` names",
        ));
    }
    if cf.media.is_empty()
        && let Some(&line) = cf.mcast6.first()
    {
        return Err(ImportError::at(
            hacf::FILE,
            line,
            "mcast6 (IPv6 multicast) is the only heartbeat medium and hbd has no IPv6 multicast link yet: use ucast lines with IPv6 addresses, or an IPv4 bcast/mcast link",
        ));
    }
    if cf.media.is_empty() {
        return Err(ImportError::at(
            hacf::FILE,
            0,
            "no heartbeat media (bcast, mcast, ucast or serial): Heartbeat refuses this too (\"No heartbeat media defined\")",
        ));
    }

    // Everything else ha.cf says, so its errors come before haresources'.
    let timing = timing(&cf, &mut report, &mut comments)?;
    let mut failover = failover(&cf, &mut report, &mut comments);
    ping_nodes(
        &cf,
        host,
        &timing,
        &mut failover,
        &mut report,
        &mut comments,
    );
    let (links, addresses, link_lines) = links(&cf, opts, host, &mut report, &mut comments)?;

    // Resource groups.
    let groups_text = read_optional(host, dir, haresources::FILE)?;
    let group_lines = match &groups_text {
        Some(b) => haresources::parse(b, haresources::FILE, &mut report)?,
        None => {
            if cf.pacemaker.is_none() {
                report.note(
                    haresources::FILE,
                    0,
                    "not present: no resource groups imported",
                );
            }
            Vec::new()
        }
    };
    let node_names: Vec<&str> = cf.nodes.iter().map(|(n, _)| n.as_str()).collect();
    for g in &group_lines {
        if !node_names.contains(&g.node.as_str()) {
            let mut msg = format!(
                "node \"{}\" is not declared in ha.cf (nodes: {}); Heartbeat refuses this too (\"Bad nodename\")",
                g.node,
                node_names.join(", ")
            );
            if let Some(s) = config::did_you_mean(&g.node, node_names.iter().copied()) {
                msg.push_str(&format!("; did you mean \"{s}\"?"));
            }
            return Err(ImportError::at(haresources::FILE, g.line, msg));
        }
    }
    if cf.pacemaker.is_some() && !group_lines.is_empty() {
        report.warning(
            haresources::FILE,
            0,
            "imported although ha.cf enables Pacemaker (which ignores haresources): check these groups are still wanted",
        );
    }

    let node_dir = opts.node_dir.clone().unwrap_or_else(|| {
        let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        if abs == Path::new(HA_DIR) || abs == Path::new("/etc/ha.d/") {
            PathBuf::from(HA_DIR)
        } else {
            abs
        }
    });
    let rdir = dir.join("resource.d");
    let node_rdir = node_dir.join("resource.d");
    let find = |name: &str| -> Option<PathBuf> {
        if name.is_empty() || name.contains('/') {
            return None;
        }
        host.is_file(&rdir.join(name)).then(|| node_rdir.join(name))
    };
    // Scripts missing from the imported tree are expected where Heartbeat kept them.
    let installed = Path::new(HA_DIR).join("resource.d");
    let scripts = haresources::Scripts {
        find: &find,
        node_dir: &installed,
    };
    let mut groups = Vec::new();
    let mut taken = BTreeSet::new();
    for g in &group_lines {
        let resources = haresources::convert(g, haresources::FILE, &scripts, &mut report)?;
        let name = group_name(&resources, &mut taken);
        comments.groups.push(format!(
            "from haresources:{}: {}",
            g.line,
            g.resources
                .iter()
                .map(|r| r.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
        groups.push(Group {
            name,
            preferred: g.node.clone(),
            max_restarts: 3,
            restart_window: HumanDuration::from_secs(300),
            resources,
        });
    }

    duplicates(&groups, &group_lines)?;

    // Key.
    let key = import_key(host, dir, opts.migration, &mut report, &mut comments)?;

    let mut nodes: Vec<Node> = cf
        .nodes
        .iter()
        .map(|(n, _)| Node {
            name: n.clone(),
            address: addresses.get(n).cloned().unwrap_or_default(),
            fence: None,
        })
        .collect();
    fencing(&cf, &mut nodes, &mut report, &mut comments);

    let cluster_name = match &cf.cluster {
        Some((c, line)) if !sanitize(c).is_empty() => {
            let s = sanitize(c);
            if s != *c {
                report.changed(
                    hacf::FILE,
                    *line,
                    format!("cluster name \"{c}\" written as \"{s}\""),
                );
            }
            s
        }
        _ => {
            let short: Vec<&str> = node_names
                .iter()
                .map(|n| n.split('.').next().unwrap_or(n))
                .collect();
            let mut s = sanitize(&format!("ha-{}", short.join("-")));
            s.truncate(63);
            let s = s.trim_end_matches('-').to_string();
            report.note(
                hacf::FILE,
                0,
                format!("cluster name \"{s}\" made from the node names (ha.cf has no `cluster`); rename it if you like, identically on every node"),
            );
            s
        }
    };

    let config = Config {
        cluster: ClusterSection {
            name: cluster_name,
            id: None,
        },
        timing,
        auth: Auth {
            algorithm: config::Algorithm::HmacSha256,
            key_file: opts
                .key_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(config::DEFAULT_KEY_FILE)),
            key_id: key.id,
        },
        failover,
        metrics: Default::default(),
        events: Default::default(),
        migration: if opts.migration {
            config::Migration {
                protocol: config::Protocol::Heartbeat,
                authkeys: Some(node_dir.join(authkeys::FILE)),
            }
        } else {
            Default::default()
        },
        links,
        nodes,
        groups,
    };
    if opts.migration {
        report.note(
            "cluster.toml",
            0,
            format!(
                "[migration] protocol = \"heartbeat\": this node joins the running Heartbeat cluster, signing with {} (keep that file until the switch to protocol = \"hbd\")",
                node_dir.join(authkeys::FILE).display()
            ),
        );
    }
    if let Some(k) = &opts.key_file {
        report.note(
            "cluster.toml",
            0,
            format!("auth.key_file is {} (where --key-output wrote the key); if the nodes keep it elsewhere, e.g. /etc/hbd/authkey, change key_file the same way on every node", k.display()),
        );
    }
    let toml = render::render(&config, &comments);
    match config::parse_str(&toml, Path::new("cluster.toml")) {
        Ok(loaded) => {
            for w in loaded.warnings {
                let line = w.position.map(|p| p.line).unwrap_or(0);
                let key = if w.key.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", w.key)
                };
                report.warning("cluster.toml", line, format!("{key}{}", w.message));
            }
        }
        Err(e) => return Err(ImportError::Invalid(e.to_string())),
    }
    // Every directive has an answer: what carried over says where it went (a
    // line whose meaning changed already says so).
    let changed: BTreeSet<usize> = report
        .entries
        .iter()
        .filter(|e| e.file == hacf::FILE && e.severity == Severity::Changed)
        .map(|e| e.line)
        .collect();
    let mut link_at: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (line, name) in &link_lines {
        let names = link_at.entry(*line).or_default();
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    for (line, text) in &cf.mapped {
        if !changed.contains(line) {
            let text = mapped_text(text, *line, &config, &cf, &link_at);
            report.mapped(hacf::FILE, *line, text);
        }
    }
    report.sort();
    Ok(Imported {
        config,
        toml,
        key,
        report,
    })
}

/// Import the trees of several nodes of one cluster at once, off the nodes (in a
/// repository or a config-management checkout): each tree's `ucast` lines name
/// its peers, so together they give every node's address. Each tree is imported
/// as its own node would import it (with the addresses the other trees supply,
/// never this machine's interfaces), and the results must agree byte for byte;
/// that one cluster.toml is returned, with the report of every tree.
///
/// `nodes[i]`, when given, names the node of `dirs[i]`; otherwise a directory
/// component that is a node's name (`alpha/etc/ha.d`), the address the other
/// trees give for it (through /etc/hosts), or elimination decides.
pub fn import_many(
    dirs: &[PathBuf],
    nodes: &[String],
    opts: &Options,
    host: &dyn Host,
) -> Result<Imported, ImportError> {
    if dirs.len() < 2 {
        let node = nodes.first().cloned().or_else(|| opts.node.clone());
        let one = Options {
            node,
            ..opts.clone()
        };
        let dir = dirs
            .first()
            .map(PathBuf::as_path)
            .unwrap_or(Path::new(HA_DIR));
        return import(dir, &one, host);
    }
    if nodes.len() > dirs.len() {
        return Err(ImportError::Usage(format!(
            "{} --node options for {} trees: give at most one per tree, in the order of the trees",
            nodes.len(),
            dirs.len()
        )));
    }
    if !opts.addresses.is_empty() {
        return Err(ImportError::Usage(
            "--address is for importing one node's tree; with several trees the addresses come from the trees' ucast lines".into(),
        ));
    }
    let in_tree = |dir: &Path, e: ImportError| match e {
        ImportError::At {
            file,
            line,
            message,
        } => ImportError::At {
            file: dir.join(file).display().to_string(),
            line,
            message,
        },
        other => other,
    };
    // Each tree's ha.cf: its node names and its ucast peers by interface.
    let mut parsed = Vec::new();
    for dir in dirs {
        let bytes = read_required(host, dir, hacf::FILE).map_err(|e| in_tree(dir, e))?;
        let cf =
            hacf::parse(&bytes, hacf::FILE, &mut Report::default()).map_err(|e| in_tree(dir, e))?;
        parsed.push(cf);
    }
    let names: Vec<String> = parsed[0].nodes.iter().map(|(n, _)| n.clone()).collect();
    for (dir, cf) in dirs.iter().zip(&parsed).skip(1) {
        let other: Vec<String> = cf.nodes.iter().map(|(n, _)| n.clone()).collect();
        if other != names {
            return Err(ImportError::Usage(format!(
                "{} and {} are not one cluster: their ha.cf name the nodes {} and {}",
                dirs[0].display(),
                dir.display(),
                names.join(", "),
                other.join(", ")
            )));
        }
    }
    let peers = |cf: &HaCf, iface: &str| -> BTreeSet<IpAddr> {
        cf.media
            .iter()
            .filter_map(|m| match m {
                Medium::Ucast { iface: i, peer, .. } if i == iface => {
                    peer.parse().ok().or_else(|| host.resolve(peer))
                }
                _ => None,
            })
            .collect()
    };
    let ifaces = |cf: &HaCf| -> BTreeSet<String> {
        cf.media
            .iter()
            .filter_map(|m| match m {
                Medium::Ucast { iface, .. } => Some(iface.clone()),
                _ => None,
            })
            .collect()
    };
    // A tree's own address on an interface: what the other trees list and it does not.
    let mut own: Vec<Vec<(String, IpAddr)>> = Vec::new();
    for (i, cf) in parsed.iter().enumerate() {
        let mut mine = Vec::new();
        for iface in ifaces(cf) {
            let listed = peers(cf, &iface);
            let others: BTreeSet<IpAddr> = parsed
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, o)| peers(o, &iface))
                .filter(|ip| !listed.contains(ip))
                .collect();
            if others.len() == 1 {
                mine.extend(others.into_iter().map(|ip| (iface.clone(), ip)));
            }
        }
        own.push(mine);
    }
    // Which node each tree is.
    let mut node_of: Vec<Option<String>> = vec![None; dirs.len()];
    for (i, dir) in dirs.iter().enumerate() {
        if let Some(n) = nodes.get(i) {
            let n = n.to_ascii_lowercase();
            if !names.contains(&n) {
                return Err(ImportError::Usage(format!(
                    "--node {n} (for {}) is not a node of ha.cf (nodes: {})",
                    dir.display(),
                    names.join(", ")
                )));
            }
            node_of[i] = Some(n);
            continue;
        }
        let short = |s: &str| s.split('.').next().unwrap_or("").to_string();
        node_of[i] = dir
            .components()
            .rev()
            .filter_map(|c| c.as_os_str().to_str().map(str::to_ascii_lowercase))
            .find_map(|c| {
                // `alpha`, `alpha.example.com`, or a suffix: `ucast-pair-alpha`.
                names
                    .iter()
                    .find(|n| **n == c || short(n) == c)
                    .or_else(|| {
                        let hits: Vec<&String> = names
                            .iter()
                            .filter(|n| {
                                c.strip_suffix(n.as_str())
                                    .is_some_and(|p| p.ends_with(['-', '_', '.']))
                            })
                            .collect();
                        (hits.len() == 1).then(|| hits[0])
                    })
                    .cloned()
            })
            .or_else(|| {
                let addrs: Vec<IpAddr> = own[i].iter().map(|(_, ip)| *ip).collect();
                let hits: Vec<&String> = names
                    .iter()
                    .filter(|n| host.resolve(n).is_some_and(|ip| addrs.contains(&ip)))
                    .collect();
                (hits.len() == 1).then(|| hits[0].clone())
            });
    }
    let unknown: Vec<usize> = (0..dirs.len()).filter(|i| node_of[*i].is_none()).collect();
    if unknown.len() == 1 {
        let left: Vec<&String> = names
            .iter()
            .filter(|n| !node_of.iter().flatten().any(|m| m == *n))
            .collect();
        if left.len() == 1 {
            node_of[unknown[0]] = Some(left[0].clone());
        }
    }
    for (i, n) in node_of.iter().enumerate() {
        if let Some(n) = n
            && let Some(j) = node_of[..i].iter().position(|m| m.as_ref() == Some(n))
        {
            return Err(ImportError::Usage(format!(
                "{} and {} are both node {n}: give each tree its own --node, in the order of the trees",
                dirs[j].display(),
                dirs[i].display()
            )));
        }
    }
    // Import each tree as its node would.
    let mut results: Vec<Imported> = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let has_ucast = !ifaces(&parsed[i]).is_empty();
        if has_ucast && node_of[i].is_none() {
            return Err(ImportError::Usage(format!(
                "cannot tell which node {} belongs to (nodes: {}): pass --node NAME once per tree, in the order of the trees",
                dir.display(),
                names.join(", ")
            )));
        }
        let o = Options {
            node: node_of[i].clone(),
            addresses: own[i].clone(),
            address_source: Some(
                "the address the other trees' ucast lines give and this one's do not".into(),
            ),
            off_node: true,
            ..opts.clone()
        };
        let got = import(dir, &o, host).map_err(|e| in_tree(dir, e))?;
        results.push(got);
    }
    // One cluster.toml, one key.
    let first = &results[0];
    for (dir, r) in dirs.iter().zip(&results).skip(1) {
        if r.toml != first.toml {
            let (n, a, b) = first
                .toml
                .lines()
                .zip(r.toml.lines())
                .enumerate()
                .find(|(_, (a, b))| a != b)
                .map(|(n, (a, b))| (n + 1, a.to_string(), b.to_string()))
                .unwrap_or((0, String::new(), String::new()));
            return Err(ImportError::Usage(format!(
                "{} and {} give different cluster.toml files (line {n}: `{a}` against `{b}`): make their ha.cf and haresources agree (only ucast lines may differ), then import again",
                dirs[0].display(),
                dir.display()
            )));
        }
        if !(r.key.fresh && first.key.fresh) && r.key != first.key {
            return Err(ImportError::Usage(format!(
                "{} and {} have different authkeys: the nodes could not have talked to each other; make them agree",
                dirs[0].display(),
                dir.display()
            )));
        }
    }
    let mut report = Report::default();
    let mut seen: BTreeSet<(String, usize, Severity, String)> = BTreeSet::new();
    for (dir, r) in dirs.iter().zip(&results) {
        for e in &r.report.entries {
            if seen.insert((e.file.clone(), e.line, e.severity, e.message.clone())) {
                let file = if e.file == "cluster.toml" {
                    e.file.clone()
                } else {
                    dir.join(&e.file).display().to_string()
                };
                report.push(&file, e.line, e.severity, e.message.clone());
            }
        }
    }
    let mut out = results.swap_remove(0);
    out.report = report;
    Ok(out)
}

/// The `mapped` line of one directive, naming what it became where that is known.
fn mapped_text(
    generic: &str,
    line: usize,
    config: &Config,
    cf: &HaCf,
    link_at: &BTreeMap<usize, Vec<&str>>,
) -> String {
    let (shown, _) = generic.split_once(" → ").unwrap_or((generic, ""));
    let dir = shown.split_whitespace().next().unwrap_or("");
    let timed = |t: Option<hacf::Timed>, key: &str, v: HumanDuration| match t {
        Some(t) if t.line == line => format!("{shown} → [timing] {key} = \"{v}\""),
        Some(t) => format!(
            "{shown} → nothing: line {} sets {key} again, and the last one counts",
            t.line
        ),
        None => generic.to_string(),
    };
    let t = &config.timing;
    match dir {
        "keepalive" => timed(cf.keepalive, "keepalive", t.keepalive),
        "deadtime" => timed(cf.deadtime, "deadtime", t.deadtime),
        "warntime" => timed(cf.warntime, "warntime", t.warntime),
        "initdead" => timed(cf.initdead, "initdead", t.initdead),
        "bcast" | "udp" | "mcast" | "ucast" | "serial" => match link_at.get(&line) {
            Some(names) => format!(
                "{shown} → [[link]] {}{}",
                names.join(", "),
                if dir == "ucast" {
                    " (the peer's address goes into its [[node]] address table)"
                } else {
                    ""
                }
            ),
            None => generic.to_string(),
        },
        "auto_failback" => match cf.auto_failback {
            Some((_, l)) if l == line => format!(
                "{shown} → [failover] auto_failback = {}",
                config.failover.auto_failback
            ),
            _ => format!("{shown} → nothing: a later auto_failback line counts"),
        },
        "node" => {
            let here: Vec<&str> = cf
                .nodes
                .iter()
                .filter(|(_, l)| *l == line)
                .map(|(n, _)| n.as_str())
                .collect();
            format!("{shown} → [[node]] {}", here.join(", "))
        }
        "cluster" => format!("{shown} → [cluster] name = \"{}\"", config.cluster.name),
        _ => generic.to_string(),
    }
}

/// A virtual IP, unit or mount point can belong to one group only (hbd would
/// fight itself over it); say so with the haresources line rather than later.
fn duplicates(groups: &[Group], lines: &[haresources::GroupLine]) -> Result<(), ImportError> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (g, l) in groups.iter().zip(lines) {
        for r in &g.resources {
            let key = match r {
                Resource::Ip(ip) => format!("address {}", ip.address.addr),
                Resource::Unit(u) => format!("unit {}", u.unit),
                Resource::Mount(m) => format!("mount point {}", m.r#where.display()),
                Resource::Script(_) => continue,
            };
            if let Some(prev) = seen.insert(key.clone(), l.line) {
                let whose = if prev == l.line {
                    "this line".to_string()
                } else {
                    format!("the group of line {prev}")
                };
                return Err(ImportError::at(
                    haresources::FILE,
                    l.line,
                    format!(
                        "{key} is already a resource of {whose}; a resource belongs to one group"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Write `text` to `path` through a temporary file in the same directory, then
/// rename it into place. The temporary file is created exclusively (O_EXCL, a
/// random name, never through a symlink) with mode 0644 and synced before the
/// rename, so a link planted in the directory cannot redirect the write and a
/// crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), ImportError> {
    use std::io::Write;
    let werr = |source| ImportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(werr)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(&dir)
        .map_err(werr)?;
    tmp.write_all(text.as_bytes()).map_err(werr)?;
    tmp.as_file().sync_all().map_err(werr)?;
    // On failure the temporary file is removed when `tmp` is dropped.
    tmp.persist(path).map_err(|e| werr(e.error))?;
    Ok(())
}

fn read_required(host: &dyn Host, dir: &Path, name: &str) -> Result<Vec<u8>, ImportError> {
    match read_optional(host, dir, name)? {
        Some(b) => Ok(b),
        None => Err(ImportError::at(
            name,
            0,
            format!(
                "not found in {}: is this a Heartbeat directory?",
                dir.display()
            ),
        )),
    }
}

fn read_optional(host: &dyn Host, dir: &Path, name: &str) -> Result<Option<Vec<u8>>, ImportError> {
    let path = dir.join(name);
    match host.read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ImportError::Read { path, source }),
    }
}

/// Names allowed in cluster.toml: letters, digits, '-', '_', '.'; anything else becomes '-'.
fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches('-').to_string()
}

/// Heartbeat scripts that only announce a failover; they say nothing about what
/// a group is, so they do not name it.
const NOTIFIERS: &[&str] = &["MailTo", "AudibleAlarm", "WinPopup", "Delay"];

/// A deterministic, unique group name: the group's virtual IP ("ip-10-0-0-1"),
/// else its first service, else its first script (with its first argument),
/// else its first mount point.
fn group_name(resources: &[Resource], taken: &mut BTreeSet<String>) -> String {
    let script = |s: &crate::config::ScriptResource| {
        let name = s
            .path
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        match s.args.first() {
            Some(a) => format!("{name}-{a}"),
            None => name,
        }
    };
    let base = resources
        .iter()
        .find_map(|r| match r {
            Resource::Ip(ip) => Some(format!("ip-{}", ip.address.addr)),
            _ => None,
        })
        .or_else(|| {
            resources.iter().find_map(|r| match r {
                Resource::Unit(u) => Some(
                    u.unit
                        .strip_suffix(".service")
                        .unwrap_or(&u.unit)
                        .to_string(),
                ),
                _ => None,
            })
        })
        .or_else(|| {
            resources.iter().find_map(|r| match r {
                Resource::Script(s)
                    if !s
                        .path
                        .file_name()
                        .is_some_and(|f| NOTIFIERS.iter().any(|n| f == *n)) =>
                {
                    Some(script(s))
                }
                _ => None,
            })
        })
        .or_else(|| {
            resources.iter().find_map(|r| match r {
                Resource::Mount(m) => Some(format!("fs-{}", m.r#where.display())),
                _ => None,
            })
        })
        .unwrap_or_else(|| "group".to_string());
    let mut base = sanitize(&base.replace(['.', ':', '/'], "-")).to_ascii_lowercase();
    base.truncate(56);
    let base = match base.trim_end_matches('-') {
        "" => "group".to_string(),
        b => b.to_string(),
    };
    let mut name = base.clone();
    let mut i = 2;
    while taken.contains(&name) {
        name = format!("{base}-{i}");
        i += 1;
    }
    taken.insert(name.clone());
    name
}

fn import_key(
    host: &dyn Host,
    dir: &Path,
    migrating: bool,
    report: &mut Report,
    comments: &mut Comments,
) -> Result<ImportedKey, ImportError> {
    const F: &str = authkeys::FILE;
    let path = dir.join(F);
    let Some(bytes) = read_optional(host, dir, F)? else {
        let secret = keys::random_secret()?;
        report.warning(
            F,
            0,
            "not present (Heartbeat refuses to start without it): a FRESH RANDOM KEY was generated — it differs on every node that runs the import, so write it once and copy the same key file to every node",
        );
        comments.auth =
            "authkeys missing: fresh random key; copy the same key file to every node".into();
        return Ok(ImportedKey {
            id: 1,
            secret,
            fresh: true,
        });
    };
    if let Some(mode) = host.mode(&path).filter(|m| m & 0o077 != 0) {
        report.warning(
            F,
            0,
            format!("is readable by group or others (mode {mode:04o}; Heartbeat wants 0600): the secret may have leaked — consider a new one (`hbd keygen`); hbd's key file is written with mode 0600"),
        );
    }
    let k = authkeys::parse(&bytes, F, report)?;
    // hbd numbers keys from 1; Heartbeat from 0. Only the active key carries over,
    // so key 0 can become key 1 without meeting another.
    let hbd_id = if k.id == 0 {
        report.changed(
            F,
            k.line,
            "key 0 becomes hbd key 1 (hbd numbers keys from 1 to 255)",
        );
        1
    } else {
        k.id
    };
    match (k.method, k.secret) {
        (authkeys::Method::Crc, _) => {
            report.warning(
                F,
                k.line,
                format!("key {} is crc, which has no secret (anyone on the network could forge heartbeats): a FRESH RANDOM KEY was generated — it differs on every node that runs the import, so write it once and copy the same key file to every node", k.id),
            );
            comments.auth = format!(
                "authkeys:{}: crc had no secret: fresh random key; copy the same key file to every node",
                k.line
            );
            Ok(ImportedKey {
                id: hbd_id,
                secret: keys::random_secret()?,
                fresh: true,
            })
        }
        (m, Some(secret)) => {
            report.changed(
                F,
                k.line,
                format!("key {} ({}): the secret carries over as hbd key {hbd_id}, signed with HMAC-SHA256 ({})", k.id, m.name(), if migrating { "used once the cluster switches to hbd's protocol; until then authkeys signs Heartbeat's" } else { "hbd's protocol is not Heartbeat's, so upgrade all nodes together" }),
            );
            if secret.len() < keys::MIN_SECRET {
                report.warning(
                    F,
                    k.line,
                    format!("the secret is only {} characters long; `hbd keygen` makes a 64-character one", secret.len()),
                );
            }
            if let Some(rest) = &k.ignored {
                report.warning(
                    F,
                    k.line,
                    format!("the secret is written as several words; Heartbeat's authkeys reader took only the first word, `{secret}` (quote marks included), and ignored `{rest}`, so `{secret}` is the secret carried over, as the nodes used it; a new key is wiser (`hbd keygen`, then copy the key file to every node)"),
                );
            }
            comments.auth = format!("authkeys:{}: {} secret carried over", k.line, m.name());
            Ok(ImportedKey {
                id: hbd_id,
                secret,
                fresh: false,
            })
        }
        (_, None) => Err(ImportError::at(F, k.line, "the key has no secret")),
    }
}

/// Heartbeat's timing, with its defaults for what ha.cf leaves out.
fn timing(cf: &HaCf, report: &mut Report, comments: &mut Comments) -> Result<Timing, ImportError> {
    const F: &str = hacf::FILE;
    let src = |t: Option<hacf::Timed>, what: &str| match t {
        Some(t) => format!("ha.cf:{}", t.line),
        None => format!("not in ha.cf: Heartbeat's default ({what})"),
    };
    let ka = cf.keepalive.map(|t| t.ms).unwrap_or(1000);
    let dead = cf.deadtime.map(|t| t.ms).unwrap_or(30_000);
    let line_of = |t: Option<hacf::Timed>| t.map(|t| t.line).unwrap_or(0);
    if ka < 10 {
        return Err(ImportError::at(
            F,
            line_of(cf.keepalive),
            format!("keepalive {ka}ms is below hbd's 10ms minimum"),
        ));
    }
    if dead <= 2 * ka {
        return Err(ImportError::at(
            F,
            line_of(cf.deadtime.or(cf.keepalive)),
            format!(
                "deadtime {} must be more than twice keepalive {} (Heartbeat refuses this too)",
                HumanDuration::from_millis(dead),
                HumanDuration::from_millis(ka)
            ),
        ));
    }
    let mut warn = cf.warntime.map(|t| t.ms).unwrap_or(dead / 2);
    let mut warn_src = src(cf.warntime, "deadtime / 2");
    if warn >= dead {
        let new = dead / 2;
        report.changed(
            F,
            line_of(cf.warntime),
            format!(
                "warntime {} is not shorter than deadtime {}, so it could never fire; hbd requires it to be: set to {} (deadtime / 2, Heartbeat's default)",
                HumanDuration::from_millis(warn),
                HumanDuration::from_millis(dead),
                HumanDuration::from_millis(new)
            ),
        );
        warn = new;
        warn_src = format!("ha.cf:{}, lowered below deadtime", line_of(cf.warntime));
    }
    let init = match cf.initdead {
        Some(t) => t.ms,
        None if dead > 10_000 => dead,
        None if dead < 6000 => 12_000,
        None => 2 * dead,
    };
    if init < dead {
        return Err(ImportError::at(
            F,
            line_of(cf.initdead),
            format!(
                "initdead {} is shorter than deadtime {} (Heartbeat refuses this too)",
                HumanDuration::from_millis(init),
                HumanDuration::from_millis(dead)
            ),
        ));
    }
    comments.timing = [
        src(cf.keepalive, "1s"),
        warn_src,
        src(cf.deadtime, "30s"),
        src(cf.initdead, "derived from deadtime"),
    ];
    for (t, name) in [
        (cf.keepalive, "keepalive"),
        (cf.deadtime, "deadtime"),
        (cf.initdead, "initdead"),
    ] {
        if t.is_none() {
            report.note(
                F,
                0,
                format!("no {name}: Heartbeat's default is written out explicitly"),
            );
        }
    }
    Ok(Timing {
        keepalive: HumanDuration::from_millis(ka),
        warntime: HumanDuration::from_millis(warn),
        deadtime: HumanDuration::from_millis(dead),
        initdead: HumanDuration::from_millis(init),
    })
}

fn failover(cf: &HaCf, report: &mut Report, comments: &mut Comments) -> Failover {
    const F: &str = hacf::FILE;
    let auto_failback = match cf.auto_failback {
        Some((AutoFailback::On, l)) => {
            comments.failback = format!("ha.cf:{l}: auto_failback on");
            true
        }
        Some((AutoFailback::Off, l)) => {
            comments.failback = format!("ha.cf:{l}: auto_failback off");
            false
        }
        Some((AutoFailback::Legacy, l)) => {
            report.changed(F, l, "auto_failback legacy (failback as Heartbeat 1 did) imported as auto_failback = true; decide and set it explicitly");
            comments.failback = format!("ha.cf:{l}: auto_failback legacy, imported as true");
            true
        }
        None => {
            report.changed(F, 0, "no auto_failback: Heartbeat's default is legacy (failback as Heartbeat 1 did), imported as auto_failback = true; decide and set it explicitly");
            comments.failback =
                "not in ha.cf: Heartbeat's default (legacy), imported as true".into();
            true
        }
    };
    Failover {
        auto_failback,
        hold_down: HumanDuration::from_secs(30),
        ..Failover::default()
    }
}

/// Heartbeat's STONITH devices as hbd fencing: each node a device can reach gets
/// `fence = { command = ["/usr/sbin/stonith", "-t", TYPE, ..., "-T", "reset", NODE] }`
/// (cluster-glue's `stonith` tool runs Heartbeat's very plugins; reset is what
/// Heartbeat did). A device usable from any node (`*`, or `stonith`) fences every
/// node; one attached to HOSTFROM fences the other node of a two-node cluster (the
/// only node hbd would ever ask to fence it is HOSTFROM). The first device that
/// covers a node wins; everything else is reported with its line.
fn fencing(cf: &HaCf, nodes: &mut [Node], report: &mut Report, comments: &mut Comments) {
    use hacf::StonithParams;
    const F: &str = hacf::FILE;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    for s in &cf.stonith {
        let dir = match (&s.params, &s.from) {
            (StonithParams::File(f), _) => format!("stonith {} {f}", s.kind),
            (StonithParams::Inline(_), from) => {
                format!("stonith_host {} {}", from.as_deref().unwrap_or("*"), s.kind)
            }
        };
        let targets: Vec<usize> = match &s.from {
            None => (0..nodes.len()).collect(),
            Some(from) if !names.contains(from) => {
                report.dropped(
                    F,
                    s.line,
                    format!("{dir} — {from} is not a node of this cluster, so no node can use the device"),
                );
                continue;
            }
            Some(from) if nodes.len() != 2 => {
                report.dropped(
                    F,
                    s.line,
                    format!(
                        "{dir} — the device is usable from {from} only, but in a cluster of {} nodes hbd fences from whichever node takes the group: give each node a fence every other node can run (see the README's fencing section)",
                        nodes.len()
                    ),
                );
                continue;
            }
            Some(from) => (0..nodes.len()).filter(|&i| names[i] != *from).collect(),
        };
        let mut mapped = Vec::new();
        for i in targets {
            let node = names[i].clone();
            if nodes[i].fence.is_some() {
                report.note(
                    F,
                    s.line,
                    format!("{dir} — {node} already has a fence from an earlier line; hbd runs one fence per node, so this device is not used for it"),
                );
                continue;
            }
            let mut command = vec![
                "/usr/sbin/stonith".to_string(),
                "-t".to_string(),
                s.kind.clone(),
            ];
            match &s.params {
                StonithParams::Inline(p) => {
                    command.push("-p".into());
                    command.push(p.join(" "));
                }
                StonithParams::File(f) => {
                    command.push("-F".into());
                    command.push(f.clone());
                }
            }
            command.extend(["-T".to_string(), "reset".to_string(), node.clone()]);
            nodes[i].fence = Some(crate::config::Fence {
                unit: None,
                command,
                timeout: None,
                delay: None,
            });
            comments
                .fences
                .insert(node.clone(), format!("{F}:{}: {dir}", s.line));
            mapped.push(node);
        }
        if mapped.is_empty() {
            continue;
        }
        report.mapped(
            F,
            s.line,
            format!(
                "{dir} → [[node]] fence = {{ command = [\"/usr/sbin/stonith\", \"-t\", \"{}\", ..., \"-T\", \"reset\", NODE] }} for {}: a takeover from a dead node (or a node whose stop failed) waits for it",
                s.kind,
                mapped.join(", ")
            ),
        );
        if matches!(s.params, StonithParams::Inline(ref p) if !p.is_empty()) {
            report.warning(
                F,
                s.line,
                "the device's parameters (often a password) are now in cluster.toml and on the fence's command line: keep cluster.toml mode 0600, or move them to a file and use `-F FILE` in the command",
            );
        }
    }
    if nodes.iter().any(|n| n.fence.is_some()) {
        report.note(
            F,
            0,
            "fencing runs cluster-glue's `stonith` tool (Debian package cluster-glue) on the node that takes over: install it on every node and try it once by hand (`stonith -t TYPE ... -S`)",
        );
    }
}

/// `ping`, `ping_group`, `deadping` and `respawn … ipfail` become `[failover] ping`
/// and `ping_dampen`: hbd's core does what ipfail did.
fn ping_nodes(
    cf: &HaCf,
    host: &dyn Host,
    timing: &Timing,
    failover: &mut Failover,
    report: &mut Report,
    comments: &mut Comments,
) {
    const F: &str = hacf::FILE;
    let mut lines: Vec<usize> = Vec::new();
    let mut groups: Vec<(usize, String)> = Vec::new();
    for t in &cf.ping {
        let what = match &t.group {
            Some(g) => format!("ping_group {g} member {}", t.target),
            None => format!("ping node {}", t.target),
        };
        let addr = match t.target.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let a = host.resolve(&t.target);
                if let Some(a) = a {
                    report.changed(
                        F,
                        t.line,
                        format!("{what} is {a} (from /etc/hosts): hbd pings addresses, so the address is written"),
                    );
                }
                a
            }
        };
        let Some(a) = addr else {
            report.dropped(
                F,
                t.line,
                format!("{what} — not an address and not in /etc/hosts: add it to [failover] ping by address"),
            );
            continue;
        };
        if a.is_loopback() || a.is_unspecified() || a.is_multicast() {
            report.dropped(
                F,
                t.line,
                format!("{what} — {a} is not one remote host (loopback, unspecified or multicast): it tells nothing about the network"),
            );
        } else if failover.ping.contains(&a) {
            report.warning(
                F,
                t.line,
                format!("{what} is listed twice; the repeat is ignored"),
            );
        } else if failover.ping.len() >= crate::config::MAX_PING {
            report.dropped(
                F,
                t.line,
                format!(
                    "{what} — hbd takes at most {} ping nodes",
                    crate::config::MAX_PING
                ),
            );
        } else {
            failover.ping.push(a);
            if !lines.contains(&t.line) {
                lines.push(t.line);
            }
            if let Some(g) = &t.group {
                if !groups.iter().any(|(l, _)| *l == t.line) {
                    groups.push((t.line, g.clone()));
                }
            }
        }
    }
    for &l in &lines {
        let on_line: Vec<&hacf::PingTarget> = cf.ping.iter().filter(|t| t.line == l).collect();
        let words: Vec<&str> = on_line.iter().map(|t| t.target.as_str()).collect();
        let shown = match on_line.first().and_then(|t| t.group.as_deref()) {
            Some(g) => format!("ping_group {g} {}", words.join(" ")),
            None => format!("ping {}", words.join(" ")),
        };
        report.mapped(F, l, format!("{shown} → [failover] ping"));
    }
    for (l, g) in &groups {
        report.changed(
            F,
            *l,
            format!("ping_group {g}: its members are ping nodes counted one by one (Heartbeat counted the group as one node, reached while any member answered); a node that reaches none still stops its groups, and one that reaches fewer members than a peer hands its groups over"),
        );
    }
    match (&cf.ipfail, failover.ping.is_empty()) {
        (Some((l, shown)), false) => report.mapped(
            F,
            *l,
            format!("{shown} → nothing to run: hbd itself moves groups away from a node that reaches fewer ping nodes ([failover] ping)"),
        ),
        (Some((l, shown)), true) => report.dropped(
            F,
            *l,
            format!("{shown} — without ping nodes ipfail had nothing to act on; nothing imported"),
        ),
        (None, false) => report.changed(
            F,
            lines[0],
            "ping nodes without `respawn … ipfail`: Heartbeat only reported them, hbd acts on them (a node that reaches none stops its groups, one that reaches fewer than a peer hands them over); remove [failover] ping to keep the old behaviour",
        ),
        (None, true) => {}
    }
    if failover.ping.is_empty() {
        if let Some((d, shown)) = &cf.deadping {
            report.dropped(F, d.line, format!("{shown} — no ping node was imported"));
        }
        return;
    }
    let floor = 2 * timing.keepalive.as_millis();
    let (ms, comment) = match &cf.deadping {
        Some((d, shown)) => {
            report.changed(
                F,
                d.line,
                format!("{shown} → [failover] ping_dampen: Heartbeat declared a ping node dead after deadping; hbd counts a drop in the number reached once it has lasted ping_dampen"),
            );
            (d.ms, format!("ha.cf:{}: deadping", d.line))
        }
        None => (
            failover.ping_dampen.as_millis(),
            "not in ha.cf: hbd's default".to_string(),
        ),
    };
    let dead = timing.deadtime.as_millis();
    let ceiling = (dead / 2).max(floor);
    let ms = if ms >= dead {
        report.changed(
            F,
            cf.deadping.as_ref().map_or(lines[0], |d| d.0.line),
            format!(
                "ping_dampen lowered to {} (half of deadtime {}): a longer one would let a holder cut off from its peers and the ping nodes keep its groups after its peer took them over",
                HumanDuration::from_millis(ceiling),
                timing.deadtime
            ),
        );
        comments.ping_dampen = format!("{comment}, lowered below deadtime");
        ceiling
    } else if ms < floor {
        report.changed(
            F,
            cf.deadping.as_ref().map_or(lines[0], |d| d.0.line),
            format!("ping_dampen raised to {} (twice keepalive): a shorter one would let one lost echo move groups", HumanDuration::from_millis(floor)),
        );
        floor
    } else {
        ms
    };
    failover.ping_dampen = HumanDuration::from_millis(ms);
    if comments.ping_dampen.is_empty() {
        comments.ping_dampen = comment;
    }
    comments.ping = format!(
        "ha.cf:{}",
        lines
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
}

type Addresses = BTreeMap<String, BTreeMap<String, IpAddr>>;
/// The ha.cf line of each medium and the link it became.
type LinkLines = Vec<(usize, String)>;
/// The peers named on one interface's ucast lines, with their lines.
type UcastPeers = Vec<(String, usize)>;

/// Build the links in a fixed order (broadcast, multicast, unicast, serial; then by
/// name) and every node's address on each unicast link.
fn links(
    cf: &HaCf,
    opts: &Options,
    host: &dyn Host,
    report: &mut Report,
    comments: &mut Comments,
) -> Result<(Vec<Link>, Addresses, LinkLines), ImportError> {
    const F: &str = hacf::FILE;
    let mut out: Vec<(u8, Link, String)> = Vec::new();
    let mut at: LinkLines = Vec::new();
    let mut names = BTreeSet::new();
    let mut unique = |base: String| {
        let mut n = base.clone();
        let mut i = 2;
        while names.contains(&n) {
            n = format!("{base}-{i}");
            i += 1;
        }
        names.insert(n.clone());
        n
    };
    // Unicast lines grouped by interface, in order of first appearance.
    let mut ucast: Vec<(String, u16, UcastPeers)> = Vec::new();
    for m in &cf.media {
        match m {
            Medium::Bcast { iface, port, line } => {
                let name = unique(sanitize(&format!("bcast-{iface}")));
                at.push((*line, name.clone()));
                out.push((
                    0,
                    Link::UdpBroadcast(BroadcastLink {
                        name,
                        interface: iface.clone(),
                        port: *port,
                    }),
                    format!("from ha.cf:{line}: bcast {iface}"),
                ));
            }
            Medium::Mcast {
                iface,
                group,
                port,
                ttl,
                line,
            } => {
                let name = unique(sanitize(&format!("mcast-{iface}")));
                at.push((*line, name.clone()));
                out.push((
                    1,
                    Link::UdpMulticast(MulticastLink {
                        name,
                        interface: iface.clone(),
                        group: *group,
                        port: *port,
                        ttl: *ttl,
                    }),
                    format!("from ha.cf:{line}: mcast {iface} {group} {port} {ttl}"),
                ));
            }
            Medium::Serial { device, baud, line } => {
                let base = Path::new(device)
                    .file_name()
                    .map(|f| f.to_string_lossy().to_string())
                    .unwrap_or_default();
                let name = unique(sanitize(&format!("serial-{base}")));
                at.push((*line, name.clone()));
                out.push((
                    3,
                    Link::Serial(SerialLink {
                        name,
                        device: PathBuf::from(device),
                        baud: *baud,
                    }),
                    format!("from ha.cf:{line}: serial {device}, baud {baud}"),
                ));
            }
            Medium::Ucast {
                iface,
                peer,
                port,
                line,
            } => match ucast.iter_mut().find(|(i, _, _)| i == iface) {
                Some((_, p, peers)) => {
                    if *p != *port {
                        report.warning(
                            F,
                            *line,
                            format!("ucast {iface} {peer} uses port {port} but an earlier ucast line on {iface} uses {p}; hbd uses one port per link: {p}"),
                        );
                    }
                    peers.push((peer.clone(), *line));
                }
                None => ucast.push((iface.clone(), *port, vec![(peer.clone(), *line)])),
            },
        }
    }
    if let Some(i) = opts.addresses.iter().position(|(l, _)| {
        !ucast
            .iter()
            .any(|(iface, _, _)| l == iface || *l == sanitize(&format!("ucast-{iface}")))
    }) {
        let links: Vec<String> = ucast
            .iter()
            .map(|(iface, _, _)| format!("ucast-{iface} ({iface})"))
            .collect();
        return Err(ImportError::Usage(format!(
            "--address {}={}: ha.cf has no ucast link of that name or interface{}",
            opts.addresses[i].0,
            opts.addresses[i].1,
            if links.is_empty() {
                " (it has no ucast lines: --address is only for them)".to_string()
            } else {
                format!(" (ucast links: {})", links.join(", "))
            }
        )));
    }
    let mut addresses: Addresses = BTreeMap::new();
    if !ucast.is_empty() {
        let first_line = ucast[0].2[0].1;
        let local = local_node(cf, opts, host, first_line)?;
        for (iface, port, peers) in &ucast {
            let name = unique(sanitize(&format!("ucast-{iface}")));
            let mut given = None;
            for (l, ip) in &opts.addresses {
                if *l == name || l == iface {
                    if given.is_some_and(|g| g != *ip) {
                        return Err(ImportError::Usage(format!(
                            "--address gives link {name} two addresses"
                        )));
                    }
                    given = Some(*ip);
                }
            }
            let ctx = Ucast {
                cf,
                host,
                local: &local,
                iface,
                link: &name,
                given,
                source: opts
                    .address_source
                    .as_deref()
                    .unwrap_or("as --address says"),
                off_node: opts.off_node,
            };
            unicast_addresses(&ctx, peers, report, &mut addresses)?;
            at.extend(peers.iter().map(|(_, l)| (*l, name.clone())));
            out.push((
                2,
                Link::UdpUnicast(UnicastLink {
                    name,
                    interface: Some(iface.clone()),
                    port: *port,
                }),
                format!("from the ucast {iface} lines of ha.cf (each node's file names its peers)"),
            ));
        }
    }
    out.sort_by(|a, b| (a.0, a.1.name()).cmp(&(b.0, b.1.name())));
    comments.links = out.iter().map(|(_, _, c)| c.clone()).collect();
    Ok((out.into_iter().map(|(_, l, _)| l).collect(), addresses, at))
}

/// Which node of ha.cf this host is.
fn local_node(
    cf: &HaCf,
    opts: &Options,
    host: &dyn Host,
    line: usize,
) -> Result<String, ImportError> {
    let names: Vec<&str> = cf.nodes.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(n) = &opts.node {
        let n = n.to_ascii_lowercase();
        return if names.contains(&n.as_str()) {
            Ok(n)
        } else {
            Err(ImportError::Usage(format!(
                "--node {n} is not a node of ha.cf (nodes: {})",
                names.join(", ")
            )))
        };
    }
    let hn = host.hostname().unwrap_or_default().to_ascii_lowercase();
    let short = |s: &str| s.split('.').next().unwrap_or("").to_string();
    names
        .iter()
        .find(|n| **n == hn)
        .or_else(|| names.iter().find(|n| !hn.is_empty() && short(n) == short(&hn)))
        .map(|n| n.to_string())
        .ok_or_else(|| {
            ImportError::at(
                hacf::FILE,
                line,
                format!(
                    "ucast lines name only the peers, so the import must know which node it runs on: this host is \"{hn}\", which is not one of {}; run it on a cluster node or pass --node NAME",
                    names.join(", ")
                ),
            )
        })
}

fn same_subnet(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            a.to_bits() & mask == b.to_bits() & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            a.to_bits() & mask == b.to_bits() & mask
        }
        _ => false,
    }
}

/// One unicast link being worked out.
struct Ucast<'a> {
    cf: &'a HaCf,
    host: &'a dyn Host,
    /// This node's name.
    local: &'a str,
    iface: &'a str,
    link: &'a str,
    /// This node's address from `--address`.
    given: Option<IpAddr>,
    /// Where `given` came from, for the report.
    source: &'a str,
    off_node: bool,
}

/// Work out every node's address on one unicast interface.
fn unicast_addresses(
    u: &Ucast<'_>,
    peers: &[(String, usize)],
    report: &mut Report,
    addresses: &mut Addresses,
) -> Result<(), ImportError> {
    const F: &str = hacf::FILE;
    let (cf, host, local, iface, link) = (u.cf, u.host, u.local, u.iface, u.link);
    let first_line = peers.first().map(|p| p.1).unwrap_or(0);
    let mine = match u.given {
        Some(ip) => {
            report.note(
                F,
                first_line,
                format!(
                    "this node's ({local}) address on {link} is {ip}, {}",
                    u.source
                ),
            );
            vec![(ip, if ip.is_ipv4() { 32 } else { 128 })]
        }
        None if u.off_node => Vec::new(),
        None => host.interface_addrs(iface),
    };
    let mut remote: Vec<(IpAddr, usize)> = Vec::new();
    for (peer, line) in peers {
        let ip = match peer.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => match host.resolve(peer) {
                Some(ip) => {
                    report.note(
                        F,
                        *line,
                        format!("ucast peer {peer} is {ip} (from /etc/hosts)"),
                    );
                    ip
                }
                None => {
                    return Err(ImportError::at(
                        F,
                        *line,
                        format!(
                            "ucast peer \"{peer}\" is not an IP address and /etc/hosts does not list it; write the address"
                        ),
                    ));
                }
            },
        };
        if mine.iter().any(|(a, _)| *a == ip) {
            report.note(
                F,
                *line,
                format!(
                    "ucast {iface} {peer} is this node's own address; ignored, as Heartbeat does"
                ),
            );
            addresses
                .entry(local.to_string())
                .or_default()
                .insert(link.to_string(), ip);
            continue;
        }
        if remote.iter().all(|(r, _)| *r != ip) {
            remote.push((ip, *line));
        }
    }
    // This node's own address.
    if !addresses.get(local).is_some_and(|m| m.contains_key(link)) {
        let pick = u.given.or_else(|| {
            mine.iter()
                .find(|(a, p)| remote.iter().any(|(r, _)| same_subnet(*a, *r, *p)))
                .or_else(|| mine.iter().find(|(a, _)| a.is_ipv4()))
                .map(|(a, _)| *a)
        });
        let ip = match pick {
            Some(ip) => ip,
            // /etc/hosts names one address per node: trust it for this interface
            // only when it sits in a peer's /24 (or /64).
            None => match host.resolve(local).filter(|ip| {
                remote.is_empty()
                    || remote
                        .iter()
                        .any(|(r, _)| same_subnet(*ip, *r, if ip.is_ipv4() { 24 } else { 64 }))
            }) {
                Some(ip) => {
                    report.note(F, first_line, format!("{iface} has no address here; this node's address {ip} on {link} comes from /etc/hosts ({local})"));
                    ip
                }
                None => {
                    return Err(ImportError::at(
                        F,
                        first_line,
                        format!(
                            "cannot find this node's ({local}) own address for ucast on {iface}: {} and /etc/hosts has no address for {local} in the peers' subnet; run the import on the node itself, pass --address {link}=ADDRESS, or import every node's tree at once (`hbd import node1/ha.d node2/ha.d`)",
                            if u.off_node {
                                "the import runs off the nodes"
                            } else {
                                "the interface has no IPv4 address here"
                            }
                        ),
                    ));
                }
            },
        };
        addresses
            .entry(local.to_string())
            .or_default()
            .insert(link.to_string(), ip);
    }
    let local_ip = addresses.get(local).and_then(|m| m.get(link)).copied();
    let others: Vec<&str> = cf
        .nodes
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != local)
        .collect();
    for (ip, line) in remote {
        if Some(ip) == local_ip {
            continue;
        }
        let owner = others
            .iter()
            .find(|n| host.resolve(n) == Some(ip))
            .copied()
            .or(if others.len() == 1 {
                Some(others[0])
            } else {
                None
            });
        let Some(owner) = owner else {
            return Err(ImportError::at(
                F,
                line,
                format!(
                    "cannot tell which node has address {ip}: list the nodes ({}) in /etc/hosts",
                    others.join(", ")
                ),
            ));
        };
        let slot = addresses.entry(owner.to_string()).or_default();
        if let Some(prev) = slot.get(link) {
            return Err(ImportError::at(
                F,
                line,
                format!(
                    "a second ucast address {ip} on {iface} for node {owner} (already {prev}); hbd has one address per node and link"
                ),
            ));
        }
        slot.insert(link.to_string(), ip);
    }
    let mut summary = Vec::new();
    for (n, _) in &cf.nodes {
        if let Some(ip) = addresses.get(n).and_then(|m| m.get(link)) {
            let who = if n == local { " (this node)" } else { "" };
            summary.push(format!("{n}{who} {ip}"));
        }
    }
    report.note(
        F,
        first_line,
        format!(
            "ucast {iface} becomes link {link} with node addresses: {}",
            summary.join(", ")
        ),
    );
    for n in others {
        if !addresses.get(n).is_some_and(|m| m.contains_key(link)) {
            return Err(ImportError::at(
                F,
                first_line,
                format!(
                    "no ucast line on {iface} reaches node {n}: hbd needs every node's address on a unicast link"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_lookup() {
        let t = "127.0.0.1 localhost\n# 10.0.0.9 old\n10.0.0.1\talpha alpha.example.com # a\n10.0.0.2 beta\n";
        assert_eq!(hosts_lookup(t, "ALPHA"), "10.0.0.1".parse().ok());
        assert_eq!(hosts_lookup(t, "beta"), "10.0.0.2".parse().ok());
        assert_eq!(hosts_lookup(t, "old"), None);
    }

    #[test]
    fn subnets() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(same_subnet(a, "10.0.0.200".parse().unwrap(), 24));
        assert!(!same_subnet(a, "10.0.1.1".parse().unwrap(), 24));
        assert!(same_subnet(a, "192.168.0.1".parse().unwrap(), 0));
        assert!(!same_subnet(a, "::1".parse().unwrap(), 0));
    }

    #[test]
    fn group_names_are_unique_and_valid() {
        let mut taken = BTreeSet::new();
        let ip = |a: &str| {
            Resource::Ip(crate::config::IpResource {
                address: a.parse().unwrap(),
                interface: None,
                broadcast: None,
                arp_count: 5,
                arp_interval: HumanDuration::from_millis(200),
                probe_wait: crate::config::default_probe_wait(),
            })
        };
        assert_eq!(group_name(&[ip("10.0.0.1/24")], &mut taken), "ip-10-0-0-1");
        assert_eq!(group_name(&[ip("10.0.0.1")], &mut taken), "ip-10-0-0-1-2");
        assert_eq!(group_name(&[ip("fe80::1")], &mut taken), "ip-fe80-1");
        let unit = Resource::Unit(crate::config::UnitResource {
            unit: "Web.Server.service".into(),
            timeout: HumanDuration::from_secs(90),
        });
        assert_eq!(group_name(&[unit], &mut taken), "web-server");
    }

    #[test]
    fn scripts_outside_etc_ha_d_keep_their_real_path() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("resource.d")).unwrap();
        std::fs::write(d.join("resource.d/custom"), "#!/bin/sh\n").unwrap();
        std::fs::write(d.join("ha.cf"), "bcast eth0\nbcast eth1\nnode a b\n").unwrap();
        std::fs::write(d.join("haresources"), "a custom::x 10.0.0.5\n").unwrap();
        let host = SimHost::new("a");
        let got = import(d, &Options::default(), &host).unwrap();
        let want = format!("path = \"{}/resource.d/custom\"", d.display());
        assert!(got.toml.contains(&want), "{}", got.toml);
        assert!(got.key.fresh);
    }
}
