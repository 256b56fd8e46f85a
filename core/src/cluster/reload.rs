//! Reloading cluster.toml into a running core: groups and resources may be added,
//! removed and changed without moving the groups that did not change.
//!
//! Group ids are indexes into `config.groups`, so every per-group table (this node's
//! state, each peer's claims and flags, the operator's intent, the history) is
//! rebuilt in the new order, matched by group name: a group removed in the middle
//! shifts no other group's state. The shell does the same with its own tables
//! (operations in flight are matched by name when they report).
//!
//! The rules, all decided here before anything changes (a refusal changes nothing):
//!
//! - **Added group**: starts stopped here and is placed by the normal rule at once,
//!   from what the peers' latest heartbeats say of it (a peer that already runs it,
//!   having reloaded first, keeps it).
//! - **Removed group** not held here: forgotten. Held here (running): *retiring*. The
//!   shell stops it with the old configuration ([`Reloaded::release`]) and reports
//!   with [`Cluster::retired`]; until then every heartbeat still claims it (stopping,
//!   or blocked if the stop failed), so a peer that still has it in its file does not
//!   start a second copy meanwhile. A blocked retiring group stays claimed until
//!   `hbd unblock NAME` (or a restart of hbd).
//! - **Changed resources** of a group running here: restarted in place on this node
//!   from the first resource that differs ([`Reloaded::restart`]: the shell stops the
//!   old resources from there last to first, starts the new ones first to last, and
//!   reports `Restarted` or `RestartFailed`, after which the group moves as after any
//!   failed restart). The restart budget is not charged. Not held here: the next
//!   start uses the new resources.
//! - **Refused**: nodes or links changed (a restart is needed), or a removed or
//!   changed group is starting, stopping, restarting or blocked here, or held here in
//!   maintenance mode.
//!
//! During a rolling reload the nodes briefly run different files: their digests
//! differ, and the ownership rule for different configurations applies (neither
//! defers to the other's rank, ties go to the name that sorts first), so they still
//! agree on one holder per group.

use std::time::Instant;

use crate::config::{Config, Group, KeySet};
use crate::proto::wire::{self, Claim, ClaimState};

use super::{Cluster, GroupId, Local, LocalGroupState, ReloadError};

/// A group removed by a reload while it ran here, claimed until it is stopped.
#[derive(Debug, Clone)]
pub(super) struct Retiring {
    pub name: String,
    pub generation: u64,
    /// Its stop failed: resources may still be up here.
    pub blocked: bool,
}

impl Retiring {
    pub fn claim(&self) -> Claim {
        Claim {
            group: self.name.clone(),
            state: if self.blocked {
                ClaimState::Blocked
            } else {
                ClaimState::Stopping
            },
            generation: self.generation,
            flags: 0,
        }
    }
}

/// How the stop of a group a reload removed ended, reported with
/// [`Cluster::retired`] (the shell logs why a stop failed; the core needs only
/// whether it did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retirement {
    /// Every resource is down here: the group is forgotten.
    Stopped,
    /// The stop failed: the group may still be partly up here, so it stays claimed
    /// as blocked until `hbd unblock NAME`.
    StopFailed,
}

/// What an accepted reload asks of the shell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reloaded {
    /// Names of the groups added.
    pub added: Vec<String>,
    /// Names of the groups removed.
    pub removed: Vec<String>,
    /// Removed groups that ran here, with their old configuration: stop them (last
    /// resource first), then report with [`Cluster::retired`].
    pub release: Vec<Group>,
    /// Groups running here whose resources changed: the old configuration, the group
    /// (new id) and the first resource that differs. Stop the old resources from there
    /// last to first, start the new ones, report `Restarted` or `RestartFailed`.
    pub restart: Vec<(Group, GroupId, usize)>,
    /// Groups whose resources changed while not held here (the next start uses them).
    pub changed: Vec<String>,
}

/// Index of the first resource that differs between two versions of a group, if any.
fn first_change(old: &Group, new: &Group) -> Option<usize> {
    if old.resources == new.resources {
        return None;
    }
    Some(
        old.resources
            .iter()
            .zip(&new.resources)
            .position(|(a, b)| a != b)
            .unwrap_or(old.resources.len().min(new.resources.len())),
    )
}

