//! The first layer of Heartbeat's protocol above the codec (sans-IO): the status
//! heartbeats that keep a node alive in a Heartbeat peer's eyes, acknowledgements, and
//! minimal retransmission. The shell gives it the clock (`now`, epoch seconds), the load
//! average text and the datagrams; it gives back datagrams to send.
//!
//! What a Heartbeat 3.0.6 node sends (captured, `tests/data/heartbeat-wire/`):
//!
//! - status: `t=status st=<init|up|active> dt=<deadtime ms, hex> protocol=1 src=<node>
//!   (1)srcuuid=<16 bytes> seq=<hex> hg=<generation, hex> ts=<epoch, hex>
//!   ld=<loadavg> ttl=<n> auth=…`, every keepalive.
//! - `NS_ackmsg` (no seq, no ld): `t dest ackseq=<hex> (1)destuuid src (1)srcuuid hg ts ttl`,
//!   one per 10 messages received from `dest` (flow control, `protocol=1`).
//! - `NS_rexmit` (Heartbeat's `hb_rexmit.c`): `t dest firstseq lastseq` (decimal), then the
//!   same trailing fields as an ack.
//!
//! Receive rules (Heartbeat's `should_drop_message`): a lower generation than known is a
//! replay and dropped; a higher one is a restart and resets tracking; seq = last+1 is in
//! order; seq ≤ last is a duplicate (a message sent on several links arrives once per
//! link); a gap is accepted and the missing ones are asked for.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{AuthError, Framing, HbError, Keyring, Message, decode};

/// Messages kept for retransmission (Heartbeat's `MAXMSGHIST`).
pub const HISTORY: usize = 500;
/// Acknowledge every this many messages from a peer (Heartbeat's `ACK_MSG_DIV`).
pub const ACK_EVERY: u64 = 10;
/// Most sequence numbers asked for at once after a gap; a larger gap resets tracking
/// (Heartbeat: "lost a lot of packets!").
pub const MAX_GAP: u64 = 100;
/// Most messages answered for one retransmission request (Heartbeat asks for one at a
/// time; this bounds what a replayed request can make us send).
pub const MAX_REXMIT: u64 = 10;

/// Who this node is on Heartbeat's wire.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The node name (`src`), as in the peers' ha.cf `node` lines.
    pub node: String,
    /// 16 bytes, stable across restarts (Heartbeat keeps it in /var/lib/heartbeat/hb_uuid).
    pub uuid: [u8; 16],
    /// Incremented on every start and persisted by the shell (`hb_generation`).
    pub generation: u64,
    /// Sent as `dt` (ms).
    pub deadtime_ms: u64,
    /// Sent as `ttl` (Heartbeat: hopfudge 1 + number of nodes).
    pub ttl: u32,
    /// The cluster's nodes in ha.cf order (this one included): the answer to a peer's
    /// `reqnodes`, which a starting Heartbeat node repeats until it gets one.
    pub nodes: Vec<String>,
}

/// What a received datagram was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A status heartbeat from `node`, with its `st`.
    Status { node: String, status: String },
    /// Some other sequenced message, accepted (its type).
    Message { node: String, kind: String },
    /// An acknowledgement or a retransmission request addressed to us, handled.
    Control { node: String, kind: String },
    /// Seen already (several links, or a retransmission we did not need).
    Duplicate { node: String, seq: u64 },
    /// Older generation than known: dropped as a replay.
    Replay { node: String, generation: u64 },
    /// Our own message (ucast to our own address), or one for another node.
    NotForUs,
    /// From a node that is not in [`Identity::nodes`]: ignored (no tracking, no answer).
    Stranger { node: String },
}

