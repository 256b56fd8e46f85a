//! `hbd maintenance on|off`: stop managing groups on this node (leave every resource
//! exactly as it is, keep heartbeating), or resume.

use std::path::Path;

use super::control::{WaitArgs, command};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    pub mode: OnOff,
}

pub fn run(socket: &Path, args: Args) -> Result<()> {
    let wait = WaitArgs {
        no_wait: true,
        timeout: 0,
    };
    command(socket, &wait, |c| async move {
        let r = c.maintenance(args.mode == OnOff::On).await?;
        Ok((c, r))
    })
}
