//! `hbd run`: the daemon entry point.

use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// This node's name (default: the host name).
    #[arg(long)]
    pub node: Option<String>,
}

pub fn run(path: &Path, args: Args) -> Result<()> {
    let loaded = crate::config::load(path)?;
    let _ = (loaded, args);
    Err(Error::Runtime("the daemon is not built yet".into()))
}
