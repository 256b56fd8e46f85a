//! Line splitting shared by the three Heartbeat files.
//!
//! Heartbeat read its files with fgets: `#` starts a comment anywhere, blank lines
//! are skipped, and (in haresources) a backslash that ends a line joins it to the
//! next. Files copied through Windows arrive with CRLF and old ones with Latin-1
//! comments; both are accepted where Heartbeat could not have cared, and refused
//! with a line number where it would have.

use super::ImportError;
use super::report::Report;

/// One logical line: the number of its first physical line, and its text with
/// the comment removed and surrounding whitespace trimmed (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub no: usize,
    pub text: String,
}

/// Split `bytes` into logical lines. `join` enables backslash continuation.
pub fn lines(
    bytes: &[u8],
    file: &str,
    join: bool,
    report: &mut Report,
) -> Result<Vec<Line>, ImportError> {
    let mut out = Vec::new();
    let mut crlf = false;
    let mut pending: Option<Line> = None;
    let raw_lines: Vec<&[u8]> = if bytes.is_empty() {
        Vec::new()
    } else {
        let mut v: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        if bytes.ends_with(b"\n") {
            v.pop();
        }
        v
    };
    for (i, raw) in raw_lines.into_iter().enumerate() {
        let no = i + 1;
        let raw = match raw.strip_suffix(b"\r") {
            Some(r) => {
                crlf = true;
                r
            }
            None => raw,
        };
        // Only the part before a comment has to be text; a Latin-1 comment is harmless.
        let cut = raw.iter().position(|&b| b == b'#').unwrap_or(raw.len());
        let (body, comment) = raw.split_at(cut);
        let body = std::str::from_utf8(body).map_err(|_| {
            ImportError::at(
                file,
                no,
                "this line is not valid UTF-8 text (convert the file, e.g. `iconv -f latin1 -t utf8`)",
            )
        })?;
        if std::str::from_utf8(comment).is_err() {
            report.note(
                file,
                no,
                "comment is not UTF-8 text (Latin-1?); ignored like every comment",
            );
        }
        let continues = join && comment.is_empty() && body.ends_with('\\');
        if join && comment.is_empty() && !continues && body.trim_end().ends_with('\\') {
            report.warning(
                file,
                no,
                "a backslash followed by spaces does not continue the line (Heartbeat agrees); the next line starts a new group",
            );
        }
        let body = if continues {
            &body[..body.len() - 1]
        } else {
            body
        };
        let mut cur = match pending.take() {
            Some(mut p) => {
                p.text.push(' ');
                p.text.push_str(body);
                p
            }
            None => Line {
                no,
                text: body.to_string(),
            },
        };
        if continues {
            pending = Some(cur);
            continue;
        }
        cur.text = cur.text.trim().to_string();
        if !cur.text.is_empty() {
            out.push(cur);
        }
    }
    if let Some(mut p) = pending {
        p.text = p.text.trim().to_string();
        report.warning(
            file,
            p.no,
            "the file ends in a backslash continuation; the line is read as it stands",
        );
        if !p.text.is_empty() {
            out.push(p);
        }
    }
    if crlf {
        report.warning(
            file,
            0,
            "CRLF (DOS) line endings: read as plain newlines (Heartbeat itself would have read each \\r as part of the last value)",
        );
    }
    Ok(out)
}

/// Heartbeat's word splitting: whitespace and commas both separate values.
pub fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_comment_is_fine_latin1_value_is_not() {
        let mut r = Report::default();
        let l = lines(
            b"bcast eth0 # Schnittstelle f\xfcr Herzschlag\r\n",
            "ha.cf",
            false,
            &mut r,
        )
        .unwrap();
        assert_eq!(l[0].text, "bcast eth0");
        assert_eq!(r.entries.len(), 2, "{r:?}"); // Latin-1 note + CRLF warning
        let e = lines(b"ok\nnode m\xfcller\n", "ha.cf", false, &mut r).unwrap_err();
        assert!(e.to_string().starts_with("ha.cf:2: "), "{e}");
    }

    #[test]
    fn backslash_joins_only_when_last() {
        let mut r = Report::default();
        let l = lines(b"a b \\\n c\nd \\ \ne\n", "haresources", true, &mut r).unwrap();
        let t: Vec<&str> = l.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(t, ["a b   c", "d \\", "e"]);
        assert_eq!(r.entries.len(), 1);
    }
}
