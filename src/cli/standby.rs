//! `hbd standby [GROUP]`: give up one group (or every group) on this node and keep
//! it away until `hbd takeover` or `hbd clear` here.

use std::path::Path;

use super::control::{WaitArgs, command};
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
    let group = args.group.unwrap_or_default();
    command(socket, &args.wait, |c| async move {
        let r = c.standby(&group, args.force).await?;
        Ok((c, r))
    })
}
