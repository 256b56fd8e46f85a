//! Virtual IP addresses through rtnetlink.
//!
//! Start: find the interface (the configured one, or the one whose existing subnet
//! contains the address, like Heartbeat's IPaddr2) and the prefix; if the address is
//! not there yet, probe for it for the resource's `probe_wait` (IPv4: ARP probe; IPv6: a
//! duplicate address detection neighbour solicitation; "0s": no probe) and refuse loudly
//! when someone answers; add it with the
//! label `<iface>:hbd` so `ip addr` shows it is hbd's; then announce it
//! with gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6): the
//! first round at once, the rest (`arp_count`, `arp_interval`) in the background.
//! Stop: delete it; an address that is already gone is fine.

use std::net::IpAddr;
use std::time::Duration;

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::Handle;

use super::arp;
use crate::config::IpResource;

/// Probes sent within the first third of the resource's `probe_wait`.
const PROBES: u32 = 2;
/// Longest interface label the kernel takes (IFNAMSIZ - 1).
const LABEL_MAX: usize = 15;

#[derive(Debug, Clone, thiserror::Error)]
pub enum IpError {
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("interface {0} does not exist")]
    NoInterface(String),
    #[error(
        "no interface has a subnet containing {0}; give the resource an interface and a prefix (e.g. \"{0}/24\")"
    )]
    NoSubnet(IpAddr),
    #[error("{addr} is already in use by {mac} on {iface}; refusing to add a duplicate")]
    InUse {
        addr: IpAddr,
        mac: String,
        iface: String,
    },
    #[error("cannot send ARP/ND on {iface}: {err}")]
    Arp { iface: String, err: String },
    #[error("cannot add {addr} to {iface}: {err}")]
    Add {
        addr: String,
        iface: String,
        err: String,
    },
    #[error("cannot remove {addr} from {iface}: {err}")]
    Remove {
        addr: IpAddr,
        iface: String,
        err: String,
    },
}

fn nl(e: rtnetlink::Error) -> IpError {
    IpError::Netlink(e.to_string())
}

/// Where a virtual IP lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub addr: IpAddr,
    pub prefix: u8,
    pub ifindex: u32,
    pub ifname: String,
    pub mac: [u8; 6],
}

/// The label hbd gives its IPv4 addresses: `<iface>:hbd`, shortened to fit 15 bytes
/// (the label must start with the interface name).
pub fn label_for(ifname: &str) -> String {
    let room = LABEL_MAX.saturating_sub(ifname.len() + 1);
    if room == 0 {
        ifname.chars().take(LABEL_MAX).collect()
    } else {
        format!("{ifname}:{}", &"hbd"[..room.min(3)])
    }
}

fn addr_of(m: &AddressMessage) -> Option<IpAddr> {
    // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on p-t-p links).
    let mut addr = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => return Some(*ip),
            AddressAttribute::Address(ip) => addr = Some(*ip),
            _ => {}
        }
    }
    addr
}

/// Whether `addr` lies in `net/prefix`.
pub fn in_subnet(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

async fn all_addresses(h: &Handle) -> Result<Vec<AddressMessage>, IpError> {
    h.address().get().execute().try_collect().await.map_err(nl)
}

async fn link_by_index(h: &Handle, index: u32) -> Result<(String, [u8; 6]), IpError> {
    let mut links = h.link().get().match_index(index).execute();
    let Some(link) = links.try_next().await.map_err(nl)? else {
        return Err(IpError::NoInterface(format!("#{index}")));
    };
    link_info(&link.attributes, index)
}

fn link_info(attrs: &[LinkAttribute], index: u32) -> Result<(String, [u8; 6]), IpError> {
    let mut name = format!("#{index}");
    let mut mac = [0u8; 6];
    for a in attrs {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Address(m) if m.len() == 6 => mac.copy_from_slice(m),
            _ => {}
        }
    }
    Ok((name, mac))
}

async fn link_by_name(h: &Handle, name: &str) -> Result<(u32, [u8; 6]), IpError> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => {
            let idx = link.header.index;
            let (_, mac) = link_info(&link.attributes, idx)?;
            Ok((idx, mac))
        }
        Ok(None) => Err(IpError::NoInterface(name.to_string())),
        // The kernel answers ENODEV for an unknown name.
        Err(_) => Err(IpError::NoInterface(name.to_string())),
    }
}

