//! Fencing: making sure a node is off before its groups run elsewhere.
//!
//! A node with `[[node]] fence` configured is *owed* a fence when this node cannot
//! know what it runs:
//!
//! - it was declared dead (silent for deadtime, or never heard within initdead at
//!   start-up: it may be running groups in a partition), or
//! - a stop failed there (its group is blocked: resources may still be up) and this
//!   node would take the group (Pacemaker's rule for failed stops).
//!
//! The fence is only carried out by the node that is about to take a group (the
//! best-ranked eligible node, decided as for a start), so two survivors never both
//! fence: before [`Action::StartGroup`] of any group, every owed peer is fenced
//! ([`Action::FenceNode`]) and the start waits for the result, fed back with
//! [`Cluster::handle_fence_result`]. The core times the fence out at the node's
//! `fence_timeout` ([`Action::CancelFence`]). Only success lets the group start; a
//! failure or timeout leaves it stopped, says why in status and the journal, and the
//! fence is tried again after deadtime, or confirmed by hand with `hbd fence-ack`.
//!
//! A fenced node is off: its current incarnation is ignored from then on (packets
//! still arriving from it are refused with [`Reject::Fenced`]); it is believed again
//! only as a new incarnation (it rebooted and started hbd again). A peer heard again
//! before a fence started is no longer owed one (it tells us its claims); a fence
//! under way is completed, as Pacemaker does, and its success counts even if the peer
//! was heard meanwhile (the heartbeat may have been its last one before power-off).
//!
//! [`Action::FenceNode`]: super::Action::FenceNode
//! [`Action::CancelFence`]: super::Action::CancelFence
//! [`Reject::Fenced`]: super::Reject::Fenced

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::proto::wire::ClaimState;

use super::command::ago;
use super::ownership::{self, Decision, Other, View};
use super::{Action, Cluster, CommandError, CommandOutcome, Event, NodeId, PeerState, Timer};

/// The result of a fence, fed back by the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceResult {
    /// The node is off (unit job `done`, command exited 0).
    Fenced,
    FenceFailed {
        reason: String,
    },
}

/// Why a node is owed a fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    Dead,
    /// A stop of this group failed there.
    Blocked(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    /// Nothing owed.
    Clean,
    Owed {
        since: Instant,
        why: Why,
        /// The node's fence `delay` after it was declared dead.
        not_before: Instant,
    },
    Pending {
        since: Instant,
        why: Why,
        attempt: u64,
        started: Instant,
        deadline: Instant,
    },
    Failed {
        since: Instant,
        why: Why,
        reason: String,
        retry_at: Instant,
    },
    /// Off, by a fence or an operator's word; `incarnation` (the one it had) and
    /// earlier ones are ignored.
    Fenced {
        at: Instant,
        incarnation: Option<u64>,
        by_ack: bool,
    },
}

/// Per-node fencing state (the local node's slot stays clean).
#[derive(Debug, Clone)]
pub(super) struct Fencing {
    pub nodes: Vec<State>,
    pub attempts: u64,
    /// Per group: the peer whose fence holds back its start here.
    pub waiting: Vec<Option<usize>>,
}

impl Fencing {
    pub fn new(nodes: usize, groups: usize) -> Fencing {
        Fencing {
            nodes: vec![State::Clean; nodes],
            attempts: 0,
            waiting: vec![None; groups],
        }
    }
}

/// Fencing of one node, for status: `state` is `owed`, `pending`, `failed` or
/// `fenced`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceStatus {
    pub state: String,
    /// Why it is (was) owed: `dead`, or `stop of GROUP failed there`.
    pub why: Option<String>,
    /// Milliseconds since it was first owed (owed, pending, failed) or fenced.
    pub since_ms: u64,
    /// Pending: milliseconds since this attempt started.
    pub attempt_ms: Option<u64>,
    /// Failed: why the last attempt failed, and milliseconds until the next one.
    pub reason: Option<String>,
    pub retry_in_ms: Option<u64>,
    /// Fenced: confirmed by hand (`hbd fence-ack`) rather than by the fence.
    pub by_ack: bool,
}

impl Cluster {
    fn why_text(&self, why: Why) -> String {
        match why {
            Why::Dead => "dead".into(),
            Why::Blocked(g) => format!(
                "stop of {} failed there",
                self.config.groups.get(g).map_or("?", |c| c.name.as_str())
            ),
        }
    }

    /// Refuse packets of a fenced incarnation (from `handle_packet` before anything
    /// else is taken from them).
    pub(super) fn fence_refuses(&self, peer: usize, incarnation: u64) -> bool {
        match self.fence.nodes.get(peer) {
            Some(State::Fenced {
                incarnation: Some(i),
                ..
            }) => incarnation <= *i,
            _ => false,
        }
    }

