//! `hbd standby [GROUP]`: give up one group (or every group) on this node and keep
//! it away until `hbd takeover` or `hbd clear` here.

use std::path::Path;

use super::control::{WaitArgs, move_group};
use crate::cluster::Command;
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The group to give up (default: every group).
    pub group: Option<String>,
    /// Hand over even to a node whose cluster.toml differs.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

pub fn run(socket: &Path, args: Args) -> Result<()> {
    let cmd = Command::Standby {
        group: args.group,
        force: args.force,
    };
    move_group(socket, &args.wait, cmd)
}
