//! Heartbeat 3.0.6's own wire format (sans-IO): the messages a Heartbeat node sends on
//! UDP 694, parsed, serialized byte for byte as Heartbeat writes them, signed and checked
//! as Heartbeat signs and checks them. This is for rolling migration (an hbd node talking
//! to Heartbeat peers); hbd's own protocol is [`super::wire`].
//!
//! Facts, from Heartbeat's source (cluster-glue `lib/clplumbing/cl_msg.c`, `netstring.c`,
//! `heartbeat/ha_msg_internal.c`) and checked against packets captured from Debian's
//! heartbeat 3.0.6 (`tests/data/heartbeat-wire/`):
//!
//! - A message is an ordered list of fields; order matters (it is what is signed). A
//!   field has a type: `0` string, `1` binary (the only two Heartbeat's status, resource
//!   and control messages use; struct, list and compressed fields are refused here).
//! - **Netstring framing** (what 3.0.6 sends): `###\n`, then per field
//!   `<len>:(<type>)<name>=<value>,` where `len` counts `(<type>)<name>=<value>` and a
//!   binary value is raw bytes, then `%%%\n`, then the trailer `<len>:<key id> <digest>,`
//!   whose digest covers everything from `###\n` to `%%%\n` inclusive. The receiver checks
//!   the trailer only.
//! - **Classic framing**: `>>>\n`, one `name=value\n` (binary: `(1)name=<base64>\n`) line
//!   a field, `<<<\n`, and a NUL byte when Heartbeat sends it (its length is `strlen+1`).
//!   The `auth` field is the signature: its digest covers the field lines, without the
//!   frame and without the `auth` line. There is no escaping: a value ends at the newline,
//!   so string values may not contain one (nor NUL: Heartbeat's strings are C strings).
//! - 3.0.6 puts the classic signature in the `auth` field of netstring messages too (it
//!   signs the message before framing it), so a netstring packet carries two digests with
//!   the same key; [`Keyring::sign`] writes both.
//! - Digests: `md5` = HMAC-MD5, `sha1` = HMAC-SHA1 (key = the authkeys secret's bytes),
//!   lowercase hex; `crc` = CRC-32/CKSUM (poly 0x04C11DB7, init 0, final complement, no
//!   length appended), printed `%lx` (no zero padding). `crc` is an integrity check only.
//!
//! Parsing is strict: a packet this module accepts re-encodes to the same bytes, and
//! anything else (oversize, truncated, non-canonical numbers, unknown field types) is a
//! typed [`HbError`], never a panic.

pub mod speaker;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};

/// Largest packet accepted or produced: a UDP datagram's payload over IPv4.
pub const MAX_PACKET: usize = 65_507;
/// Most fields in one message (Heartbeat's status messages have 12).
pub const MAX_FIELDS: usize = 256;
/// Longest field name (Heartbeat's `MAX_NAME_LEN` is 255, terminator included).
pub const MAX_NAME: usize = 254;
/// Heartbeat's key ids (`MAXAUTH` 16).
pub const MAX_KEY_ID: u8 = 15;

const NS_START: &[u8] = b"###\n";
const NS_END: &[u8] = b"%%%\n";
const CL_START: &[u8] = b">>>\n";
const CL_END: &[u8] = b"<<<\n";
/// Whether `bytes` start as a Heartbeat message does (either framing): what tells
/// Heartbeat's packets from hbd's on a link that carries both during a migration.
pub fn is_framed(bytes: &[u8]) -> bool {
    bytes.starts_with(NS_START) || bytes.starts_with(CL_START)
}

/// Name of the field that carries the classic signature.
pub const AUTH: &str = "auth";

/// What is wrong with a packet (decoding) or a message (encoding, signing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HbError {
    #[error("packet of {0} bytes is over the {MAX_PACKET}-byte limit")]
    TooLarge(usize),
    #[error("packet starts with neither `###` (netstring) nor `>>>` (classic)")]
    NoStart,
    #[error("packet ends before its end marker")]
    Truncated,
    #[error("malformed length at byte {0}")]
    BadLength(usize),
    #[error("field at byte {0} is not `(T)name=value`")]
    BadField(usize),
    #[error("field type ({0}) is not supported (only 0 string and 1 binary)")]
    UnsupportedType(u8),
    #[error("field name {0:?} is empty, too long or has a forbidden character")]
    BadName(String),
    #[error("value of field {0:?} is not valid text for a string field")]
    BadValue(String),
    #[error("value of binary field {0:?} is not valid base64")]
    BadBase64(String),
    #[error("message has more than {MAX_FIELDS} fields")]
    TooManyFields,
    #[error("message has no fields")]
    Empty,
    #[error("{0} bytes after the end of the message")]
    TrailingBytes(usize),
    #[error("authentication trailer is malformed")]
    BadTrailer,
}

