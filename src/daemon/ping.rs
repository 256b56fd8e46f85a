//! Ping nodes (`[failover] ping`): one round of ICMP echo to every address per
//! keepalive, counted and handed to the core, which dampens and decides.
//!
//! Sockets: an ICMP "ping socket" (`SOCK_DGRAM`, `IPPROTO_ICMP`/`IPPROTO_ICMPV6`),
//! which needs no privilege beyond a group in `net.ipv4.ping_group_range` (Debian's
//! systemd sets `0 2147483647`; a fresh network namespace has `1 0`, which admits
//! nobody, root included). When the kernel refuses it, a raw ICMP socket, which needs
//! CAP_NET_RAW (in hbd.service's bounding set already, for gratuitous ARP). No setuid
//! helper, no `ping` binary. The task runs on the daemon's runtime but never on its
//! critical path: sends and receives are non-blocking, and a round that finds no
//! answer costs two syscalls per address.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// One family's socket and whether it is raw (sees every ICMP packet, IPv4 with its
/// IP header; ids and checksums are ours to set and check).
struct Sock {
    socket: UdpSocket,
    raw: bool,
    v6: bool,
}

/// Why a family's socket for the ping nodes could not be opened.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    /// Neither kind of ICMP socket: both refusals are in the sentence.
    #[error(
        "cannot open an {family} socket for the ping nodes: ping socket: {dgram} (is this group in net.ipv4.ping_group_range?); raw socket: {raw} (needs CAP_NET_RAW)"
    )]
    Refused {
        family: &'static str,
        dgram: io::Error,
        raw: io::Error,
    },
    /// The socket was opened but could not be made non-blocking or registered.
    #[error("{family} socket: {source}")]
    Setup {
        family: &'static str,
        #[source]
        source: io::Error,
    },
}

fn open(v6: bool) -> Result<Sock, OpenError> {
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let family = if v6 { "ICMPv6" } else { "ICMP" };
    let (socket, raw) = match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => (s, false),
        Err(dgram) => match Socket::new(domain, Type::RAW, Some(proto)) {
            Ok(s) => (s, true),
            Err(raw) => return Err(OpenError::Refused { family, dgram, raw }),
        },
    };
    let setup = |source| OpenError::Setup { family, source };
    socket.set_nonblocking(true).map_err(setup)?;
    let socket = UdpSocket::from_std(socket.into()).map_err(setup)?;
    Ok(Sock { socket, raw, v6 })
}

