//! ARP probes, gratuitous ARPs and IPv6 unsolicited neighbour advertisements, sent
//! from an AF_PACKET raw socket bound to one interface.
//!
//! - Probe (RFC 5227): an ARP request with sender IP 0.0.0.0 asking for the address;
//!   any ARP packet whose *sender* IP is that address, from a MAC that is not ours,
//!   means someone already uses it.
//! - Gratuitous ARP, as Heartbeat's `send_arp` does: a request and a reply per round,
//!   both with sender IP = target IP = the address, to the broadcast MAC.
//! - IPv6: an unsolicited neighbour advertisement (ICMPv6 136, Override flag, target
//!   link-layer address option) to ff02::1, built whole so it can leave before the
//!   kernel's duplicate address detection has finished.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const BROADCAST: [u8; 6] = [0xff; 6];

/// A packet socket (SOCK_DGRAM: the kernel adds and strips the Ethernet header) bound
/// to one interface and one EtherType.
pub struct PacketSocket {
    fd: AsyncFd<OwnedFd>,
    ifindex: u32,
    proto: u16,
}

fn sockaddr_ll(ifindex: u32, proto: u16, dst: [u8; 6]) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = proto.to_be();
    sa.sll_ifindex = ifindex as i32;
    sa.sll_halen = 6;
    sa.sll_addr[..6].copy_from_slice(&dst);
    sa
}

impl PacketSocket {
    pub fn open(ifindex: u32, proto: u16) -> io::Result<PacketSocket> {
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(proto.to_be()),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sa = sockaddr_ll(ifindex, proto, [0; 6]);
        // SAFETY: sa is a valid sockaddr_ll of the given length.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it (and so keeps it
        // open and the same) until it is dropped.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(PacketSocket { fd, ifindex, proto })
    }

