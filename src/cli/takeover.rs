//! `hbd takeover [GROUP]`: bring one group (or every group) to this node; the
//! holder releases it first.

use std::path::Path;

use super::control::{WaitArgs, move_group};
use crate::cluster::Command;
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The group to bring here (default: every group).
    pub group: Option<String>,
    /// Take over even when a peer runs a different cluster.toml.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

pub fn run(socket: &Path, args: Args) -> Result<()> {
    let cmd = Command::Takeover {
        group: args.group,
        force: args.force,
    };
    move_group(socket, &args.wait, cmd)
}
