//! `hbd import`: convert a Heartbeat v1 /etc/ha.d into cluster.toml, with a report.
