//! The one-line STATUS= shown by `systemctl status hbd`, built from the core's
//! [`Status`] snapshot.
//!
//! Format (stable: tests and scripts parse it), parts joined by "; ":
//!
//! ```text
//! [starting up; ][shutting down; ][maintenance; ]owner of web,db[; starting x][; stopping y]
//!     [; failed z][; blocked w]; peers: beta up (2/2 links), gamma dead
//! ```
//!
//! "owner of none" when no group runs here; "peers: none" in a one-node cluster.
//! Link counts are shown for peers that are up or late.

use crate::cluster::{LocalGroupState, PeerState, Status};

pub fn status_line(status: &Status, shutting_down: bool) -> String {
    let mut parts = Vec::new();
    if !status.ready {
        parts.push("starting up".to_string());
    }
    if shutting_down {
        parts.push("shutting down".to_string());
    }
    if status.maintenance {
        parts.push("maintenance".to_string());
    }
    let names = |want: LocalGroupState| -> Vec<&str> {
        status
            .groups
            .iter()
            .filter(|g| g.local == want)
            .map(|g| g.name.as_str())
            .collect()
    };
    let running = names(LocalGroupState::Running);
    parts.push(format!(
        "owner of {}",
        if running.is_empty() {
            "none".to_string()
        } else {
            running.join(",")
        }
    ));
    for (label, state) in [
        ("starting", LocalGroupState::Starting),
        ("stopping", LocalGroupState::Stopping),
        ("failed", LocalGroupState::Failed),
        ("blocked", LocalGroupState::Blocked),
    ] {
        let n = names(state);
        if !n.is_empty() {
            parts.push(format!("{label} {}", n.join(",")));
        }
    }
    let peers: Vec<String> = status
        .peers
        .iter()
        .map(|p| match p.state {
            PeerState::Up | PeerState::Late => format!(
                "{} {} ({}/{} links)",
                p.name,
                peer_state(p.state),
                p.links_up,
                p.links_total
            ),
            s => format!("{} {}", p.name, peer_state(s)),
        })
        .collect();
    parts.push(format!(
        "peers: {}",
        if peers.is_empty() {
            "none".to_string()
        } else {
            peers.join(", ")
        }
    ));
    parts.join("; ")
}

pub fn peer_state(s: PeerState) -> &'static str {
    crate::cluster::peer_state_name(s)
}

pub fn group_state(s: &LocalGroupState) -> &'static str {
    crate::cluster::state_name(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{GroupStatus, PeerStatus};

    fn group(name: &str, local: LocalGroupState) -> GroupStatus {
        GroupStatus {
            name: name.into(),
            preferred: "alpha".into(),
            state: local.clone(),
            local,
            owner: None,
            admin: crate::cluster::Admin::Normal,
            wanted_by: None,
            failed_on: vec![],
            reason: None,
            since_ms: None,
            fence_wait: None,
        }
    }

    fn peer(name: &str, state: PeerState, links_up: usize) -> PeerStatus {
        PeerStatus {
            name: name.into(),
            state,
            since_ms: None,
            links_up,
            links_total: 2,
            links: vec![],
            digest: None,
            config_differs: false,
            maintenance: false,
            version: None,
            ping_reached: None,
            fence: None,
        }
    }

    fn status(ready: bool, peers: Vec<PeerStatus>, groups: Vec<GroupStatus>) -> Status {
        Status {
            local: "alpha".into(),
            ready,
            maintenance: false,
            shutting_down: false,
            up_ms: 0,
            digest: "00".into(),
            wire_version: 2,
            peers,
            groups,
            transitions: vec![],
            ping_configured: 0,
            ping_reached: None,
            quorum: None,
            removed: vec![],
            heartbeat_protocol: false,
        }
    }

    #[test]
    fn renders_the_documented_format() {
        let s = status(
            true,
            vec![
                peer("beta", PeerState::Up, 2),
                peer("gamma", PeerState::Dead, 0),
            ],
            vec![
                group("web", LocalGroupState::Running),
                group("db", LocalGroupState::Running),
                group("mail", LocalGroupState::Starting),
                group("x", LocalGroupState::Stopped),
            ],
        );
        assert_eq!(
            status_line(&s, false),
            "owner of web,db; starting mail; peers: beta up (2/2 links), gamma dead"
        );
    }

    #[test]
    fn nothing_owned_no_peers() {
        let s = status(false, vec![], vec![group("web", LocalGroupState::Stopped)]);
        assert_eq!(
            status_line(&s, true),
            "starting up; shutting down; owner of none; peers: none"
        );
    }
}
