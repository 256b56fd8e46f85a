//! The heartbeat message on the wire (versions 1 and 2), big-endian:
//!
//! ```text
//!  0  magic "HBD" 0xA5          4
//!  4  version (1 or 2)          1
//!  5  kind (1 heartbeat, 2 leave) 1
//!  6  key id                    1
//!  7  flags (bit 0 leaving, bit 1 maintenance; others ignored) 1
//!  8  cluster id                4
//! 12  config digest             8
//! 20  incarnation               8
//! 28  sequence                  8
//! 36  sender name: len (1..=63) + bytes
//!     group count (0..=64), then per group:
//!       name: len + bytes, state (1 byte), generation (8 bytes)
//!       version 2: state in the low 4 bits, claim flags in the high 4 bits
//!       (0x10 standby, 0x20 wanted; unknown flags ignored)
//!     ack count (0..=31), then per ack: an incarnation the sender hears (8 bytes)
//!     version 2 only: the sender's version range (min, max: 2 bytes), then optional
//!       fields: count, then per field type (1 byte), len (1 byte), value; unknown
//!       types are skipped. Types 16-31 belong to operation (see [`FIELD_TIMING`]):
//!       16 timing: the sender's keepalive, warntime and deadtime in ms (3 x u32)
//!       1 ping count (len 1): how many of its ping nodes the sender reaches, sent
//!         only when it has ping nodes configured (`[failover] ping`)
//! end MAC over everything before it (32 bytes HMAC-SHA256 or 20 HMAC-SHA1)
//! ```
//!
//! A node speaks the highest version every live peer speaks: a peer heard in version
//! 1 (an older hbd, which refuses anything else) is sent version 1, which cannot carry
//! the claim flags, so the operator's standby and takeover wait for the upgrade.
//!
//! The acks are the freshness proof: a receiver believes a new incarnation of a peer
//! only from a packet that acks the receiver's own current incarnation, which no
//! packet recorded before the receiver started can do.
//!
//! Groups travel by name, not index, so two nodes whose configs differ (a reload in
//! progress) still agree on which group a claim is about. Replay checks need the
//! receiver's state and live in the cluster module; this module checks form and MAC
//! ([`DecodeError`]) and owns the size limits that config validation enforces
//! ([`heartbeat_len`]).

use crate::config::{Algorithm, KeySet};

use super::auth;

pub const MAGIC: [u8; 4] = *b"HBD\xA5";
/// Highest version this hbd speaks (and sends unless a peer speaks only older ones).
pub const VERSION: u8 = 2;
/// Lowest version this hbd accepts and can send.
pub const MIN_VERSION: u8 = 1;
/// Largest packet accepted or produced: fits an Ethernet frame without fragmentation.
pub const MAX_PACKET: usize = 1400;
const HEADER: usize = 36;
pub const FLAG_LEAVING: u8 = 1;
/// The sender is in maintenance mode: it manages nothing, its claims stand as they are.
pub const FLAG_MAINTENANCE: u8 = 2;
/// Claim flag: the operator put the sender in standby for this group (not eligible).
pub const CLAIM_STANDBY: u8 = 0x10;
/// Claim flag: the operator asked for this group on the sender (`hbd takeover`).
pub const CLAIM_WANTED: u8 = 0x20;
/// Bytes version 2 adds after the acks: the version range and an empty field list.
const V2_TRAILER: usize = 3;
/// Optional field (version 2): the sender's own timing, so that a peer whose
/// cluster.toml says otherwise (a rolling change, a mistake) judges the sender's
/// silence by the longer of both and neither flaps the other dead/up. Value: keepalive,
/// warntime, deadtime, each in milliseconds (u32, saturating). A field of this type
/// with another length is skipped like an unknown one.
pub const FIELD_TIMING: u8 = 16;
/// Bytes the timing field takes: type, length, value.
const TIMING_FIELD: usize = 2 + 12;
/// Optional field type: the number of ping nodes the sender reaches (one byte).
pub const FIELD_PING: u8 = 1;
/// Bytes the ping count adds to a version 2 heartbeat (type, len, value); config
/// validation adds it to [`heartbeat_len`] when ping nodes are configured.
pub const PING_FIELD_LEN: usize = 3;
/// Longest name (node or group) on the wire.
pub const MAX_NAME: usize = 63;
/// Most group claims in one message.
pub const MAX_CLAIMS: usize = 64;
/// Most acks in one message: one per other node of the largest cluster, plus a twin.
pub const MAX_ACKS: usize = 32;