    /// Bring the owed set up to date with membership (after every input that may
    /// change it): dead peers with fencing become owed; peers heard again, or
    /// unblocked, are clean again unless a fence is under way; a fenced node that is
    /// believed again (a new incarnation) is clean.
    pub(super) fn fence_refresh(&mut self, now: Instant) {
        for i in 0..self.peers.len() {
            if i == self.local.0 {
                continue;
            }
            let p = &self.peers[i];
            let alive = p.alive();
            let configured = self.config.fenced(i);
            let st = &mut self.fence.nodes[i];
            match st {
                State::Clean if configured && p.state == PeerState::Dead => {
                    *st = State::Owed {
                        since: now,
                        why: Why::Dead,
                        not_before: now + self.config.fence_delay(i),
                    };
                }
                State::Owed { why, .. } | State::Failed { why, .. } => {
                    let gone = match *why {
                        Why::Dead => alive || p.state == PeerState::Left,
                        Why::Blocked(g) => !alive || p.claims[g].0 != ClaimState::Blocked,
                    };
                    // A blocked peer that dies is owed a fence as a dead one.
                    let dead_now = matches!(*why, Why::Blocked(_)) && p.state == PeerState::Dead;
                    if dead_now {
                        *why = Why::Dead;
                    } else if gone || !configured {
                        *st = State::Clean;
                    }
                }
                State::Fenced { .. } if alive => *st = State::Clean,
                _ => {}
            }
        }
    }

    /// Owe `peer` a fence because a stop of `g` failed there (escalation).
    fn fence_owe_blocked(&mut self, now: Instant, peer: usize, g: usize) {
        if self.fence.nodes[peer] == State::Clean {
            self.fence.nodes[peer] = State::Owed {
                since: now,
                why: Why::Blocked(g),
                not_before: now,
            };
        }
    }

    /// Before starting `g` here: fence every owed peer that could hold it. True when
    /// the start must wait (a fence is under way or failed); the group's reason then
    /// says for whom.
    pub(super) fn fence_gate(&mut self, now: Instant, g: usize) -> bool {
        let mut wait = None;
        for i in 0..self.peers.len() {
            if i == self.local.0 || !self.config.fenced(i) {
                continue;
            }
            let relevant = |why: &Why| match why {
                Why::Dead => true,
                Why::Blocked(b) => *b == g,
            };
            match self.fence.nodes[i].clone() {
                State::Owed {
                    why, not_before, ..
                } if relevant(&why) && not_before > now => {
                    wait.get_or_insert(i);
                }
                State::Owed { since, why, .. } if relevant(&why) => {
                    self.fence.attempts += 1;
                    let attempt = self.fence.attempts;
                    self.fence.nodes[i] = State::Pending {
                        since,
                        why,
                        attempt,
                        started: now,
                        deadline: now + self.config.fence_timeout(i),
                    };
                    self.event(Event::FenceStarted {
                        peer: NodeId(i),
                        reason: self.why_text(why),
                    });
                    self.actions.push_back(Action::FenceNode {
                        node: NodeId(i),
                        attempt,
                    });
                    wait.get_or_insert(i);
                }
                State::Pending { why, .. } | State::Failed { why, .. } if relevant(&why) => {
                    wait.get_or_insert(i);
                }
                _ => {}
            }
        }
        // A holder fencing a blocked rival keeps its own state and reason.
        let idle = self.groups[g].state == super::LocalGroupState::Stopped;
        if let Some(i) = wait.filter(|_| idle) {
            let reason = match &self.fence.nodes[i] {
                State::Failed { reason, .. } => format!(
                    "not started: fencing {} failed ({reason}); retried after deadtime, or run `hbd fence-ack {}` once it is off",
                    self.name_of(i),
                    self.name_of(i)
                ),
                State::Owed { not_before, .. } if *not_before > now => format!(
                    "waiting out the fence delay of {} ({}) before fencing it",
                    self.name_of(i),
                    crate::config::HumanDuration::from_millis(
                        u64::try_from(self.config.fence_delay(i).as_millis()).unwrap_or(u64::MAX)
                    )
                ),
                _ => format!(
                    "waiting for {} to be fenced before starting",
                    self.name_of(i)
                ),
            };
            self.ops.reason[g] = Some(reason);
        }
        if idle {
            self.fence.waiting[g] = wait;
        }
        wait.is_some()
    }

