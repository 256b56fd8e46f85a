//! UDP links: sockets set up with socket2 (options tokio does not expose), then
//! handed to tokio.
//!
//! - unicast: bind this node's own address on the link, send to each peer's address;
//! - broadcast: bind 0.0.0.0:port on one interface (deaf to multicast), send to
//!   255.255.255.255:port;
//! - multicast: join the group on one interface (by index), bind group:port, send to
//!   the group with the configured TTL and loopback off.
//!
//! Broadcast and multicast hear every node on the segment, other clusters included:
//! the core sorts that out (and rejects our own packets should they loop back).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::task::Poll;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::{Datagram, Source};

/// Receive buffer: the largest UDP payload, so an oversized packet reaches the
/// core whole (and is rejected there as too long) instead of being truncated.
const RECV_BUF: usize = 65536;

type SetupError = (String, io::Error);

pub struct UdpSender {
    socket: Arc<UdpSocket>,
    destinations: Vec<SocketAddr>,
}

pub struct UdpReceiver {
    socket: Arc<UdpSocket>,
    /// Unicast: one socket connected to each peer. The kernel delivers a peer's
    /// datagrams there (the most specific match), so they never queue behind a flood
    /// from other addresses in `socket`, and they are read first.
    peers: Vec<UdpSocket>,
    buf: Vec<u8>,
}

