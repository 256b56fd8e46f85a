//! Configuration: `/etc/hbd/cluster.toml`, one file identical on every node.
//!
//! This is the model and its validation only; reading the file is the shell's
//! (`hbd::config::load`).
//!
//! Loading goes text → syntax check (with positions) → serde model → cross-checks.
//! Every problem becomes a [`Diagnostic`] that names file:line:column and the key;
//! warnings do not stop a load, errors do.

mod builder;
mod diagnostic;
mod duration;
mod keyset;
mod model;
mod structure;
mod validate;

use std::path::{Path, PathBuf};

pub use builder::{BUILDER_PATH, Builder};
pub use diagnostic::{Diagnostic, Position, Severity, SpanIndex, did_you_mean, position_of};
pub use duration::{DurationError, HumanDuration};
pub use keyset::KeySet;
pub use model::*;
pub use validate::{MAX_GROUPS, MAX_NODES, MAX_PING, validate};

/// A config that failed to load.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}:{}:{}: error: the file is not valid UTF-8 text (byte {byte:#04x}): save it as UTF-8",
        path.display(), at.line, at.column
    )]
    NotUtf8 {
        path: PathBuf,
        at: Position,
        /// The first byte that is not UTF-8.
        byte: u8,
    },
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
                byte: bytes.get(e.valid_up_to()).copied().unwrap_or_default(),
            });
        }
    };
    parse_str(text, path)
}

/// The most configuration text hbd parses: a full cluster (32 nodes, 64 groups)
/// takes a few KiB; anything past this is refused before it costs time.
pub const MAX_CONFIG_TEXT: usize = 1 << 20;

/// Validate config text; `path` only names the file in diagnostics.
pub fn parse_str(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    let invalid = |diagnostics: Vec<Diagnostic>| ConfigError::Invalid {
        path: path.to_path_buf(),
        diagnostics,
    };
    if text.len() > MAX_CONFIG_TEXT {
        let mut d = Diagnostic::error(
            "",
            format!(
                "the file is {} bytes, more than the {MAX_CONFIG_TEXT} bytes (1 MiB) hbd reads; 32 nodes and 64 groups take a few KiB, so this is not the file you meant",
                text.len()
            ),
        );
        d.position = Some(Position { line: 1, column: 1 });
        return Err(invalid(vec![d]));
    }
    let empty = |what: &str| {
        let mut d = Diagnostic::error(
            "",
            format!(
                "the file {what}: a cluster needs [cluster], at least one [[link]] and two [[node]] tables"
            ),
        )
        .with_help("see the annotated example in the README");
        d.position = Some(Position { line: 1, column: 1 });
        invalid(vec![d])
    };
    if text.trim().is_empty() {
        return Err(empty("is empty"));
    }
    let root =
        toml::de::DeTable::parse(text).map_err(|e| invalid(vec![toml_error(text, None, &e)]))?;
    if root.get_ref().is_empty() {
        return Err(empty("holds only comments"));
    }
    let spans = SpanIndex::build(text, root.get_ref());
    let config: Config = match toml::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            // Every unknown key, wrong type and bad value at once, each where it is.
            let mut all = structure::errors(text, &root);
            if all.is_empty() {
                all.push(toml_error(text, Some(&spans), &e));
            }
            all.sort_by_key(|d| d.position.map(|p| (p.line, p.column)));
            return Err(invalid(all));
        }
    };
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
    // One diagnostic is one line of output.
    let mut message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    let mut d = Diagnostic::error("", "");
    // Syntax errors always have a span; fall back to the top of the file rather than
    // print an error without a position.
    d.position = Some(Position { line: 1, column: 1 });
    if let Some(span) = e.span() {
        d.position = Some(position_of(text, span.start));
        let written = text.get(span.clone()).unwrap_or("").trim();
        message = reword(&message, written);
        if let Some((spans, key)) = spans.and_then(|s| s.path_at(span.start).map(|k| (s, k))) {
            let item = failing_item(text, key);
            let key = item.as_deref().unwrap_or(key);
            d.key = key.to_string();
            if let Some(p) = item.as_deref().and_then(|k| spans.position(k)) {
                d.position = Some(p);
            }
            if let Some(field) = unknown_field(&message) {
                // Point at the offending key itself rather than its table.
                let path = if key.ends_with(&format!(".{field}")) || key == field {
                    key.to_string()
                } else {
                    format!("{key}.{field}")
                };
                if let Some(p) = spans.position(&path) {
                    d.key = path;
                    d.position = Some(p);
                }
            } else if let Some((path, p)) = spans.child_quoted_in(key, &message) {
                // Fields of `kind = ...` tables reach serde without their own spans;
                // find the value the message quotes.
                d.key = path.to_string();
                d.position = Some(p);
            }
        }
    }
    d.help =
        diagnostic::hint_for_serde_message(&message).or_else(|| hint_for_key(&d.key, &message));
    d.message = message;
    d
}

