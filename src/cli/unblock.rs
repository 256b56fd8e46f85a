//! `hbd unblock GROUP`: an operator cleaned up a group left blocked (a stop that
//! failed) or failed on this node; hbd may place it again.

use std::path::Path;

use super::control::{WaitArgs, command};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The group that is blocked or failed here.
    pub group: String,
}

pub fn run(socket: &Path, args: Args) -> Result<()> {
    let wait = WaitArgs {
        no_wait: true,
        timeout: 0,
    };
    command(socket, &wait, |c| async move {
        let r = c.unblock(&args.group).await?;
        Ok((c, r))
    })
}
