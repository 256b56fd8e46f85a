//! Who should hold a group: a pure decision over one node's view of the cluster.
//!
//! Every node evaluates the same rules over the heartbeats it has heard, so nodes
//! that hear each other reach the same answer without a coordinator:
//!
//! - **Rank.** Nodes are ranked per group: the preferred node first, then the others
//!   in config order, wrapping around. Rank breaks every tie.
//! - **Start.** A node starts a group only when no live node claims it (a dead node's
//!   claim has expired after deadtime; a released claim is gone) and it is the best
//!   ranked *eligible* live node (not failed here recently, not shutting down).
//! - **Conflict.** If two live nodes both hold a group (a healed partition, a
//!   thawed owner), the one with the higher takeover generation keeps it — the most
//!   recent takeover, whose gratuitous ARPs are freshest — and equal generations go
//!   to the better rank. Exactly one of them releases. A node whose stop failed
//!   (blocked) cannot release, so it always wins.
//! - **Different configurations.** Ranks come from the config, so two nodes whose
//!   cluster.toml differ (digests differ) may rank each other differently: each would
//!   wait for the other (a group running nowhere) or each would win a tie (a group
//!   running on both). Between them, the name that sorts first stands in for the
//!   rank, which both compute alike: a node defers to a live eligible peer with a
//!   different file only if that peer's name sorts first and its heartbeat lists the
//!   group (a peer whose file lacks the group never starts it), and ties go to the
//!   name that sorts first. So two nodes never start one group at once, and a group
//!   only one of them knows is started by that one.
//! - **Failback.** With `auto_failback`, the holder releases to the preferred node
//!   once that node has been up for `hold_down` and is eligible (and runs the same
//!   configuration).

use std::time::Instant;

use crate::proto::wire::ClaimState;

use super::NodeId;

/// Rank of `node` for a group preferring `preferred` among `n` nodes (0 is best).
pub fn rank(preferred: NodeId, n: usize, node: NodeId) -> usize {
    (node.0 + n - preferred.0) % n
}

/// One node's knowledge of another node, for one group.
#[derive(Debug, Clone, Copy)]
pub struct Other {
    pub node: NodeId,
    /// Up or late (not dead, unknown or left).
    pub alive: bool,
    /// May be asked to run the group (alive, not leaving, not failed with it).
    pub eligible: bool,
    pub claim: ClaimState,
    pub generation: u64,
    /// When it last came up, for the failback hold-down.
    pub up_since: Option<Instant>,
    /// It runs the same configuration as this node (same digest).
    pub same_config: bool,
    /// Its name compared with this node's (for ties between different configs).
    pub name_cmp: std::cmp::Ordering,
    /// Its latest heartbeat lists the group (its cluster.toml has it).
    pub knows_group: bool,
}

pub struct View<'a> {
    pub local: NodeId,
    pub nodes: usize,
    pub preferred: NodeId,
    pub auto_failback: bool,
    pub hold_down: std::time::Duration,
    pub now: Instant,
    /// Whether this node may take the group (not failed here, not shutting down).
    pub local_eligible: bool,
    pub local_generation: u64,
    pub others: &'a [Other],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Keep,
    Start,
    /// Release because `peer` wins a conflict.
    YieldTo(NodeId),
    /// Release so the preferred node can take the group back.
    FailBack(NodeId),
}

/// Whether this node, holding the group, beats `o`, which holds it too.
pub fn local_wins(view: &View, o: &Other) -> bool {
    if view.local_generation != o.generation {
        return view.local_generation > o.generation;
    }
    if o.same_config {
        rank(view.preferred, view.nodes, view.local) < rank(view.preferred, view.nodes, o.node)
    } else {
        o.name_cmp == std::cmp::Ordering::Greater
    }
}

/// Decision for a node that holds the group (running, started).
pub fn decide_holder(view: &View) -> Decision {
    for o in view.others.iter().filter(|o| o.alive) {
        // A blocked node cannot release, so the only way back to one copy is ours.
        let yield_to = match o.claim {
            ClaimState::Blocked => true,
            ClaimState::Starting | ClaimState::Running => !local_wins(view, o),
            _ => false,
        };
        if yield_to {
            return Decision::YieldTo(o.node);
        }
    }
    if view.auto_failback && view.local != view.preferred {
        if let Some(p) = view.others.iter().find(|o| o.node == view.preferred) {
            let settled = p
                .up_since
                .is_some_and(|t| view.now.saturating_duration_since(t) >= view.hold_down);
            // Not to a peer with another file: it may rank otherwise (crossed preferred
            // nodes would hand the group back and forth).
            if p.alive && p.eligible && p.same_config && settled && !p.claim.holds() {
                return Decision::FailBack(p.node);
            }
        }
    }
    Decision::Keep
}

