//! Unit name escaping, exactly as `systemd-escape --path` does it.
//!
//! systemd names a mount unit after its mount point: the path is simplified
//! (duplicate slashes, `.` components and trailing slashes go), the leading slash is
//! dropped, every `/` becomes `-`, and every byte that is not an ASCII letter, digit,
//! `:`, `_` or `.` (and a `.` in first place) becomes `\xNN` in lower-case hex. The
//! root directory is `-`. A path with `..` components is refused, as systemd does.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Why a path cannot name a unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    #[error("\"{0}\" is not an absolute path")]
    NotAbsolute(String),
    #[error("\"{0}\" is not a normalized path (it has \"..\" components)")]
    NotNormalized(String),
}

/// Escape an arbitrary string the way `systemd-escape STRING` does (no `--path`).
pub fn escape(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, &b) in s.iter().enumerate() {
        if b == b'/' {
            out.push('-');
        } else if (i == 0 && b == b'.') || !is_valid(b) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{b:02x}");
        } else {
            out.push(b as char);
        }
    }
    out
}

fn is_valid(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'.'
}

/// Escape an absolute path the way `systemd-escape --path PATH` does.
pub fn escape_path(path: &Path) -> Result<String, EscapeError> {
    let bytes = path.as_os_str().as_bytes();
    let shown = || path.display().to_string();
    if bytes.first() != Some(&b'/') {
        return Err(EscapeError::NotAbsolute(shown()));
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in bytes.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(EscapeError::NotNormalized(shown())),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Ok("-".to_string());
    }
    Ok(escape(&parts.join(&b'/')))
}

/// The name of the mount unit systemd uses for a mount point, e.g. `srv-data.mount`.
pub fn mount_unit_name(mount_point: &Path) -> Result<String, EscapeError> {
    Ok(format!("{}.mount", escape_path(mount_point)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    const CASES: &[&str] = &[
        "/",
        "/srv/data",
        "/srv/my data",
        "/a-b/c-d",
        "/.hidden/x",
        "/x/.y",
        "/été/ünï",
        "/srv/x/",
        "//srv//x//",
        "/srv/./x",
        "/a:b_c.d",
        "/a\\b",
        "/tab\there",
        "/mnt/drbd0-r0",
        "/日本",
        "/a~b+c@d",
    ];

    #[test]
    fn known_values() {
        assert_eq!(mount_unit_name(Path::new("/")).unwrap(), "-.mount");
        assert_eq!(
            mount_unit_name(Path::new("/srv/my data")).unwrap(),
            "srv-my\\x20data.mount"
        );
        assert_eq!(escape_path(Path::new("/a-b/c")).unwrap(), "a\\x2db-c");
        assert_eq!(escape_path(Path::new("/.x")).unwrap(), "\\x2ex");
        assert_eq!(escape_path(Path::new("/x/.y")).unwrap(), "x-.y");
        assert_eq!(escape_path(Path::new("/é")).unwrap(), "\\xc3\\xa9");
        assert_eq!(escape_path(Path::new("/srv/x/")).unwrap(), "srv-x");
    }

    #[test]
    fn refuses_bad_paths() {
        assert!(matches!(
            escape_path(Path::new("srv/x")),
            Err(EscapeError::NotAbsolute(_))
        ));
        assert!(matches!(
            escape_path(Path::new("/srv/../x")),
            Err(EscapeError::NotNormalized(_))
        ));
        assert!(escape_path(Path::new("")).is_err());
    }

    /// Compare with the real `systemd-escape` binary, when it is installed.
    #[test]
    fn same_as_systemd_escape() {
        let Ok(out) = Command::new("systemd-escape").arg("--version").output() else {
            eprintln!("systemd-escape not installed; comparison skipped");
            return;
        };
        assert!(out.status.success());
        for case in CASES {
            let out = Command::new("systemd-escape")
                .args(["--path", "--suffix=mount", "--", case])
                .output()
                .expect("run systemd-escape");
            assert!(out.status.success(), "systemd-escape failed on {case:?}");
            let want = String::from_utf8(out.stdout)
                .unwrap()
                .trim_end()
                .to_string();
            let got = mount_unit_name(&PathBuf::from(case)).unwrap();
            assert_eq!(got, want, "escaping {case:?}");
        }
        // Plain (non-path) escaping too.
        for case in ["hbd script::a b", "-x", ".x", "a/b-c"] {
            let out = Command::new("systemd-escape")
                .args(["--", case])
                .output()
                .expect("run systemd-escape");
            let want = String::from_utf8(out.stdout)
                .unwrap()
                .trim_end()
                .to_string();
            assert_eq!(escape(case.as_bytes()), want, "escaping {case:?}");
        }
    }
}
