//! Configuration: the model and its validation live in the sans-IO core
//! (`hbd_core::config`, re-exported here); this module reads the files.

pub mod keys;

use std::path::Path;

pub use hbd_core::config::*;
pub use keys::KeyError;

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_bytes(&bytes, path)
}
