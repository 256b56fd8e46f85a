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
//! - IPv6 probe (RFC 4862 duplicate address detection): a neighbour solicitation from
//!   :: to the address's solicited-node multicast group; a neighbour advertisement for
//!   that address, from a MAC that is not ours, means someone already uses it (Linux
//!   answers such a solicitation to ff02::1).

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
    /// None only while being dropped.
    fd: Option<AsyncFd<OwnedFd>>,
    ifindex: u32,
    proto: u16,
}

/// A packet socket of protocol 0: hooked to no interface, so it receives nothing
/// and costs nothing to create.
fn raw_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Send one frame payload to `dst` on `ifindex` with EtherType `proto` through `fd`.
fn send_on(fd: &OwnedFd, ifindex: u32, proto: u16, dst: [u8; 6], payload: &[u8]) -> io::Result<()> {
    let sa = sockaddr_ll(ifindex, proto, dst);
    // SAFETY: payload and sa are valid for the lengths given.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
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

impl Drop for PacketSocket {
    /// close(2) of a bound packet socket waits for an RCU grace period (~10 ms): done
    /// on tokio's blocking pool, never on the event loop.
    fn drop(&mut self) {
        let Some(fd) = self.fd.take() else {
            return;
        };
        // Deregistering from epoll is cheap; the close is not.
        let fd = fd.into_inner();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            drop(rt.spawn_blocking(move || drop(fd)));
        }
    }
}

/// The one socket every gratuitous ARP and unsolicited NA leaves from: protocol 0,
/// bound to nothing (each frame names its interface and EtherType), opened once and
/// never closed, so an announcement costs one sendto(2) and nothing else.
pub struct Announcer {
    fd: OwnedFd,
}

static ANNOUNCER: std::sync::OnceLock<Announcer> = std::sync::OnceLock::new();

