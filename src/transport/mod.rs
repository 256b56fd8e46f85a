//! Heartbeat transports: UDP (unicast, broadcast, multicast) and serial lines.
//!
//! Every link of cluster.toml, opened for the local node, becomes a [`Sender`]
//! (one datagram to every peer on the link) and a [`Receiver`] (datagrams as they
//! arrive, with where they came from). The transports know nothing of the wire
//! format: authentication, replay and "is this really a peer" are the core's job;
//! a transport only moves bytes and, for serial lines, frames them so that a
//! garbled byte stream resynchronises.
//!
//! Both halves are tokio-based and must be created inside a runtime. They are
//! separate so the daemon can read in one task while another writes.

mod serial;
mod udp;

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::config::{Config, Link};

pub use serial::{Deframer, crc32, frame};

/// Largest datagram a transport carries: an Ethernet MTU minus IPv4 and UDP headers,
/// so a heartbeat is never fragmented. Larger sends fail with `InvalidInput`.
pub const MAX_DATAGRAM: usize = 1472;

/// Where a datagram came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Udp(SocketAddr),
    /// The far end of a serial line (there is only one).
    Serial,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Udp(a) => write!(f, "{a}"),
            Source::Serial => f.write_str("serial peer"),
        }
    }
}

/// A received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub bytes: Vec<u8>,
    pub from: Source,
}

/// A link that could not be opened: names the link and what failed.
#[derive(Debug, thiserror::Error)]
#[error("link \"{link}\" ({kind}): {what}: {source}")]
pub struct OpenError {
    pub link: String,
    pub kind: &'static str,
    pub what: String,
    #[source]
    pub source: io::Error,
}

/// The sending half of an open link.
pub enum Sender {
    Udp(udp::UdpSender),
    Serial(serial::SerialSender),
}

/// The receiving half of an open link.
pub enum Receiver {
    Udp(udp::UdpReceiver),
    Serial(serial::SerialReceiver),
}

impl Sender {
    /// Send one datagram to every peer on the link. With several peers, a failure
    /// for one does not stop the others; the first error is returned.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        check_size(bytes)?;
        match self {
            Sender::Udp(s) => s.send(bytes).await,
            Sender::Serial(s) => s.send(bytes).await,
        }
    }
}

impl Receiver {
    /// The next datagram. An error means the link is broken (the daemon reopens it).
    pub async fn recv(&mut self) -> io::Result<Datagram> {
        match self {
            Receiver::Udp(r) => r.recv().await,
            Receiver::Serial(r) => r.recv().await,
        }
    }

    /// Frames dropped because they were garbled (serial links; always 0 for UDP).
    pub fn dropped(&self) -> u64 {
        match self {
            Receiver::Udp(_) => 0,
            Receiver::Serial(r) => r.dropped(),
        }
    }
}

fn check_size(bytes: &[u8]) -> io::Result<()> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "datagram of {} bytes exceeds the {MAX_DATAGRAM}-byte maximum",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// Open link `link` (an index into `config.links`) for node `local` (an index into
/// `config.nodes`). Must be called inside a tokio runtime.
pub fn open(config: &Config, local: usize, link: usize) -> Result<(Sender, Receiver), OpenError> {
    let Some(l) = config.links.get(link) else {
        return Err(OpenError {
            link: format!("#{link}"),
            kind: "?",
            what: "no such link".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        });
    };
    let err = |what: String, source: io::Error| OpenError {
        link: l.name().to_string(),
        kind: l.kind(),
        what,
        source,
    };
    match l {
        Link::UdpUnicast(u) => {
            let own = config
                .nodes
                .get(local)
                .and_then(|n| n.address.get(&u.name))
                .copied()
                .ok_or_else(|| {
                    err(
                        "this node has no address on the link".into(),
                        io::Error::from(io::ErrorKind::NotFound),
                    )
                })?;
            let peers = config
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != local)
                .filter_map(|(_, n)| n.address.get(&u.name))
                .map(|a| SocketAddr::new(*a, u.port))
                .collect();
            let (s, r) = udp::unicast(SocketAddr::new(own, u.port), u.interface.as_deref(), peers)
                .map_err(|(what, e)| err(what, e))?;
            Ok((Sender::Udp(s), Receiver::Udp(r)))
        }
        Link::UdpBroadcast(b) => {
            let (s, r) = udp::broadcast(&b.interface, b.port).map_err(|(what, e)| err(what, e))?;
            Ok((Sender::Udp(s), Receiver::Udp(r)))
        }
        Link::UdpMulticast(m) => {
            let (s, r) = udp::multicast(&m.interface, m.group, m.port, m.ttl)
                .map_err(|(what, e)| err(what, e))?;
            Ok((Sender::Udp(s), Receiver::Udp(r)))
        }
        Link::Serial(s) => {
            let (tx, rx) =
                serial::open(&s.name, &s.device, s.baud).map_err(|(what, e)| err(what, e))?;
            Ok((Sender::Serial(tx), Receiver::Serial(rx)))
        }
    }
}