/// Why a message failed authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("message carries no signature")]
    Missing,
    #[error("signature is not `<key id> <digest>`")]
    Malformed,
    #[error("signed with key {0}, which is not in the keyring")]
    UnknownKey(u8),
    #[error("signature does not match (key {0})")]
    Mismatch(u8),
}

/// A field's type tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `(0)`: text.
    String,
    /// `(1)`: bytes (raw in netstring framing, base64 in classic framing).
    Binary,
}

impl FieldType {
    fn tag(self) -> u8 {
        match self {
            FieldType::String => b'0',
            FieldType::Binary => b'1',
        }
    }
    fn from_tag(t: u8) -> Result<Self, HbError> {
        match t {
            b'0' => Ok(FieldType::String),
            b'1' => Ok(FieldType::Binary),
            b'2'..=b'9' => Err(HbError::UnsupportedType(t - b'0')),
            _ => Err(HbError::UnsupportedType(u8::MAX)),
        }
    }
}

/// One field. String values are valid UTF-8 without newline or NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub kind: FieldType,
    pub name: String,
    pub value: Vec<u8>,
}

/// A Heartbeat message: its fields, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    fields: Vec<Field>,
}

impl Message {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Append a string field. Refuses a bad name or a value Heartbeat could not carry.
    pub fn push_str(&mut self, name: &str, value: &str) -> Result<(), HbError> {
        check_name(name)?;
        check_str_value(name, value.as_bytes())?;
        self.push(Field {
            kind: FieldType::String,
            name: name.into(),
            value: value.into(),
        })
    }

    /// Append a binary field.
    pub fn push_bin(&mut self, name: &str, value: &[u8]) -> Result<(), HbError> {
        check_name(name)?;
        self.push(Field {
            kind: FieldType::Binary,
            name: name.into(),
            value: value.into(),
        })
    }

    fn push(&mut self, f: Field) -> Result<(), HbError> {
        if self.fields.len() >= MAX_FIELDS {
            return Err(HbError::TooManyFields);
        }
        self.fields.push(f);
        Ok(())
    }

    /// Set a string field: replaced in place if present (Heartbeat's `ha_msg_mod`),
    /// appended otherwise.
    pub fn set_str(&mut self, name: &str, value: &str) -> Result<(), HbError> {
        check_name(name)?;
        check_str_value(name, value.as_bytes())?;
        if let Some(f) = self.fields.iter_mut().find(|f| f.name == name) {
            f.kind = FieldType::String;
            f.value = value.into();
            return Ok(());
        }
        self.push_str(name, value)
    }

    /// First string field called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name && f.kind == FieldType::String)
            .and_then(|f| std::str::from_utf8(&f.value).ok())
    }

    /// First binary field called `name`.
    pub fn get_bin(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.name == name && f.kind == FieldType::Binary)
            .map(|f| f.value.as_slice())
    }

    /// A string field holding a hex number (Heartbeat writes `seq`, `hg`, `ts`, `ackseq`
    /// and `dt` with `%lx`).
    pub fn get_hex(&self, name: &str) -> Option<u64> {
        parse_hex(self.get(name)?)
    }

    /// The message type (`t`).
    pub fn kind(&self) -> Option<&str> {
        self.get("t")
    }

    /// The classic serialization that Heartbeat signs: every field but `auth`, as
    /// `name=value\n` (`(1)name=<base64>\n` for binary fields), no frame.
    pub fn signed_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.fields.iter().filter(|f| f.name != AUTH) {
            classic_line(&mut out, f);
        }
        out
    }

    fn remove_auth(&mut self) {
        self.fields.retain(|f| f.name != AUTH);
    }
}

fn classic_line(out: &mut Vec<u8>, f: &Field) {
    if f.kind != FieldType::String {
        out.extend_from_slice(&[b'(', f.kind.tag(), b')']);
    }
    out.extend_from_slice(f.name.as_bytes());
    out.push(b'=');
    match f.kind {
        FieldType::String => out.extend_from_slice(&f.value),
        FieldType::Binary => out.extend_from_slice(BASE64.encode(&f.value).as_bytes()),
    }
    out.push(b'\n');
}

