//! A typed way to write a cluster.toml in code (tests, tools), instead of TOML text.
//!
//! Every value the builder does not set is the model's serde default, so a builder
//! config is the config the same file would load as. [`Builder::build`] runs the
//! validation [`parse_str`](super::parse_str) runs (a built config is one `hbd check`
//! accepts); [`Builder::to_toml`] writes the file for what must read one.
//!
//! ```
//! use std::time::Duration;
//! use hbd_core::config::{Builder, Group, Link};
//!
//! let config = Builder::new("demo")
//!     .link(Link::udp_broadcast("lan", "eth0"))
//!     .node("alpha")
//!     .node("beta")
//!     .group(Group::new("web", "alpha").ip("10.0.0.100/24".parse().unwrap()).unit("nginx.service"))
//!     .build()
//!     .unwrap();
//! assert_eq!(config.groups[0].resources.len(), 2);
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::duration::HumanDuration;
use super::model::*;
use super::{ConfigError, Diagnostic, validate};

/// The name a built config's diagnostics give as its file.
pub const BUILDER_PATH: &str = "(builder)";

fn human(d: Duration) -> HumanDuration {
    HumanDuration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Builds a [`Config`]: start with [`Builder::new`], finish with [`Builder::build`].
#[derive(Debug, Clone, PartialEq)]
pub struct Builder {
    config: Config,
}

impl Builder {
    /// A cluster named `name` with every section at its default and no links, nodes
    /// or groups.
    pub fn new(name: impl Into<String>) -> Self {
        Builder {
            config: Config {
                cluster: ClusterSection {
                    name: name.into(),
                    id: None,
                },
                timing: Timing::default(),
                auth: Auth::default(),
                failover: Failover::default(),
                metrics: Metrics::default(),
                events: Events::default(),
                migration: Migration::default(),
                links: Vec::new(),
                nodes: Vec::new(),
                groups: Vec::new(),
            },
        }
    }

    /// `[cluster] id`.
    pub fn cluster_id(mut self, id: u32) -> Self {
        self.config.cluster.id = Some(id);
        self
    }

    /// `[timing]`, all four values (millisecond resolution, like the file).
    pub fn timing(
        mut self,
        keepalive: Duration,
        warntime: Duration,
        deadtime: Duration,
        initdead: Duration,
    ) -> Self {
        self.config.timing = Timing {
            keepalive: human(keepalive),
            warntime: human(warntime),
            deadtime: human(deadtime),
            initdead: human(initdead),
        };
        self
    }

    /// `[auth] key_file`.
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.auth.key_file = path.into();
        self
    }

    /// `[auth] key_id`.
    pub fn key_id(mut self, id: u8) -> Self {
        self.config.auth.key_id = id;
        self
    }

    /// `[auth] algorithm`.
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.config.auth.algorithm = algorithm;
        self
    }

    /// `[failover] auto_failback`.
    pub fn auto_failback(mut self, on: bool) -> Self {
        self.config.failover.auto_failback = on;
        self
    }

    /// `[failover] hold_down`.
    pub fn hold_down(mut self, d: Duration) -> Self {
        self.config.failover.hold_down = human(d);
        self
    }

    /// One more `[failover] ping` address.
    pub fn ping(mut self, addr: IpAddr) -> Self {
        self.config.failover.ping.push(addr);
        self
    }

    /// `[failover] ping_dampen`.
    pub fn ping_dampen(mut self, d: Duration) -> Self {
        self.config.failover.ping_dampen = human(d);
        self
    }

    /// `[failover] no_quorum`.
    pub fn no_quorum(mut self, what: NoQuorum) -> Self {
        self.config.failover.no_quorum = what;
        self
    }

    /// `[failover] fence_timeout`.
    pub fn fence_timeout(mut self, d: Duration) -> Self {
        self.config.failover.fence_timeout = human(d);
        self
    }

    /// `[metrics]`.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.config.metrics = metrics;
        self
    }

    /// `[events]`.
    pub fn events(mut self, events: Events) -> Self {
        self.config.events = events;
        self
    }

    /// `[migration]`.
    pub fn migration(mut self, migration: Migration) -> Self {
        self.config.migration = migration;
        self
    }

    /// One more `[[link]]`.
    pub fn link(mut self, link: Link) -> Self {
        self.config.links.push(link);
        self
    }

    /// One more `[[node]]` with only a name.
    pub fn node(self, name: impl Into<String>) -> Self {
        self.node_with(Node::new(name))
    }

    /// One more `[[node]]`.
    pub fn node_with(mut self, node: Node) -> Self {
        self.config.nodes.push(node);
        self
    }

    /// One more `[[group]]`.
    pub fn group(mut self, group: Group) -> Self {
        self.config.groups.push(group);
        self
    }

    /// The config as built so far, not validated.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Change anything the methods above do not reach.
    pub fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// The config, after the validation a loaded file goes through; warnings are
    /// dropped, errors come back as [`ConfigError::Invalid`] naming [`BUILDER_PATH`].
    pub fn build(self) -> Result<Config, ConfigError> {
        let mut diagnostics: Vec<Diagnostic> = validate(&self.config);
        diagnostics.sort_by_key(|d| std::cmp::Reverse(d.severity));
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(ConfigError::Invalid {
                path: Path::new(BUILDER_PATH).to_path_buf(),
                diagnostics,
            });
        }
        Ok(self.config)
    }

    /// The config as cluster.toml text (not validated: a test may write a bad file).
    pub fn to_toml(&self) -> String {
        // Every field of the model is a TOML type (durations and addresses are
        // strings); a failure here is a bug in the model, not in the input.
        toml::to_string(&self.config)
            .unwrap_or_else(|e| panic!("the config model no longer serializes to TOML: {e}"))
    }
}