/// serde reports an error in any item of an array of tables (`[[link]]`,
/// `[[group.resource]]`, ...) against the array's first header, so `key` may name
/// `link[0]` when `link[2]` is wrong. Deserialize the items one at a time to find
/// the first one that fails, and return its path.
fn failing_item(text: &str, key: &str) -> Option<String> {
    let (base, _) = key.strip_suffix(']')?.rsplit_once('[')?;
    let mut value = toml::Value::Table(toml::from_str::<toml::Table>(text).ok()?);
    let mut shape = String::new();
    for segment in base.split('.') {
        let (name, index) = match segment.strip_suffix(']').and_then(|s| s.split_once('[')) {
            Some((name, i)) => (name, Some(i.parse::<usize>().ok()?)),
            None => (segment, None),
        };
        value = value.get(name)?.clone();
        if let Some(i) = index {
            value = value.get(i)?.clone();
        }
        if !shape.is_empty() {
            shape.push('.');
        }
        shape.push_str(name);
    }
    let items = value.as_array()?;
    let fails = |item: &toml::Value| match shape.as_str() {
        "link" => item.clone().try_into::<Link>().is_err(),
        "node" => item.clone().try_into::<Node>().is_err(),
        "group" => item.clone().try_into::<Group>().is_err(),
        "group.resource" => item.clone().try_into::<Resource>().is_err(),
        _ => false,
    };
    let index = items.iter().position(fails)?;
    Some(format!("{base}[{index}]"))
}

/// Make the TOML and serde messages that do not say which value they mean say it.
fn reword(message: &str, written: &str) -> String {
    match message {
        "invalid IP address syntax" if !written.is_empty() => {
            format!("{written} is not an IP address")
        }
        "invalid IPv4 address syntax" if !written.is_empty() => {
            format!("{written} is not an IPv4 address")
        }
        "duplicate key" if !written.is_empty() => {
            format!("duplicate key `{written}`: each key may be set once per table")
        }
        _ => message
            .replace("expected u8", "expected a whole number from 0 to 255")
            .replace("expected u16", "expected a whole number from 0 to 65535")
            .replace(
                "expected u32",
                "expected a whole number from 0 to 4294967295",
            ),
    }
}

/// Help for mistakes whose serde message does not point at the fix.
fn hint_for_key(key: &str, message: &str) -> Option<String> {
    if message == "missing field `cluster`" {
        return Some("start the file with a [cluster] table that sets name".into());
    }
    if message.starts_with("invalid type: string") && message.ends_with("expected a boolean") {
        return Some("write true or false, without quotes".into());
    }
    if message.starts_with("invalid type: map, expected a sequence") {
        // `[node]` where `[[node]]` was meant; strip indices: group[0].resource → group.resource
        let mut table = String::new();
        let mut depth = 0;
        for c in key.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                c if depth == 0 => table.push(c),
                _ => {}
            }
        }
        return Some(format!(
            "write [[{table}]] with double brackets, once per entry"
        ));
    }
    None
}

fn unknown_field(message: &str) -> Option<&str> {
    message.strip_prefix("unknown field `")?.split('`').next()
}
