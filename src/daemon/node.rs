//! Which node of cluster.toml this process is.
//!
//! The file is identical on every node, so identity comes from outside it:
//! `hbd run --node NAME`, else the host name — matched exactly, then ignoring
//! case, then by its short form (before the first dot), so "alpha.example.com"
//! runs as node "alpha".

use crate::config::Config;
use crate::error::Error;

/// Index of the local node in `config.nodes`.
pub fn local_node(config: &Config, explicit: Option<&str>, hostname: &str) -> Result<usize, Error> {
    let names = || {
        config
            .nodes
            .iter()
            .map(|n| format!("\"{}\"", n.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = explicit {
        return find(config, name).ok_or_else(|| {
            Error::Node(format!(
                "--node \"{name}\" is not a node of the cluster (configured nodes: {})",
                names()
            ))
        });
    }
    let short = hostname.split('.').next().unwrap_or(hostname);
    find(config, hostname)
        .or_else(|| find(config, short))
        .ok_or_else(|| {
            Error::Node(format!(
                "host name \"{hostname}\" matches no node of the cluster (configured nodes: {}): \
                 rename a node or pass --node NAME",
                names()
            ))
        })
}

fn find(config: &Config, name: &str) -> Option<usize> {
    config
        .nodes
        .iter()
        .position(|n| n.name == name)
        .or_else(|| config.node_index(name))
}

/// The kernel's host name.
pub fn hostname() -> Result<String, Error> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; the kernel NUL-terminates when it fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(Error::io(
            "cannot read the host name",
            std::io::Error::last_os_error(),
        ));
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = r#"
[cluster]
name = "t"
[[link]]
name = "l"
kind = "serial"
device = "/dev/ttyS0"
[[node]]
name = "alpha"
[[node]]
name = "Beta"
"#;
        crate::config::parse_bytes(text.as_bytes(), std::path::Path::new("t.toml"))
            .map(|l| l.config)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn matches_host_names() {
        let c = config();
        assert_eq!(local_node(&c, None, "alpha").ok(), Some(0));
        assert_eq!(local_node(&c, None, "BETA").ok(), Some(1));
        assert_eq!(local_node(&c, None, "alpha.example.com").ok(), Some(0));
        assert_eq!(local_node(&c, Some("beta"), "alpha").ok(), Some(1));
    }

    #[test]
    fn errors_list_the_nodes() {
        let c = config();
        let e = local_node(&c, None, "gamma.example.com")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "host name \"gamma.example.com\" matches no node of the cluster \
                 (configured nodes: \"alpha\", \"Beta\"): rename a node or pass --node NAME"
            )
        );
        let e = local_node(&c, Some("x"), "alpha")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.starts_with("--node \"x\" is not a node")));
    }
}