/// Decide interface and prefix for the resource.
pub async fn place(h: &Handle, r: &IpResource) -> Result<Placement, IpError> {
    let addr = r.address.addr;
    let host = if addr.is_ipv4() { 32 } else { 128 };
    let addrs = all_addresses(h).await?;
    let wanted_index = match &r.interface {
        Some(name) => Some(link_by_name(h, name).await?.0),
        None => None,
    };
    // Already present (adoption): that is where it lives.
    let existing = addrs
        .iter()
        .find(|m| addr_of(m) == Some(addr) && wanted_index.is_none_or(|i| i == m.header.index));
    let (ifindex, prefix) = if let Some(m) = existing {
        (
            m.header.index,
            r.address.prefix.unwrap_or(m.header.prefix_len),
        )
    } else {
        let subnet = addrs.iter().find(|m| {
            wanted_index.is_none_or(|i| i == m.header.index)
                && m.header.prefix_len < host
                && addr_of(m).is_some_and(|a| in_subnet(addr, a, m.header.prefix_len))
        });
        match (wanted_index, subnet) {
            (_, Some(m)) => (
                m.header.index,
                r.address.prefix.unwrap_or(m.header.prefix_len),
            ),
            (Some(i), None) => (i, r.address.prefix.unwrap_or(host)),
            (None, None) => return Err(IpError::NoSubnet(addr)),
        }
    };
    let (ifname, mac) = link_by_index(h, ifindex).await?;
    Ok(Placement {
        addr,
        prefix,
        ifindex,
        ifname,
        mac,
    })
}

async fn find(h: &Handle, p: &Placement) -> Result<Option<AddressMessage>, IpError> {
    let addrs: Vec<AddressMessage> = h
        .address()
        .get()
        .set_link_index_filter(p.ifindex)
        .execute()
        .try_collect()
        .await
        .map_err(nl)?;
    Ok(addrs.into_iter().find(|m| addr_of(m) == Some(p.addr)))
}

