//! The shared secret: `ID SECRET` lines in /etc/hbd/authkey (or a systemd credential).
//!
//! Several keys may be present so a cluster can rotate keys one node at a time:
//! every key in the file is accepted on receipt, and `auth.key_id` picks the one a
//! node signs with. The file must not be readable by anyone but its owner.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::files::{self, FileError, Links};
use hbd_core::config::Auth;
pub use hbd_core::config::KeySet;

/// Shortest secret accepted without a warning.
pub const MIN_SECRET: usize = 16;

/// Largest key file hbd reads: 255 keys of 64 hex characters with comments fit many times.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {} does not exist: create it with `hbd keygen --output {}`", .0.display(), .0.display())]
    Missing(PathBuf),
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "key file {} is readable by group or others (mode {mode:04o}): run `chmod 600 {}`",
        path.display(), path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "key file {} is owned by uid {uid}, not root: run `chown root:root {}`",
        path.display(), path.display()
    )]
    Owner { path: PathBuf, uid: u32 },
    #[error("{}:{line}: {why}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("key file {} holds no key: add a line `1 SECRET` or run `hbd keygen`", .0.display())]
    Empty(PathBuf),
    #[error("auth.key_id is {id} but key file {} has no key {id} (it has {have})", path.display())]
    NoSuchId { path: PathBuf, id: u8, have: String },
    #[error("{} already exists: pass --force to replace it", .0.display())]
    Exists(PathBuf),
    #[error("cannot write key file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot get random bytes from the kernel: {0}")]
    Random(String),
    /// Heartbeat's authkeys (`[migration] authkeys`) cannot be used.
    #[error("{}: {why}", path.display())]
    Authkeys { path: PathBuf, why: String },
    /// A symbolic link, a FIFO, a device, a directory or a huge file where the key should be.
    #[error("key file {} is {source}", path.display())]
    Unsafe {
        path: PathBuf,
        #[source]
        source: FileError,
    },
}

impl KeyError {
    fn from_file(path: &Path, e: FileError) -> KeyError {
        let path = path.to_path_buf();
        match e {
            FileError::NotFound => KeyError::Missing(path),
            FileError::Io(source) => KeyError::Read { path, source },
            source => KeyError::Unsafe { path, source },
        }
    }
}

/// Read a key file: a regular file (not a link) of at most [`MAX_KEY_FILE`] bytes.
/// Nothing is opened before that is known, so a FIFO or a device cannot hang or flood hbd.
pub fn read_key_file(path: &Path) -> Result<(Vec<u8>, fs::Metadata), KeyError> {
    files::read_regular(path, MAX_KEY_FILE, Links::Refuse).map_err(|e| KeyError::from_file(path, e))
}

/// Where the key is read from: a systemd credential when hbd runs with one, else `auth.key_file`.
pub fn key_path(auth: &Auth) -> PathBuf {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let p = Path::new(&dir).join("authkey");
        if p.exists() {
            return p;
        }
    }
    auth.key_file.clone()
}

/// Load and check the key file named by the config (warnings are returned, not printed).
pub fn load(auth: &Auth) -> Result<(KeySet, Vec<String>), KeyError> {
    let path = key_path(auth);
    // The checks below look at the file that was read, never through a link: their
    // hints (`chmod`, `chown`) then act on that file and nothing else.
    let (text, meta) = read_key_file(&path)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path, mode });
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(KeyError::Owner {
            path,
            uid: meta.uid(),
        });
    }
    let (keys, warnings) = parse(&text, &path)?;
    if !keys.contains_key(&auth.key_id) {
        let have = keys
            .keys()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(KeyError::NoSuchId {
            path,
            id: auth.key_id,
            have,
        });
    }
    Ok((
        KeySet::new(auth.algorithm, auth.key_id, keys).with_source(path),
        warnings,
    ))
}

