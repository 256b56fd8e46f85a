//! `hbd import`: convert /etc/ha.d (Heartbeat v1) to cluster.toml.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Heartbeat configuration directory.
    #[arg(default_value = "/etc/ha.d")]
    pub dir: PathBuf,
}

pub fn run(_config: &Path, _args: Args) -> Result<()> {
    Err(Error::Runtime("import is not built yet".into()))
}