impl Link {
    /// A `udp-broadcast` link on the default port.
    pub fn udp_broadcast(name: impl Into<String>, interface: impl Into<String>) -> Self {
        Link::UdpBroadcast(BroadcastLink {
            name: name.into(),
            interface: interface.into(),
            port: DEFAULT_PORT,
        })
    }

    /// A `udp-unicast` link on the default port, bound to no interface; each node
    /// gives its address with [`Node::address`].
    pub fn udp_unicast(name: impl Into<String>) -> Self {
        Link::UdpUnicast(UnicastLink {
            name: name.into(),
            interface: None,
            port: DEFAULT_PORT,
        })
    }

    /// A `udp-multicast` link on the default port, TTL 1.
    pub fn udp_multicast(
        name: impl Into<String>,
        interface: impl Into<String>,
        group: Ipv4Addr,
    ) -> Self {
        Link::UdpMulticast(MulticastLink {
            name: name.into(),
            interface: interface.into(),
            group,
            port: DEFAULT_PORT,
            ttl: 1,
        })
    }

    /// A `serial` link at 19200 baud.
    pub fn serial(name: impl Into<String>, device: impl Into<PathBuf>) -> Self {
        Link::Serial(SerialLink {
            name: name.into(),
            device: device.into(),
            baud: 19200,
        })
    }

    /// This UDP link on another interface (a unicast link binds to it); a serial link
    /// is returned as is.
    pub fn interface(mut self, interface: impl Into<String>) -> Self {
        match &mut self {
            Link::UdpUnicast(l) => l.interface = Some(interface.into()),
            Link::UdpBroadcast(l) => l.interface = interface.into(),
            Link::UdpMulticast(l) => l.interface = interface.into(),
            Link::Serial(_) => {}
        }
        self
    }

    /// This serial link at another speed (a UDP link is returned as is).
    pub fn baud(mut self, baud: u32) -> Self {
        if let Link::Serial(l) = &mut self {
            l.baud = baud;
        }
        self
    }

    /// This UDP link on another port (a serial link has none and is returned as is).
    pub fn port(mut self, port: u16) -> Self {
        match &mut self {
            Link::UdpUnicast(l) => l.port = port,
            Link::UdpBroadcast(l) => l.port = port,
            Link::UdpMulticast(l) => l.port = port,
            Link::Serial(_) => {}
        }
        self
    }
}

