//! Configuration: the model and its validation live in the sans-IO core
//! (`hbd_core::config`, re-exported here); this module reads the files.

pub mod keys;

use std::path::Path;

pub use hbd_core::config::*;
pub use keys::KeyError;

/// Largest cluster.toml hbd reads (32 nodes and 64 groups take a few hundred lines).
pub const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// Read and validate a config file: a regular file (a link to one is fine) of at most
/// [`MAX_CONFIG_FILE`] bytes; a FIFO or a device is refused before it is opened, so it
/// can neither hang hbd nor feed it without end.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    use crate::files::{FileError, Links, read_regular};
    use std::io::{Error, ErrorKind};
    let (bytes, _) = read_regular(path, MAX_CONFIG_FILE, Links::Follow).map_err(|e| {
        let source = match e {
            FileError::NotFound => Error::new(
                ErrorKind::NotFound,
                "it does not exist; write it (the example in \
                 /usr/share/doc/hbd/examples/cluster.toml, or `hbd import /etc/ha.d` from Heartbeat)",
            ),
            FileError::Io(e) => e,
            refused => Error::other(format!("it is {refused}")),
        };
        ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }
    })?;
    parse_bytes(&bytes, path)
}
