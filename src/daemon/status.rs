//! The one-line STATUS= shown by `systemctl status hbd`, built from the core's
//! [`Status`] snapshot.
//!
//! Format (stable: tests and scripts parse it), parts joined by "; ":
//!
//! ```text
//! [starting up; ][shutting down; ]owner of web,db[; starting x][; stopping y]
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
    match s {
        PeerState::Unknown => "unknown",
        PeerState::Up => "up",
        PeerState::Late => "late",
        PeerState::Dead => "dead",
        PeerState::Left => "left",
    }
}

pub fn group_state(s: &LocalGroupState) -> &'static str {
    match s {
        LocalGroupState::Stopped => "stopped",
        LocalGroupState::Starting => "starting",
        LocalGroupState::Running => "running",
        LocalGroupState::Stopping => "stopping",
        LocalGroupState::Failed => "failed",
        LocalGroupState::Blocked => "blocked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{GroupStatus, PeerStatus};

    fn group(name: &str, local: LocalGroupState) -> GroupStatus {
        GroupStatus {
            name: name.into(),
            local,
            owner: None,
        }
    }

    #[test]
    fn renders_the_documented_format() {
        let s = Status {
            local: "alpha".into(),
            ready: true,
            peers: vec![
                PeerStatus {
                    name: "beta".into(),
                    state: PeerState::Up,
                    links_up: 2,
                    links_total: 2,
                },
                PeerStatus {
                    name: "gamma".into(),
                    state: PeerState::Dead,
                    links_up: 0,
                    links_total: 2,
                },
            ],
            groups: vec![
                group("web", LocalGroupState::Running),
                group("db", LocalGroupState::Running),
                group("mail", LocalGroupState::Starting),
                group("x", LocalGroupState::Stopped),
            ],
        };
        assert_eq!(
            status_line(&s, false),
            "owner of web,db; starting mail; peers: beta up (2/2 links), gamma dead"
        );
    }

    #[test]
    fn nothing_owned_no_peers() {
        let s = Status {
            local: "solo".into(),
            ready: false,
            peers: vec![],
            groups: vec![group("web", LocalGroupState::Stopped)],
        };
        assert_eq!(
            status_line(&s, true),
            "starting up; shutting down; owner of none; peers: none"
        );
    }
}
