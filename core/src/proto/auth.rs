//! Packet authentication: HMAC-SHA256 (default) or HMAC-SHA1 over the whole
//! message, keyed by one of the shared keys. Verification is constant-time.

use hmac::{Hmac, KeyInit, Mac};

use crate::config::{Algorithm, KeySet};

/// Length of the MAC that ends every packet.
pub fn mac_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HmacSha256 => 32,
        Algorithm::HmacSha1 => 20,
    }
}

/// The MAC could not be computed (HMAC takes keys of any length, so this does not
/// happen with the algorithms hbd has; it is an error, never an all-zero MAC).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot compute the packet MAC: the key is unusable")]
pub struct SignError;

/// MAC of `data` with `key`.
pub fn sign(alg: Algorithm, key: &[u8], data: &[u8]) -> Result<Vec<u8>, SignError> {
    Ok(match alg {
        Algorithm::HmacSha256 => {
            let mut m =
                <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).map_err(|_| SignError)?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Algorithm::HmacSha1 => {
            let mut m =
                <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).map_err(|_| SignError)?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    })
}

/// Whether `tag` is the MAC of `data` under key `key_id` of `keys`.
/// `None` when the key id is unknown.
pub fn verify(keys: &KeySet, key_id: u8, data: &[u8], tag: &[u8]) -> Option<bool> {
    let key = keys.get(key_id)?;
    Some(match keys.algorithm {
        Algorithm::HmacSha256 => {
            let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).ok()?;
            m.update(data);
            m.verify_slice(tag).is_ok()
        }
        Algorithm::HmacSha1 => {
            let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).ok()?;
            m.update(data);
            m.verify_slice(tag).is_ok()
        }
    })
}
