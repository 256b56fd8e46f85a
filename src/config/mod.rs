//! Configuration: `/etc/hbd/cluster.toml`, one file identical on every node.
//!
//! Loading goes text → syntax check (with positions) → serde model → cross-checks.
//! Every problem becomes a [`Diagnostic`] that names file:line:column and the key;
//! warnings do not stop a load, errors do.

mod diagnostic;
mod duration;
pub mod keys;
mod model;
mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Position, Severity, SpanIndex, did_you_mean, position_of};
pub use duration::{DurationError, HumanDuration};
pub use keys::{KeyError, KeySet};
pub use model::*;
pub use validate::validate;

/// A config that failed to load.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{}:{}: error: the file is not valid UTF-8 text", path.display(), at.line, at.column)]
    NotUtf8 { path: PathBuf, at: Position },
    #[error("{}", render_all(path, diagnostics))]
    Invalid {
        path: PathBuf,
        /// Errors first, then warnings; never empty of errors.
        diagnostics: Vec<Diagnostic>,
    },
}

fn render_all(path: &Path, diags: &[Diagnostic]) -> String {
    let file = path.display().to_string();
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.render(&file))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// All diagnostics (errors and warnings) of an invalid config.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid { diagnostics, .. } => diagnostics,
            _ => &[],
        }
    }
}

/// A config that loaded, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
    /// Where each key is written, for later diagnostics (e.g. key file problems).
    pub spans: SpanIndex,
}

impl Loaded {
    pub fn render_warnings(&self) -> Vec<String> {
        let file = self.path.display().to_string();
        self.warnings.iter().map(|d| d.render(&file)).collect()
    }
}

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_bytes(&bytes, path)
}

/// Validate config bytes; `path` only names the file in diagnostics.
pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<Loaded, ConfigError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            // The valid prefix is UTF-8 by construction.
            let prefix = String::from_utf8_lossy(good);
            return Err(ConfigError::NotUtf8 {
                path: path.to_path_buf(),
                at: position_of(&prefix, prefix.len()),
            });
        }
    };
    parse_str(text, path)
}

/// Validate config text; `path` only names the file in diagnostics.
pub fn parse_str(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    let invalid = |diagnostics: Vec<Diagnostic>| ConfigError::Invalid {
        path: path.to_path_buf(),
        diagnostics,
    };
    if text.trim().is_empty() {
        return Err(invalid(vec![Diagnostic::error(
            "",
            "the file is empty: a cluster needs [cluster], at least one [[link]] and two [[node]] tables",
        )
        .with_help("see the annotated example in the README")]));
    }
    let root =
        toml::de::DeTable::parse(text).map_err(|e| invalid(vec![toml_error(text, None, &e)]))?;
    let spans = SpanIndex::build(text, root.get_ref());
    let config: Config =
        toml::from_str(text).map_err(|e| invalid(vec![toml_error(text, Some(&spans), &e)]))?;
    let mut diagnostics: Vec<Diagnostic> = validate(&config)
        .into_iter()
        .map(|d| spans.locate(d))
        .collect();
    diagnostics.sort_by_key(|d| std::cmp::Reverse(d.severity));
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(invalid(diagnostics));
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        config,
        warnings: diagnostics,
        spans,
    })
}

fn toml_error(text: &str, spans: Option<&SpanIndex>, e: &toml::de::Error) -> Diagnostic {
    let message = e.message().trim().to_string();
    let mut d = Diagnostic::error("", message.clone());
    if let Some(span) = e.span() {
        d.position = Some(position_of(text, span.start));
        if let Some((spans, key)) = spans.and_then(|s| s.path_at(span.start).map(|k| (s, k))) {
            d.key = key.to_string();
            // Point at the offending key itself rather than its table.
            if let Some(field) = unknown_field(&message) {
                let path = format!("{key}.{field}");
                if let Some(p) = spans.position(&path) {
                    d.key = path;
                    d.position = Some(p);
                }
            }
        }
    }
    if let Some(h) = diagnostic::hint_for_serde_message(&message) {
        d.help = Some(h);
    }
    d
}

fn unknown_field(message: &str) -> Option<&str> {
    message.strip_prefix("unknown field `")?.split('`').next()
}
