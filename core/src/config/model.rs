//! The cluster.toml data model, shared by every node.
//!
//! Nothing here depends on which node reads the file: node identity comes from
//! the host name or `--node`, never from the file. Defaults are spelled out in
//! one place (the `default_*` functions) and documented in the README.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::duration::HumanDuration;

/// Heartbeat's registered UDP port, kept so firewalls written for Heartbeat still apply.
pub const DEFAULT_PORT: u16 = 694;
pub const DEFAULT_KEY_FILE: &str = "/etc/hbd/authkey";
pub const DEFAULT_CONFIG_FILE: &str = "/etc/hbd/cluster.toml";

/// The whole of /etc/hbd/cluster.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "hbd cluster configuration")]
pub struct Config {
    pub cluster: ClusterSection,
    #[serde(default)]
    pub timing: Timing,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub failover: Failover,
    /// Prometheus metrics endpoint; off unless `listen` is set.
    #[serde(default, skip_serializing_if = "Metrics::is_default")]
    pub metrics: Metrics,
    /// A systemd unit started on every peer and group transition.
    #[serde(default, skip_serializing_if = "Events::is_default")]
    pub events: Events,
    /// Rolling migration from Heartbeat 3.0.6: while `protocol = "heartbeat"`, this node
    /// speaks Heartbeat's protocol on its links and joins a cluster whose other node
    /// still runs Heartbeat (contrib/legacy-import/README.md).
    #[serde(default, skip_serializing_if = "Migration::is_default")]
    pub migration: Migration,
    /// Heartbeat links; all are used at once, a peer is alive while any link hears it.
    #[serde(rename = "link", default)]
    pub links: Vec<Link>,
    /// The cluster's members, in a fixed order that breaks ties.
    #[serde(rename = "node", default)]
    pub nodes: Vec<Node>,
    /// Ordered resource groups; each has exactly one owner at a time.
    #[serde(rename = "group", default)]
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Cluster name; also keeps clusters that share a network apart.
    pub name: String,
    /// Explicit 32-bit cluster id; derived from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Interval between heartbeats.
    #[serde(default = "default_keepalive")]
    pub keepalive: HumanDuration,
    /// Silence after which a peer is reported late (once).
    #[serde(default = "default_warntime")]
    pub warntime: HumanDuration,
    /// Silence after which a peer is declared dead and its groups are taken over.
    #[serde(default = "default_deadtime")]
    pub deadtime: HumanDuration,
    /// Deadtime used right after start-up, while the network and peers come up.
    #[serde(default = "default_initdead")]
    pub initdead: HumanDuration,
}

fn default_keepalive() -> HumanDuration {
    HumanDuration::from_secs(1)
}
fn default_warntime() -> HumanDuration {
    HumanDuration::from_secs(5)
}
fn default_deadtime() -> HumanDuration {
    HumanDuration::from_secs(10)
}
fn default_initdead() -> HumanDuration {
    HumanDuration::from_secs(30)
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            keepalive: default_keepalive(),
            warntime: default_warntime(),
            deadtime: default_deadtime(),
            initdead: default_initdead(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    #[default]
    HmacSha256,
    HmacSha1,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha1 => "hmac-sha1",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// MAC over every packet.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// File holding `ID SECRET` lines; `$CREDENTIALS_DIRECTORY/authkey` (a systemd
    /// credential) is used instead when it exists.
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
    /// Id of the key this node signs with; every key in the file is accepted on receipt,
    /// so keys can be rotated one node at a time.
    #[serde(default = "default_key_id")]
    pub key_id: u8,
}

fn default_key_file() -> PathBuf {
    PathBuf::from(DEFAULT_KEY_FILE)
}
fn default_key_id() -> u8 {
    1
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            algorithm: Algorithm::default(),
            key_file: default_key_file(),
            key_id: default_key_id(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    /// Move a group back to its preferred node when that node returns.
    #[serde(default)]
    pub auto_failback: bool,
    /// Against flapping: a returning preferred node must stay up this long before a
    /// failback, and a node where a group failed is passed over for this long.
    #[serde(default = "default_hold_down")]
    pub hold_down: HumanDuration,
    /// Ping nodes: reference addresses (a router, a switch) each node sends ICMP echo
    /// to on the keepalive schedule. A node that reaches none of them starts no group
    /// and stops its own; a node that reaches fewer than a live peer hands its groups
    /// to the better-connected peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ping: Vec<IpAddr>,
    /// A drop in the number of ping nodes reached counts only once it has lasted this
    /// long, so one lost echo moves nothing. A rise counts at once.
    #[serde(
        default = "default_ping_dampen",
        skip_serializing_if = "is_default_ping_dampen"
    )]
    pub ping_dampen: HumanDuration,
    /// With three or more nodes: what a partition that hears no majority of the
    /// configured nodes does with its groups (`stop` them, or `freeze`: keep what runs,
    /// start nothing). Two-node clusters have no quorum rule.
    #[serde(default, skip_serializing_if = "NoQuorum::is_default")]
    pub no_quorum: NoQuorum,
    /// Longest a fence of a node (its `fence` unit or command) may take before it
    /// counts as failed; a node's `fence.timeout` overrides it.
    #[serde(
        default = "default_fence_timeout",
        skip_serializing_if = "is_default_fence_timeout"
    )]
    pub fence_timeout: HumanDuration,
}