/// Decision for a node that does not hold the group.
pub fn decide_idle(view: &View) -> Decision {
    if !view.local_eligible {
        return Decision::Keep;
    }
    if view.others.iter().any(|o| o.alive && o.claim.holds()) {
        return Decision::Keep;
    }
    let my_rank = rank(view.preferred, view.nodes, view.local);
    let better = view.others.iter().any(|o| {
        o.alive
            && o.eligible
            && if o.same_config {
                rank(view.preferred, view.nodes, o.node) < my_rank
            } else {
                o.knows_group && o.name_cmp == std::cmp::Ordering::Less
            }
    });
    if better {
        Decision::Keep
    } else {
        Decision::Start
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a base Instant for the tests' fake clock
mod tests {
    use super::*;
    use std::time::Duration;

    fn other(node: usize, claim: ClaimState, generation: u64) -> Other {
        Other {
            node: NodeId(node),
            alive: true,
            eligible: true,
            claim,
            generation,
            up_since: None,
            same_config: true,
            name_cmp: node.cmp(&0),
            knows_group: true,
        }
    }

    fn view<'a>(local: usize, others: &'a [Other], now: Instant) -> View<'a> {
        View {
            local: NodeId(local),
            nodes: 3,
            preferred: NodeId(0),
            auto_failback: false,
            hold_down: Duration::from_secs(30),
            now,
            local_eligible: true,
            local_generation: 1,
            others,
        }
    }

    #[test]
    fn rank_wraps_from_preferred() {
        assert_eq!(rank(NodeId(1), 3, NodeId(1)), 0);
        assert_eq!(rank(NodeId(1), 3, NodeId(2)), 1);
        assert_eq!(rank(NodeId(1), 3, NodeId(0)), 2);
    }

    #[test]
    fn best_eligible_starts_and_only_it() {
        let now = Instant::now();
        let o = [other(1, ClaimState::None, 0), other(2, ClaimState::None, 0)];
        assert_eq!(decide_idle(&view(0, &o, now)), Decision::Start);
        let o = [other(0, ClaimState::None, 0), other(2, ClaimState::None, 0)];
        assert_eq!(decide_idle(&view(1, &o, now)), Decision::Keep);
        let mut o0 = other(0, ClaimState::Failed, 0);
        o0.eligible = false;
        let o = [o0, other(2, ClaimState::None, 0)];
        assert_eq!(decide_idle(&view(1, &o, now)), Decision::Start);
        let o = [
            other(0, ClaimState::Stopping, 1),
            other(2, ClaimState::None, 0),
        ];
        assert_eq!(
            decide_idle(&view(1, &o, now)),
            Decision::Keep,
            "wait for the release"
        );
    }

    #[test]
    fn conflicts_resolve_one_way() {
        let now = Instant::now();
        // Same generation: rank decides.
        let o = [other(1, ClaimState::Running, 1)];
        assert_eq!(decide_holder(&view(0, &o, now)), Decision::Keep);
        let o = [other(0, ClaimState::Running, 1)];
        assert_eq!(
            decide_holder(&view(1, &o, now)),
            Decision::YieldTo(NodeId(0))
        );
        // Newer takeover wins even against the preferred node.
        let o = [other(1, ClaimState::Running, 2)];
        assert_eq!(
            decide_holder(&view(0, &o, now)),
            Decision::YieldTo(NodeId(1))
        );
    }

    #[test]
    fn different_configs_neither_wait_for_nor_tie_with_each_other() {
        let now = Instant::now();
        // Another config: the name that sorts first ranks first. n1 waits for n0 when
        // n0's file has the group, and starts it when n0's lacks it.
        let mut o0 = other(0, ClaimState::None, 0);
        o0.same_config = false;
        o0.name_cmp = std::cmp::Ordering::Less;
        assert_eq!(decide_idle(&view(1, &[o0], now)), Decision::Keep);
        o0.knows_group = false;
        assert_eq!(decide_idle(&view(1, &[o0], now)), Decision::Start);
        // n0 does not wait for n1, even where n1 is preferred (n0's file says it).
        let mut o1 = other(1, ClaimState::None, 0);
        o1.same_config = false;
        o1.name_cmp = std::cmp::Ordering::Greater;
        let others = [o1];
        let mut v = view(0, &others, now);
        v.preferred = NodeId(1);
        assert_eq!(decide_idle(&v), Decision::Start);
        // Both hold it with one generation: the name that sorts first keeps it, as
        // computed on either side.
        let mut o0 = other(0, ClaimState::Running, 1);
        o0.same_config = false;
        o0.name_cmp = std::cmp::Ordering::Less;
        assert_eq!(
            decide_holder(&view(1, &[o0], now)),
            Decision::YieldTo(NodeId(0))
        );
        let mut o1 = other(1, ClaimState::Running, 1);
        o1.same_config = false;
        o1.name_cmp = std::cmp::Ordering::Greater;
        let others = [o1];
        let mut v = view(0, &others, now);
        v.preferred = NodeId(1); // n0's view of the ranks would make it lose
        assert_eq!(decide_holder(&v), Decision::Keep);
    }

    #[test]
    fn failback_waits_for_hold_down() {
        let t0 = Instant::now();
        let mut p = other(0, ClaimState::None, 1);
        p.up_since = Some(t0);
        let o = [p];
        let mut v = view(1, &o, t0 + Duration::from_secs(10));
        v.auto_failback = true;
        assert_eq!(decide_holder(&v), Decision::Keep);
        v.now = t0 + Duration::from_secs(30);
        assert_eq!(decide_holder(&v), Decision::FailBack(NodeId(0)));
        v.auto_failback = false;
        assert_eq!(decide_holder(&v), Decision::Keep);
    }
}
