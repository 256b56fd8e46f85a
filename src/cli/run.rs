//! `hbd run`: the daemon entry point (what hbd.service starts).

use std::path::Path;

use crate::daemon::{self, Options};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// This node's name (default: the host name, or its part before the first dot).
    #[arg(long)]
    pub node: Option<String>,
}

pub fn run(path: &Path, socket: &Path, args: Args) -> Result<()> {
    daemon::run(Options {
        config_path: path.to_path_buf(),
        node: args.node,
        control_socket: socket.to_path_buf(),
    })
}
