//! Split-brain defences in the core: ping nodes, quorum, and the record of a healed
//! partition.
//!
//! - **Ping nodes** (`[failover] ping`). The daemon sends ICMP echo to every ping
//!   node on the keepalive schedule and reports how many answered with
//!   [`Cluster::ping_count`]. A drop counts only once it has lasted `ping_dampen`
//!   (one lost echo moves nothing); a rise counts at once. The count that counts is
//!   advertised in every heartbeat, and every node applies the same rule to the
//!   counts it hears: a node is *ping-eligible* when it reaches at least one ping node
//!   and no live node reaches more. A node that is not starts no group; one that
//!   reaches none stops its groups (it is cut off: Pacemaker's `pingd` rule bans
//!   resources from such a node the same way); one that reaches some, but fewer than
//!   an eligible live peer, hands its groups to that peer.
//! - **Quorum**, with three or more configured nodes: a node that hears fewer than a
//!   majority of them (itself included) starts no group, and stops those it holds
//!   (`no_quorum = "stop"`) or keeps them (`"freeze"`). Two-node clusters have no
//!   quorum rule: a lone survivor must be able to take over.
//! - **Heal.** When two holders of a group meet, the ownership rule keeps exactly one
//!   (higher generation, then rank); both record a [`Event::SplitBrain`] with both
//!   sides' view, and the keeper re-announces every address of the group
//!   ([`Action::Announce`]) at once and again once the other side has released it.

use std::time::Instant;

use crate::config::NoQuorum;

use super::ownership::Other;
use super::{Action, Cluster, Event, GroupId, NodeId};

/// This node's ping count, dampened.
#[derive(Debug, Clone, Default)]
pub struct Ping {
    /// The count that counts (advertised); `None` until the first report.
    pub effective: Option<u8>,
    /// The latest report.
    pub raw: u8,
    /// Since when the reports have been below `effective`.
    pub lower_since: Option<Instant>,
}

impl Cluster {
    /// The daemon's report of a round of echoes: `reached` ping nodes answered.
    pub fn ping_count(&mut self, now: Instant, reached: usize) {
        self.note_input(now);
        let raw = u8::try_from(reached).unwrap_or(u8::MAX);
        self.ping.raw = raw;
        let changed = match self.ping.effective {
            Some(e) if raw < e => {
                let since = *self.ping.lower_since.get_or_insert(now);
                self.settle_ping(now, since)
            }
            e => {
                self.ping.lower_since = None;
                self.ping.effective = Some(raw);
                e != Some(raw)
            }
        };
        if changed {
            self.ping_changed(now);
        }
        self.sync_timers();
    }

    /// Apply a drop that has lasted the dampening time; whether the count changed.
    fn settle_ping(&mut self, now: Instant, since: Instant) -> bool {
        let dampen = self.config.failover.ping_dampen.get();
        if now.saturating_duration_since(since) < dampen {
            return false;
        }
        self.ping.lower_since = None;
        let changed = self.ping.effective != Some(self.ping.raw);
        self.ping.effective = Some(self.ping.raw);
        changed
    }

    fn ping_changed(&mut self, now: Instant) {
        self.event(Event::PingCount {
            reached: self.ping.effective.unwrap_or(0),
            configured: self.config.failover.ping.len(),
        });
        // Peers act on the new count at once, not a keepalive later.
        self.send_heartbeat();
        self.evaluate(now);
    }

    /// From `handle_timeout`: a drop whose dampening time has passed.
    pub(super) fn ping_timeout(&mut self, now: Instant) {
        if let Some(since) = self.ping.lower_since {
            if self.settle_ping(now, since) {
                self.ping_changed(now);
            }
        }
    }

    /// When a pending drop of the ping count would count.
    pub(super) fn ping_deadline(&self) -> Option<Instant> {
        self.ping
            .lower_since
            .map(|t| t + self.config.failover.ping_dampen.get())
    }

    fn ping_on(&self) -> bool {
        !self.config.failover.ping.is_empty()
    }

    /// The ping count of node `i` as this node knows it (its own, or the one a live
    /// peer advertises).
    pub(super) fn ping_of(&self, i: usize) -> Option<u8> {
        if i == self.local.0 {
            self.ping.effective
        } else if self.peers[i].alive() {
            self.peers[i].ping
        } else {
            None
        }
    }

    /// The most ping nodes any live node reaches.
    fn best_ping(&self) -> Option<u8> {
        (0..self.peers.len()).filter_map(|i| self.ping_of(i)).max()
    }