/// Why a packet is not a well-formed, authentic hbd message for this cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("packet too long ({0} bytes)")]
    TooLong(usize),
    #[error("not an hbd packet (bad magic)")]
    BadMagic,
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    #[error("packet from another cluster (id {0:#010x})")]
    OtherCluster(u32),
    #[error("packet signed with unknown key id {0}")]
    UnknownKey(u8),
    #[error("bad MAC: wrong key or forged packet")]
    BadMac,
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Heartbeat,
    /// Last word of a node shutting down cleanly: it holds nothing any more.
    Leave,
}

/// A node's claim on one group, as it announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    None,
    Starting,
    Running,
    Stopping,
    Failed,
    Blocked,
}

impl ClaimState {
    fn to_byte(self) -> u8 {
        match self {
            ClaimState::None => 0,
            ClaimState::Starting => 1,
            ClaimState::Running => 2,
            ClaimState::Stopping => 3,
            ClaimState::Failed => 4,
            ClaimState::Blocked => 5,
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => ClaimState::None,
            1 => ClaimState::Starting,
            2 => ClaimState::Running,
            3 => ClaimState::Stopping,
            4 => ClaimState::Failed,
            5 => ClaimState::Blocked,
            _ => return None,
        })
    }
    /// Whether resources of the group may be up on the claiming node.
    pub fn holds(self) -> bool {
        matches!(
            self,
            ClaimState::Starting | ClaimState::Running | ClaimState::Stopping | ClaimState::Blocked
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub group: String,
    pub state: ClaimState,
    /// Takeover generation: raised by each node that starts the group.
    pub generation: u64,
    /// [`CLAIM_STANDBY`], [`CLAIM_WANTED`] (version 2); unknown bits are ignored.
    pub flags: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub key_id: u8,
    pub flags: u8,
    pub cluster_id: u32,
    pub digest: [u8; 8],
    pub incarnation: u64,
    pub seq: u64,
    pub sender: String,
    pub claims: Vec<Claim>,
    /// Incarnations of the nodes the sender hears (see the module comment).
    pub acks: Vec<u64>,
}

/// A sender's timing as it announces it ([`FIELD_TIMING`]), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderTiming {
    pub keepalive_ms: u32,
    pub warntime_ms: u32,
    pub deadtime_ms: u32,
}

/// The optional fields of a version 2 packet that this version knows (the rest are
/// skipped), kept apart from [`Message`] so that older code building messages is
/// unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    pub timing: Option<SenderTiming>,
    /// How many ping nodes the sender reaches ([`FIELD_PING`]); `None` when it has
    /// none configured.
    pub ping: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("name \"{0}\" is too long for the wire (at most 63 bytes)")]
    Name(String),
    #[error("too many groups ({0}) for one packet")]
    Groups(usize),
    #[error("too many acks ({0}) for one packet")]
    Acks(usize),
    #[error("message is {0} bytes, over the {MAX_PACKET}-byte limit")]
    TooLong(usize),
    #[error("no key with id {0}")]
    NoKey(u8),
    #[error(transparent)]
    Sign(#[from] auth::SignError),
}

/// Length of a heartbeat from a sender named with `sender_len` bytes, claiming groups
/// whose names have the given lengths, signed with `algorithm`. Config validation uses
/// it so that a configuration whose heartbeat cannot be sent is refused up front.
/// `acks` is the number of other nodes the sender may hear.
pub fn heartbeat_len(
    algorithm: Algorithm,
    sender_len: usize,
    group_name_lens: impl IntoIterator<Item = usize>,
    acks: usize,
) -> usize {
    let claims: usize = group_name_lens.into_iter().map(|l| 1 + l + 1 + 8).sum();
    HEADER
        + 1
        + sender_len
        + 1
        + claims
        + 1
        + 8 * acks
        + V2_TRAILER
        + TIMING_FIELD
        + auth::mac_len(algorithm)
}

fn put_name(out: &mut Vec<u8>, name: &str) -> Result<(), EncodeError> {
    let len = name.len();
    if len == 0 || len > MAX_NAME {
        return Err(EncodeError::Name(name.to_string()));
    }
    out.push(len as u8);
    out.extend_from_slice(name.as_bytes());
    Ok(())
}