/// `old[map[i]]` for each new slot `i`, or `fresh()` for a new group.
pub(super) fn remap<T: Clone>(old: &[T], map: &[Option<usize>], fresh: impl Fn() -> T) -> Vec<T> {
    map.iter()
        .map(|m| m.and_then(|o| old.get(o).cloned()).unwrap_or_else(&fresh))
        .collect()
}

impl Cluster {
    pub(super) fn reload_inner(
        &mut self,
        _now: Instant,
        config: &std::sync::Arc<Config>,
        keys: KeySet,
    ) -> Result<Reloaded, ReloadError> {
        let nodes = |c: &Config| -> Vec<String> {
            c.nodes
                .iter()
                .map(|n| n.name.to_ascii_lowercase())
                .collect()
        };
        let links = |c: &Config| -> Vec<String> {
            c.links
                .iter()
                .map(|l| format!("{} {}", l.kind(), l.name()))
                .collect()
        };
        if nodes(&self.config) != nodes(config) {
            return Err(ReloadError::Nodes);
        }
        if links(&self.config) != links(config) {
            return Err(ReloadError::Links);
        }
        // A mixed cluster (mixed.rs) switches to hbd's protocol by reload, never back.
        let (was, will) = (
            self.config.migration.heartbeat(),
            config.migration.heartbeat(),
        );
        if will && !self.speaks_heartbeat() {
            return Err(ReloadError::Protocol(
                "protocol = \"heartbeat\" is new: restart hbd to speak Heartbeat's protocol".into(),
            ));
        }
        if !will {
            if let Some(why) = self.switch_refused() {
                return Err(ReloadError::Protocol(why));
            }
        }
        if was && will && self.config.migration.authkeys != config.migration.authkeys {
            return Err(ReloadError::Protocol(
                "migration.authkeys changed: restart hbd to use the new file".into(),
            ));
        }
        if self.shutting_down || self.exited {
            return Err(ReloadError::ShuttingDown);
        }
        // map[new] = old index of the same name.
        let map: Vec<Option<usize>> = config
            .groups
            .iter()
            .map(|g| self.config.groups.iter().position(|o| o.name == g.name))
            .collect();
        let removed: Vec<usize> = (0..self.config.groups.len())
            .filter(|o| !map.contains(&Some(*o)))
            .collect();
        let mut out = Reloaded::default();
        // Check everything first: a refusal changes nothing.
        for r in &self.retiring {
            if config.groups.iter().any(|g| g.name == r.name) {
                return Err(ReloadError::Returning {
                    group: r.name.clone(),
                });
            }
        }
        let check = |c: &Cluster, o: usize, change: &'static str| -> Result<bool, ReloadError> {
            let l = &c.groups[o];
            let group = c.config.groups[o].name.clone();
            let state = match l.state {
                LocalGroupState::Stopped | LocalGroupState::Failed => return Ok(false),
                LocalGroupState::Running if !l.restarting => {
                    if c.ops.maintenance {
                        return Err(ReloadError::Maintenance { group, change });
                    }
                    return Ok(true);
                }
                LocalGroupState::Blocked => return Err(ReloadError::Blocked { group, change }),
                LocalGroupState::Running => "restarting",
                LocalGroupState::Starting => "starting",
                LocalGroupState::Stopping => "stopping",
            };
            Err(ReloadError::Busy {
                group,
                state,
                change,
            })
        };
        let mut release = Vec::new();
        for &o in &removed {
            if check(self, o, "removes")? {
                release.push(o);
            }
        }
        let mut restart = Vec::new();
        for (n, m) in map.iter().enumerate() {
            let Some(o) = *m else { continue };
            if let Some(from) = first_change(&self.config.groups[o], &config.groups[n]) {
                if check(self, o, "changes the resources of")? {
                    restart.push((o, n, from));
                } else {
                    out.changed.push(config.groups[n].name.clone());
                }
            }
        }
        let claims = config.groups.len() + self.retiring.len() + release.len();
        if claims > wire::MAX_CLAIMS {
            return Err(ReloadError::TooManyClaims {
                groups: claims,
                max: wire::MAX_CLAIMS,
            });
        }