/// Load Heartbeat's authkeys (`[migration] authkeys`, a mixed cluster): its `auth N`
/// key signs and checks Heartbeat's messages. Read as the key file is (a regular file,
/// mode 600 as Heartbeat itself demands), parsed as Heartbeat 3.0.6 parsed it.
pub fn load_heartbeat(path: &Path) -> Result<hbd_core::proto::heartbeat::Keyring, KeyError> {
    use crate::import::authkeys;
    use hbd_core::proto::heartbeat::{Keyring, Method};
    let (text, meta) = read_key_file(path)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut report = crate::import::report::Report::default();
    let why = |why: String| KeyError::Authkeys {
        path: path.to_path_buf(),
        why,
    };
    let key =
        authkeys::parse(&text, authkeys::FILE, &mut report).map_err(|e| why(e.to_string()))?;
    let secret = || key.secret.clone().unwrap_or_default().into_bytes();
    let method = match key.method {
        authkeys::Method::Crc => Method::Crc,
        authkeys::Method::Md5 => Method::Md5(secret()),
        authkeys::Method::Sha1 => Method::Sha1(secret()),
    };
    Keyring::new(key.id, vec![(key.id, method)]).map_err(|e| why(e.to_string()))
}

/// Secrets by key id, as read from a key file.
pub type Keys = BTreeMap<u8, Vec<u8>>;

/// Parse key file text: `ID SECRET` per line, `#` comments, blank lines ignored.
/// Returns the keys and warnings (e.g. short secrets).
pub fn parse(bytes: &[u8], path: &Path) -> Result<(Keys, Vec<String>), KeyError> {
    let syntax = |line: usize, why: String| KeyError::Syntax {
        path: path.to_path_buf(),
        line,
        why,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        syntax(line, "not valid UTF-8 text".into())
    })?;
    let mut keys = BTreeMap::new();
    let mut warnings = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(id), Some(secret), None) = (words.next(), words.next(), words.next()) else {
            return Err(syntax(
                n,
                "expected `ID SECRET` (one key per line, no spaces in the secret)".into(),
            ));
        };
        let id: u8 = match id.parse() {
            Ok(v) if v > 0 => v,
            _ => {
                return Err(syntax(
                    n,
                    format!("key id \"{id}\" is not a number from 1 to 255"),
                ));
            }
        };
        if keys.insert(id, secret.as_bytes().to_vec()).is_some() {
            return Err(syntax(n, format!("key id {id} appears twice")));
        }
        if secret.len() < MIN_SECRET {
            warnings.push(format!(
                "{}:{n}: key {id} is only {} characters long; `hbd keygen` makes a 64-character one",
                path.display(),
                secret.len()
            ));
        }
    }
    if keys.is_empty() {
        return Err(KeyError::Empty(path.to_path_buf()));
    }
    Ok((keys, warnings))
}

/// A fresh random secret: 32 bytes from the kernel, hex encoded.
pub fn random_secret() -> Result<String, KeyError> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(hex::encode(buf))
}

/// Write a key file atomically with mode 0600: a temporary file with a random name,
/// created exclusively in the same directory, fsynced, then renamed over the target.
/// A symbolic link (or anything but a regular file) at `path` is refused, with or
/// without `force`: replacing it would surprise, writing through it would change its target.
pub fn write_key_file(path: &Path, contents: &str, force: bool) -> Result<(), KeyError> {
    let werr = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    match files::inspect(path, u64::MAX, Links::Refuse) {
        Err(FileError::NotFound) => {}
        Ok(_) if !force => return Err(KeyError::Exists(path.to_path_buf())),
        Ok(_) => {}
        Err(e) => return Err(KeyError::from_file(path, e)),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(werr)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    // O_CREAT|O_EXCL under a random name, mode 0600 from the start: a file or link planted
    // beside the key is never opened, and the secret is never readable by others.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(werr)?;
    tmp.write_all(contents.as_bytes()).map_err(werr)?;
    tmp.as_file().sync_all().map_err(werr)?;
    // On error the temporary file is removed when `tmp` is dropped.
    tmp.persist(path).map_err(|e| werr(e.error))?;
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Key file text for a new key set.
pub fn render(keys: &BTreeMap<u8, String>) -> String {
    let mut s = String::from(
        "# hbd authentication keys: `ID SECRET`, one per line. Keep this file mode 0600.\n",
    );
    for (id, secret) in keys {
        s.push_str(&format!("{id} {secret}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_keys() {
        let (k, w) = parse(b"# c\n1 abcdefabcdefabcdef\n\n2 short\n", Path::new("k")).unwrap();
        assert_eq!(k.len(), 2);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn rejects_bad_lines() {
        for bad in [
            &b"x secret"[..],
            b"0 secret",
            b"1 a b",
            b"1 a\n1 b",
            b"# only comment",
            b"1 \xff",
        ] {
            assert!(parse(bad, Path::new("k")).is_err(), "{bad:?}");
        }
    }
}
