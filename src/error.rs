//! The library's top-level error: each variant renders as the one sentence the user sees.

use crate::config::{ConfigError, KeyError};
use crate::import::ImportError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error("{0}")]
    Usage(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Runtime(String),
    /// This host is not (or `--node` names no) node of the cluster.
    #[error("{0}")]
    Node(String),
    /// The running hbd refused a command (the reason is the sentence).
    #[error("{0}")]
    Refused(String),
    /// No hbd answers on this node.
    #[error("{0}")]
    NotRunning(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Process exit code (documented in the README): 1 bad config or key,
    /// 2 bad usage, 3 runtime failure, 4 a command refused by hbd, 5 hbd not running.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Key(_) | Error::Import(_) | Error::Node(_) => 1,
            Error::Usage(_) => 2,
            Error::Io { .. } | Error::Runtime(_) => 3,
            Error::Refused(_) => 4,
            Error::NotRunning(_) => 5,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