/// Whether the address is present on its interface.
pub async fn is_present(h: &Handle, r: &IpResource) -> Result<bool, IpError> {
    let p = match place(h, r).await {
        Ok(p) => p,
        Err(IpError::NoSubnet(_)) | Err(IpError::NoInterface(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    Ok(find(h, &p).await?.is_some())
}

/// Add the address (probe first) and announce it. Returns where it went.
pub async fn add(h: &Handle, r: &IpResource) -> Result<Placement, IpError> {
    let p = place(h, r).await?;
    if find(h, &p).await?.is_some() {
        tracing::info!("{} is already on {}; keeping it", p.addr, p.ifname);
    } else {
        let wait = r.probe_wait.get();
        let answer = match p.addr {
            _ if wait.is_zero() => Ok(None),
            IpAddr::V4(v4) => arp::probe(p.ifindex, p.mac, v4, PROBES, wait).await,
            IpAddr::V6(v6) => arp::probe_v6(p.ifindex, p.mac, v6, PROBES, wait).await,
        }
        .map_err(|e| IpError::Arp {
            iface: p.ifname.clone(),
            err: e.to_string(),
        })?;
        if let Some(mac) = answer {
            let e = IpError::InUse {
                addr: p.addr,
                mac: arp::fmt_mac(&mac),
                iface: p.ifname.clone(),
            };
            tracing::error!("{e}");
            return Err(e);
        }
        let mut req = h.address().add(p.ifindex, p.addr, p.prefix);
        let msg = req.message_mut();
        if p.addr.is_ipv6() {
            // Like keepalived: no kernel duplicate address detection, so the address is
            // usable at once (a tentative address cannot answer); hbd's own probe above
            // has just asked the link, and its election keeps the address on one node.
            msg.header.flags |= AddressHeaderFlags::Nodad;
        }
        if p.addr.is_ipv4() {
            msg.attributes
                .push(AddressAttribute::Label(label_for(&p.ifname)));
            if let Some(b) = r.broadcast {
                msg.attributes
                    .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
                msg.attributes.push(AddressAttribute::Broadcast(b));
            }
        }
        req.execute().await.map_err(|e| IpError::Add {
            addr: format!("{}/{}", p.addr, p.prefix),
            iface: p.ifname.clone(),
            err: e.to_string(),
        })?;
        tracing::info!("added {}/{} to {}", p.addr, p.prefix, p.ifname);
    }
    announce(h, &p, r.arp_count, r.arp_interval.get())?;
    Ok(p)
}

/// Announce the address again, as `add` does after adding it (`arp_count` rounds,
/// at least one), if it is on its interface here. After a split brain heals, the
/// node that keeps the group does so: neighbours may have learnt the other side's MAC.
/// Returns where it is, or `None` when it is not here.
pub async fn reannounce(h: &Handle, r: &IpResource) -> Result<Option<Placement>, IpError> {
    let p = place(h, r).await?;
    if find(h, &p).await?.is_none() {
        return Ok(None);
    }
    announce(h, &p, r.arp_count.max(1), r.arp_interval.get())?;
    Ok(Some(p))
}

/// Send one announcement of `addr` (gratuitous ARP or unsolicited NA).
fn announce_once(p: &Placement) -> std::io::Result<()> {
    let a = arp::Announcer::get()?;
    match p.addr {
        IpAddr::V4(v4) => a.garp(p.ifindex, p.mac, v4),
        IpAddr::V6(v6) => a.na(p.ifindex, p.mac, v6),
    }
}

/// Send the first announcement now and the remaining ones in the background, all
/// from the process's one announcement socket (nothing to open or close).
///
/// Each later round first checks that the address is still here: a group moved away
/// quickly must not keep pointing its neighbours at this node.
fn announce(h: &Handle, p: &Placement, count: u32, interval: Duration) -> Result<(), IpError> {
    if count == 0 {
        return Ok(());
    }
    announce_once(p).map_err(|e| IpError::Arp {
        iface: p.ifname.clone(),
        err: e.to_string(),
    })?;
    if count > 1 {
        let (h, p) = (h.clone(), p.clone());
        tokio::spawn(async move {
            for _ in 1..count {
                tokio::time::sleep(interval).await;
                if !matches!(find(&h, &p).await, Ok(Some(_))) {
                    tracing::debug!("{} left {}; no more announcements", p.addr, p.ifname);
                    return;
                }
                if let Err(e) = announce_once(&p) {
                    tracing::warn!(
                        "gratuitous announcement of {} on {} failed: {e}",
                        p.addr,
                        p.ifname
                    );
                    return;
                }
            }
        });
    }
    Ok(())
}

/// Delete the address; absent is fine.
pub async fn remove(h: &Handle, r: &IpResource) -> Result<(), IpError> {
    let p = match place(h, r).await {
        Ok(p) => p,
        Err(IpError::NoSubnet(_)) | Err(IpError::NoInterface(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(msg) = find(h, &p).await? else {
        return Ok(());
    };
    match h.address().del(msg).execute().await {
        Ok(()) => {
            tracing::info!("removed {} from {}", p.addr, p.ifname);
            Ok(())
        }
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EADDRNOTAVAIL => Ok(()),
        Err(e) => Err(IpError::Remove {
            addr: p.addr,
            iface: p.ifname,
            err: e.to_string(),
        }),
    }
}

/// The address an RTM_DELADDR/RTM_NEWADDR message is about, with its interface.
pub fn event_address(m: &AddressMessage) -> Option<(u32, IpAddr)> {
    addr_of(m).map(|a| (m.header.index, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_fit() {
        assert_eq!(label_for("eth0"), "eth0:hbd");
        assert_eq!(label_for("enp0s31f6"), "enp0s31f6:hbd");
        assert_eq!(label_for("enx001122334"), "enx001122334:hb");
        assert!(label_for("enx0011223344").len() <= 15);
        assert_eq!(label_for("veth-abcdefghij"), "veth-abcdefghij");
        for n in ["a", "eth0", "enx001122334455", "verylongname12"] {
            let l = label_for(n);
            assert!(
                l.len() <= 15 && l.starts_with(&n[..n.len().min(15)]),
                "{n} -> {l}"
            );
        }
    }

    #[test]
    fn subnets() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_subnet(a("10.99.0.100"), a("10.99.0.1"), 24));
        assert!(!in_subnet(a("10.99.1.100"), a("10.99.0.1"), 24));
        assert!(in_subnet(a("10.99.1.100"), a("10.0.0.1"), 8));
        assert!(in_subnet(a("1.2.3.4"), a("9.9.9.9"), 0));
        assert!(in_subnet(a("fd00::100"), a("fd00::1"), 64));
        assert!(!in_subnet(a("fd01::100"), a("fd00::1"), 64));
        assert!(!in_subnet(a("fd00::100"), a("10.0.0.1"), 0));
    }
}