        // Accepted: nothing below can fail.
        out.added = (0..config.groups.len())
            .filter(|&n| map[n].is_none())
            .map(|n| config.groups[n].name.clone())
            .collect();
        out.removed = removed
            .iter()
            .map(|&o| self.config.groups[o].name.clone())
            .collect();
        for &o in &release {
            self.retiring.push(Retiring {
                name: self.config.groups[o].name.clone(),
                generation: self.groups[o].generation,
                blocked: false,
            });
            out.release.push(self.config.groups[o].clone());
        }
        for &(o, n, from) in &restart {
            out.restart
                .push((self.config.groups[o].clone(), GroupId(n), from));
        }
        self.remap_groups(config, &map);
        for &(_, n, _) in &restart {
            self.groups[n].restarting = true;
        }
        if config.failover.ping != self.config.failover.ping {
            // Counted against another list: unknown until the next round.
            self.ping = super::defence::Ping::default();
        }
        self.config = config.clone();
        self.keys = keys;
        self.cluster_id = config.cluster_id();
        self.digest = config.digest();
        // Peers learn the new digest, the added groups and the retiring claims now.
        self.send_heartbeat();
        self.evaluate(self.last_input);
        Ok(out)
    }

    /// Rebuild every per-group table in the new config's order.
    fn remap_groups(&mut self, config: &Config, map: &[Option<usize>]) {
        self.groups = remap(&self.groups, map, Local::stopped);
        let index = |name: &str| config.groups.iter().position(|g| g.name == name);
        for p in &mut self.peers {
            p.claims = remap(&p.claims, map, || (ClaimState::None, 0));
            if let Some(t) = &mut p.twin {
                t.claims = remap(&t.claims, map, || (ClaimState::None, 0));
            }
            if let Some(v) = &mut p.previous {
                v.claims = remap(&v.claims, map, || (ClaimState::None, 0));
            }
            // What the peer's latest heartbeat said of the groups new here.
            for c in &p.last_claims {
                if let Some(n) = index(&c.group)
                    && map[n].is_none()
                {
                    p.claims[n] = (c.state, c.generation);
                }
            }
        }
        for (n, m) in map.iter().enumerate() {
            if m.is_none() {
                // Generations only grow: start above any a peer announced.
                let seen = self.peers.iter().map(|p| p.claims[n].1).max().unwrap_or(0);
                self.groups[n].generation = seen;
            }
        }
        let new_flags: Vec<Vec<(usize, u8)>> = self
            .peers
            .iter()
            .map(|p| {
                p.last_claims
                    .iter()
                    .filter_map(|c| {
                        index(&c.group)
                            .filter(|&n| map[n].is_none())
                            .map(|n| (n, c.flags))
                    })
                    .collect()
            })
            .collect();
        self.ops.remap_groups(map, &new_flags);
        // Which groups wait for a fence (rebuilt from the state on each evaluation).
        self.fence.waiting = remap(&self.fence.waiting, map, || None);
    }

    /// The shell's report on a group a reload removed while it ran here (see
    /// [`Reloaded::release`]): stopped, it is forgotten; a failed stop leaves it
    /// claimed as blocked here until `hbd unblock NAME`.
    pub fn retired(&mut self, now: Instant, name: &str, result: Retirement) {
        self.note_input(now);
        if let Some(i) = self.retiring.iter().position(|r| r.name == name) {
            match result {
                Retirement::Stopped => {
                    self.retiring.remove(i);
                }
                Retirement::StopFailed => self.retiring[i].blocked = true,
            }
            self.send_heartbeat();
            if self.shutting_down {
                self.continue_shutdown();
            }
        }
        self.sync_timers();
    }

    /// Names of the groups removed by a reload and still claimed here, with whether
    /// their stop failed.
    pub fn retiring(&self) -> Vec<(String, bool)> {
        self.retiring
            .iter()
            .map(|r| (r.name.clone(), r.blocked))
            .collect()
    }

    /// `hbd unblock NAME` of a retiring group whose stop failed: forgotten.
    pub(super) fn unblock_retired(&mut self, name: &str) -> bool {
        match self
            .retiring
            .iter()
            .position(|r| r.name == name && r.blocked)
        {
            Some(i) => {
                self.retiring.remove(i);
                true
            }
            None => false,
        }
    }
}