    /// A live peer blocked with `g` that this node should fence: it has fencing, and
    /// without it this node would start the group (it is the next-best node).
    pub(super) fn fence_escalation(&self, view: &View) -> Option<usize> {
        let target = view.others.iter().find(|o| {
            o.alive
                && o.claim == ClaimState::Blocked
                && self.config.fenced(o.node.0)
                && !self.ops.peer_maintenance[o.node.0]
        })?;
        let others: Vec<Other> = view
            .others
            .iter()
            .map(|o| {
                let mut o = *o;
                if o.node == target.node {
                    o.alive = false;
                    o.eligible = false;
                    o.claim = ClaimState::None;
                }
                o
            })
            .collect();
        let without = View {
            others: &others,
            ..*view
        };
        (ownership::decide_idle(&without) == Decision::Start).then_some(target.node.0)
    }

    /// The idle node that would take `g` if `peer` (blocked) were gone owes it a fence
    /// and starts it; true when something was sent.
    pub(super) fn fence_escalate(&mut self, now: Instant, g: usize, peer: usize) -> bool {
        self.fence_owe_blocked(now, peer, g);
        self.fence_gate(now, g);
        false
    }

    /// A holder that meets a blocked peer with fencing fences it instead of yielding.
    pub(super) fn fence_instead_of_yield(&mut self, now: Instant, g: usize, peer: usize) -> bool {
        if !self.config.fenced(peer)
            || self.peers[peer].claims[g].0 != ClaimState::Blocked
            || self.ops.peer_maintenance[peer]
        {
            return false;
        }
        self.fence_owe_blocked(now, peer, g);
        if matches!(self.fence.nodes[peer], State::Clean) {
            return false;
        }
        self.fence_gate(now, g);
        true
    }

    pub(super) fn handle_fence_result_inner(
        &mut self,
        now: Instant,
        node: NodeId,
        attempt: u64,
        result: FenceResult,
    ) {
        self.note_input(now);
        let i = node.0;
        let Some(State::Pending {
            since,
            why,
            attempt: a,
            ..
        }) = self.fence.nodes.get(i).cloned()
        else {
            return;
        };
        if a != attempt {
            return;
        }
        match result {
            FenceResult::Fenced => self.mark_fenced(now, i, false),
            FenceResult::FenceFailed { reason } => self.fence_failed(now, i, since, why, reason),
        }
        self.evaluate(now);
    }

    fn fence_failed(&mut self, now: Instant, i: usize, since: Instant, why: Why, reason: String) {
        let retry = self.config.timing.deadtime.get();
        self.fence.nodes[i] = State::Failed {
            since,
            why,
            reason: reason.clone(),
            retry_at: now + retry,
        };
        self.event(Event::FenceFailed {
            peer: NodeId(i),
            reason,
            retry_in: retry,
        });
        for g in 0..self.groups.len() {
            if self.fence.waiting[g] == Some(i) {
                self.fence_gate(now, g);
            }
        }
    }

    /// `i` is off: forget what it claimed and ignore its current incarnation.
    fn mark_fenced(&mut self, now: Instant, i: usize, by_ack: bool) {
        let p = &mut self.peers[i];
        let incarnation = p.incarnation.max(p.candidate);
        let was_alive = p.alive();
        p.state = PeerState::Dead;
        p.clear_claims();
        p.twin = None;
        p.previous = None;
        p.failback_at = None;
        for l in &mut p.links {
            l.up = false;
        }
        self.fence.nodes[i] = State::Fenced {
            at: now,
            incarnation,
            by_ack,
        };
        self.event(Event::Fenced {
            peer: NodeId(i),
            by_ack,
        });
        if was_alive {
            self.event(Event::PeerDead { peer: NodeId(i) });
        }
    }

    /// Fence timers: a pending fence times out, a failed one is tried again.
    pub(super) fn fence_timeouts(&mut self, now: Instant) {
        for i in 0..self.fence.nodes.len() {
            match self.fence.nodes[i].clone() {
                State::Pending {
                    since,
                    why,
                    attempt,
                    deadline,
                    started,
                } if now >= deadline => {
                    self.actions.push_back(Action::CancelFence {
                        node: NodeId(i),
                        attempt,
                    });
                    let took = now.saturating_duration_since(started);
                    let reason = format!("timed out after {}s", took.as_secs());
                    self.fence_failed(now, i, since, why, reason);
                }
                State::Failed {
                    since,
                    why,
                    retry_at,
                    ..
                } if now >= retry_at => {
                    self.fence.nodes[i] = State::Owed {
                        since,
                        why,
                        not_before: now,
                    };
                }
                _ => {}
            }
        }
    }

