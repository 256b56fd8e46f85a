//! authkeys: `auth N` and `N METHOD [SECRET]` lines.
//!
//! hbd's wire protocol is not Heartbeat's, so the MAC changes in any case (hbd
//! signs with HMAC-SHA256); what carries over is the secret, so every node that
//! imports the same authkeys ends up with the same hbd key. crc has no secret at
//! all, so a fresh one is made and must be copied by hand.

use super::ImportError;
use super::report::Report;
use super::text::lines;

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

/// Parse authkeys text and return the active key.
pub fn parse(bytes: &[u8], file: &str, report: &mut Report) -> Result<ActiveKey, ImportError> {
    let mut auth: Option<(u8, usize)> = None;
    let mut keys: Vec<ActiveKey> = Vec::new();
    for l in lines(bytes, file, false, report)? {
        // Heartbeat reads key lines with sscanf("%d %s %s"): words end at whitespace
        // only (a comma belongs to the secret), and the secret is the first word
        // after the method, quotes and all; the rest of the line is ignored.
        let ws: Vec<&str> = l.text.split_whitespace().collect();
        let n = l.no;
        let err = |msg: String| ImportError::at(file, n, msg);
        let id = |s: &str| -> Result<u8, ImportError> {
            match s.parse::<u8>() {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(err(format!("key id \"{s}\" is not a number from 1 to 255"))),
            }
        };
        match ws.as_slice() {
            ["auth", n_id] => {
                if auth.is_some() {
                    return Err(err("a second `auth` line".into()));
                }
                auth = Some((id(n_id)?, n));
            }
            ["auth", ..] => {
                return Err(err(
                    "expected `auth N` (the id of the key to sign with)".into()
                ));
            }
            [kid, method, rest @ ..] => {
                let kid = id(kid)?;
                if keys.iter().any(|k| k.id == kid) {
                    return Err(err(format!("key {kid} is defined twice")));
                }
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
                            "{} needs a secret: `{kid} {} SECRET`",
                            method.name(),
                            method.name()
                        )));
                    }
                    (_, [s, more @ ..]) => {
                        ignored = Some(more.join(" "));
                        Some((*s).to_string())
                    }
                };
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
    }
}
