//! `hbd import`: convert /etc/ha.d (Heartbeat v1) to cluster.toml and a key file.
//!
//! The work is in [`crate::import`]; this file only handles files and output:
//! the report goes to stderr, the TOML to stdout unless --output, and nothing
//! existing is overwritten without --force (checked before anything is written).

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::keys;
use crate::error::{Error, Result};
use crate::import::{self, ImportError, Options, RealHost};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Heartbeat configuration directory; several: one tree per node of one cluster,
    /// converted together off the nodes (their ucast lines give every address).
    #[arg(default_value = import::HA_DIR)]
    pub dirs: Vec<PathBuf>,
    /// Write cluster.toml here instead of to stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Write the key file here (default with --output: /etc/hbd/authkey; without
    /// --output no key file is written unless this is given). Any other path is
    /// written into cluster.toml as auth.key_file.
    #[arg(long)]
    pub key_output: Option<PathBuf>,
    /// Which node of ha.cf this host is (default: the host name); needed for ucast
    /// links. With several trees, once per tree in their order.
    #[arg(long)]
    pub node: Vec<String>,
    /// This node's address on a ucast link, LINK=ADDR (LINK: `ucast-eth1` or `eth1`),
    /// for an import off the node; repeat per link.
    #[arg(long, value_name = "LINK=ADDR", value_parser = parse_address)]
    pub address: Vec<(String, IpAddr)>,
    /// Convert one node of a running Heartbeat 3.0.6 cluster: the cluster.toml says
    /// `[migration] protocol = "heartbeat"`, so this node's hbd speaks Heartbeat's
    /// protocol (signed with authkeys) and joins the Heartbeat node as a peer; see
    /// contrib/legacy-import/README.md, "Rolling migration".
    #[arg(long)]
    pub migration: bool,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
}

/// Why an `--address` value was refused.
#[derive(Debug, thiserror::Error)]
enum AddressError {
    #[error("\"{0}\" is not LINK=ADDR, e.g. ucast-eth1=10.0.0.1")]
    NoEquals(String),
    #[error("\"{0}\" is not an IP address (LINK=ADDR, e.g. ucast-eth1=10.0.0.1)")]
    NotAnAddress(String),
    #[error("\"{0}\" names no link (LINK=ADDR, e.g. ucast-eth1=10.0.0.1)")]
    NoLink(String),
}

fn parse_address(s: &str) -> std::result::Result<(String, IpAddr), AddressError> {
    let (link, addr) = s
        .split_once('=')
        .ok_or_else(|| AddressError::NoEquals(s.to_string()))?;
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| AddressError::NotAnAddress(addr.to_string()))?;
    if link.is_empty() {
        return Err(AddressError::NoLink(s.to_string()));
    }
    Ok((link.to_string(), ip))
}

pub fn run(_config: &Path, args: Args) -> Result<()> {
    let key_path = args.key_output.clone().or_else(|| {
        args.output
            .as_ref()
            .map(|_| PathBuf::from(crate::config::DEFAULT_KEY_FILE))
    });
    // Refused before anything is read or written: a directory where a file goes.
    for p in args.output.iter().chain(key_path.iter()) {
        if p.is_dir() {
            return Err(Error::Usage(format!(
                "{} is a directory: name the file to write",
                p.display()
            )));
        }
    }
    if args.output.is_some() && args.output == key_path {
        return Err(Error::Usage(
            "--output and --key-output name the same file".into(),
        ));
    }
    if !args.force {
        for p in args.output.iter().chain(key_path.iter()) {
            if p.exists() {
                return Err(ImportError::Exists(p.clone()).into());
            }
        }
    }
    if args.dirs.len() < 2 && args.node.len() > 1 {
        return Err(Error::Usage(
            "--node is given more than once for one tree: name this node once".into(),
        ));
    }
    // The key file the config names: the one written, when it is not the default.
    let key_file = match &args.key_output {
        Some(p) if p != Path::new(crate::config::DEFAULT_KEY_FILE) => Some(
            std::path::absolute(p)
                .map_err(|e| Error::io(format!("cannot resolve {}", p.display()), e))?,
        ),
        _ => None,
    };
    let opts = Options {
        node: args.node.first().cloned(),
        node_dir: None,
        addresses: args.address.clone(),
        off_node: false,
        key_file: key_file.clone(),
        address_source: None,
        migration: args.migration,
    };
    let imported = import::import_many(&args.dirs, &args.node, &opts, &RealHost)?;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(imported.report.render().as_bytes());
    match &args.output {
        Some(p) => import::write_atomic(p, &imported.toml)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(imported.toml.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| Error::io("cannot write to stdout", e))?;
        }
    }
    match &key_path {
        Some(p) => {
            keys::write_key_file(p, &imported.key.file_text(), args.force)?;
            let _ = writeln!(
                err,
                "hbd import: wrote key {} to {} (mode 0600){}",
                imported.key.id,
                p.display(),
                if imported.key.fresh {
                    " — a NEW key: copy this file to every node, do not import the key again there"
                } else {
                    ""
                }
            );
        }
        None => {
            let _ = writeln!(
                err,
                "hbd import: no key file written (pass --key-output FILE, or --output to write /etc/hbd/authkey)"
            );
        }
    }
    if let Some(p) = &args.output {
        let check = match &key_path {
            // Checked with the key it names (the one just written, or /etc/hbd/authkey).
            Some(_) => format!("hbd check -c {}", p.display()),
            None => format!("hbd check -c {} --no-key", p.display()),
        };
        let _ = writeln!(
            err,
            "hbd import: wrote {}; check it with `{check}`",
            p.display(),
        );
    }
    if args.migration {
        let _ = writeln!(
            err,
            "hbd import: on this node only, `systemctl disable --now heartbeat`, then `systemctl enable --now hbd`: hbd joins the other node's Heartbeat as its peer (contrib/legacy-import/README.md, Rolling migration)"
        );
    } else {
        let _ = writeln!(
            err,
            "hbd import: stop Heartbeat on every node before starting hbd (`systemctl disable --now heartbeat`): both use UDP port 694 and would run the same resources"
        );
    }
    Ok(())
}
