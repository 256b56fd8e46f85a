//! Per-peer liveness: which peers are heard, over which links, and since when.
//!
//! A peer is alive while any link hears it. Each link is tracked on its own so a
//! lost link is reported (and only reported: it never moves a group). Replay
//! protection lives here too, because it is per sender state: a packet is new on a
//! link only if its sequence number is above the last one that link carried, and
//! its content is new only if above the last one any link carried, so the copies
//! of one heartbeat sent over every link are counted once.
//!
//! Incarnations (one per daemon start) only grow: the shell derives them from the
//! wall clock and a persisted floor. A packet of an earlier incarnation is a replay
//! (or, if it proves it is live, a second sender with the peer's name: a clone). A
//! later incarnation is believed only from a packet that acks this node's own current
//! incarnation, which no packet recorded before this node started can do; until then
//! it is only a candidate, acked back so that the real peer proves itself within one
//! heartbeat. So no replay, of any age and from any address, changes the view of a
//! peer.

use std::time::{Duration, Instant};

use crate::proto::wire::ClaimState;

use super::{PeerState, Reject};

/// How many earlier incarnations of a peer are remembered (with the last sequence
/// seen) to tell their replays from a live second sender.
const OLD_INCARNATIONS: usize = 8;

/// A second live sender with a peer's name and an earlier incarnation: a cloned node
/// (a VM copy) or a daemon started twice. Its claims are respected as if the peer
/// made them, so no group it may run is started elsewhere.
#[derive(Debug, Clone)]
pub struct Twin {
    pub last_heard: Instant,
    pub claims: Vec<(ClaimState, u64)>,
}

/// The claims of a peer's incarnation that a new one replaced. Until that earlier
/// incarnation has been silent for deadtime (as long as a dead peer's claims count),
/// its holding claims are respected: the first packet of a new incarnation cannot tell
/// a restart (the earlier daemon is gone) from a clone (it is still running its
/// groups, and its next heartbeat makes it a [`Twin`]).
#[derive(Debug, Clone)]
pub struct Previous {
    pub last_heard: Instant,
    pub claims: Vec<(ClaimState, u64)>,
}

#[derive(Debug, Clone, Default)]
pub struct LinkSeen {
    pub last_heard: Option<Instant>,
    pub last_seq: u64,
    pub up: bool,
}

#[derive(Debug, Clone)]
pub struct Peer {
    pub state: PeerState,
    /// The incarnation believed (confirmed by an ack of ours).
    pub incarnation: Option<u64>,
    /// The highest later incarnation heard but not yet confirmed; acked back.
    pub candidate: Option<u64>,
    /// Earlier incarnations heard while this node ran, with the last sequence seen.
    old_incarnations: Vec<(u64, u64)>,
    pub twin: Option<Twin>,
    /// The replaced incarnation's holding claims (see [`Previous`]).
    pub previous: Option<Previous>,
    /// Highest sequence whose content was processed (any link).
    pub last_seq: u64,
    pub last_heard: Option<Instant>,
    pub up_since: Option<Instant>,
    pub warned_late: bool,
    pub links: Vec<LinkSeen>,
    /// Latest claim per local group index: state and generation.
    pub claims: Vec<(ClaimState, u64)>,
    /// The claims of the peer's latest heartbeat as sent (by name), so that a group
    /// added by a reload here starts from what the peer says of it, not from nothing.
    pub last_claims: Vec<crate::proto::wire::Claim>,
    pub leaving: bool,
    pub digest_mismatch: bool,
    /// The timing the peer announces in its heartbeats (its own cluster.toml), if any.
    pub announced: Option<crate::proto::wire::SenderTiming>,
    /// With auto_failback: when the peer will have been up for the hold-down (until
    /// the timer that reaches it consumes it).
    pub failback_at: Option<Instant>,
    /// How many ping nodes the peer reaches, from its latest heartbeat.
    pub ping: Option<u8>,
}

/// What accepting a packet changed.
#[derive(Debug, Default)]
pub struct Heard {
    /// The content is new (not a copy already received over another link).
    pub fresh: bool,
    pub link_up: bool,
    pub peer_up: bool,
    pub restarted: bool,
    /// A late peer is heard again.
    pub on_time: bool,
    /// The packet came from a live second sender with this peer's name (see [`Twin`]);
    /// nothing else was taken from it.
    pub twin: bool,
}