fn check_name(name: &str) -> Result<(), HbError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('(')
        && !name.starts_with(">>>")
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'=' && b != b',');
    if ok {
        Ok(())
    } else {
        Err(HbError::BadName(name.chars().take(64).collect()))
    }
}

fn check_str_value(name: &str, v: &[u8]) -> Result<(), HbError> {
    if v.contains(&b'\n') || v.contains(&0) || std::str::from_utf8(v).is_err() {
        return Err(HbError::BadValue(name.into()));
    }
    Ok(())
}

/// Parse a lowercase hex number as `%lx` writes it (no sign, no prefix, no leading zero).
pub fn parse_hex(s: &str) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.len() <= 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && (s == "0" || !s.starts_with('0'));
    if canonical {
        u64::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

/// How a packet was framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `###` … `%%%` plus an authentication trailer (Heartbeat 3.0.6's default).
    Netstring,
    /// `>>>` … `<<<`; `nul` when the packet ends with a NUL byte.
    Classic { nul: bool },
}

/// A decoded packet: the message, how it was framed and, for netstring framing, the
/// trailer's text (`<key id> <digest>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub framing: Framing,
    pub message: Message,
    pub trailer: Option<String>,
}

/// Parse one UDP payload.
pub fn decode(bytes: &[u8]) -> Result<Packet, HbError> {
    if bytes.len() > MAX_PACKET {
        return Err(HbError::TooLarge(bytes.len()));
    }
    if bytes.starts_with(NS_START) {
        decode_netstring(bytes)
    } else if bytes.starts_with(CL_START) {
        decode_classic(bytes)
    } else {
        Err(HbError::NoStart)
    }
}

/// One netstring `<len>:<data>,` at `at`: returns (data range, next offset). The length
/// must be canonical decimal (no leading zero), so that re-encoding gives the same bytes.
fn netstring(b: &[u8], at: usize) -> Result<(std::ops::Range<usize>, usize), HbError> {
    let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 6 || (digits > 1 && b[at] == b'0') {
        return Err(HbError::BadLength(at));
    }
    let colon = at + digits;
    if b.get(colon) != Some(&b':') {
        return Err(HbError::BadLength(at));
    }
    let len: usize = std::str::from_utf8(&b[at..colon])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(HbError::BadLength(at))?;
    let start = colon + 1;
    let end = start.checked_add(len).ok_or(HbError::BadLength(at))?;
    match b.get(end) {
        Some(b',') => Ok((start..end, end + 1)),
        Some(_) => Err(HbError::BadLength(at)),
        None => Err(HbError::Truncated),
    }
}

fn decode_netstring(b: &[u8]) -> Result<Packet, HbError> {
    let mut at = NS_START.len();
    let mut msg = Message::new();
    loop {
        if b[at..].starts_with(NS_END) {
            at += NS_END.len();
            break;
        }
        if at >= b.len() {
            return Err(HbError::Truncated);
        }
        let (r, next) = netstring(b, at)?;
        msg.push(field_from_typed(&b[r], at)?)?;
        at = next;
    }
    if msg.fields.is_empty() {
        return Err(HbError::Empty);
    }
    if at == b.len() {
        return Err(HbError::BadTrailer);
    }
    let (r, next) = netstring(b, at).map_err(|_| HbError::BadTrailer)?;
    if next != b.len() {
        return Err(HbError::TrailingBytes(b.len() - next));
    }
    let trailer = std::str::from_utf8(&b[r]).map_err(|_| HbError::BadTrailer)?;
    if split_auth(trailer).is_none() {
        return Err(HbError::BadTrailer);
    }
    Ok(Packet {
        framing: Framing::Netstring,
        message: msg,
        trailer: Some(trailer.into()),
    })
}

/// `(T)name=value` (netstring: binary value raw).
fn field_from_typed(f: &[u8], at: usize) -> Result<Field, HbError> {
    if f.len() < 4 || f[0] != b'(' || f[2] != b')' {
        return Err(HbError::BadField(at));
    }
    let kind = FieldType::from_tag(f[1])?;
    let rest = &f[3..];
    let eq = rest
        .iter()
        .position(|&c| c == b'=')
        .ok_or(HbError::BadField(at))?;
    let name = std::str::from_utf8(&rest[..eq]).map_err(|_| HbError::BadField(at))?;
    check_name(name)?;
    let value = &rest[eq + 1..];
    if kind == FieldType::String {
        check_str_value(name, value)?;
    }
    Ok(Field {
        kind,
        name: name.into(),
        value: value.into(),
    })
}