    pub(super) fn fence_timers(&self, t: &mut Vec<(Timer, Instant)>) {
        for (i, s) in self.fence.nodes.iter().enumerate() {
            match s {
                // Only while ahead: once reached, the next evaluation fences (or nothing
                // waits for it), so a reached deadline never stays in the table.
                State::Owed { not_before, .. } if *not_before > self.last_input => {
                    t.push((Timer::Fence(NodeId(i)), *not_before))
                }
                State::Pending { deadline, .. } => t.push((Timer::Fence(NodeId(i)), *deadline)),
                State::Failed { retry_at, .. } => t.push((Timer::Fence(NodeId(i)), *retry_at)),
                _ => {}
            }
        }
    }

    /// `hbd fence-ack NODE`: the operator confirms `node` is off.
    pub(super) fn fence_ack(
        &mut self,
        now: Instant,
        node: &str,
    ) -> Result<CommandOutcome, CommandError> {
        let i = self
            .config
            .node_index(node)
            .ok_or_else(|| CommandError::UnknownNode(node.to_string()))?;
        let name = self.name_of(i).to_string();
        if i == self.local.0 {
            return Err(CommandError::FenceAckSelf { node: name });
        }
        match self.fence.nodes[i].clone() {
            State::Owed { .. } | State::Failed { .. } => {}
            State::Pending { attempt, .. } => self.actions.push_back(Action::CancelFence {
                node: NodeId(i),
                attempt,
            }),
            State::Clean | State::Fenced { .. } => {
                return Err(CommandError::NoFenceOwed { node: name });
            }
        }
        self.mark_fenced(now, i, true);
        let waiting: Vec<String> = (0..self.groups.len())
            .filter(|&g| self.fence.waiting[g] == Some(i))
            .map(|g| self.config.groups[g].name.clone())
            .collect();
        let message = if waiting.is_empty() {
            format!("{name} confirmed off: its groups may be taken over")
        } else {
            format!(
                "{name} confirmed off: starting {} as it was waiting for the fence",
                waiting.join(", ")
            )
        };
        Ok(CommandOutcome {
            message,
            wait: Vec::new(),
        })
    }

    /// Why a group of `i`, fenced, is taken over (for the start reason).
    pub(super) fn fenced_reason(&self, i: usize) -> Option<String> {
        match self.fence.nodes.get(i)? {
            State::Fenced { by_ack: false, .. } => {
                Some(format!("taken over: {} was fenced", self.name_of(i)))
            }
            State::Fenced { by_ack: true, .. } => Some(format!(
                "taken over: {} confirmed off by the operator (fence-ack)",
                self.name_of(i)
            )),
            _ => None,
        }
    }

    fn name_of(&self, i: usize) -> &str {
        self.config.nodes.get(i).map_or("?", |n| n.name.as_str())
    }

    /// Fencing state of node `i` for status; None when nothing is owed or done.
    pub(super) fn fence_status(&self, i: usize, now: Instant) -> Option<FenceStatus> {
        let mut s = FenceStatus {
            state: String::new(),
            why: None,
            since_ms: 0,
            attempt_ms: None,
            reason: None,
            retry_in_ms: None,
            by_ack: false,
        };
        match self.fence.nodes.get(i)? {
            State::Clean => return None,
            State::Owed { since, why, .. } => {
                s.state = "owed".into();
                s.why = Some(self.why_text(*why));
                s.since_ms = ago(now, *since);
            }
            State::Pending {
                since,
                why,
                started,
                ..
            } => {
                s.state = "pending".into();
                s.why = Some(self.why_text(*why));
                s.since_ms = ago(now, *since);
                s.attempt_ms = Some(ago(now, *started));
            }
            State::Failed {
                since,
                why,
                reason,
                retry_at,
            } => {
                s.state = "failed".into();
                s.why = Some(self.why_text(*why));
                s.since_ms = ago(now, *since);
                s.reason = Some(reason.clone());
                s.retry_in_ms = Some(ago(*retry_at, now));
            }
            State::Fenced { at, by_ack, .. } => {
                s.state = "fenced".into();
                s.since_ms = ago(now, *at);
                s.by_ack = *by_ack;
            }
        }
        Some(s)
    }

    /// The peer whose fence holds back a start of `g` here.
    pub(super) fn fence_waiting(&self, g: usize) -> Option<String> {
        self.fence
            .waiting
            .get(g)
            .copied()
            .flatten()
            .map(|i| self.name_of(i).to_string())
    }

    /// Feed back the result of [`Action::FenceNode`] `attempt` for `node`; results of
    /// other attempts (cancelled, timed out) are ignored.
    pub fn handle_fence_result(
        &mut self,
        now: Instant,
        node: NodeId,
        attempt: u64,
        result: FenceResult,
    ) {
        self.handle_fence_result_inner(now, node, attempt, result);
        self.sync_timers();
    }
}
