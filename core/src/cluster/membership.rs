//! Per-peer liveness: which peers are heard, over which links, and since when.
//!
//! A peer is alive while any link hears it. Each link is tracked on its own so a
//! lost link is reported (and only reported: it never moves a group). Replay
//! protection lives here too, because it is per sender state: a packet is new on a
//! link only if its sequence number is above the last one that link carried, and
//! its content is new only if above the last one any link carried, so the copies
//! of one heartbeat sent over every link are counted once.

use std::time::{Duration, Instant};

use crate::proto::wire::ClaimState;

use super::{PeerState, Reject};

/// How many earlier incarnations of a peer are remembered to refuse their replays.
const OLD_INCARNATIONS: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct LinkSeen {
    pub last_heard: Option<Instant>,
    pub last_seq: u64,
    pub up: bool,
}

#[derive(Debug, Clone)]
pub struct Peer {
    pub state: PeerState,
    pub incarnation: Option<u64>,
    old_incarnations: Vec<u64>,
    /// Highest sequence whose content was processed (any link).
    pub last_seq: u64,
    pub last_heard: Option<Instant>,
    pub up_since: Option<Instant>,
    pub warned_late: bool,
    pub links: Vec<LinkSeen>,
    /// Latest claim per local group index: state and generation.
    pub claims: Vec<(ClaimState, u64)>,
    pub leaving: bool,
    pub digest_mismatch: bool,
}

/// What accepting a packet changed.
#[derive(Debug, Default)]
pub struct Heard {
    /// The content is new (not a copy already received over another link).
    pub fresh: bool,
    pub link_up: bool,
    pub peer_up: bool,
    pub restarted: bool,
}

impl Peer {
    pub fn new(links: usize, groups: usize) -> Peer {
        Peer {
            state: PeerState::Unknown,
            incarnation: None,
            old_incarnations: Vec::new(),
            last_seq: 0,
            last_heard: None,
            up_since: None,
            warned_late: false,
            links: vec![LinkSeen::default(); links],
            claims: vec![(ClaimState::None, 0); groups],
            leaving: false,
            digest_mismatch: false,
        }
    }

    pub fn alive(&self) -> bool {
        matches!(self.state, PeerState::Up | PeerState::Late)
    }

    pub fn links_up(&self) -> usize {
        self.links.iter().filter(|l| l.up).count()
    }

    /// Forget claims: the peer is dead or has left, so it holds nothing we must respect.
    pub fn clear_claims(&mut self) {
        for c in &mut self.claims {
            c.0 = ClaimState::None;
        }
        self.leaving = false;
    }

    /// Account for an authenticated packet from this peer on `link`.
    pub fn hear(
        &mut self,
        now: Instant,
        link: usize,
        incarnation: u64,
        seq: u64,
    ) -> Result<Heard, Reject> {
        let mut heard = Heard::default();
        match self.incarnation {
            Some(i) if i == incarnation => {}
            _ if self.old_incarnations.contains(&incarnation) => {
                return Err(Reject::OldIncarnation);
            }
            Some(old) => {
                self.old_incarnations.push(old);
                if self.old_incarnations.len() > OLD_INCARNATIONS {
                    self.old_incarnations.remove(0);
                }
                self.incarnation = Some(incarnation);
                self.last_seq = 0;
                for l in &mut self.links {
                    l.last_seq = 0;
                }
                self.clear_claims();
                heard.restarted = true;
            }
            None => self.incarnation = Some(incarnation),
        }
        let l = self.links.get_mut(link).ok_or(Reject::UnknownLink(link))?;
        if seq <= l.last_seq {
            return Err(Reject::Replay(seq));
        }
        l.last_seq = seq;
        let fresh = seq > self.last_seq;
        if self.state == PeerState::Left && !fresh {
            // Another link's copy of the goodbye: the peer stays gone.
            return Ok(heard);
        }
        l.last_heard = Some(now);
        if !l.up {
            l.up = true;
            heard.link_up = true;
        }
        self.last_heard = Some(now);
        match self.state {
            PeerState::Up => {}
            PeerState::Late => {
                self.state = PeerState::Up;
                self.warned_late = false;
            }
            PeerState::Unknown | PeerState::Dead | PeerState::Left => {
                self.state = PeerState::Up;
                self.up_since = Some(now);
                self.warned_late = false;
                heard.peer_up = true;
            }
        }
        if fresh {
            self.last_seq = seq;
            heard.fresh = true;
        }
        Ok(heard)
    }

    /// Move every "last heard" forward by `gap`: this node was not running, so the
    /// silence is ours, not the peer's.
    pub fn forgive(&mut self, gap: Duration) {
        if let Some(t) = self.last_heard.as_mut() {
            *t += gap;
        }
        for l in &mut self.links {
            if let Some(t) = l.last_heard.as_mut() {
                *t += gap;
            }
        }
    }
}
