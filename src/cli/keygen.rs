//! `hbd keygen`: write a fresh random key, atomically and with mode 0600.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{self, keys};
use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Key file to write (default: auth.key_file of the config, else /etc/hbd/authkey).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Id of the new key (1-255).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    pub id: u8,
    /// Add the key to an existing file (for key rotation) instead of creating one.
    #[arg(long, conflicts_with = "force")]
    pub append: bool,
    /// Replace an existing key file.
    #[arg(long)]
    pub force: bool,
}

pub fn run(config_path: &Path, args: Args) -> Result<()> {
    let path = match args.output {
        Some(p) => p,
        None => match config::load(config_path) {
            Ok(l) => l.config.auth.key_file,
            Err(_) => PathBuf::from(config::DEFAULT_KEY_FILE),
        },
    };
    let mut set: BTreeMap<u8, String> = BTreeMap::new();
    if args.append {
        // A regular file only: never through a link (the rename below would replace the
        // link, not its target), never a FIFO or device.
        let (bytes, _) = keys::read_key_file(&path)?;
        let (existing, _) = keys::parse(&bytes, &path)?;
        if existing.contains_key(&args.id) {
            return Err(Error::Usage(format!(
                "{} already has key {}: choose another --id",
                path.display(),
                args.id
            )));
        }
        for (id, secret) in existing {
            set.insert(id, String::from_utf8_lossy(&secret).into_owned());
        }
    }
    set.insert(args.id, keys::random_secret()?);
    keys::write_key_file(&path, &keys::render(&set), args.force || args.append)?;
    eprintln!(
        "wrote key {} to {} (mode 0600); copy this file to every node, then run `hbd check`",
        args.id,
        path.display()
    );
    Ok(())
}
