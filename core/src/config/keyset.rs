//! The keys a node signs and verifies with. Reading them from the key file (with its
//! permission checks) is the shell's job: `hbd::config::keys`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::model::Algorithm;

/// The keys a node signs and verifies with.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySet {
    pub algorithm: Algorithm,
    /// Key this node signs with.
    pub send_id: u8,
    keys: BTreeMap<u8, Vec<u8>>,
    /// Where they came from, for messages.
    pub source: PathBuf,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("KeySet")
            .field("algorithm", &self.algorithm)
            .field("send_id", &self.send_id)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .field("source", &self.source)
            .finish()
    }
}

impl KeySet {
    /// A key set from explicit keys (tests, the importer).
    pub fn new(algorithm: Algorithm, send_id: u8, keys: BTreeMap<u8, Vec<u8>>) -> Self {
        KeySet {
            algorithm,
            send_id,
            keys,
            source: PathBuf::new(),
        }
    }
    /// Name the file the keys came from, for messages.
    pub fn with_source(mut self, source: PathBuf) -> Self {
        self.source = source;
        self
    }
    pub fn get(&self, id: u8) -> Option<&[u8]> {
        self.keys.get(&id).map(Vec::as_slice)
    }
    pub fn send_key(&self) -> Option<&[u8]> {
        self.get(self.send_id)
    }
    pub fn ids(&self) -> impl Iterator<Item = u8> + '_ {
        self.keys.keys().copied()
    }
}
