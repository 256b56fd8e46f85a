//! `hbd clear [GROUP]`: forget this node's `hbd standby` or `hbd takeover` for one
//! group (or every group). Both last until cleared (they survive restarts of hbd);
//! clearing moves nothing by itself: the normal rules place the group again.

use std::path::Path;

use super::control::{WaitArgs, command};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The group (default: every group).
    pub group: Option<String>,
}

pub fn run(socket: &Path, args: Args) -> Result<()> {
    let group = args.group.unwrap_or_default();
    let wait = WaitArgs {
        no_wait: true,
        timeout: 0,
    };
    command(socket, &wait, |c| async move {
        let r = c.clear(&group).await?;
        Ok((c, r))
    })
}
