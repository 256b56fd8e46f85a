//! The daemon's heartbeat links: each open transport runs a reader task (feeding
//! one channel the loop selects on) and a writer task (draining a short queue).
//!
//! Writers have their own tasks so a serial line whose buffer is full, or a slow
//! interface, never stalls the loop that must keep time for every other link. The
//! queue is short and a full queue drops the packet: a heartbeat that cannot leave
//! now is worthless later, the next one supersedes it.
//!
//! A link that fails to open, or whose reader fails, is closed and reopened every
//! [`RETRY`]. The daemon starts as long as one link opens: a node with one of two
//! links down is degraded, not dead, and the core reports which peers are heard
//! over which link. With no link at all there is nothing to do but fail, so systemd
//! can restart us.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::cluster::LinkId;
use crate::config::{Config, Link};
use crate::proto::{auth, wire};
use crate::transport::{self, Datagram, Receiver, Sender, Source};

/// How often closed links are retried.
pub const RETRY: Duration = Duration::from_secs(5);
/// Datagrams waiting for a link's writer.
const QUEUE: usize = 8;

/// The checks a reader makes before a packet reaches the loop: junk (not hbd, another
/// cluster, a bad length) costs O(1) and never queues ahead of a peer's heartbeat.
/// Packets from addresses peers are known to send from (configured unicast addresses,
/// and every address an authenticated packet came from) go to the loop through a
/// queue of their own that it serves first; everything else goes through a bounded
/// queue that drops when full, so a flood from other addresses cannot delay a peer.
/// Shared by the readers and updated on reload.
#[derive(Debug)]
pub struct Prefilter {
    cluster_id: AtomicU32,
    mac_len: AtomicUsize,
    /// A mixed cluster (`[migration] protocol = "heartbeat"`): Heartbeat's packets pass too.
    heartbeat: std::sync::atomic::AtomicBool,
    known: Mutex<HashSet<IpAddr>>,
    /// Packets and refusal reports dropped because the bulk queue was full.
    pub dropped: AtomicU64,
}

/// Most remembered peer addresses (peers × links, with room for renumbering).
const MAX_KNOWN: usize = 256;

impl Prefilter {
    pub fn new(config: &Config) -> Arc<Prefilter> {
        let p = Arc::new(Prefilter {
            cluster_id: AtomicU32::new(0),
            mac_len: AtomicUsize::new(0),
            heartbeat: std::sync::atomic::AtomicBool::new(false),
            known: Mutex::new(HashSet::new()),
            dropped: AtomicU64::new(0),
        });
        p.update(config);
        p
    }

    pub fn update(&self, config: &Config) {
        self.cluster_id
            .store(config.cluster_id(), Ordering::Relaxed);
        self.mac_len
            .store(auth::mac_len(config.auth.algorithm), Ordering::Relaxed);
        self.heartbeat
            .store(config.migration.heartbeat(), Ordering::Relaxed);
        for node in &config.nodes {
            for addr in node.address.values() {
                self.learn(*addr);
            }
        }
    }

    /// An authenticated packet came from `addr`.
    pub fn learn(&self, addr: IpAddr) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() < MAX_KNOWN {
            known.insert(addr);
        }
    }

    fn is_known(&self, from: &Source) -> bool {
        match from {
            Source::Udp(a) => self
                .known
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&a.ip()),
            // A serial line has one far end.
            Source::Serial => true,
        }
    }

    fn check(&self, bytes: &[u8]) -> Result<(), wire::DecodeError> {
        if self.heartbeat.load(Ordering::Relaxed)
            && bytes.len() <= hbd_core::proto::heartbeat::MAX_PACKET
            && hbd_core::proto::heartbeat::is_framed(bytes)
        {
            return Ok(());
        }
        wire::precheck(
            bytes,
            self.mac_len.load(Ordering::Relaxed),
            self.cluster_id.load(Ordering::Relaxed),
        )
    }
}

/// What reader tasks send the loop.
#[derive(Debug)]
pub enum Incoming {
    Packet {
        link: LinkId,
        generation: u64,
        datagram: Datagram,
    },
    /// Refused by the reader's [`Prefilter`], for the rate-limited log.
    Refused {
        link: LinkId,
        from: Source,
        reason: wire::DecodeError,
    },
    Failed {
        link: LinkId,
        generation: u64,
        error: String,
    },
}

enum State {
    Open {
        generation: u64,
        outbox: mpsc::Sender<Arc<[u8]>>,
        reader: JoinHandle<()>,
        writer: JoinHandle<()>,
        /// The interface the link's socket is tied to and its index then.
        interface: Option<(String, u32)>,
    },
    Closed {
        /// Last error, logged as a warning only when it changes.
        error: String,
    },
}