fn decode_classic(b: &[u8]) -> Result<Packet, HbError> {
    let mut at = CL_START.len();
    let mut msg = Message::new();
    loop {
        if b[at..].starts_with(CL_END) {
            at += CL_END.len();
            break;
        }
        let nl = b[at..]
            .iter()
            .position(|&c| c == b'\n')
            .ok_or(HbError::Truncated)?;
        let line = &b[at..at + nl];
        let field = if line.first() == Some(&b'(') {
            let mut f = field_from_typed(line, at)?;
            if f.kind == FieldType::Binary {
                let text = std::str::from_utf8(&f.value)
                    .map_err(|_| HbError::BadBase64(f.name.clone()))?;
                let raw = BASE64
                    .decode(text)
                    .map_err(|_| HbError::BadBase64(f.name.clone()))?;
                // Only canonical base64 (what Heartbeat writes) re-encodes identically.
                if BASE64.encode(&raw) != text {
                    return Err(HbError::BadBase64(f.name.clone()));
                }
                f.value = raw;
            } else {
                // Heartbeat writes string fields without a type prefix.
                return Err(HbError::BadField(at));
            }
            f
        } else {
            let eq = line
                .iter()
                .position(|&c| c == b'=')
                .ok_or(HbError::BadField(at))?;
            let name = std::str::from_utf8(&line[..eq]).map_err(|_| HbError::BadField(at))?;
            check_name(name)?;
            check_str_value(name, &line[eq + 1..])?;
            Field {
                kind: FieldType::String,
                name: name.into(),
                value: line[eq + 1..].into(),
            }
        };
        msg.push(field)?;
        at += nl + 1;
    }
    if msg.fields.is_empty() {
        return Err(HbError::Empty);
    }
    let nul = match &b[at..] {
        [] => false,
        [0] => true,
        rest => return Err(HbError::TrailingBytes(rest.len())),
    };
    Ok(Packet {
        framing: Framing::Classic { nul },
        message: msg,
        trailer: None,
    })
}

/// `###\n` … `%%%\n` of a message (what the netstring trailer signs).
pub fn netstring_body(m: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(NS_START);
    for f in &m.fields {
        let len = 3 + f.name.len() + 1 + f.value.len();
        out.extend_from_slice(len.to_string().as_bytes());
        out.extend_from_slice(&[b':', b'(', f.kind.tag(), b')']);
        out.extend_from_slice(f.name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(&f.value);
        out.push(b',');
    }
    out.extend_from_slice(NS_END);
    out
}

/// Serialize a packet exactly as Heartbeat frames it.
pub fn encode(p: &Packet) -> Result<Vec<u8>, HbError> {
    if p.message.fields.is_empty() {
        return Err(HbError::Empty);
    }
    let out = match p.framing {
        Framing::Netstring => {
            let mut out = netstring_body(&p.message);
            let t = p.trailer.as_deref().ok_or(HbError::BadTrailer)?;
            if split_auth(t).is_none() {
                return Err(HbError::BadTrailer);
            }
            out.extend_from_slice(format!("{}:{},", t.len(), t).as_bytes());
            out
        }
        Framing::Classic { nul } => {
            let mut out = CL_START.to_vec();
            for f in &p.message.fields {
                classic_line(&mut out, f);
            }
            out.extend_from_slice(CL_END);
            if nul {
                out.push(0);
            }
            out
        }
    };
    if out.len() > MAX_PACKET {
        return Err(HbError::TooLarge(out.len()));
    }
    Ok(out)
}

/// `<key id> <digest>` as Heartbeat writes and reads it (`%d %s`).
fn split_auth(s: &str) -> Option<(u8, &str)> {
    let (id, digest) = s.split_once(' ')?;
    let id: u8 = id.parse().ok()?;
    let canonical_id = id.to_string() == s[..s.len() - digest.len() - 1];
    let ok = canonical_id
        && id <= MAX_KEY_ID
        && !digest.is_empty()
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some((id, digest))
}

/// Heartbeat's authentication methods (authkeys `N crc|md5|sha1 [secret]`).
#[derive(Clone, PartialEq, Eq)]
pub enum Method {
    Crc,
    Md5(Vec<u8>),
    Sha1(Vec<u8>),
}

impl fmt::Debug for Method {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Crc => "crc",
            Method::Md5(_) => "md5",
            Method::Sha1(_) => "sha1",
        })
    }
}

const CKSUM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_CKSUM);