impl Node {
    /// A node with only a name.
    pub fn new(name: impl Into<String>) -> Self {
        Node {
            name: name.into(),
            address: BTreeMap::new(),
            fence: None,
        }
    }

    /// This node's address on the unicast link `link`.
    pub fn address(mut self, link: impl Into<String>, addr: IpAddr) -> Self {
        self.address.insert(link.into(), addr);
        self
    }

    /// How this node is fenced.
    pub fn fence(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }
}

impl Fence {
    /// Fence by starting a systemd unit.
    pub fn unit(unit: impl Into<String>) -> Self {
        Fence {
            unit: Some(unit.into()),
            command: Vec::new(),
            timeout: None,
            delay: None,
        }
    }

    /// Fence by running a command (absolute program path, then arguments).
    pub fn command<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Fence {
            unit: None,
            command: argv.into_iter().map(Into::into).collect(),
            timeout: None,
            delay: None,
        }
    }

    /// `timeout`, overriding `[failover] fence_timeout`.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(human(d));
        self
    }

    /// `delay` before fencing a dead node.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(human(d));
        self
    }
}

/// A builder starting from a config (a loaded file, to change in code).
impl From<Config> for Builder {
    fn from(config: Config) -> Self {
        Builder { config }
    }
}

impl Group {
    /// A group with no resources and the default restart budget.
    pub fn new(name: impl Into<String>, preferred: impl Into<String>) -> Self {
        Group {
            name: name.into(),
            preferred: preferred.into(),
            max_restarts: 3,
            restart_window: HumanDuration::from_secs(300),
            resources: Vec::new(),
        }
    }

    /// Another preferred node.
    pub fn preferred(mut self, node: impl Into<String>) -> Self {
        self.preferred = node.into();
        self
    }

    /// `max_restarts` within `restart_window`.
    pub fn restarts(mut self, max_restarts: u32, window: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.restart_window = human(window);
        self
    }

    /// One more resource.
    pub fn resource(mut self, resource: Resource) -> Self {
        self.resources.push(resource);
        self
    }

    /// One more `unit` resource with the default timeout.
    pub fn unit(self, unit: impl Into<String>) -> Self {
        self.resource(Resource::unit(unit))
    }

    /// One more `ip` resource with the default announcements and probe.
    pub fn ip(self, address: IpCidr) -> Self {
        self.resource(Resource::ip(address))
    }
}

impl Resource {
    /// A `unit` resource with the default timeout.
    pub fn unit(unit: impl Into<String>) -> Self {
        Resource::Unit(UnitResource {
            unit: unit.into(),
            timeout: HumanDuration::from_secs(90),
        })
    }

    /// An `ip` resource on `interface`, with the default announcements and probe.
    pub fn ip_on(address: IpCidr, interface: impl Into<String>) -> Self {
        let mut r = Resource::ip(address);
        if let Resource::Ip(ip) = &mut r {
            ip.interface = Some(interface.into());
        }
        r
    }

    /// An `ip` resource on no named interface, with the default announcements and probe.
    pub fn ip(address: IpCidr) -> Self {
        Resource::Ip(IpResource {
            address,
            interface: None,
            broadcast: None,
            arp_count: 5,
            arp_interval: HumanDuration::from_millis(200),
            probe_wait: default_probe_wait(),
        })
    }

    /// A `mount` resource of `what` on `where` with no type or options.
    pub fn mount(what: impl Into<String>, r#where: impl Into<PathBuf>) -> Self {
        Resource::Mount(MountResource {
            what: what.into(),
            r#where: r#where.into(),
            fstype: None,
            options: None,
            timeout: HumanDuration::from_secs(90),
        })
    }

    /// A `script` resource with no arguments.
    pub fn script(path: impl Into<PathBuf>) -> Self {
        Resource::Script(ScriptResource {
            path: path.into(),
            args: Vec::new(),
            timeout: HumanDuration::from_secs(90),
        })
    }

