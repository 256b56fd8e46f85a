//! `hbd takeover [GROUP]`: bring one group (or every group) to this node; the
//! holder releases it first.

use std::path::Path;

use super::control::{WaitArgs, command};
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
    let group = args.group.unwrap_or_default();
    command(socket, &args.wait, |c| async move {
        let r = c.takeover(&group, args.force).await?;
        Ok((c, r))
    })
}