impl Peer {
    pub fn new(links: usize, groups: usize) -> Peer {
        Peer {
            state: PeerState::Unknown,
            incarnation: None,
            candidate: None,
            old_incarnations: Vec::new(),
            twin: None,
            previous: None,
            last_seq: 0,
            last_heard: None,
            up_since: None,
            warned_late: false,
            links: vec![LinkSeen::default(); links],
            claims: vec![(ClaimState::None, 0); groups],
            last_claims: Vec::new(),
            leaving: false,
            digest_mismatch: false,
            announced: None,
            failback_at: None,
            ping: None,
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
        self.last_claims.clear();
        self.leaving = false;
    }

    /// The incarnation to ack in our heartbeats: the believed one, or a later
    /// candidate so that the peer's next packet can prove it is live.
    pub fn ack(&self) -> Option<u64> {
        self.incarnation.max(self.candidate)
    }

    /// Account for an authenticated packet from this peer on `link`. `proves_fresh`:
    /// the packet acks our own current incarnation, so it was sent after we started.
    pub fn hear(
        &mut self,
        now: Instant,
        link: usize,
        incarnation: u64,
        seq: u64,
        proves_fresh: bool,
    ) -> Result<Heard, Reject> {
        let mut heard = Heard::default();
        if link >= self.links.len() {
            return Err(Reject::UnknownLink(link));
        }
        match self.incarnation {
            Some(i) if i == incarnation => {}
            // An earlier incarnation while the believed one is alive: a replay, unless
            // the packet is live (acks us, sequence beyond any seen): then a twin.
            Some(cur) if incarnation < cur && (self.alive() || !proves_fresh) => {
                if proves_fresh && self.old_advances(incarnation, seq) {
                    heard.twin = true;
                    return Ok(heard);
                }
                return Err(Reject::OldIncarnation);
            }
            // A new incarnation (the peer restarted; or, with the believed one dead, an
            // earlier one after the peer's clock went back): believed only with proof.
            _ if !proves_fresh => {
                if self.incarnation.is_none_or(|cur| incarnation > cur) {
                    self.candidate = self.candidate.max(Some(incarnation));
                }
                return Err(Reject::Unconfirmed);
            }
            Some(old) => {
                if self.alive() && self.claims.iter().any(|c| c.0.holds()) {
                    self.previous = Some(Previous {
                        last_heard: self.last_heard.unwrap_or(now),
                        claims: self.claims.clone(),
                    });
                }
                self.remember_old(old, self.last_seq);
                self.incarnation = Some(incarnation);
                self.candidate = None;
                self.last_seq = 0;
                for l in &mut self.links {
                    l.last_seq = 0;
                }
                self.clear_claims();
                heard.restarted = true;
            }
            None => {
                self.incarnation = Some(incarnation);
                self.candidate = None;
            }
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
                heard.on_time = true;
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

    fn remember_old(&mut self, incarnation: u64, seq: u64) {
        match self
            .old_incarnations
            .iter_mut()
            .find(|(i, _)| *i == incarnation)
        {
            Some(e) => e.1 = e.1.max(seq),
            None => {
                self.old_incarnations.push((incarnation, seq));
                if self.old_incarnations.len() > OLD_INCARNATIONS {
                    // Forget the earliest.
                    if let Some(min) =
                        (0..self.old_incarnations.len()).min_by_key(|&k| self.old_incarnations[k].0)
                    {
                        self.old_incarnations.swap_remove(min);
                    }
                }
            }
        }
    }

    /// Whether `seq` of an earlier `incarnation` is beyond every sequence seen from it
    /// (and record it): a packet never seen before, not a replay of one.
    fn old_advances(&mut self, incarnation: u64, seq: u64) -> bool {
        let seen = self
            .old_incarnations
            .iter()
            .find(|(i, _)| *i == incarnation)
            .map(|e| e.1);
        if seen.is_some_and(|s| seq <= s) {
            return false;
        }
        self.remember_old(incarnation, seq);
        true
    }

    /// Move every "last heard" forward by `gap`: this node was not running, so the
    /// silence is ours, not the peer's.
    pub fn forgive(&mut self, gap: Duration) {
        if let Some(t) = self.last_heard.as_mut() {
            *t += gap;
        }
        if let Some(t) = self.twin.as_mut() {
            t.last_heard += gap;
        }
        if let Some(p) = self.previous.as_mut() {
            p.last_heard += gap;
        }
        for l in &mut self.links {
            if let Some(t) = l.last_heard.as_mut() {
                *t += gap;
            }
        }
    }
}