pub struct Links {
    names: Vec<String>,
    slots: Vec<State>,
    incoming: mpsc::Sender<Incoming>,
    bulk: mpsc::Sender<Incoming>,
    prefilter: Arc<Prefilter>,
    next_generation: u64,
}

impl Links {
    /// Try to open every link; returns the links and a message per link that failed.
    pub fn open_all(
        config: &Config,
        local: usize,
        incoming: mpsc::Sender<Incoming>,
        bulk: mpsc::Sender<Incoming>,
        prefilter: Arc<Prefilter>,
    ) -> (Links, Vec<String>) {
        let mut links = Links {
            names: config.links.iter().map(|l| l.name().to_string()).collect(),
            slots: Vec::new(),
            incoming,
            bulk,
            prefilter,
            next_generation: 0,
        };
        let mut errors = Vec::new();
        for i in 0..config.links.len() {
            let state = match links.open(config, local, i) {
                Ok(s) => s,
                Err(e) => {
                    let error = e.to_string();
                    errors.push(error.clone());
                    State::Closed { error }
                }
            };
            links.slots.push(state);
        }
        (links, errors)
    }

    pub fn open_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, State::Open { .. }))
            .count()
    }

    pub fn name(&self, link: LinkId) -> &str {
        self.names.get(link.0).map_or("?", String::as_str)
    }

    fn open(
        &mut self,
        config: &Config,
        local: usize,
        i: usize,
    ) -> Result<State, transport::OpenError> {
        let (tx, rx) = transport::open(config, local, i)?;
        let interface = config.links.get(i).and_then(interface_of).and_then(|name| {
            let index = nix::net::if_::if_nametoindex(name).ok()?;
            Some((name.to_string(), index))
        });
        self.next_generation += 1;
        let generation = self.next_generation;
        let name = self.names.get(i).cloned().unwrap_or_default();
        let span = tracing::Span::current();
        let reader = tokio::spawn(
            read_loop(
                rx,
                LinkId(i),
                generation,
                self.incoming.clone(),
                self.bulk.clone(),
                self.prefilter.clone(),
            )
            .instrument(span.clone()),
        );
        let (outbox, queue) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write_loop(tx, queue, name).instrument(span));
        Ok(State::Open {
            generation,
            outbox,
            reader,
            writer,
            interface,
        })
    }

    /// Queue a datagram on every open link.
    pub fn send(&self, bytes: &[u8]) {
        let bytes: Arc<[u8]> = Arc::from(bytes);
        for (i, slot) in self.slots.iter().enumerate() {
            if let State::Open { outbox, .. } = slot {
                if outbox.try_send(bytes.clone()).is_err() {
                    tracing::debug!(LINK = %self.names[i], "send queue full: heartbeat dropped");
                }
            }
        }
    }

    /// Whether a reader message belongs to the link as it is open now.
    pub fn is_current(&self, link: LinkId, generation: u64) -> bool {
        matches!(self.slots.get(link.0), Some(State::Open { generation: g, .. }) if *g == generation)
    }

    /// Close a link after an error; it is retried by [`Links::retry`]. Queued
    /// datagrams are dropped: the link is broken or about to be replaced.
    pub fn close(&mut self, link: LinkId, error: String) {
        if let Some(slot) = self.slots.get_mut(link.0) {
            if let State::Open { reader, writer, .. } = slot {
                reader.abort();
                writer.abort();
            }
            *slot = State::Closed { error };
        }
    }

    /// Close the links whose interface was removed, or replaced by another of the same
    /// name: their sockets stay tied to the old one (SO_BINDTODEVICE, the multicast
    /// membership) and would never hear or reach a peer again, without any error on
    /// receive. Reopened by [`Links::retry`] once the interface is there.
    fn check_interfaces(&mut self) {
        for i in 0..self.slots.len() {
            let State::Open {
                interface: Some((name, index)),
                ..
            } = &self.slots[i]
            else {
                continue;
            };
            let now = nix::net::if_::if_nametoindex(name.as_str()).ok();
            if now == Some(*index) {
                continue;
            }
            let why = match now {
                None => format!("interface {name} is gone"),
                Some(_) => format!("interface {name} was replaced"),
            };
            let link = self.names[i].clone();
            tracing::warn!(LINK = %link, "link {link}: {why}: closing it, reopening every {}s", RETRY.as_secs());
            self.close(LinkId(i), why);
        }
    }

    /// Reopen closed links (and first close those whose interface was replaced).
    pub fn retry(&mut self, config: &Config, local: usize) {
        self.check_interfaces();
        for i in 0..self.slots.len() {
            if !matches!(self.slots[i], State::Closed { .. }) {
                continue;
            }
            match self.open(config, local, i) {
                Ok(state) => {
                    tracing::info!(LINK = %self.names[i], "link {} is open", self.names[i]);
                    self.slots[i] = state;
                }
                Err(e) => {
                    let error = e.to_string();
                    if let State::Closed { error: old } = &self.slots[i] {
                        if *old == error {
                            tracing::debug!(LINK = %self.names[i], "still cannot open: {error}");
                            continue;
                        }
                    }
                    tracing::warn!(LINK = %self.names[i], "{error} (retrying every {}s)", RETRY.as_secs());
                    self.slots[i] = State::Closed { error };
                }
            }
        }
    }

    /// After a reload: reopen the links whose settings changed. The old sockets
    /// must be gone first (a unicast link rebinds the same address), so the
    /// aborted tasks get a chance to drop them before the new ones bind.
    pub async fn reopen(&mut self, config: &Config, local: usize, changed: &[usize]) {
        for &i in changed {
            if let Some(name) = self.names.get(i) {
                tracing::info!(LINK = %name, "link {name}: settings changed, reopening");
            }
            self.close(LinkId(i), String::new());
        }
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        self.retry(config, local);
    }

    /// Stop reading and let the writers send what is queued (goodbyes), waiting at
    /// most `grace`.
    pub async fn shutdown(self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let mut writers = Vec::new();
        for slot in self.slots {
            if let State::Open {
                reader,
                writer,
                outbox,
                ..
            } = slot
            {
                reader.abort();
                drop(outbox);
                writers.push(writer);
            }
        }
        for w in writers {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(left, w).await;
        }
    }
}