impl UdpSender {
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut first_err = None;
        for dest in &self.destinations {
            if let Err(e) = self.socket.send_to(bytes, dest).await {
                first_err.get_or_insert(io::Error::new(e.kind(), format!("send to {dest}: {e}")));
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl UdpReceiver {
    pub async fn recv(&mut self) -> io::Result<Datagram> {
        let (peers, socket, buf) = (&self.peers, &self.socket, &mut self.buf);
        let (n, from) = std::future::poll_fn(|cx| {
            for s in peers.iter().chain(std::iter::once(socket.as_ref())) {
                let mut rb = tokio::io::ReadBuf::new(buf);
                match s.poll_recv_from(cx, &mut rb) {
                    Poll::Ready(Ok(from)) => return Poll::Ready(Ok((rb.filled().len(), from))),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            Poll::Pending
        })
        .await?;
        Ok(Datagram {
            bytes: buf[..n].to_vec(),
            from: Source::Udp(from),
        })
    }
}

fn register(socket: Socket) -> Result<UdpSocket, SetupError> {
    socket
        .set_nonblocking(true)
        .map_err(|e| ("cannot make the socket non-blocking".to_string(), e))?;
    UdpSocket::from_std(socket.into())
        .map_err(|e| ("cannot register the socket with the runtime".to_string(), e))
}

fn halves(
    socket: Socket,
    destinations: Vec<SocketAddr>,
) -> Result<(UdpSender, UdpReceiver), SetupError> {
    halves_with(socket, destinations, Vec::new())
}

fn halves_with(
    socket: Socket,
    destinations: Vec<SocketAddr>,
    peers: Vec<UdpSocket>,
) -> Result<(UdpSender, UdpReceiver), SetupError> {
    socket
        .set_nonblocking(true)
        .map_err(|e| ("cannot make the socket non-blocking".to_string(), e))?;
    grow_receive_buffer(&socket);
    let socket = UdpSocket::from_std(socket.into())
        .map_err(|e| ("cannot register the socket with the runtime".to_string(), e))?;
    let socket = Arc::new(socket);
    Ok((
        UdpSender {
            socket: socket.clone(),
            destinations,
        },
        UdpReceiver {
            socket,
            peers,
            buf: vec![0; RECV_BUF],
        },
    ))
}

/// Room for a burst: under a flood of junk the kernel queue must not overflow
/// before the reader drops the junk, or peers' heartbeats are lost with it. With
/// CAP_NET_ADMIN (hbd.service keeps it) SO_RCVBUFFORCE passes net.core.rmem_max;
/// without it the kernel's cap applies. Best effort: the default still works.
const SOCKET_RCVBUF: usize = 4 << 20;

fn grow_receive_buffer(socket: &Socket) {
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(socket, sockopt::RcvBufForce, &SOCKET_RCVBUF).is_err() {
        let _ = socket.set_recv_buffer_size(SOCKET_RCVBUF);
    }
}

fn new_socket(domain: Domain) -> Result<Socket, SetupError> {
    Socket::new(domain, Type::DGRAM.cloexec(), Some(Protocol::UDP))
        .map_err(|e| ("cannot create a UDP socket".to_string(), e))
}

fn bind_device(socket: &Socket, interface: &str) -> Result<(), SetupError> {
    socket.bind_device(Some(interface.as_bytes())).map_err(|e| {
        (
            format!("cannot bind to interface {interface} (SO_BINDTODEVICE)"),
            e,
        )
    })
}

fn bind(socket: &Socket, addr: SocketAddr) -> Result<(), SetupError> {
    socket
        .bind(&addr.into())
        .map_err(|e| (format!("cannot bind {addr}"), e))
}

/// Unicast: our own address on the link, the peers' addresses as destinations.
pub fn unicast(
    own: SocketAddr,
    interface: Option<&str>,
    peers: Vec<SocketAddr>,
) -> Result<(UdpSender, UdpReceiver), SetupError> {
    let shared = |s: &Socket| {
        s.set_reuse_address(true)
            .map_err(|e| ("cannot set SO_REUSEADDR".to_string(), e))?;
        if let Some(ifname) = interface {
            bind_device(s, ifname)?;
        }
        Ok::<(), SetupError>(())
    };
    let socket = new_socket(Domain::for_address(own))?;
    shared(&socket)?;
    bind(&socket, own)?;
    let mut connected = Vec::with_capacity(peers.len());
    for peer in &peers {
        let s = new_socket(Domain::for_address(own))?;
        shared(&s)?;
        bind(&s, own)?;
        s.connect(&(*peer).into())
            .map_err(|e| (format!("cannot connect a socket to {peer}"), e))?;
        grow_receive_buffer(&s);
        connected.push(register(s)?);
    }
    halves_with(socket, peers, connected)
}

/// Broadcast on one interface.
pub fn broadcast(interface: &str, port: u16) -> Result<(UdpSender, UdpReceiver), SetupError> {
    let socket = new_socket(Domain::IPV4)?;
    socket
        .set_reuse_address(true)
        .map_err(|e| ("cannot set SO_REUSEADDR".to_string(), e))?;
    socket
        .set_broadcast(true)
        .map_err(|e| ("cannot set SO_BROADCAST".to_string(), e))?;
    // Bound to 0.0.0.0:port, the socket would also get every multicast datagram to that
    // port on the interface (IP_MULTICAST_ALL is on by default): a multicast link on the
    // same interface and port would be heard twice, as itself and as this link, and this
    // link would look up while its broadcasts no longer arrive.
    socket
        .set_multicast_all_v4(false)
        .map_err(|e| ("cannot clear IP_MULTICAST_ALL".to_string(), e))?;
    bind_device(&socket, interface)?;
    bind(
        &socket,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
    )?;
    let dest = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::BROADCAST, port));
    halves(socket, vec![dest])
}

/// Multicast on one interface.
pub fn multicast(
    interface: &str,
    group: Ipv4Addr,
    port: u16,
    ttl: u8,
) -> Result<(UdpSender, UdpReceiver), SetupError> {
    let ifindex = nix::net::if_::if_nametoindex(interface)
        .map_err(|e| (format!("no interface {interface}"), io::Error::from(e)))?;
    let socket = new_socket(Domain::IPV4)?;
    socket
        .set_reuse_address(true)
        .map_err(|e| ("cannot set SO_REUSEADDR".to_string(), e))?;
    bind(&socket, SocketAddr::V4(SocketAddrV4::new(group, port)))?;
    socket
        .join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))
        .map_err(|e| (format!("cannot join {group} on {interface}"), e))?;
    // Only the groups joined on this socket, not every group joined on the host.
    socket
        .set_multicast_all_v4(false)
        .map_err(|e| ("cannot clear IP_MULTICAST_ALL".to_string(), e))?;
    set_multicast_if_index(&socket, ifindex).map_err(|e| {
        (
            format!("cannot send multicast through {interface} (IP_MULTICAST_IF)"),
            e,
        )
    })?;
    socket
        .set_multicast_ttl_v4(u32::from(ttl))
        .map_err(|e| ("cannot set the multicast TTL".to_string(), e))?;
    socket
        .set_multicast_loop_v4(false)
        .map_err(|e| ("cannot turn multicast loopback off".to_string(), e))?;
    let dest = SocketAddr::V4(SocketAddrV4::new(group, port));
    halves(socket, vec![dest])
}

/// IP_MULTICAST_IF by interface index (`struct ip_mreqn`): socket2 only takes an
/// address, and an interface's address may change or be shared while its index does not.
fn set_multicast_if_index(socket: &Socket, ifindex: u32) -> io::Result<()> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    };
    // SAFETY: a valid fd, a pointer to a live ip_mreqn and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&mreqn as *const libc::ip_mreqn).cast(),
            std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