/// Why a datagram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    #[error("undecodable Heartbeat packet: {0}")]
    Decode(#[from] HbError),
    #[error("Heartbeat packet failed authentication: {0}")]
    Auth(#[from] AuthError),
    #[error("Heartbeat packet lacks field {0} or has it malformed")]
    Field(&'static str),
}

/// The outcome of [`Speaker::receive`]: what came, and what to send in answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub event: Event,
    pub send: Vec<Vec<u8>>,
    /// The message itself, for an accepted sequenced message ([`Event::Status`] or
    /// [`Event::Message`]): what the resource protocol reads.
    pub message: Option<Message>,
}

#[derive(Debug, Clone)]
struct Peer {
    generation: u64,
    last_seq: u64,
    missing: BTreeSet<u64>,
    uuid: Option<Vec<u8>>,
    since_ack: u64,
    status: Option<String>,
    /// Its statuses carry `hbd=…`: an hbd node speaking Heartbeat's protocol.
    hbd: bool,
}

/// One node's side of Heartbeat's status protocol.
#[derive(Debug, Clone)]
pub struct Speaker {
    id: Identity,
    keys: Keyring,
    next_seq: u64,
    history: VecDeque<(u64, Vec<u8>)>,
    peers: BTreeMap<String, Peer>,
    /// Put `hbd=<version>` in our statuses (see [`Speaker::announce_hbd`]).
    hbd: Option<String>,
}

impl Speaker {
    pub fn new(id: Identity, keys: Keyring) -> Self {
        Speaker {
            id,
            keys,
            next_seq: 1,
            history: VecDeque::new(),
            peers: BTreeMap::new(),
            hbd: None,
        }
    }

    /// Say in every status that this node is hbd (`hbd=<version>` after `protocol`):
    /// Heartbeat keeps fields it does not know and acts on none of them, and another
    /// hbd node learns that it may switch the cluster to hbd's protocol.
    pub fn announce_hbd(&mut self, version: &str) {
        self.hbd = Some(version.to_string());
    }

    /// Whether `node`'s latest status said it is hbd.
    pub fn peer_is_hbd(&self, node: &str) -> bool {
        self.peers.get(node).is_some_and(|p| p.hbd)
    }

    /// The generation (`hg`) a peer sends with, once heard.
    pub fn peer_generation(&self, node: &str) -> Option<u64> {
        self.peers.get(node).map(|p| p.generation)
    }

    /// The last status a peer announced, if any.
    pub fn peer_status(&self, node: &str) -> Option<&str> {
        self.peers.get(node).and_then(|p| p.status.as_deref())
    }

    /// A status heartbeat (`st` is `init`, `up` or `active`), signed and framed, to send
    /// on every link. `load` is the first line of /proc/loadavg.
    pub fn status(&mut self, st: &str, now: u64, load: &str) -> Result<Vec<u8>, HbError> {
        let mut m = Message::new();
        m.push_str("t", "status")?;
        m.push_str("st", st)?;
        m.push_str("dt", &format!("{:x}", self.id.deadtime_ms))?;
        m.push_str("protocol", "1")?;
        if let Some(v) = &self.hbd {
            m.push_str("hbd", v)?;
        }
        self.sequenced(m, None, now, load)
    }

    /// Any other sequenced message to every node (`t=…` and its own fields first, as
    /// Heartbeat's `send_cluster_msg` adds the trailing ones), signed and framed.
    pub fn message(&mut self, m: Message, now: u64, load: &str) -> Result<Vec<u8>, HbError> {
        self.sequenced(m, None, now, load)
    }

    /// Add the trailing fields of a sequenced message (Heartbeat's
    /// `add_control_msg_fields`), sign, frame, and keep it for retransmission.
    fn sequenced(
        &mut self,
        mut m: Message,
        dest: Option<&str>,
        now: u64,
        load: &str,
    ) -> Result<Vec<u8>, HbError> {
        let seq = self.next_seq;
        if let Some(u) = dest
            .and_then(|d| self.peers.get(d))
            .and_then(|p| p.uuid.clone())
        {
            m.push_bin("destuuid", &u)?;
        }
        m.push_str("src", &self.id.node)?;
        m.push_bin("srcuuid", &self.id.uuid)?;
        m.push_str("seq", &format!("{seq:x}"))?;
        m.push_str("hg", &format!("{:x}", self.id.generation))?;
        m.push_str("ts", &format!("{now:x}"))?;
        m.push_str("ld", load)?;
        m.push_str("ttl", &self.id.ttl.to_string())?;
        let bytes = self.keys.sign(&m, Framing::Netstring)?;
        self.next_seq += 1;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((seq, bytes.clone()));
        Ok(bytes)
    }

    /// An unsequenced control message (`NS_…`) to `dest`: `fields` then destuuid, src,
    /// srcuuid, hg, ts, ttl.
    fn control(
        &self,
        kind: &str,
        dest: &str,
        fields: &[(&str, String)],
        now: u64,
    ) -> Result<Vec<u8>, HbError> {
        let mut m = Message::new();
        m.push_str("t", kind)?;
        m.push_str("dest", dest)?;
        for (n, v) in fields {
            m.push_str(n, v)?;
        }
        if let Some(u) = self.peers.get(dest).and_then(|p| p.uuid.as_deref()) {
            m.push_bin("destuuid", u)?;
        }
        m.push_str("src", &self.id.node)?;
        m.push_bin("srcuuid", &self.id.uuid)?;
        m.push_str("hg", &format!("{:x}", self.id.generation))?;
        m.push_str("ts", &format!("{now:x}"))?;
        m.push_str("ttl", &self.id.ttl.to_string())?;
        self.keys.sign(&m, Framing::Netstring)
    }

    /// Take one datagram from a link. Whatever is to be sent in answer goes out like every
    /// other message, to the peers' Heartbeat port on every link: a Heartbeat node sends
    /// from a socket it never reads, so the datagram's source address is no reply address.
    pub fn receive(&mut self, bytes: &[u8], now: u64, load: &str) -> Result<Received, RecvError> {
        let p = decode(bytes)?;
        self.keys.verify(&p)?;
        let m = &p.message;
        let from = m.get("src").ok_or(RecvError::Field("src"))?.to_string();
        let kind = m.kind().ok_or(RecvError::Field("t"))?.to_string();
        let not_for_us = m.get("dest").is_some_and(|d| d != self.id.node);
        if from == self.id.node || not_for_us {
            return Ok(Received {
                event: Event::NotForUs,
                send: Vec::new(),
                message: None,
            });
        }
        if !self.id.nodes.contains(&from) {
            return Ok(Received {
                event: Event::Stranger { node: from },
                send: Vec::new(),
                message: None,
            });
        }
        let generation = m.get_hex("hg").ok_or(RecvError::Field("hg"))?;
        if let Some(u) = m.get_bin("srcuuid") {
            if let Some(peer) = self.peers.get_mut(&from) {
                peer.uuid = Some(u.to_vec());
            }
        }
        if kind.starts_with("NS_") {
            return self.receive_control(m, from, kind);
        }
        let seq = m.get_hex("seq").ok_or(RecvError::Field("seq"))?;
        // Every field is read before any state changes: a bad message changes nothing.
        let status = match kind.as_str() {
            "status" => Some(m.get("st").ok_or(RecvError::Field("st"))?.to_string()),
            _ => None,
        };
        let mut send = Vec::new();
        let peer = self.peers.entry(from.clone()).or_insert(Peer {
            generation,
            last_seq: seq.saturating_sub(1),
            missing: BTreeSet::new(),
            uuid: m.get_bin("srcuuid").map(<[u8]>::to_vec),
            since_ack: 0,
            status: None,
            hbd: false,
        });
        if generation < peer.generation {
            return Ok(Received {
                event: Event::Replay {
                    node: from,
                    generation,
                },
                send,
                message: None,
            });
        }
        if generation > peer.generation {
            // The peer restarted: a new sequence.
            peer.generation = generation;
            peer.last_seq = seq.saturating_sub(1);
            peer.missing.clear();
        }
        if seq <= peer.last_seq && !peer.missing.remove(&seq) {
            return Ok(Received {
                event: Event::Duplicate { node: from, seq },
                send,
                message: None,
            });
        }
        let mut ask = None;
        let next = peer.last_seq.saturating_add(1);
        let gap = seq.saturating_sub(next);
        if gap > 0 {
            // At most MAX_GAP outstanding: more is "lost a lot of packets", start afresh.
            if gap.saturating_add(peer.missing.len() as u64) > MAX_GAP {
                peer.missing.clear();
            } else {
                peer.missing.extend(next..seq);
                ask = Some((next, seq - 1));
            }
        }
        peer.last_seq = peer.last_seq.max(seq);
        peer.since_ack += 1;
        let ack = (peer.since_ack >= ACK_EVERY).then_some(peer.last_seq);
        if ack.is_some() {
            peer.since_ack = 0;
        }
        let event = if let Some(status) = status {
            peer.status = Some(status.clone());
            peer.hbd = m.get("hbd").is_some();
            Event::Status {
                node: from.clone(),
                status,
            }
        } else {
            Event::Message {
                node: from.clone(),
                kind: kind.clone(),
            }
        };
        if kind == "reqnodes" {
            send.push(self.repnodes(&from, now, load)?);
        }
        if let Some((first, last)) = ask {
            let f = [
                ("firstseq", first.to_string()),
                ("lastseq", last.to_string()),
            ];
            send.push(self.control("NS_rexmit", &from, &f, now)?);
        }
        if let Some(a) = ack {
            send.push(self.control("NS_ackmsg", &from, &[("ackseq", format!("{a:x}"))], now)?);
        }
        Ok(Received {
            event,
            send,
            message: Some(m.clone()),
        })
    }

    /// The answer to `reqnodes`: `dest t=repnodes nodelist="a b " delnodelist=" "`, then
    /// the sequenced fields (as Heartbeat 3.0.6 writes it, trailing spaces included).
    fn repnodes(&mut self, dest: &str, now: u64, load: &str) -> Result<Vec<u8>, HbError> {
        let mut m = Message::new();
        m.push_str("dest", dest)?;
        m.push_str("t", "repnodes")?;
        let list: String = self.id.nodes.iter().map(|n| format!("{n} ")).collect();
        m.push_str("nodelist", &list)?;
        m.push_str("delnodelist", " ")?;
        self.sequenced(m, Some(dest), now, load)
    }

    fn receive_control(
        &mut self,
        m: &Message,
        from: String,
        kind: String,
    ) -> Result<Received, RecvError> {
        let mut send = Vec::new();
        if kind == "NS_rexmit" {
            let num = |n: &'static str| -> Result<u64, RecvError> {
                m.get(n)
                    .and_then(|v| v.parse().ok())
                    .ok_or(RecvError::Field(n))
            };
            let (first, last) = (num("firstseq")?, num("lastseq")?);
            let last = last.min(first.saturating_add(MAX_REXMIT - 1));
            for (seq, bytes) in &self.history {
                if (first..=last).contains(seq) {
                    send.push(bytes.clone());
                }
            }
        }
        Ok(Received {
            event: Event::Control { node: from, kind },
            send,
            message: None,
        })
    }
}