/// The Internet checksum (RFC 1071) of `b`.
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in b.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type, code, checksum, id, sequence, then `token` (8 bytes) to
/// recognise our own replies on a raw socket.
fn request(v6: bool, id: u16, seq: u16, token: u64) -> Vec<u8> {
    let mut p = vec![if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&token.to_be_bytes());
    if !v6 {
        // The kernel fills it in for ping sockets and for ICMPv6; raw ICMP needs it.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `packet` (as received on `s`) is a reply to our request `seq`.
fn is_reply(s: &Sock, packet: &[u8], id: u16, seq: u16, token: u64) -> bool {
    let icmp = if s.raw && !s.v6 {
        // Raw IPv4 sockets deliver the IP header too.
        let Some(&b0) = packet.first() else {
            return false;
        };
        let ihl = usize::from(b0 & 0x0f) * 4;
        match packet.get(ihl..) {
            Some(p) => p,
            None => return false,
        }
    } else {
        packet
    };
    if icmp.len() < 16 {
        return false;
    }
    let want = if s.v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    // A ping socket's id is the kernel's (it filters for us); a raw one sees all.
    icmp[0] == want
        && (!s.raw || u16::from_be_bytes([icmp[4], icmp[5]]) == id)
        && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
        && icmp[8..16] == token.to_be_bytes()
}

/// Send a round of echoes every `interval` to `addrs` and report how many answered
/// within the round. Runs until the receiver is gone.
pub async fn run(addrs: Vec<IpAddr>, interval: Duration, tx: mpsc::UnboundedSender<usize>) {
    let mut socks: [Option<Sock>; 2] = [None, None];
    for (i, v6) in [false, true].into_iter().enumerate() {
        if addrs.iter().any(|a| a.is_ipv6() == v6) {
            match open(v6) {
                Ok(s) => {
                    tracing::debug!(
                        "ping nodes: {} socket ({})",
                        if v6 { "ICMPv6" } else { "ICMP" },
                        if s.raw { "raw" } else { "ping socket" }
                    );
                    socks[i] = Some(s);
                }
                // Its addresses count as unreachable: the core says what that means.
                Err(e) => tracing::error!("{e}"),
            }
        }
    }
    let id = (std::process::id() & 0xffff) as u16;
    // A secret in every echo: a reply forged by someone who sees no request (to make a
    // cut-off node believe it reaches its ping nodes) must guess it.
    let mut secret = [0u8; 8];
    let token = match getrandom::fill(&mut secret) {
        Ok(()) => u64::from_be_bytes(secret),
        Err(_) => u64::from(std::process::id()) << 32 | u64::from(id) << 16 | 0x4842,
    };
    let mut seq: u16 = 0;
    let mut round = Instant::now();
    let (mut buf, mut buf6) = ([0u8; 1500], [0u8; 1500]);
    loop {
        seq = seq.wrapping_add(1);
        let end = round + interval;
        for a in &addrs {
            let Some(s) = &socks[usize::from(a.is_ipv6())] else {
                continue;
            };
            let p = request(s.v6, id, seq, token);
            if let Err(e) = s.socket.try_send_to(&p, SocketAddr::new(*a, 0)) {
                tracing::debug!("echo to ping node {a}: {e}");
            }
        }
        let mut answered = BTreeSet::new();
        while answered.len() < addrs.len() {
            let (s, r) = tokio::select! {
                r = recv(&socks[0], &mut buf), if socks[0].is_some() => (&socks[0], r),
                r = recv(&socks[1], &mut buf6), if socks[1].is_some() => (&socks[1], r),
                () = sleep_until(end) => break,
            };
            let (Some(s), Ok((packet, from))) = (s, r) else {
                continue;
            };
            if addrs.contains(&from) && is_reply(s, packet, id, seq, token) {
                answered.insert(from);
            }
        }
        if tx.send(answered.len()).is_err() {
            return;
        }
        sleep_until(end).await;
        // Behind by more than a round (a stalled runtime): start afresh, no burst.
        let now = Instant::now();
        round = if now > end + interval { now } else { end };
    }
}

async fn recv<'a>(s: &Option<Sock>, buf: &'a mut [u8]) -> std::io::Result<(&'a [u8], IpAddr)> {
    match s {
        Some(s) => {
            let (n, from) = s.socket.recv_from(buf).await?;
            Ok((&buf[..n], from.ip()))
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_request_checks_out() {
        let p = request(false, 0x1234, 7, 42);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!(p.len(), 16);
        assert_eq!(p[0], ECHO_REQUEST_V4);
    }

    #[test]
    fn replies_are_recognised_by_type_sequence_and_token() {
        let std = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std.set_nonblocking(true).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        let s = Sock {
            socket: UdpSocket::from_std(std).unwrap(),
            raw: true,
            v6: false,
        };
        let mut reply = request(false, 9, 3, 77);
        reply[0] = ECHO_REPLY_V4;
        let mut ip = vec![0x45u8];
        ip.extend_from_slice(&[0; 19]);
        ip.extend_from_slice(&reply);
        assert!(is_reply(&s, &ip, 9, 3, 77));
        assert!(!is_reply(&s, &ip, 9, 4, 77), "another round's reply");
        assert!(!is_reply(&s, &ip, 8, 3, 77), "another process's id");
        assert!(!is_reply(&s, &ip[..30], 9, 3, 77), "truncated");
        assert!(!is_reply(&s, &[0xff], 9, 3, 77), "garbage");
        let mut req = ip.clone();
        req[20] = ECHO_REQUEST_V4;
        assert!(!is_reply(&s, &req, 9, 3, 77), "our own request looped back");
    }
}
