//! The import report: every change the importer made, one line each, with the
//! Heartbeat file and line it came from.
//!
//! Admins moving a running cluster need to see exactly what did not carry over;
//! the report is the importer's promise that nothing is dropped silently.

use std::fmt;

/// How much an admin needs to care about an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Imported as it was: says where it went.
    Mapped,
    /// Imported, but expressed differently (a unit instead of an init script, ...).
    Note,
    /// Imported with a different value or meaning.
    Changed,
    /// Not imported: hbd has no equivalent (yet).
    Dropped,
    /// Imported, but the admin must act or check.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Mapped => "mapped",
            Severity::Note => "note",
            Severity::Changed => "changed",
            Severity::Dropped => "dropped",
            Severity::Warning => "warning",
        })
    }
}

/// One report line: `FILE:LINE: SEVERITY: MESSAGE` (line 0 = the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub file: String,
    pub line: usize,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}: {}", self.file, self.severity, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.severity, self.message
            )
        }
    }
}

/// All entries, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub entries: Vec<Entry>,
}

impl Report {
    pub fn push(
        &mut self,
        file: &str,
        line: usize,
        severity: Severity,
        message: impl Into<String>,
    ) {
        self.entries.push(Entry {
            file: file.to_string(),
            line,
            severity,
            message: message.into(),
        });
    }
    pub fn mapped(&mut self, file: &str, line: usize, message: impl Into<String>) {
        self.push(file, line, Severity::Mapped, message);
    }
    pub fn note(&mut self, file: &str, line: usize, message: impl Into<String>) {
        self.push(file, line, Severity::Note, message);
    }
    pub fn changed(&mut self, file: &str, line: usize, message: impl Into<String>) {
        self.push(file, line, Severity::Changed, message);
    }
    pub fn dropped(&mut self, file: &str, line: usize, message: impl Into<String>) {
        self.push(file, line, Severity::Dropped, message);
    }
    pub fn warning(&mut self, file: &str, line: usize, message: impl Into<String>) {
        self.push(file, line, Severity::Warning, message);
    }
    /// Order by file (ha.cf, haresources, authkeys, then the output) and line,
    /// keeping the order of discovery within a line.
    pub fn sort(&mut self) {
        let rank = |f: &str| match f {
            "ha.cf" => 0,
            "haresources" => 1,
            "authkeys" => 2,
            _ => 3,
        };
        self.entries
            .sort_by_key(|e| (rank(&e.file), e.file.clone(), e.line));
    }
    pub fn extend(&mut self, other: Report) {
        self.entries.extend(other.entries);
    }
    pub fn count(&self, severity: Severity) -> usize {
        self.entries
            .iter()
            .filter(|e| e.severity == severity)
            .count()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Whether any entry's message contains `needle` (for tests and callers).
    pub fn mentions(&self, needle: &str) -> bool {
        self.entries.iter().any(|e| e.message.contains(needle))
    }
    /// The whole report, one entry per line, each line ending in a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            out.push_str(&e.to_string());
            out.push('\n');
        }
        out
    }
}