/// Encode and sign a message with key `msg.key_id` of `keys`, in [`VERSION`].
pub fn encode(msg: &Message, keys: &KeySet) -> Result<Vec<u8>, EncodeError> {
    encode_as(msg, keys, VERSION)
}

/// Encode in `version` (clamped to the supported range); version 1 drops the claim
/// flags and the version range.
pub fn encode_as(msg: &Message, keys: &KeySet, version: u8) -> Result<Vec<u8>, EncodeError> {
    encode_extras(msg, keys, version, &Extras::default())
}

/// Encode in `version` with optional fields (version 2 only; version 1 drops them).
pub fn encode_extras(
    msg: &Message,
    keys: &KeySet,
    version: u8,
    extras: &Extras,
) -> Result<Vec<u8>, EncodeError> {
    let version = version.clamp(MIN_VERSION, VERSION);
    let key = keys.get(msg.key_id).ok_or(EncodeError::NoKey(msg.key_id))?;
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&MAGIC);
    out.push(version);
    out.push(match msg.kind {
        Kind::Heartbeat => 1,
        Kind::Leave => 2,
    });
    out.push(msg.key_id);
    out.push(msg.flags);
    out.extend_from_slice(&msg.cluster_id.to_be_bytes());
    out.extend_from_slice(&msg.digest);
    out.extend_from_slice(&msg.incarnation.to_be_bytes());
    out.extend_from_slice(&msg.seq.to_be_bytes());
    put_name(&mut out, &msg.sender)?;
    if msg.claims.len() > MAX_CLAIMS {
        return Err(EncodeError::Groups(msg.claims.len()));
    }
    out.push(msg.claims.len() as u8);
    for c in &msg.claims {
        put_name(&mut out, &c.group)?;
        let flags = if version >= 2 { c.flags & 0xf0 } else { 0 };
        out.push(c.state.to_byte() | flags);
        out.extend_from_slice(&c.generation.to_be_bytes());
    }
    if msg.acks.len() > MAX_ACKS {
        return Err(EncodeError::Acks(msg.acks.len()));
    }
    out.push(msg.acks.len() as u8);
    for a in &msg.acks {
        out.extend_from_slice(&a.to_be_bytes());
    }
    if version >= 2 {
        // Version range, then the optional fields.
        out.extend_from_slice(&[MIN_VERSION, VERSION]);
        let mut fields = 0u8;
        let count_at = out.len();
        out.push(0);
        if let Some(t) = extras.timing {
            out.extend_from_slice(&[FIELD_TIMING, 12]);
            for v in [t.keepalive_ms, t.warntime_ms, t.deadtime_ms] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            fields += 1;
        }
        if let Some(n) = extras.ping {
            out.extend_from_slice(&[FIELD_PING, 1, n]);
            fields += 1;
        }
        out[count_at] = fields;
    }
    let tag = auth::sign(keys.algorithm, key, &out)?;
    out.extend_from_slice(&tag);
    if out.len() > MAX_PACKET {
        return Err(EncodeError::TooLong(out.len()));
    }
    Ok(out)
}

/// A bounds-checked reader: every read returns `Malformed` instead of panicking.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Malformed("length overflow"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Malformed("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn name(&mut self) -> Result<String, DecodeError> {
        let len = self.u8()? as usize;
        if len == 0 || len > MAX_NAME {
            return Err(DecodeError::Malformed("bad name length"));
        }
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Malformed("name is not UTF-8"))
    }
}

/// The sender named in a packet, read without authenticating it (for diagnostics
/// and to pick per-sender state before the MAC check).
pub fn peek_sender(bytes: &[u8]) -> Option<String> {
    let mut r = Reader {
        buf: bytes,
        pos: HEADER,
    };
    r.name().ok()
}

