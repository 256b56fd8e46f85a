//! authkeys: `auth N` and `N METHOD [SECRET]` lines.
//!
//! hbd's wire protocol is not Heartbeat's, so the MAC changes in any case (hbd
//! signs with HMAC-SHA256); what carries over is the secret, so every node that
//! imports the same authkeys ends up with the same hbd key. crc has no secret at
//! all, so a fresh one is made and must be copied by hand.

use super::ImportError;
use super::report::Report;

pub const FILE: &str = "authkeys";

/// Heartbeat's authentication methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Crc,
    Md5,
    Sha1,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Crc => "crc",
            Method::Md5 => "md5",
            Method::Sha1 => "sha1",
        }
    }
}

/// The key `auth N` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveKey {
    pub id: u8,
    pub method: Method,
    /// None for crc.
    pub secret: Option<String>,
    /// Line of the key itself.
    pub line: usize,
    /// What Heartbeat ignored after the secret (its `%d %s %s` reads one word),
    /// when the line had more: the secret was probably meant to be several words.
    pub ignored: Option<String>,
}

/// One authkeys line as Heartbeat saw it: only a line whose first non-blank
/// character is `#` is a comment (a `#` inside a secret belongs to it).
struct KeyLine {
    no: usize,
    text: String,
}

fn key_lines(bytes: &[u8], file: &str, report: &mut Report) -> Result<Vec<KeyLine>, ImportError> {
    let mut out = Vec::new();
    let mut crlf = false;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let no = i + 1;
        let raw = match raw.strip_suffix(b"\r") {
            Some(r) => {
                crlf = true;
                r
            }
            None => raw,
        };
        let start = raw
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(raw.len());
        let body = &raw[start..];
        if body.is_empty() || body[0] == b'#' {
            continue;
        }
        let text = std::str::from_utf8(body).map_err(|_| {
            ImportError::at(
                file,
                no,
                "this line is not valid UTF-8 text, and hbd's key file is text: convert the file (e.g. `iconv -f latin1 -t utf8`) or make a new key with `hbd keygen`",
            )
        })?;
        out.push(KeyLine {
            no,
            text: text.trim_end().to_string(),
        });
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

/// Parse authkeys text and return the active key, read as Heartbeat 3.0.6 read
/// it: `auth N` (the rest of the line ignored; the last `auth` line counts) and
/// `N METHOD [SECRET]` through sscanf("%d%s%s"), so words end at whitespace only
/// and the secret is the first word after the method, quotes and all.
pub fn parse(bytes: &[u8], file: &str, report: &mut Report) -> Result<ActiveKey, ImportError> {
    let mut auth: Option<(u8, usize)> = None;
    let mut keys: Vec<ActiveKey> = Vec::new();
    for l in key_lines(bytes, file, report)? {
        let ws: Vec<&str> = l.text.split_whitespace().collect();
        let n = l.no;
        let err = |msg: String| ImportError::at(file, n, msg);
        // Heartbeat keeps keys 0 to 15 (MAXAUTH); hbd's ids are 1 to 255.
        let id = |s: &str| -> Result<u8, ImportError> {
            s.parse::<u8>()
                .map_err(|_| err(format!("key id \"{s}\" is not a number from 0 to 255")))
        };
        if l.text.starts_with('a') {
            let Some(n_id) = ws.first().and_then(|w| w.strip_prefix("auth")).map(|rest| {
                if rest.is_empty() {
                    ws.get(1).copied().unwrap_or("")
                } else {
                    rest
                }
            }) else {
                return Err(err(
                    "expected `auth N` (the id of the key to sign with); Heartbeat refuses this line too".into(),
                ));
            };
            let v = id(n_id).map_err(|_| {
                err("expected `auth N` (the id of the key to sign with); Heartbeat refuses this line too".into())
            })?;
            if let Some((prev, pl)) = auth {
                report.warning(
                    file,
                    n,
                    format!("a second `auth` line (line {pl} said auth {prev}): the last one counts, as in Heartbeat"),
                );
            }
            auth = Some((v, n));
            continue;
        }
        match ws.as_slice() {
            [kid, method, rest @ ..] => {
                let kid = id(kid)?;
                let method = match method.to_ascii_lowercase().as_str() {
                    "crc" => Method::Crc,
                    "md5" => Method::Md5,
                    "sha1" => Method::Sha1,
                    other => {
                        return Err(err(format!(
                            "unknown method \"{other}\": Heartbeat knows crc, md5 and sha1"
                        )));
                    }
                };
                let mut ignored = None;
                let secret = match (method, rest) {
                    (Method::Crc, []) => None,
                    (Method::Crc, _) => {
                        report.note(
                            file,
                            n,
                            "crc takes no secret; the words after it are ignored",
                        );
                        None
                    }
                    (_, [s]) => Some((*s).to_string()),
                    (_, []) => {
                        return Err(err(format!(
                            "{} needs a secret: `{kid} {} SECRET` (Heartbeat refuses this too)",
                            method.name(),
                            method.name()
                        )));
                    }
                    (_, [s, more @ ..]) => {
                        ignored = Some(more.join(" "));
                        Some((*s).to_string())
                    }
                };
                if let Some(i) = keys.iter().position(|k| k.id == kid) {
                    report.warning(
                        file,
                        n,
                        format!("key {kid} is defined again (line {} defined it first): the last one counts, as in Heartbeat", keys[i].line),
                    );
                    keys.remove(i);
                }
                keys.push(ActiveKey {
                    id: kid,
                    method,
                    secret,
                    line: n,
                    ignored,
                });
            }
            _ => return Err(err("expected `auth N` or `N METHOD [SECRET]`".into())),
        }
    }
    let Some((active, aline)) = auth else {
        return Err(ImportError::at(
            file,
            0,
            "no `auth N` line: Heartbeat refuses this file too (\"Missing auth directive\")",
        ));
    };
    let Some(key) = keys.iter().find(|k| k.id == active).cloned() else {
        return Err(ImportError::at(
            file,
            aline,
            format!("`auth {active}` names a key that is not defined"),
        ));
    };
    for k in keys.iter().filter(|k| k.id != active) {
        let words = match (&k.secret, &k.ignored) {
            (Some(s), Some(rest)) => format!(
                " (its secret is written as several words: Heartbeat used only `{s}` and ignored `{rest}`)"
            ),
            _ => String::new(),
        };
        report.dropped(
            file,
            k.line,
            format!(
                "key {} ({}) — only the active key (auth {active}) is carried over{words}",
                k.id,
                k.method.name()
            ),
        );
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_active_key_and_strips_comments() {
        let mut r = Report::default();
        let k = parse(
            b"auth 2 # or 3 md5\n3 md5 other\n2 sha1 test-ha\n",
            "authkeys",
            &mut r,
        )
        .unwrap();
        assert_eq!(k.id, 2);
        assert_eq!(k.method, Method::Sha1);
        assert_eq!(k.secret.as_deref(), Some("test-ha"));
        assert_eq!(r.entries.len(), 1);
    }

    #[test]
    fn errors_name_lines() {
        let mut r = Report::default();
        let e = parse(b"auth 1\n1 md5\n", "authkeys", &mut r).unwrap_err();
        assert!(e.to_string().starts_with("authkeys:2: "), "{e}");
        let e = parse(b"# nothing\n", "authkeys", &mut r).unwrap_err();
        assert!(e.to_string().contains("no `auth N` line"), "{e}");
    }

    #[test]
    fn a_quoted_secret_is_its_first_word_as_heartbeat_read_it() {
        let mut r = Report::default();
        let k = parse(
            b"auth 1\n1 md5 \"cluster twin test\"\n2 crc\n",
            "authkeys",
            &mut r,
        )
        .unwrap();
        assert_eq!(k.secret.as_deref(), Some("\"cluster"));
        assert_eq!(k.ignored.as_deref(), Some("twin test\""));
        // Commas belong to the secret (sscanf splits on whitespace only).
        let k = parse(b"auth 1\n1 sha1 a,b,c\n", "authkeys", &mut r).unwrap();
        assert_eq!(k.secret.as_deref(), Some("a,b,c"));
        assert_eq!(k.ignored, None);
        // `#` starts a comment only at the start of a line, as in Heartbeat.
        let k = parse(
            b"# keys\n  # indented comment\nauth 0 # sign with 0\n0 sha1 ab#cd # old\n",
            "authkeys",
            &mut r,
        )
        .unwrap();
        assert_eq!((k.id, k.secret.as_deref()), (0, Some("ab#cd")));
        // The last auth line and the last definition of a key count.
        let k = parse(
            b"auth 1\n1 md5 first\nauth 2\n2 md5 x\n2 sha1 second\n",
            "authkeys",
            &mut r,
        )
        .unwrap();
        assert_eq!(
            (k.id, k.method, k.secret.as_deref()),
            (2, Method::Sha1, Some("second"))
        );
    }
}