    /// This resource with another timeout (an ip resource has a fixed one and is
    /// returned as is).
    pub fn with_timeout(mut self, d: Duration) -> Self {
        match &mut self {
            Resource::Ip(_) => {}
            Resource::Unit(r) => r.timeout = human(d),
            Resource::Mount(r) => r.timeout = human(d),
            Resource::Script(r) => r.timeout = human(d),
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn parse(text: &str) -> Config {
        match parse_str(text, Path::new("t.toml")) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    /// Every link kind, every resource kind, fence, ping and migration, with values
    /// that differ from the defaults where a field has one.
    fn rich() -> Builder {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        Builder::new("rich")
            .cluster_id(7)
            .timing(ms(200), ms(600), ms(2000), ms(4000))
            .key_file("/etc/hbd/other-key")
            .key_id(3)
            .algorithm(Algorithm::HmacSha1)
            .auto_failback(true)
            .hold_down(ms(45_000))
            .ping(ip("10.0.0.254"))
            .ping(ip("10.0.1.254"))
            .ping_dampen(ms(1500))
            .no_quorum(NoQuorum::Freeze)
            .fence_timeout(ms(20_000))
            .metrics(Metrics {
                listen: Some("127.0.0.1:9694".parse().unwrap()),
            })
            .events(Events {
                unit: Some("hbd-event@.service".into()),
                timeout: HumanDuration::from_secs(5),
            })
            .migration(Migration {
                protocol: Protocol::Hbd,
                authkeys: Some("/etc/ha.d/authkeys".into()),
            })
            .link(Link::udp_unicast("uni").port(7000).interface("eth0"))
            .link(Link::udp_broadcast("bc", "eth1"))
            .link(Link::udp_multicast("mc", "eth2", "239.0.0.9".parse().unwrap()).port(7001))
            .link(Link::serial("ser", "/dev/ttyS0").baud(115200))
            .node_with(
                Node::new("alpha")
                    .address("uni", ip("10.0.0.1"))
                    .fence(Fence::unit("fence-ipmi@alpha.service").delay(ms(5000))),
            )
            .node_with(Node::new("beta").address("uni", ip("10.0.0.2")).fence(
                Fence::command(["/usr/sbin/fence_ipmilan", "-a", "10.9.9.2"]).timeout(ms(30_000)),
            ))
            .group(
                Group::new("web", "alpha")
                    .restarts(5, ms(60_000))
                    .ip("10.0.0.100/24".parse().unwrap())
                    .resource(Resource::mount("/dev/drbd0", "/srv/web"))
                    .resource(
                        Resource::script("/etc/ha.d/resource.d/apache").with_timeout(ms(30_000)),
                    )
                    .unit("nginx.service"),
            )
            .node_with(
                Node::new("gamma")
                    .address("uni", ip("10.0.0.3"))
                    .fence(Fence::unit("fence-ipmi@gamma.service")),
            )
            .group(Group::new("db", "beta").unit("postgresql.service"))
    }

    /// The rich config in the middle of a migration from Heartbeat (UDP links only).
    fn rich_migrating() -> Builder {
        rich().with(|c| {
            c.migration.protocol = Protocol::Heartbeat;
            c.links.retain(|l| !matches!(l, Link::Serial(_)));
            c.nodes.truncate(2);
            c.nodes.iter_mut().for_each(|n| n.fence = None);
            c.failover.ping.clear();
            c.failover.no_quorum = NoQuorum::Stop;
        })
    }

    #[test]
    fn text_of_a_rich_config_parses_to_the_built_config() {
        let migrating = rich_migrating();
        let text = migrating.to_toml();
        let built = migrating.build().unwrap();
        assert_eq!(parse(&text), built, "{text}");
        assert!(built.migration.heartbeat());

        let b = rich();
        let text = b.to_toml();
        let built = b.build().unwrap();
        assert_eq!(parse(&text), built, "{text}");
        // Every kind is there, so this checks what it says.
        let kinds: Vec<_> = built.links.iter().map(Link::kind).collect();
        assert_eq!(
            kinds,
            ["udp-unicast", "udp-broadcast", "udp-multicast", "serial"]
        );
        let kinds: Vec<_> = built.groups[0]
            .resources
            .iter()
            .map(Resource::kind)
            .collect();
        assert_eq!(kinds, ["ip", "mount", "script", "unit"]);
        assert!(built.migration.authkeys.is_some());
        assert_eq!(built.failover.ping.len(), 2);
        assert!(built.fenced(0) && built.fenced(1) && built.fenced(2));
        // A loaded config, changed in code, is that config with the change.
        let changed = Builder::from(parse(&text)).key_id(7).build().unwrap();
        assert_eq!(changed.auth.key_id, 7);
        assert_eq!(
            Config {
                auth: built.auth.clone(),
                ..changed
            },
            built
        );
    }

    #[test]
    fn an_ip_on_an_interface() {
        let Resource::Ip(ip) = Resource::ip_on("10.0.0.1/24".parse().unwrap(), "eth1") else {
            panic!("not an ip resource")
        };
        assert_eq!(ip.interface.as_deref(), Some("eth1"));
    }

    #[test]
    fn unset_values_are_the_files_defaults() {
        let text = r#"
[cluster]
name = "min"
[[link]]
name = "uni"
kind = "udp-unicast"
[[link]]
name = "bc"
kind = "udp-broadcast"
interface = "eth1"
[[link]]
name = "mc"
kind = "udp-multicast"
interface = "eth2"
group = "239.0.0.9"
[[link]]
name = "ser"
kind = "serial"
device = "/dev/ttyS0"
[[node]]
name = "alpha"
address = { uni = "10.0.0.1" }
fence = { unit = "fence@alpha.service" }
[[node]]
name = "beta"
address = { uni = "10.0.0.2" }
fence = { command = ["/bin/fence", "beta"] }
[[group]]
name = "web"
preferred = "alpha"
[[group.resource]]
kind = "ip"
address = "10.0.0.100/24"
[[group.resource]]
kind = "mount"
what = "/dev/drbd0"
where = "/srv/web"
[[group.resource]]
kind = "script"
path = "/etc/ha.d/resource.d/apache"
[[group.resource]]
kind = "unit"
unit = "nginx.service"
"#;
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let built = Builder::new("min")
            .link(Link::udp_unicast("uni"))
            .link(Link::udp_broadcast("bc", "eth1"))
            .link(Link::udp_multicast(
                "mc",
                "eth2",
                "239.0.0.9".parse().unwrap(),
            ))
            .link(Link::serial("ser", "/dev/ttyS0"))
            .node_with(
                Node::new("alpha")
                    .address("uni", ip("10.0.0.1"))
                    .fence(Fence::unit("fence@alpha.service")),
            )
            .node_with(
                Node::new("beta")
                    .address("uni", ip("10.0.0.2"))
                    .fence(Fence::command(["/bin/fence", "beta"])),
            )
            .group(
                Group::new("web", "alpha")
                    .ip("10.0.0.100/24".parse().unwrap())
                    .resource(Resource::mount("/dev/drbd0", "/srv/web"))
                    .resource(Resource::script("/etc/ha.d/resource.d/apache"))
                    .unit("nginx.service"),
            );
        assert_eq!(built.clone().build().unwrap(), parse(text));
        assert_eq!(parse(&built.to_toml()), parse(text));
    }

    #[test]
    fn build_refuses_what_check_refuses() {
        let b = Builder::new("bad")
            .link(Link::udp_broadcast("lan", "eth0"))
            .node("alpha")
            .node("beta")
            .group(Group::new("web", "gamma").unit("web.service"));
        let text = b.to_toml();
        let built = b.build().unwrap_err().diagnostics().to_vec();
        let ConfigError::Invalid { diagnostics, .. } =
            parse_str(&text, Path::new("t.toml")).unwrap_err()
        else {
            panic!("not refused as invalid")
        };
        let messages = |d: &[Diagnostic]| d.iter().map(|d| d.message.clone()).collect::<Vec<_>>();
        assert!(built.iter().any(Diagnostic::is_error));
        assert_eq!(messages(&built), messages(&diagnostics));
    }
}