impl Announcer {
    /// The process's announcer, opened on first use (socket(2) of protocol 0: no
    /// grace period to wait for). Open it at start-up so the first takeover finds it.
    pub fn get() -> io::Result<&'static Announcer> {
        if let Some(a) = ANNOUNCER.get() {
            return Ok(a);
        }
        let fd = raw_socket()?;
        // Another task may have won the race: its socket is kept, ours closed (it was
        // never bound: no grace period).
        Ok(ANNOUNCER.get_or_init(|| Announcer { fd }))
    }

    /// One round of gratuitous ARP for `ip` on `ifindex`: a request and a reply.
    pub fn garp(&self, ifindex: u32, our_mac: [u8; 6], ip: Ipv4Addr) -> io::Result<()> {
        for op in [ARP_REQUEST, ARP_REPLY] {
            let pkt = Arp::gratuitous(op, our_mac, ip).encode();
            send_on(&self.fd, ifindex, ETH_P_ARP, BROADCAST, &pkt)?;
        }
        Ok(())
    }

    /// One unsolicited neighbour advertisement of `target` on `ifindex`.
    pub fn na(&self, ifindex: u32, our_mac: [u8; 6], target: Ipv6Addr) -> io::Result<()> {
        // ff02::1 maps to 33:33:00:00:00:01.
        let pkt = unsolicited_na(our_mac, target);
        send_on(
            &self.fd,
            ifindex,
            ETH_P_IPV6,
            [0x33, 0x33, 0, 0, 0, 1],
            &pkt,
        )
    }
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
    /// Open a socket that receives `proto` frames of one interface.
    ///
    /// Cheap on purpose: the socket is created with protocol 0 (the kernel hooks it
    /// nowhere yet) and bound to the interface and protocol in one step. Created with
    /// the protocol, the kernel would hook it to every interface at once and `bind`
    /// would then unhook it again with a `synchronize_net()` (an RCU grace period,
    /// 9–15 ms measured), blocking the event loop in the middle of a takeover.
    /// Closing has the same cost and happens off the loop (see `Drop`).
    pub fn open(ifindex: u32, proto: u16) -> io::Result<PacketSocket> {
        let fd = raw_socket()?;
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
        Ok(PacketSocket {
            fd: Some(fd),
            ifindex,
            proto,
        })
    }

    fn raw(&self) -> io::Result<&AsyncFd<OwnedFd>> {
        self.fd
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Send one frame payload (without the Ethernet header) to `dst`.
    pub fn send(&self, dst: [u8; 6], payload: &[u8]) -> io::Result<()> {
        send_on(
            self.raw()?.get_ref(),
            self.ifindex,
            self.proto,
            dst,
            payload,
        )
    }

    /// Receive one frame payload (the Ethernet header is already stripped) and the
    /// frame's source MAC (all zero if the link has none); frames this host sent are
    /// skipped.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, [u8; 6])> {
        let afd = self.raw()?;
        loop {
            let mut guard = afd.readable().await?;
            let r = guard.try_io(|fd| {
                // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
                let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut salen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                // SAFETY: buf is valid for buf.len() bytes, sa for salen bytes.
                let n = unsafe {
                    libc::recvfrom(
                        fd.get_ref().as_raw_fd(),
                        buf.as_mut_ptr() as *mut libc::c_void,
                        buf.len(),
                        0,
                        &mut sa as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                        &mut salen,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok((n as usize, sa))
                }
            });
            match r {
                Ok(Ok((_, sa))) if sa.sll_pkttype == libc::PACKET_OUTGOING => continue,
                Ok(Ok((n, sa))) => {
                    let mut mac = [0u8; 6];
                    if sa.sll_halen == 6 {
                        mac.copy_from_slice(&sa.sll_addr[..6]);
                    }
                    return Ok((n, mac));
                }
                Ok(Err(e)) => return Err(e),
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
    probe_with(&sock, BROADCAST, &pkt, probes, wait, |p, _| {
        Arp::decode(p)
            .filter(|a| a.sender_ip == ip && a.sender_mac != our_mac)
            .map(|a| a.sender_mac)
    })
    .await
}

/// Probe for the IPv6 address `ip` on the interface (duplicate address detection);
/// Some(mac) of whoever answers within `wait`.
pub async fn probe_v6(
    ifindex: u32,
    our_mac: [u8; 6],
    ip: Ipv6Addr,
    probes: u32,
    wait: Duration,
) -> io::Result<Option<[u8; 6]>> {
    let sock = PacketSocket::open(ifindex, ETH_P_IPV6)?;
    let pkt = dad_ns(ip);
    probe_with(
        &sock,
        multicast_mac(solicited_node(ip)),
        &pkt,
        probes,
        wait,
        |p, src| na_answer(p, src, our_mac, ip),
    )
    .await
}

/// Send `pkt` to `dst` `probes` times spread over `wait`, listening all along; the
/// first MAC `answer` finds in a received frame (payload, source MAC).
async fn probe_with(
    sock: &PacketSocket,
    dst: [u8; 6],
    pkt: &[u8],
    probes: u32,
    wait: Duration,
    answer: impl Fn(&[u8], [u8; 6]) -> Option<[u8; 6]>,
) -> io::Result<Option<[u8; 6]>> {
    let probes = probes.max(1);
    let gap = wait / (probes + 1);
    let listen = async {
        let mut buf = [0u8; 1500];
        loop {
            let (n, src) = sock.recv_from(&mut buf).await?;
            if let Some(mac) = buf.get(..n).and_then(|p| answer(p, src)) {
                return Ok::<_, io::Error>(mac);
            }
        }
    };
    tokio::pin!(listen);
    let deadline = tokio::time::Instant::now() + wait;
    for i in 0..probes {
        sock.send(dst, pkt)?;
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

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ICMPV6: u8 = 58;
const ND_NS: u8 = 135;
const ND_NA: u8 = 136;

/// The ICMPv6 checksum of `icmp` (its checksum field zero, or set: then a valid
/// message gives 0) between `src` and `dst`.
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
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
    add(&src.octets());
    add(&dst.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, ICMPV6]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv6 packet with hop limit 255 (required for ND) carrying `icmp`, its checksum
/// filled in.
fn ipv6_icmp(src: Ipv6Addr, dst: Ipv6Addr, mut icmp: Vec<u8>) -> Vec<u8> {
    let ck = icmpv6_checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut p = Vec::with_capacity(40 + icmp.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    p.push(ICMPV6);
    p.push(255);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&icmp);
    p
}

/// An IPv6 packet (header + ICMPv6 NA) announcing `target` at `our_mac` to ff02::1.
pub fn unsolicited_na(our_mac: [u8; 6], target: Ipv6Addr) -> Vec<u8> {
    // ICMPv6: type, code, checksum, flags(R S O), reserved, target, option TLLA.
    let mut icmp = vec![ND_NA, 0, 0, 0, 0x20, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&our_mac);
    ipv6_icmp(target, ALL_NODES, icmp)
}

/// The solicited-node multicast address of `a`: ff02::1:ffXX:XXXX.
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    let low = u16::from_be_bytes([o[14], o[15]]);
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(o[13]), low)
}

/// The Ethernet multicast MAC of an IPv6 multicast address: 33:33 + its last 32 bits.
pub fn multicast_mac(a: Ipv6Addr) -> [u8; 6] {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A duplicate address detection NS for `target`: from ::, to its solicited-node
/// group, no source link-layer option (RFC 4862 5.4.2).
pub fn dad_ns(target: Ipv6Addr) -> Vec<u8> {
    // ICMPv6: type, code, checksum, reserved, target.
    let mut icmp = vec![ND_NS, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    ipv6_icmp(Ipv6Addr::UNSPECIFIED, solicited_node(target), icmp)
}

/// If `p` (an IPv6 packet from `src_mac`) is a valid NA for `ip` from someone else,
/// the MAC that holds `ip`: the target link-layer option if there is one, else the
/// frame's source.
pub fn na_answer(p: &[u8], src_mac: [u8; 6], our_mac: [u8; 6], ip: Ipv6Addr) -> Option<[u8; 6]> {
    // IPv6 header: version 6, ICMPv6 right after (no extension headers), hop limit 255.
    let hdr = p.get(..40)?;
    if hdr[0] >> 4 != 6 || hdr[6] != ICMPV6 || hdr[7] != 255 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    let icmp = p.get(40..40 + len)?;
    // Type, code 0, checksum, flags, reserved, target.
    if icmp.len() < 24 || icmp[0] != ND_NA || icmp[1] != 0 {
        return None;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&hdr[8..24]).ok()?);
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&hdr[24..40]).ok()?);
    if icmpv6_checksum(src, dst, icmp) != 0 {
        return None;
    }
    if Ipv6Addr::from(<[u8; 16]>::try_from(&icmp[8..24]).ok()?) != ip {
        return None;
    }
    // Options: (type, length in units of 8 bytes, ...); type 2 = target link-layer.
    let mut tlla = None;
    let mut opts = &icmp[24..];
    while opts.len() >= 2 {
        let olen = usize::from(opts[1]) * 8;
        if olen == 0 || olen > opts.len() {
            return None;
        }
        if opts[0] == 2 && olen == 8 {
            tlla = <[u8; 6]>::try_from(&opts[2..8]).ok();
        }
        opts = &opts[olen..];
    }
    let mac = tlla.unwrap_or(src_mac);
    (src_mac != our_mac && mac != our_mac).then_some(mac)
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

    /// Recompute the ICMPv6 sum independently, checksum included: must be 0xffff.
    fn icmp_sum_ok(pkt: &[u8]) -> bool {
        let len = u32::from(u16::from_be_bytes([pkt[4], pkt[5]]));
        let mut sum: u32 = 0;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        add(&pkt[8..24]);
        add(&pkt[24..40]);
        add(&len.to_be_bytes());
        add(&[0, 0, 0, 58]);
        add(&pkt[40..]);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    #[test]
    fn na_checksum_verifies() {
        let pkt = unsolicited_na([2, 0, 0, 0, 0, 1], "fd00::100".parse().unwrap());
        assert_eq!(pkt.len(), 40 + 32);
        assert_eq!(pkt[40], 136);
        assert!(icmp_sum_ok(&pkt));
    }

    #[test]
    fn dad_ns_bytes() {
        let vip: Ipv6Addr = "fd00::12:3456".parse().unwrap();
        let snm: Ipv6Addr = "ff02::1:ff12:3456".parse().unwrap();
        assert_eq!(solicited_node(vip), snm);
        assert_eq!(multicast_mac(snm), [0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
        let pkt = dad_ns(vip);
        // Header: version 6, payload 24 (no options), ICMPv6, hop limit 255, :: -> group.
        assert_eq!(pkt.len(), 40 + 24);
        assert_eq!(&pkt[..8], &[0x60, 0, 0, 0, 0, 24, 58, 255]);
        assert_eq!(&pkt[8..24], &[0; 16]);
        assert_eq!(&pkt[24..40], &snm.octets());
        // NS, code 0, reserved zero, target the VIP.
        assert_eq!(&pkt[40..42], &[135, 0]);
        assert_eq!(&pkt[44..48], &[0; 4]);
        assert_eq!(&pkt[48..64], &vip.octets());
        assert!(icmp_sum_ok(&pkt));
        assert_eq!(icmpv6_checksum(Ipv6Addr::UNSPECIFIED, snm, &pkt[40..]), 0);
        // Upper bits of the target do not leak into the group.
        assert_eq!(
            solicited_node("2001:db8:ffff::aa:bbcc".parse().unwrap()),
            "ff02::1:ffaa:bbcc".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn na_parsing() {
        let vip: Ipv6Addr = "fd00::100".parse().unwrap();
        let (ours, theirs) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let na = unsolicited_na(theirs, vip);
        assert_eq!(na_answer(&na, theirs, ours, vip), Some(theirs));
        // Extra trailing bytes after the payload (Ethernet padding) are ignored.
        let mut padded = na.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(na_answer(&padded, theirs, ours, vip), Some(theirs));
        // Truncated anywhere: nothing, and no panic.
        for n in 0..na.len() {
            assert_eq!(na_answer(&na[..n], theirs, ours, vip), None, "{n} bytes");
        }
        // Another target.
        assert_eq!(
            na_answer(&na, theirs, ours, "fd00::101".parse().unwrap()),
            None
        );
        // Our own MAC, as frame source or as target link-layer address.
        assert_eq!(na_answer(&na, ours, ours, vip), None);
        assert_eq!(
            na_answer(&unsolicited_na(ours, vip), theirs, ours, vip),
            None
        );
        // Broken checksum, hop limit other than 255, an NS instead of an NA.
        let mut bad = na.clone();
        bad[60] ^= 1;
        assert_eq!(na_answer(&bad, theirs, ours, vip), None);
        let mut hop = na.clone();
        hop[7] = 64;
        assert_eq!(na_answer(&hop, theirs, ours, vip), None);
        assert_eq!(na_answer(&dad_ns(vip), theirs, ours, vip), None);
        // An option with length 0 (RFC 4861: invalid) or running past the end.
        let mut icmp = vec![136, 0, 0, 0, 0x20, 0, 0, 0];
        icmp.extend_from_slice(&vip.octets());
        let mut zero = icmp.clone();
        zero.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        let zero = ipv6_icmp(vip, ALL_NODES, zero);
        assert_eq!(na_answer(&zero, theirs, ours, vip), None);
        let mut long = icmp.clone();
        long.extend_from_slice(&[2, 2, 0, 0, 0, 0, 0, 0]);
        let long = ipv6_icmp(vip, ALL_NODES, long);
        assert_eq!(na_answer(&long, theirs, ours, vip), None);
        // No option (a solicited NA may omit it): the frame's source is the holder.
        let bare = ipv6_icmp(vip, ALL_NODES, icmp);
        assert_eq!(na_answer(&bare, theirs, ours, vip), Some(theirs));
    }

    #[test]
    fn mac_format() {
        assert_eq!(fmt_mac(&[2, 0xab, 0, 0, 0, 1]), "02:ab:00:00:00:01");
    }
}