impl Method {
    /// The digest as Heartbeat prints it.
    pub fn digest(&self, data: &[u8]) -> String {
        match self {
            Method::Crc => format!("{:x}", CKSUM.checksum(data)),
            Method::Md5(k) => hex(&mac::<Hmac<md5::Md5>>(k, data)),
            Method::Sha1(k) => hex(&mac::<Hmac<sha1::Sha1>>(k, data)),
        }
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length (longer ones are hashed first), so this never fails.
    match <M as KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The keys of an authkeys file: all of them are accepted inbound, `outbound` signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<(u8, Method)>,
    /// Index in `keys` of the key `auth N` names.
    outbound: usize,
}

/// A keyring that cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("key id {0} is out of range (0-{MAX_KEY_ID})")]
    BadId(u8),
    #[error("key {0} is listed twice")]
    Duplicate(u8),
    #[error("outbound key {0} (`auth {0}`) is not listed")]
    NoOutbound(u8),
    #[error("key {0} has an empty secret")]
    EmptySecret(u8),
}

impl Keyring {
    /// The signing key: its id and method name (`sha1`, `md5`, `crc`).
    pub fn outbound(&self) -> (u8, &'static str) {
        let (id, m) = &self.keys[self.outbound];
        let name = match m {
            Method::Crc => "crc",
            Method::Md5(_) => "md5",
            Method::Sha1(_) => "sha1",
        };
        (*id, name)
    }

    pub fn new(outbound: u8, keys: Vec<(u8, Method)>) -> Result<Self, KeyringError> {
        for (i, (id, m)) in keys.iter().enumerate() {
            if *id > MAX_KEY_ID {
                return Err(KeyringError::BadId(*id));
            }
            if keys[..i].iter().any(|(other, _)| other == id) {
                return Err(KeyringError::Duplicate(*id));
            }
            if matches!(m, Method::Md5(k) | Method::Sha1(k) if k.is_empty()) {
                return Err(KeyringError::EmptySecret(*id));
            }
        }
        let outbound = keys
            .iter()
            .position(|(id, _)| *id == outbound)
            .ok_or(KeyringError::NoOutbound(outbound))?;
        Ok(Keyring { keys, outbound })
    }

    fn key(&self, id: u8) -> Option<&Method> {
        self.keys.iter().find(|(k, _)| *k == id).map(|(_, m)| m)
    }

    /// Sign `message` as Heartbeat 3.0.6 does and frame it: the `auth` field (set in
    /// place or appended) over the classic text, then, for netstring framing, the trailer
    /// over the framed body.
    pub fn sign(&self, message: &Message, framing: Framing) -> Result<Vec<u8>, HbError> {
        let mut m = message.clone();
        let (id, key) = &self.keys[self.outbound];
        let inner = format!("{id} {}", key.digest(&m.signed_text()));
        m.set_str(AUTH, &inner)?;
        let trailer = match framing {
            Framing::Netstring => Some(format!("{id} {}", key.digest(&netstring_body(&m)))),
            Framing::Classic { .. } => None,
        };
        encode(&Packet {
            framing,
            message: m,
            trailer,
        })
    }

    /// Check a packet as a Heartbeat receiver does: the trailer for netstring framing,
    /// the `auth` field for classic framing. Returns the key id that signed it.
    pub fn verify(&self, p: &Packet) -> Result<u8, AuthError> {
        match p.framing {
            Framing::Netstring => {
                let t = p.trailer.as_deref().ok_or(AuthError::Missing)?;
                self.check(t, &netstring_body(&p.message))
            }
            Framing::Classic { .. } => self.verify_field(&p.message),
        }
    }

    /// Check the `auth` field (the classic signature) alone.
    pub fn verify_field(&self, m: &Message) -> Result<u8, AuthError> {
        let a = m.get(AUTH).ok_or(AuthError::Missing)?;
        self.check(a, &m.signed_text())
    }

    fn check(&self, auth: &str, data: &[u8]) -> Result<u8, AuthError> {
        let (id, digest) = split_auth(auth).ok_or(AuthError::Malformed)?;
        let key = self.key(id).ok_or(AuthError::UnknownKey(id))?;
        if ct_eq(key.digest(data).as_bytes(), digest.as_bytes()) {
            Ok(id)
        } else {
            Err(AuthError::Mismatch(id))
        }
    }
}

/// Strip the signature fields of a message (to re-sign it with another key).
pub fn unsigned(m: &Message) -> Message {
    let mut m = m.clone();
    m.remove_auth();
    m
}

#[cfg(test)]
mod tests;
