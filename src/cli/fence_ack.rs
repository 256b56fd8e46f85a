//! `hbd fence-ack NODE`: an operator confirms by hand that NODE is off (its fence
//! failed or timed out, or it has none that works); a takeover waiting for the fence
//! proceeds. Saying so of a node that is still up is how two copies of a group start.

use std::path::Path;

use super::control::{WaitArgs, command};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node that is off (checked by hand: power, console, out-of-band).
    pub node: String,
}

pub fn run(socket: &Path, args: Args) -> Result<()> {
    let wait = WaitArgs {
        no_wait: true,
        timeout: 0,
    };
    command(socket, &wait, |c| async move {
        let r = c.fence_ack(&args.node).await?;
        Ok((c, r))
    })
}