/// The interface a link's socket is bound to, if any.
fn interface_of(link: &Link) -> Option<&str> {
    match link {
        Link::UdpUnicast(u) => u.interface.as_deref(),
        Link::UdpBroadcast(b) => Some(&b.interface),
        Link::UdpMulticast(m) => Some(&m.interface),
        Link::Serial(_) => None,
    }
}

async fn read_loop(
    mut rx: Receiver,
    link: LinkId,
    generation: u64,
    incoming: mpsc::Sender<Incoming>,
    bulk: mpsc::Sender<Incoming>,
    prefilter: Arc<Prefilter>,
) {
    loop {
        let msg = match rx.recv().await {
            Ok(datagram) => match prefilter.check(&datagram.bytes) {
                Ok(()) if prefilter.is_known(&datagram.from) => Incoming::Packet {
                    link,
                    generation,
                    datagram,
                },
                Ok(()) => {
                    let packet = Incoming::Packet {
                        link,
                        generation,
                        datagram,
                    };
                    if bulk.try_send(packet).is_err() {
                        prefilter.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                Err(reason) => {
                    // Never wait for room to report junk: drop the report instead.
                    let refused = Incoming::Refused {
                        link,
                        from: datagram.from,
                        reason,
                    };
                    if bulk.try_send(refused).is_err() {
                        prefilter.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
            },
            Err(e) if transient(&e) => continue,
            Err(e) => {
                let _ = incoming
                    .send(Incoming::Failed {
                        link,
                        generation,
                        error: e.to_string(),
                    })
                    .await;
                return;
            }
        };
        if incoming.send(msg).await.is_err() {
            return;
        }
    }
}

/// Errors a UDP socket reports for an earlier send (ICMP), not a broken socket.
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | Interrupted
            | WouldBlock
            | HostUnreachable
            | NetworkUnreachable
    )
}

async fn write_loop(mut tx: Sender, mut queue: mpsc::Receiver<Arc<[u8]>>, name: String) {
    // Send errors (an interface down, no route) are expected while a link is
    // broken: warn once a minute, not per heartbeat.
    let mut warned: Option<Instant> = None;
    let mut failed = 0u64;
    while let Some(bytes) = queue.recv().await {
        match tx.send(&bytes).await {
            Ok(()) => {
                if failed > 0 && warned.is_some() {
                    tracing::info!(LINK = %name, "sending on link {name} works again");
                    warned = None;
                    failed = 0;
                }
            }
            Err(e) => {
                failed += 1;
                if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(LINK = %name, "cannot send on link {name}: {e} ({failed} failure(s))");
                    warned = Some(Instant::now());
                }
            }
        }
    }
}
