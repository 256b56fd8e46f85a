//! `hbd import`: convert /etc/ha.d (Heartbeat v1) to cluster.toml and a key file.
//!
//! The work is in [`crate::import`]; this file only handles files and output:
//! the report goes to stderr, the TOML to stdout unless --output, and nothing
//! existing is overwritten without --force (checked before anything is written).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::keys;
use crate::error::{Error, Result};
use crate::import::{self, ImportError, Options, RealHost};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Heartbeat configuration directory.
    #[arg(default_value = import::HA_DIR)]
    pub dir: PathBuf,
    /// Write cluster.toml here instead of to stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Write the key file here (default with --output: /etc/hbd/authkey; without
    /// --output no key file is written unless this is given).
    #[arg(long)]
    pub key_output: Option<PathBuf>,
    /// Which node of ha.cf this host is (default: the host name); needed for ucast links.
    #[arg(long)]
    pub node: Option<String>,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(_config: &Path, args: Args) -> Result<()> {
    let key_path = args.key_output.clone().or_else(|| {
        args.output
            .as_ref()
            .map(|_| PathBuf::from(crate::config::DEFAULT_KEY_FILE))
    });
    if !args.force {
        for p in args.output.iter().chain(key_path.iter()) {
            if p.exists() {
                return Err(ImportError::Exists(p.clone()).into());
            }
        }
    }
    let opts = Options {
        node: args.node.clone(),
        node_dir: None,
    };
    let imported = import::import(&args.dir, &opts, &RealHost)?;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(imported.report.render().as_bytes());
    match &args.output {
        Some(p) => write_atomic(p, &imported.toml)?,
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
        let _ = writeln!(
            err,
            "hbd import: wrote {}; check it with `hbd check -c {}`",
            p.display(),
            p.display()
        );
    }
    let _ = writeln!(
        err,
        "hbd import: stop Heartbeat on every node before starting hbd (`systemctl disable --now heartbeat`): both use UDP port 694 and would run the same resources"
    );
    Ok(())
}

/// Write through a temporary file in the same directory, then rename.
fn write_atomic(path: &Path, text: &str) -> Result<()> {
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
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| werr(e).into())
}