/// The checks that cost nothing (length, magic, version, cluster id), for a reader
/// to drop junk before it reaches the core; [`decode`] makes them again.
pub fn precheck(bytes: &[u8], mac_len: usize, cluster_id: u32) -> Result<(), DecodeError> {
    if bytes.len() > MAX_PACKET {
        return Err(DecodeError::TooLong(bytes.len()));
    }
    if bytes.len() < HEADER + 2 + 1 + 1 + mac_len {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    if bytes[..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if !(MIN_VERSION..=VERSION).contains(&bytes[4]) {
        return Err(DecodeError::BadVersion(bytes[4]));
    }
    let cid = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if cid != cluster_id {
        return Err(DecodeError::OtherCluster(cid));
    }
    Ok(())
}

/// The protocol versions a packet shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// The version the packet is in.
    pub packet: u8,
    /// The highest version its sender speaks (1 for a version 1 packet).
    pub max: u8,
}

/// Decode and authenticate a packet for cluster `cluster_id`.
pub fn decode(bytes: &[u8], keys: &KeySet, cluster_id: u32) -> Result<Message, DecodeError> {
    decode_versions(bytes, keys, cluster_id).map(|(m, _)| m)
}

/// Decode and authenticate, also returning the versions the packet shows.
pub fn decode_versions(
    bytes: &[u8],
    keys: &KeySet,
    cluster_id: u32,
) -> Result<(Message, Versions), DecodeError> {
    decode_extras(bytes, keys, cluster_id).map(|(m, v, _)| (m, v))
}

/// Decode and authenticate, also returning the versions and the known optional fields.
pub fn decode_extras(
    bytes: &[u8],
    keys: &KeySet,
    cluster_id: u32,
) -> Result<(Message, Versions, Extras), DecodeError> {
    let mac_len = auth::mac_len(keys.algorithm);
    precheck(bytes, mac_len, cluster_id)?;
    let version = bytes[4];
    let kind = match bytes[5] {
        1 => Kind::Heartbeat,
        2 => Kind::Leave,
        _ => return Err(DecodeError::Malformed("unknown message kind")),
    };
    let key_id = bytes[6];
    let flags = bytes[7];
    let cid = cluster_id;
    let (body, tag) = bytes.split_at(bytes.len() - mac_len);
    match auth::verify(keys, key_id, body, tag) {
        None => return Err(DecodeError::UnknownKey(key_id)),
        Some(false) => return Err(DecodeError::BadMac),
        Some(true) => {}
    }
    let mut r = Reader { buf: body, pos: 12 };
    let mut digest = [0u8; 8];
    digest.copy_from_slice(r.take(8)?);
    let incarnation = r.u64()?;
    let seq = r.u64()?;
    let sender = r.name()?;
    let count = r.u8()? as usize;
    if count > MAX_CLAIMS {
        return Err(DecodeError::Malformed("too many groups"));
    }
    let mut claims = Vec::with_capacity(count);
    for _ in 0..count {
        let group = r.name()?;
        let b = r.u8()?;
        let flags = if version >= 2 { b & 0xf0 } else { 0 };
        let state =
            ClaimState::from_byte(b & 0x0f).ok_or(DecodeError::Malformed("unknown claim state"))?;
        let generation = r.u64()?;
        claims.push(Claim {
            group,
            state,
            generation,
            flags,
        });
    }
    let count = r.u8()? as usize;
    if count > MAX_ACKS {
        return Err(DecodeError::Malformed("too many acks"));
    }
    let mut acks = Vec::with_capacity(count);
    for _ in 0..count {
        acks.push(r.u64()?);
    }
    let mut versions = Versions {
        packet: version,
        max: version,
    };
    let mut extras = Extras::default();
    if version >= 2 {
        let (min, max) = (r.u8()?, r.u8()?);
        if min > max || min > version || max < version {
            return Err(DecodeError::Malformed("bad version range"));
        }
        versions.max = max;
        // Optional fields: the known ones are read, the others skipped whole.
        for _ in 0..r.u8()? {
            let kind = r.u8()?;
            let len = r.u8()? as usize;
            let value = r.take(len)?;
            if kind == FIELD_TIMING && len == 12 {
                let ms = |i: usize| {
                    u32::from_be_bytes([value[i], value[i + 1], value[i + 2], value[i + 3]])
                };
                extras.timing = Some(SenderTiming {
                    keepalive_ms: ms(0),
                    warntime_ms: ms(4),
                    deadtime_ms: ms(8),
                });
            }
            if kind == FIELD_PING && len == 1 {
                extras.ping = Some(value[0]);
            }
        }
    }
    if r.pos != body.len() {
        return Err(DecodeError::Malformed("trailing bytes"));
    }
    let msg = Message {
        kind,
        key_id,
        flags,
        cluster_id: cid,
        digest,
        incarnation,
        seq,
        sender,
        claims,
        acks,
    };
    Ok((msg, versions, extras))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Algorithm;
    use std::collections::BTreeMap;

    fn keys(alg: Algorithm) -> KeySet {
        let mut k = BTreeMap::new();
        k.insert(1, b"0123456789abcdef0123".to_vec());
        k.insert(2, b"another key entirely".to_vec());
        KeySet::new(alg, 1, k)
    }

    fn msg() -> Message {
        Message {
            kind: Kind::Heartbeat,
            key_id: 1,
            flags: 0,
            cluster_id: 0xdead_beef,
            digest: [1, 2, 3, 4, 5, 6, 7, 8],
            incarnation: 42,
            seq: 7,
            sender: "alpha".into(),
            claims: vec![Claim {
                group: "web".into(),
                state: ClaimState::Running,
                generation: 3,
                flags: CLAIM_WANTED,
            }],
            acks: vec![7, u64::MAX],
        }
    }

    #[test]
    fn heartbeat_len_is_the_encoded_length() {
        for alg in [Algorithm::HmacSha256, Algorithm::HmacSha1] {
            let k = keys(alg);
            let mut m = msg();
            m.key_id = 1;
            m.claims = (0..40)
                .map(|i| Claim {
                    group: format!("g{i:0width$}", width = i % 20 + 1),
                    state: ClaimState::Blocked,
                    generation: u64::MAX,
                    flags: 0,
                })
                .collect();
            let extras = Extras {
                timing: Some(SenderTiming {
                    keepalive_ms: 1,
                    warntime_ms: 2,
                    deadtime_ms: 3,
                }),
                ping: None,
            };
            let bytes = encode_extras(&m, &k, VERSION, &extras).unwrap();
            let lens = m.claims.iter().map(|c| c.group.len());
            assert_eq!(
                heartbeat_len(alg, m.sender.len(), lens, m.acks.len()),
                bytes.len()
            );
        }
    }

    #[test]
    fn ping_count_travels_in_version_2_only_and_adds_its_field_len() {
        let k = keys(Algorithm::HmacSha256);
        let ping = Extras {
            ping: Some(3),
            ..Extras::default()
        };
        let bytes = encode_extras(&msg(), &k, VERSION, &ping).unwrap();
        assert_eq!(
            bytes.len(),
            encode(&msg(), &k).unwrap().len() + PING_FIELD_LEN
        );
        let (m, _, e) = decode_extras(&bytes, &k, 0xdead_beef).unwrap();
        assert_eq!((m, e.ping), (msg(), Some(3)));
        let v1 = encode_extras(&msg(), &k, 1, &ping).unwrap();
        assert_eq!(decode_extras(&v1, &k, 0xdead_beef).unwrap().2.ping, None);
        // A ping field of another length (a later version's) is skipped, not misread.
        let mac = auth::mac_len(k.algorithm);
        let mut body = bytes[..bytes.len() - mac].to_vec();
        let n = body.len();
        body.truncate(n - 3);
        body.extend_from_slice(&[FIELD_PING, 2, 9, 9]);
        let tag = auth::sign(k.algorithm, k.get(1).unwrap(), &body).unwrap();
        body.extend_from_slice(&tag);
        assert_eq!(decode_extras(&body, &k, 0xdead_beef).unwrap().2.ping, None);
    }

    #[test]
    fn round_trips_with_both_algorithms() {
        for alg in [Algorithm::HmacSha256, Algorithm::HmacSha1] {
            let k = keys(alg);
            let bytes = encode(&msg(), &k).unwrap();
            assert_eq!(decode(&bytes, &k, 0xdead_beef).unwrap(), msg());
        }
    }

    #[test]
    fn rejects_with_reasons() {
        let k = keys(Algorithm::HmacSha256);
        let good = encode(&msg(), &k).unwrap();
        assert_eq!(
            decode(&good, &k, 1),
            Err(DecodeError::OtherCluster(0xdead_beef))
        );
        assert!(matches!(
            decode(&good[..20], &k, 0xdead_beef),
            Err(DecodeError::TooShort(20))
        ));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(decode(&bad, &k, 0xdead_beef), Err(DecodeError::BadMagic));
        let mut bad = good.clone();
        bad[4] = 9;
        assert_eq!(
            decode(&bad, &k, 0xdead_beef),
            Err(DecodeError::BadVersion(9))
        );
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 40] ^= 1;
        assert_eq!(decode(&bad, &k, 0xdead_beef), Err(DecodeError::BadMac));
        let mut bad = good.clone();
        bad[6] = 9;
        assert_eq!(
            decode(&bad, &k, 0xdead_beef),
            Err(DecodeError::UnknownKey(9))
        );
        // Signed with key 2: accepted (rotation).
        let mut m2 = msg();
        m2.key_id = 2;
        let b2 = encode(&m2, &k).unwrap();
        assert_eq!(decode(&b2, &k, 0xdead_beef).unwrap(), m2);
        // Another secret under the same id: bad MAC.
        let mut other = BTreeMap::new();
        other.insert(1, b"not the same secret".to_vec());
        let ko = KeySet::new(Algorithm::HmacSha256, 1, other);
        assert_eq!(decode(&good, &ko, 0xdead_beef), Err(DecodeError::BadMac));
        assert!(matches!(
            decode(&vec![0u8; 2000], &k, 0xdead_beef),
            Err(DecodeError::TooLong(2000))
        ));
    }

    #[test]
    fn version_1_drops_the_claim_flags_and_version_2_skips_unknown_fields() {
        let k = keys(Algorithm::HmacSha256);
        let v1 = encode_as(&msg(), &k, 1).unwrap();
        assert_eq!(v1[4], 1);
        let (m, v) = decode_versions(&v1, &k, 0xdead_beef).unwrap();
        assert_eq!(v, Versions { packet: 1, max: 1 });
        assert_eq!(m.claims[0].flags, 0, "version 1 has no claim flags");
        assert_eq!(m.claims[0].state, ClaimState::Running);

        // Version 2 with an optional field this version does not know.
        let v2 = encode(&msg(), &k).unwrap();
        let mac = auth::mac_len(k.algorithm);
        let mut body = v2[..v2.len() - mac].to_vec();
        *body.last_mut().unwrap() = 1;
        body.extend_from_slice(&[0x7f, 3, 1, 2, 3]);
        let tag = auth::sign(k.algorithm, k.get(1).unwrap(), &body).unwrap();
        body.extend_from_slice(&tag);
        let (m, v) = decode_versions(&body, &k, 0xdead_beef).unwrap();
        assert_eq!(v, Versions { packet: 2, max: 2 });
        assert_eq!(m, msg());

        // A range that does not contain the packet's own version is malformed.
        let mut bad = v2[..v2.len() - mac].to_vec();
        let n = bad.len();
        bad[n - 3] = 3;
        bad[n - 2] = 3;
        let tag = auth::sign(k.algorithm, k.get(1).unwrap(), &bad).unwrap();
        bad.extend_from_slice(&tag);
        assert_eq!(
            decode(&bad, &k, 0xdead_beef),
            Err(DecodeError::Malformed("bad version range"))
        );
    }

    #[test]
    fn the_timing_field_round_trips_and_older_forms_lack_it() {
        let k = keys(Algorithm::HmacSha256);
        let timing = SenderTiming {
            keepalive_ms: 1000,
            warntime_ms: 3000,
            deadtime_ms: u32::MAX,
        };
        let extras = Extras {
            timing: Some(timing),
            ping: None,
        };
        let v2 = encode_extras(&msg(), &k, 2, &extras).unwrap();
        let (m, v, e) = decode_extras(&v2, &k, 0xdead_beef).unwrap();
        assert_eq!((m, v.max, e), (msg(), 2, extras.clone()));
        // Version 1 cannot carry it; a version 2 packet without it has none.
        let v1 = encode_extras(&msg(), &k, 1, &extras).unwrap();
        assert_eq!(
            decode_extras(&v1, &k, 0xdead_beef).unwrap().2,
            Extras::default()
        );
        let plain = encode(&msg(), &k).unwrap();
        assert_eq!(
            decode_extras(&plain, &k, 0xdead_beef).unwrap().2.timing,
            None
        );
        // A timing field of another length is skipped, not refused.
        let mac = auth::mac_len(k.algorithm);
        let mut body = plain[..plain.len() - mac].to_vec();
        *body.last_mut().unwrap() = 1;
        body.extend_from_slice(&[FIELD_TIMING, 4, 0, 0, 0, 9]);
        let tag = auth::sign(k.algorithm, k.get(1).unwrap(), &body).unwrap();
        body.extend_from_slice(&tag);
        let (m, _, e) = decode_extras(&body, &k, 0xdead_beef).unwrap();
        assert_eq!((m, e.timing), (msg(), None));
    }
}
