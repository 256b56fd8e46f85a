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

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::cluster::LinkId;
use crate::config::Config;
use crate::transport::{self, Datagram, Receiver, Sender};

/// How often closed links are retried.
pub const RETRY: Duration = Duration::from_secs(5);
/// Datagrams waiting for a link's writer.
const QUEUE: usize = 8;

/// What reader tasks send the loop.
#[derive(Debug)]
pub enum Incoming {
    Packet {
        link: LinkId,
        generation: u64,
        datagram: Datagram,
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
    next_generation: u64,
}

impl Links {
    /// Try to open every link; returns the links and a message per link that failed.
    pub fn open_all(
        config: &Config,
        local: usize,
        incoming: mpsc::Sender<Incoming>,
    ) -> (Links, Vec<String>) {
        let mut links = Links {
            names: config.links.iter().map(|l| l.name().to_string()).collect(),
            slots: Vec::new(),
            incoming,
            next_generation: 0,
        };
        let mut errors = Vec::new();
        for i in 0..config.links.len() {
            let state = match links.open(config, local, i) {
                Ok(s) => s,
                Err(error) => {
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

    fn open(&mut self, config: &Config, local: usize, i: usize) -> Result<State, String> {
        let (tx, rx) = transport::open(config, local, i).map_err(|e| e.to_string())?;
        self.next_generation += 1;
        let generation = self.next_generation;
        let name = self.names.get(i).cloned().unwrap_or_default();
        let span = tracing::Span::current();
        let reader = tokio::spawn(
            read_loop(rx, LinkId(i), generation, self.incoming.clone()).instrument(span.clone()),
        );
        let (outbox, queue) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write_loop(tx, queue, name).instrument(span));
        Ok(State::Open {
            generation,
            outbox,
            reader,
            writer,
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

    /// Reopen closed links.
    pub fn retry(&mut self, config: &Config, local: usize) {
        for i in 0..self.slots.len() {
            if !matches!(self.slots[i], State::Closed { .. }) {
                continue;
            }
            match self.open(config, local, i) {
                Ok(state) => {
                    tracing::info!(LINK = %self.names[i], "link {} is open", self.names[i]);
                    self.slots[i] = state;
                }
                Err(error) => {
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

async fn read_loop(
    mut rx: Receiver,
    link: LinkId,
    generation: u64,
    incoming: mpsc::Sender<Incoming>,
) {
    loop {
        let msg = match rx.recv().await {
            Ok(datagram) => Incoming::Packet {
                link,
                generation,
                datagram,
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