/// The default `fence_timeout` (fence agents retry power commands for up to ~40 s).
pub fn default_fence_timeout() -> HumanDuration {
    HumanDuration::from_secs(60)
}
// Left out of the canonical form (the digest) at its default, so configs written
// before fencing existed keep their digest.
fn is_default_fence_timeout(d: &HumanDuration) -> bool {
    *d == default_fence_timeout()
}

fn default_hold_down() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_ping_dampen() -> HumanDuration {
    HumanDuration::from_secs(5)
}
fn is_default_ping_dampen(d: &HumanDuration) -> bool {
    *d == default_ping_dampen()
}

/// What a partition without quorum does (`[failover] no_quorum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NoQuorum {
    /// Stop every group held here; start none.
    #[default]
    Stop,
    /// Keep the groups that run here; start none.
    Freeze,
}

impl NoQuorum {
    fn is_default(&self) -> bool {
        *self == NoQuorum::Stop
    }
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            auto_failback: false,
            hold_down: default_hold_down(),
            ping: Vec::new(),
            ping_dampen: default_ping_dampen(),
            no_quorum: NoQuorum::Stop,
            fence_timeout: default_fence_timeout(),
        }
    }
}

/// The metrics endpoint (`[metrics]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Address and port to serve Prometheus metrics on (HTTP, `/metrics`), e.g.
    /// `"127.0.0.1:9694"`; no endpoint when absent. There is no authentication: keep it
    /// on loopback or a management network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub listen: Option<std::net::SocketAddr>,
}

impl Metrics {
    pub fn is_default(&self) -> bool {
        *self == Metrics::default()
    }
}

/// Which protocol the links speak (`[migration] protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// hbd's own (the default, and what a converted cluster switches to).
    #[default]
    Hbd,
    /// Heartbeat 3.0.6's messages and its haresources-mode resource protocol, signed
    /// with the `auth N` key of `authkeys`: for a two-node cluster converted one node
    /// at a time.
    Heartbeat,
}

/// Rolling migration from Heartbeat (`[migration]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// `"heartbeat"` while any node still runs Heartbeat (and until every node runs
    /// hbd); `"hbd"`, or no `[migration]` section, is hbd's own protocol.
    #[serde(default)]
    pub protocol: Protocol,
    /// Heartbeat's authkeys file, whose `auth N` key signs and checks Heartbeat's
    /// messages (read when hbd starts: a new key there needs a restart of hbd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authkeys: Option<PathBuf>,
}

impl Migration {
    pub fn is_default(&self) -> bool {
        *self == Migration::default()
    }

    /// The links speak Heartbeat's protocol.
    pub fn heartbeat(&self) -> bool {
        self.protocol == Protocol::Heartbeat
    }
}

/// Event hooks (`[events]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// A systemd template unit, e.g. `"hbd-event@.service"`, started once per peer and
    /// group transition with the event's name as instance, one at a time, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Longest hbd waits for one hook before going on with the next event.
    #[serde(default = "default_event_timeout")]
    pub timeout: HumanDuration,
}

fn default_event_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}

impl Default for Events {
    fn default() -> Self {
        Events {
            unit: None,
            timeout: default_event_timeout(),
        }
    }
}

impl Events {
    pub fn is_default(&self) -> bool {
        *self == Events::default()
    }
}

