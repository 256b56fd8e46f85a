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

/// MAC of `data` with `key`.
/// HMAC takes keys of any length, so this cannot fail.
pub fn sign(alg: Algorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
    match alg {
        Algorithm::HmacSha256 => match <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => vec![0; 32],
        },
        Algorithm::HmacSha1 => match <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => vec![0; 20],
        },
    }
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