    /// Whether node `i` may take a group as far as ping nodes go. A count not known
    /// yet (this node's before the first round; a peer with this configuration that
    /// has not measured yet) says no; a peer running another configuration that
    /// advertises none is not judged.
    pub(super) fn ping_eligible(&self, i: usize) -> bool {
        if !self.ping_on() {
            return true;
        }
        match self.ping_of(i) {
            None => i != self.local.0 && self.peers[i].digest_mismatch,
            Some(c) => c > 0 && self.best_ping().is_none_or(|b| c >= b),
        }
    }

    /// Nodes heard (this one included) and configured.
    pub(super) fn quorum(&self) -> (usize, usize) {
        let heard = 1
            + (0..self.peers.len())
                .filter(|&i| i != self.local.0 && self.peers[i].alive())
                .count();
        (heard, self.config.nodes.len())
    }

    /// Whether this node's partition has quorum (always, under three nodes).
    pub(super) fn quorate(&self) -> bool {
        let (heard, n) = self.quorum();
        n < 3 || 2 * heard > n
    }

    /// Report a change of quorum (once ready: before, no peer is known yet).
    pub(super) fn note_quorum(&mut self) {
        if !self.ready {
            return;
        }
        let q = self.quorate();
        if q != self.was_quorate {
            self.was_quorate = q;
            let (heard, nodes) = self.quorum();
            self.event(Event::Quorum {
                quorate: q,
                heard,
                nodes,
            });
        }
    }

    /// May this node start a group, as far as the defences go?
    pub(super) fn defences_allow_start(&self) -> bool {
        self.quorate() && self.ping_eligible(self.local.0)
    }

    /// Why a group running here must be stopped by a defence, if so.
    pub(super) fn defence_release(&self, others: &[Other]) -> Option<String> {
        if !self.ready {
            return None;
        }
        if !self.quorate() && self.config.failover.no_quorum == NoQuorum::Stop {
            let (heard, n) = self.quorum();
            return Some(format!(
                "no quorum: this node hears {heard} of {n} nodes (itself included), no majority"
            ));
        }
        if !self.ping_on() {
            return None;
        }
        let k = self.config.failover.ping.len();
        let mine = self.ping.effective?;
        if mine == 0 {
            return Some(format!("no ping node reachable (0 of {k})"));
        }
        let better = others
            .iter()
            .find(|o| o.alive && o.eligible && self.ping_of(o.node.0).is_some_and(|c| c > mine))?;
        Some(format!(
            "handed over to {}: it reaches {} of {k} ping nodes, this node {mine}",
            self.config.nodes[better.node.0].name,
            self.ping_of(better.node.0).unwrap_or(0)
        ))
    }

    /// Two holders of `g` met: record it with both sides' view. `keeper` keeps it.
    pub(super) fn split_brain(&mut self, g: usize, peer: NodeId, keeper: NodeId) {
        let local = self.local;
        let name = |i: NodeId| self.config.nodes[i.0].name.clone();
        let (here, there) = (self.groups[g].generation, self.peers[peer.0].claims[g].1);
        let why = if here != there {
            "the higher takeover generation".to_string()
        } else {
            "the same generation, the better rank".to_string()
        };
        let view = format!(
            "split brain healed: {} held it with generation {here}, {} with generation {there}; {} keeps it ({why})",
            name(local),
            name(peer),
            name(keeper)
        );
        self.event(Event::SplitBrain {
            group: GroupId(g),
            peer,
            local_generation: here,
            peer_generation: there,
            kept: keeper == local,
            view,
        });
        if keeper == local {
            self.groups[g].announce_after = Some(peer);
            self.actions.push_back(Action::Announce(GroupId(g)));
        }
    }

    /// A peer came up (or back after a partition) while this node runs groups: it may
    /// have run them meanwhile and already released them (it heard this node first),
    /// leaving no conflict to see here, while neighbours still point at its MAC. So
    /// every running group's addresses are announced again, except those a conflict
    /// just announced.
    pub(super) fn announce_to_returning_peer(&mut self) {
        for g in 0..self.groups.len() {
            let l = &self.groups[g];
            if l.state == super::LocalGroupState::Running && l.announce_after.is_none() {
                self.actions.push_back(Action::Announce(GroupId(g)));
            }
        }
    }

    /// The keeper of a healed split brain announces again once the other side has
    /// released the group (its addresses are gone there, so nothing answers for
    /// them but this node).
    pub(super) fn announce_after_release(&mut self, g: usize) {
        let Some(peer) = self.groups[g].announce_after else {
            return;
        };
        let p = &self.peers[peer.0];
        if p.alive() && p.claims[g].0.holds() {
            return;
        }
        self.groups[g].announce_after = None;
        if self.groups[g].state == super::LocalGroupState::Running {
            self.actions.push_back(Action::Announce(GroupId(g)));
        }
    }
}