/// One heartbeat link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Link {
    /// UDP to each peer's address on this link (`[node.address]`).
    UdpUnicast(UnicastLink),
    /// UDP broadcast on one interface.
    UdpBroadcast(BroadcastLink),
    /// UDP multicast on one interface.
    UdpMulticast(MulticastLink),
    /// A null-modem serial line.
    Serial(SerialLink),
}

impl Link {
    pub fn name(&self) -> &str {
        match self {
            Link::UdpUnicast(l) => &l.name,
            Link::UdpBroadcast(l) => &l.name,
            Link::UdpMulticast(l) => &l.name,
            Link::Serial(l) => &l.name,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Link::UdpUnicast(_) => "udp-unicast",
            Link::UdpBroadcast(_) => "udp-broadcast",
            Link::UdpMulticast(_) => "udp-multicast",
            Link::Serial(_) => "serial",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnicastLink {
    pub name: String,
    /// Optional: bind to this interface (SO_BINDTODEVICE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default = "default_port")]
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastLink {
    pub name: String,
    pub interface: String,
    #[serde(default = "default_port")]
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MulticastLink {
    pub name: String,
    pub interface: String,
    /// IPv4 multicast group, e.g. 239.0.0.1.
    pub group: Ipv4Addr,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_ttl")]
    pub ttl: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SerialLink {
    pub name: String,
    /// Serial device, e.g. /dev/ttyS0.
    pub device: PathBuf,
    #[serde(default = "default_baud")]
    pub baud: u32,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_ttl() -> u8 {
    1
}
fn default_baud() -> u32 {
    19200
}

/// Baud rates a serial link may use (what termios offers).
pub const BAUD_RATES: &[u32] = &[
    1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800,
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Node name, matched against the host name (or `hbd run --node`).
    pub name: String,
    /// This node's address on each UDP unicast link, keyed by link name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub address: BTreeMap<String, IpAddr>,
    /// How to fence (power off) this node before another node takes its groups, or
    /// when a stop failed on it: a systemd unit to start or a command to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<Fence>,
}

/// Fencing of one node. Exactly one of `unit` and `command`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fence {
    /// A systemd unit whose start fences the node, e.g. "fence-ipmi@node1.service":
    /// its start job ending `done` means the node is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// A command (absolute program path, then arguments) run as a transient systemd
    /// unit: exit status 0 means the node is off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Overrides `[failover] fence_timeout` for this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Wait this long after this node is declared dead before fencing it (Pacemaker's
    /// `pcmk_delay_base`): in a two-node split where each side fences the other, the
    /// node with the delay survives, because the other is fenced first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<HumanDuration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// The node that owns this group whenever it is up (and, with auto_failback, returns to).
    pub preferred: String,
    /// A resource that fails while its group runs is restarted in place up to this many
    /// times within `restart_window`; one more failure moves the group to another node.
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    #[serde(default = "default_restart_window")]
    pub restart_window: HumanDuration,
    /// Resources, started first to last and stopped last to first.
    #[serde(rename = "resource", default)]
    pub resources: Vec<Resource>,
}

fn default_max_restarts() -> u32 {
    3
}
fn default_restart_window() -> HumanDuration {
    HumanDuration::from_secs(300)
}

/// One resource of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Resource {
    /// A virtual IP address that hbd adds itself and announces with gratuitous ARP.
    Ip(IpResource),
    /// Any systemd unit, started and stopped through systemd.
    Unit(UnitResource),
    /// A filesystem, mounted through a transient systemd mount unit.
    Mount(MountResource),
    /// A legacy Heartbeat resource.d or LSB script, run by systemd as a transient unit.
    Script(ScriptResource),
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Ip(_) => "ip",
            Resource::Unit(_) => "unit",
            Resource::Mount(_) => "mount",
            Resource::Script(_) => "script",
        }
    }
    pub fn timeout(&self) -> HumanDuration {
        match self {
            Resource::Ip(_) => HumanDuration::from_secs(10),
            Resource::Unit(r) => r.timeout,
            Resource::Mount(r) => r.timeout,
            Resource::Script(r) => r.timeout,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Ip(r) => write!(f, "ip {}", r.address),
            Resource::Unit(r) => write!(f, "unit {}", r.unit),
            Resource::Mount(r) => write!(f, "mount {}", r.r#where.display()),
            Resource::Script(r) => write!(f, "script {}", r.path.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpResource {
    /// Address with optional prefix length: "10.0.0.100/24". Without a prefix (or
    /// interface), hbd uses the interface whose existing subnet contains the address.
    pub address: IpCidr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// IPv4 broadcast address to set; derived from the prefix when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<Ipv4Addr>,
    /// Gratuitous ARPs (or unsolicited neighbour advertisements) sent after adding.
    #[serde(default = "default_arp_count")]
    pub arp_count: u32,
    #[serde(default = "default_arp_interval")]
    pub arp_interval: HumanDuration,
    /// How long to listen for another host holding the address (IPv4: ARP probe,
    /// IPv6: duplicate address detection) before adding it; "0s" adds it without
    /// asking. Two probes go out within the first third of the wait.
    #[serde(default = "default_probe_wait")]
    pub probe_wait: HumanDuration,
}

/// The default `probe_wait` of an ip resource (see the README for how it was chosen).
pub fn default_probe_wait() -> HumanDuration {
    HumanDuration::from_millis(15)
}

fn default_arp_count() -> u32 {
    5
}
fn default_arp_interval() -> HumanDuration {
    HumanDuration::from_millis(200)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitResource {
    /// Full unit name, e.g. "nginx.service".
    pub unit: String,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MountResource {
    /// Device or source, e.g. "/dev/drbd0" or "tmpfs".
    pub what: String,
    /// Absolute mount point.
    #[serde(rename = "where")]
    pub r#where: PathBuf,
    /// Filesystem type, e.g. "ext4".
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptResource {
    /// Absolute path of a Heartbeat resource.d or LSB init script.
    pub path: PathBuf,
    /// Arguments placed before start/stop/status (Heartbeat's `name::arg1::arg2`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(90)
}

/// An IP address with an optional prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpCidr {
    pub addr: IpAddr,
    pub prefix: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpCidrError {
    #[error("\"{0}\" is not an IP address (expected e.g. \"10.0.0.100/24\")")]
    Address(String),
    #[error("bad prefix length in \"{0}\": expected 0..={1}")]
    Prefix(String, u8),
}

impl FromStr for IpCidr {
    type Err = IpCidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| IpCidrError::Address(s.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => None,
            Some(p) => match p.parse::<u8>() {
                Ok(v) if v <= max => Some(v),
                _ => return Err(IpCidrError::Prefix(s.to_string(), max)),
            },
        };
        Ok(IpCidr { addr, prefix })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix {
            Some(p) => write!(f, "{}/{}", self.addr, p),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl Serialize for IpCidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpCidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for IpCidr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IpCidr".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An IPv4 or IPv6 address with optional prefix length, e.g. \"10.0.0.100/24\"."
        })
    }
}

impl Config {
    /// The 32-bit id carried in every packet: explicit, or derived from the name.
    pub fn cluster_id(&self) -> u32 {
        use sha2::{Digest, Sha256};
        self.cluster.id.unwrap_or_else(|| {
            let h = Sha256::digest(self.cluster.name.as_bytes());
            u32::from_be_bytes([h[0], h[1], h[2], h[3]])
        })
    }

    /// Digest of the canonical form of the whole config; peers compare it to notice
    /// nodes that run different configurations.
    pub fn digest(&self) -> [u8; 8] {
        use sha2::{Digest, Sha256};
        let canon = toml::to_string(self).unwrap_or_default();
        let h = Sha256::digest(canon.as_bytes());
        let mut out = [0u8; 8];
        out.copy_from_slice(&h[..8]);
        out
    }

    /// How long fencing node `i` may take.
    pub fn fence_timeout(&self, i: usize) -> std::time::Duration {
        self.nodes
            .get(i)
            .and_then(|n| n.fence.as_ref())
            .and_then(|f| f.timeout)
            .unwrap_or(self.failover.fence_timeout)
            .get()
    }

    /// How long after node `i` is declared dead its fence waits.
    pub fn fence_delay(&self, i: usize) -> std::time::Duration {
        self.nodes
            .get(i)
            .and_then(|n| n.fence.as_ref())
            .and_then(|f| f.delay)
            .map(|d| d.get())
            .unwrap_or_default()
    }

    /// Whether node `i` has fencing configured.
    pub fn fenced(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| n.fence.is_some())
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name.eq_ignore_ascii_case(name))
    }
}
