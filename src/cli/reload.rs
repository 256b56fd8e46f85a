//! `hbd reload`: the running hbd rereads cluster.toml and the key file, and says
//! whether it took them (the same as `systemctl reload hbd`, with the answer).

use std::path::Path;

use super::control::{WaitArgs, command};
use crate::error::Result;

pub fn run(socket: &Path) -> Result<()> {
    let wait = WaitArgs {
        no_wait: true,
        timeout: 0,
    };
    command(socket, &wait, |c| async move {
        let r = c.reload().await?;
        Ok((c, r))
    })
}
