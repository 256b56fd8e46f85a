//! Diagnostics: what is wrong (or doubtful) in a config, and where.
//!
//! Positions come from the TOML text itself ([`SpanIndex`]), so an error found by a
//! cross-check ("group web names unknown node") points at the same line:column as a
//! syntax error would. The model carries no positions; the index maps key paths to them.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A line and column, both counted from 1 (columns in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Dotted key path, e.g. `group[0].preferred`; empty for the whole file.
    pub key: String,
    pub position: Option<Position>,
    pub message: String,
    /// A suggestion, e.g. `did you mean "interface"?`.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            key: key.into(),
            position: None,
            message: message.into(),
            help: None,
        }
    }
    pub fn warning(key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(key, message)
        }
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders as `FILE:LINE:COL: error: KEY: MESSAGE (HELP)` on one line.
    pub fn render(&self, file: &str) -> String {
        let mut out = String::from(file);
        if let Some(p) = self.position {
            out.push_str(&format!(":{}:{}", p.line, p.column));
        }
        out.push_str(match self.severity {
            Severity::Error => ": error: ",
            Severity::Warning => ": warning: ",
        });
        if !self.key.is_empty() {
            out.push_str(&self.key);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        if let Some(h) = &self.help {
            out.push_str(&format!(" ({h})"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("cluster.toml"))
    }
}

/// Line and column of a byte offset in `text`.
pub fn position_of(text: &str, offset: usize) -> Position {
    let offset = offset.min(text.len());
    let mut off = offset;
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    Position { line, column }
}

/// Key paths of a TOML document and where each one is written.
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    text: String,
    /// (path, span of the key, span of the value), in document order.
    entries: Vec<(String, Range<usize>, Range<usize>)>,
    /// Index into `entries` by path (the first entry of each path), so that a
    /// diagnostic per node of a huge file costs O(1) to place, not O(file).
    by_path: std::collections::HashMap<String, usize>,
    /// Byte offset of the start of every line, for O(log n) positions.
    line_starts: Vec<usize>,
}

impl SpanIndex {
    /// An index with no positions (for configs built in memory, e.g. by the importer).
    pub fn empty() -> Self {
        SpanIndex::default()
    }

    pub fn build(text: &str, root: &DeTable<'_>) -> Self {
        let mut idx = SpanIndex {
            text: text.to_string(),
            entries: Vec::new(),
            by_path: Default::default(),
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        };
        idx.walk_table("", root);
        for (i, (p, _, _)) in idx.entries.iter().enumerate() {
            idx.by_path.entry(p.clone()).or_insert(i);
        }
        idx
    }

    fn entry(&self, path: &str) -> Option<&(String, Range<usize>, Range<usize>)> {
        self.by_path.get(path).map(|&i| &self.entries[i])
    }

    /// Line and column of a byte offset (same result as [`position_of`]).
    fn pos(&self, offset: usize) -> Position {
        let mut off = offset.min(self.text.len());
        while !self.text.is_char_boundary(off) {
            off -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= off).max(1);
        let start = self.line_starts[line - 1];
        Position {
            line,
            column: self.text[start..off].chars().count() + 1,
        }
    }

    fn walk_table(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (k, v) in table.iter() {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            self.entries.push((path.clone(), k.span(), v.span()));
            self.walk_value(&path, v.get_ref());
        }
    }

    fn walk_value(&mut self, path: &str, v: &DeValue<'_>) {
        match v {
            DeValue::Table(t) => self.walk_table(path, t),
            DeValue::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    self.entries.push((p.clone(), item.span(), item.span()));
                    self.walk_value(&p, item.get_ref());
                }
            }
            _ => {}
        }
    }

    /// Where `path` is written: the key when present, else the nearest written parent.
    pub fn position(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some((_, key, _)) = self.entry(p) {
                return Some(self.pos(key.start));
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    /// Where the value of `path` is written (falls back like [`SpanIndex::position`]).
    pub fn value_position(&self, path: &str) -> Option<Position> {
        match self.entry(path) {
            Some((_, _, v)) => Some(self.pos(v.start)),
            None => self.position(path),
        }
    }

    /// The innermost key path whose key or value covers byte `offset`.
    pub fn path_at(&self, offset: usize) -> Option<&str> {
        self.entries
            .iter()
            .filter(|(_, k, v)| k.contains(&offset) || v.contains(&offset) || v.start == offset)
            .max_by_key(|(p, _, _)| p.len())
            .map(|(p, _, _)| p.as_str())
    }

    /// The one direct child of `table` whose written value `message` quotes
    /// (as `"text"` or `` `text` ``), with the position of that value.
    pub fn child_quoted_in(&self, table: &str, message: &str) -> Option<(&str, Position)> {
        let prefix = format!("{table}.");
        let mut found = self.entries.iter().filter(|(path, _, value)| {
            match path.strip_prefix(&prefix) {
                Some(name) if !name.contains(['.', '[']) => {}
                _ => return false,
            }
            let written = self.text.get(value.clone()).unwrap_or("").trim();
            let inner = written
                .strip_prefix(['"', '\''])
                .and_then(|w| w.strip_suffix(['"', '\'']))
                .unwrap_or(written);
            !inner.is_empty()
                && (message.contains(&format!("\"{inner}\""))
                    || message.contains(&format!("`{inner}`")))
        });
        let (path, _, value) = found.next()?;
        if found.next().is_some() {
            return None;
        }
        Some((path.as_str(), self.pos(value.start)))
    }

    /// Attach a position to a diagnostic from its key path; problems of the whole
    /// file (empty key) point at its first line.
    pub fn locate(&self, mut d: Diagnostic) -> Diagnostic {
        if d.position.is_none() {
            if !d.key.is_empty() {
                d.position = self.position(&d.key);
            } else if !self.text.is_empty() {
                d.position = Some(Position { line: 1, column: 1 });
            }
        }
        d
    }
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Turn serde's "unknown field `x`, expected one of `a`, `b`" (or variant) into a
/// did-you-mean hint.
pub fn hint_for_serde_message(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (word, rest) = rest.split_once('`')?;
    // Words an admin brings from Heartbeat's ha.cf and haresources.
    let heartbeat = match word {
        "bcast" => Some("udp-broadcast"),
        "mcast" => Some("udp-multicast"),
        "ucast" => Some("udp-unicast"),
        "IPaddr" | "IPaddr2" | "IPv6addr" => Some("ip"),
        "Filesystem" => Some("mount"),
        _ => None,
    };
    if let Some(h) = heartbeat {
        return Some(format!("Heartbeat's `{word}` is `{h}` in hbd"));
    }
    let candidates: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    did_you_mean(word, candidates.iter().copied()).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_chars_from_one() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(position_of(t, 0), Position { line: 1, column: 1 });
        assert_eq!(position_of(t, 6), Position { line: 2, column: 1 });
        assert_eq!(position_of(t, 9), Position { line: 2, column: 3 });
    }

    #[test]
    fn hints() {
        assert_eq!(
            hint_for_serde_message(
                "unknown field `intreface`, expected one of `name`, `interface`, `port`"
            ),
            Some("did you mean `interface`?".into())
        );
        assert_eq!(
            hint_for_serde_message("unknown field `zzz`, expected `name`"),
            None
        );
    }
}