    /// Send one frame payload (without the Ethernet header) to `dst`.
    pub fn send(&self, dst: [u8; 6], payload: &[u8]) -> io::Result<()> {
        let sa = sockaddr_ll(self.ifindex, self.proto, dst);
        // SAFETY: payload and sa are valid for the lengths given.
        let rc = unsafe {
            libc::sendto(
                self.fd.get_ref().as_raw_fd(),
                payload.as_ptr() as *const libc::c_void,
                payload.len(),
                0,
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receive one frame payload (the Ethernet header is already stripped).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            let r = guard.try_io(|fd| {
                // SAFETY: buf is valid for buf.len() bytes.
                let n = unsafe {
                    libc::recv(
                        fd.get_ref().as_raw_fd(),
                        buf.as_mut_ptr() as *mut libc::c_void,
                        buf.len(),
                        0,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(res) => return res,
                Err(_would_block) => continue,
            }
        }
    }
}

/// An ARP packet for Ethernet/IPv4 (28 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

impl Arp {
    pub fn encode(&self) -> [u8; 28] {
        let mut p = [0u8; 28];
        p[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
        p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
        p[4] = 6;
        p[5] = 4;
        p[6..8].copy_from_slice(&self.op.to_be_bytes());
        p[8..14].copy_from_slice(&self.sender_mac);
        p[14..18].copy_from_slice(&self.sender_ip.octets());
        p[18..24].copy_from_slice(&self.target_mac);
        p[24..28].copy_from_slice(&self.target_ip.octets());
        p
    }

    pub fn decode(p: &[u8]) -> Option<Arp> {
        if p.len() < 28 || p[0..2] != [0, 1] || p[2..4] != [8, 0] || p[4] != 6 || p[5] != 4 {
            return None;
        }
        let mac = |o: usize| -> [u8; 6] {
            let mut m = [0u8; 6];
            m.copy_from_slice(&p[o..o + 6]);
            m
        };
        let ip = |o: usize| Ipv4Addr::new(p[o], p[o + 1], p[o + 2], p[o + 3]);
        Some(Arp {
            op: u16::from_be_bytes([p[6], p[7]]),
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    /// The RFC 5227 probe for `ip`.
    pub fn probe(our_mac: [u8; 6], ip: Ipv4Addr) -> Arp {
        Arp {
            op: ARP_REQUEST,
            sender_mac: our_mac,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_mac: [0; 6],
            target_ip: ip,
        }
    }

    /// A gratuitous ARP (request or reply style) announcing `ip` at `our_mac`.
    pub fn gratuitous(op: u16, our_mac: [u8; 6], ip: Ipv4Addr) -> Arp {
        Arp {
            op,
            sender_mac: our_mac,
            sender_ip: ip,
            target_mac: if op == ARP_REPLY { BROADCAST } else { [0; 6] },
            target_ip: ip,
        }
    }
}

/// Format a MAC address as 02:00:00:aa:bb:cc.
pub fn fmt_mac(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Probe for `ip` on the interface; Some(mac) of whoever answers within `wait`.
pub async fn probe(
    ifindex: u32,
    our_mac: [u8; 6],
    ip: Ipv4Addr,
    probes: u32,
    wait: Duration,
) -> io::Result<Option<[u8; 6]>> {
    let sock = PacketSocket::open(ifindex, ETH_P_ARP)?;
    let pkt = Arp::probe(our_mac, ip).encode();
    let probes = probes.max(1);
    let gap = wait / (probes + 1);
    let listen = async {
        let mut buf = [0u8; 1500];
        loop {
            let n = sock.recv(&mut buf).await?;
            if let Some(a) = Arp::decode(&buf[..n])
                && a.sender_ip == ip
                && a.sender_mac != our_mac
            {
                return Ok::<_, io::Error>(a.sender_mac);
            }
        }
    };
    tokio::pin!(listen);
    let deadline = tokio::time::Instant::now() + wait;
    for i in 0..probes {
        sock.send(BROADCAST, &pkt)?;
        let until = if i + 1 == probes {
            deadline
        } else {
            tokio::time::Instant::now() + gap
        };
        match tokio::time::timeout_at(until, &mut listen).await {
            Ok(r) => return r.map(Some),
            Err(_) => continue,
        }
    }
    Ok(None)
}

/// One round of gratuitous ARP: a request and a reply.
pub fn send_garp(sock: &PacketSocket, our_mac: [u8; 6], ip: Ipv4Addr) -> io::Result<()> {
    sock.send(
        BROADCAST,
        &Arp::gratuitous(ARP_REQUEST, our_mac, ip).encode(),
    )?;
    sock.send(BROADCAST, &Arp::gratuitous(ARP_REPLY, our_mac, ip).encode())
}

/// Open the socket gratuitous ARPs go out of.
pub fn garp_socket(ifindex: u32) -> io::Result<PacketSocket> {
    PacketSocket::open(ifindex, ETH_P_ARP)
}

/// Open the socket unsolicited neighbour advertisements go out of.
pub fn na_socket(ifindex: u32) -> io::Result<PacketSocket> {
    PacketSocket::open(ifindex, ETH_P_IPV6)
}

/// An IPv6 packet (header + ICMPv6 NA) announcing `target` at `our_mac` to ff02::1.
pub fn unsolicited_na(our_mac: [u8; 6], target: Ipv6Addr) -> Vec<u8> {
    let dst: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    // ICMPv6: type, code, checksum, flags(R S O), reserved, target, option TLLA.
    let mut icmp = vec![136u8, 0, 0, 0, 0x20, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&our_mac);
    let len = icmp.len() as u32;
    // Checksum over the pseudo-header and the ICMPv6 message.
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            sum += u32::from(w);
        }
    };
    add(&target.octets());
    add(&dst.octets());
    add(&len.to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(&icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !(sum as u16);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut p = Vec::with_capacity(40 + icmp.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    p.push(58); // next header: ICMPv6
    p.push(255); // hop limit, required for ND
    p.extend_from_slice(&target.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&icmp);
    p
}

/// Send one unsolicited NA.
pub fn send_na(sock: &PacketSocket, our_mac: [u8; 6], target: Ipv6Addr) -> io::Result<()> {
    // ff02::1 maps to 33:33:00:00:00:01.
    sock.send([0x33, 0x33, 0, 0, 0, 1], &unsolicited_na(our_mac, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_roundtrip() {
        let mac = [2, 0, 0, 0, 0, 1];
        let ip = Ipv4Addr::new(10, 99, 0, 100);
        for a in [
            Arp::probe(mac, ip),
            Arp::gratuitous(ARP_REQUEST, mac, ip),
            Arp::gratuitous(ARP_REPLY, mac, ip),
        ] {
            assert_eq!(Arp::decode(&a.encode()), Some(a));
        }
        let p = Arp::probe(mac, ip).encode();
        assert_eq!(&p[14..18], &[0, 0, 0, 0], "probe sender IP is 0.0.0.0");
        assert_eq!(Arp::decode(&p[..20]), None);
    }

    #[test]
    fn na_checksum_verifies() {
        let pkt = unsolicited_na([2, 0, 0, 0, 0, 1], "fd00::100".parse().unwrap());
        assert_eq!(pkt.len(), 40 + 32);
        assert_eq!(pkt[40], 136);
        // Recompute the sum including the checksum: must be 0xffff.
        let mut sum: u32 = 0;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        add(&pkt[8..24]);
        add(&pkt[24..40]);
        add(&32u32.to_be_bytes());
        add(&[0, 0, 0, 58]);
        add(&pkt[40..]);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn mac_format() {
        assert_eq!(fmt_mac(&[2, 0xab, 0, 0, 0, 1]), "02:ab:00:00:00:01");
    }
}
