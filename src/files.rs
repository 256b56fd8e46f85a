//! Reading the admin's files without trusting what is found at the path.
//!
//! cluster.toml and the key file are named by paths that a careless admin (or anyone who
//! can write the directory) may have pointed at a FIFO, a device, a directory, a huge
//! file or a symbolic link. Opening a FIFO blocks until a writer comes, a character
//! device such as /dev/zero never ends, and a 1 GB file would be read whole. So a file is
//! looked at with `lstat`/`stat` first and refused unless it is a regular file of a sane
//! size; only then is it opened (`O_NONBLOCK`, so a FIFO swapped in meanwhile cannot
//! hang the open; `O_NOFOLLOW` when links are refused), checked again with `fstat`
//! (the file opened must be the one looked at), and read up to the size limit.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Whether the last component of the path may be a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Read the file the link points to (cluster.toml: a link into a config checkout).
    Follow,
    /// Refuse a link (the key file: hints such as `chmod 600 PATH` would act on its target).
    Refuse,
}

/// Why a file was not read. Displayed after "PATH is ...".
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("missing")]
    NotFound,
    #[error(
        "a symbolic link (to {}); hbd reads and writes this file only as a regular file: replace the link with the file itself",
        .0.display()
    )]
    Symlink(PathBuf),
    #[error("{0}, not a regular file")]
    NotRegular(&'static str),
    #[error("{size} bytes, larger than the {max} bytes hbd reads from it")]
    TooLarge { size: u64, max: u64 },
    #[error("unreadable: {0}")]
    Io(#[source] io::Error),
}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            FileError::NotFound
        } else {
            FileError::Io(e)
        }
    }
}

/// What kind of file `meta` describes, for "is a FIFO, not a regular file".
pub fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Refuse what is not a regular file of at most `max` bytes (and, with
/// [`Links::Refuse`], a symbolic link) without opening anything.
pub fn inspect(path: &Path, max: u64, links: Links) -> Result<Metadata, FileError> {
    let meta = match links {
        Links::Refuse => {
            let m = fs::symlink_metadata(path)?;
            if m.file_type().is_symlink() {
                let target = fs::read_link(path).unwrap_or_default();
                return Err(FileError::Symlink(target));
            }
            m
        }
        Links::Follow => fs::metadata(path)?,
    };
    if !meta.file_type().is_file() {
        return Err(FileError::NotRegular(kind(&meta)));
    }
    if meta.len() > max {
        return Err(FileError::TooLarge {
            size: meta.len(),
            max,
        });
    }
    Ok(meta)
}

/// Read a regular file of at most `max` bytes. Returns its bytes and the metadata of the
/// file actually read (for owner and mode checks).
pub fn read_regular(path: &Path, max: u64, links: Links) -> Result<(Vec<u8>, Metadata), FileError> {
    let before = inspect(path, max, links)?;
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let mut file = File::options()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| {
            // O_NOFOLLOW on a link that appeared since the lstat.
            if e.raw_os_error() == Some(libc::ELOOP) {
                FileError::Symlink(fs::read_link(path).unwrap_or_default())
            } else {
                e.into()
            }
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(FileError::NotRegular(kind(&meta)));
    }
    if meta.dev() != before.dev() || meta.ino() != before.ino() {
        return Err(FileError::Io(io::Error::other(
            "the file was replaced while it was being opened; try again",
        )));
    }
    // The file may grow after the fstat: never read more than max + 1 bytes.
    let mut bytes = Vec::with_capacity(meta.len().min(max) as usize);
    (&mut file).take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(FileError::TooLarge {
            size: bytes.len() as u64,
            max,
        });
    }
    Ok((bytes, meta))
}

/// Replace `dir/name` with `contents` atomically and durably, for hbd's own state files
/// ($STATE_DIRECTORY): the directory is made 0700 if missing; a temporary file in it is
/// created exclusively (`O_EXCL`, `O_NOFOLLOW`, mode 0600, so a planted link is never
/// written through), synced, then renamed over the old file. On error the temporary
/// file is removed and the old file stays as it was. Blocking: call off the event loop.
pub fn replace_state_file(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    let written = f
        .write_all(contents)
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, dir.join(name)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, "hello").unwrap();
        let (b, _) = read_regular(&f, 5, Links::Refuse).unwrap();
        assert_eq!(b, b"hello");
        assert!(matches!(
            read_regular(&f, 4, Links::Refuse),
            Err(FileError::TooLarge { size: 5, max: 4 })
        ));
        let l = dir.path().join("l");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert!(matches!(
            read_regular(&l, 5, Links::Refuse),
            Err(FileError::Symlink(t)) if t == f
        ));
        assert!(read_regular(&l, 5, Links::Follow).is_ok());
        assert!(matches!(
            read_regular(dir.path(), 5, Links::Follow),
            Err(FileError::NotRegular("a directory"))
        ));
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 5, Links::Follow),
            Err(FileError::NotRegular("a character device"))
        ));
        assert!(matches!(
            read_regular(&dir.path().join("none"), 5, Links::Follow),
            Err(FileError::NotFound)
        ));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            read_regular(&fifo, 5, Links::Follow),
            Err(FileError::NotRegular("a FIFO"))
        ));
    }
}
