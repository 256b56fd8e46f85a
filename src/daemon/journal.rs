//! Stable journal MESSAGE_IDs of the core's events, and their names as event hooks
//! see them. units/hbd.catalog explains each id (`journalctl -u hbd -x`); the ids
//! never change once released (tests check the catalog lists every one).

use crate::cluster::{Event, LocalGroupState};

/// (event name, MESSAGE_ID) of every kind the catalog explains.
pub const IDS: &[(&str, &str)] = &[
    ("ready", "782124fbc1934aeda55e9e43c6f16cb2"),
    ("peer-up", "69170f9ed0754888aa0735f9e98dc32d"),
    ("peer-late", "213a00175bd04f2fb2b8d4a4e5a6bd7d"),
    ("peer-on-time", "c9361e7c9740425f9b11ee873029ba35"),
    ("peer-dead", "b15bd7d1cc8a4aeebd8882b97737c15c"),
    ("peer-left", "cd7030b2be8341ce99a797d9dcfad7a5"),
    ("peer-restarted", "66a9a4bbe249462a97d02239cf430b1e"),
    ("link-up", "a3bed9db2b9e4a23b0e95d2afa881978"),
    ("link-down", "631e2f024227494fb5bbe0c0f489906e"),
    ("group-state", "3dcf9e8dca1344278735dc65b4d6d6d8"),
    ("takeover", "debffe5fc3214251b4619f03a685680a"),
    ("config-mismatch", "cec6e6a4a9e84bf4a3b7fb6afbcf0cff"),
    ("config-agreed", "0d0a1af96c084782b48a924ec74c919b"),
    ("conflict", "824cbf9ce851474588e43ec1ea281d77"),
    ("restart-in-place", "cef420ecec904ee49ded0802dc6dfd87"),
    ("restart-budget-spent", "f7af2dfbc2714ac7bfff3048a1c49662"),
    ("duplicate-peer", "ee47f366b4944828bc3286b769069f5d"),
    ("duplicate-local", "36074a2af6084c05810d124f3403977d"),
    ("send-failed", "f61441b32fac40f6b221c9d361abdd51"),
    ("adopted", "b9023159c8b149ea99165ee72b464287"),
    ("leftovers", "6dd7670dd1654fe99559fa857634b2c8"),
    ("found-unknown", "c157de9e3dc04ff593734a33efb008f1"),
    ("stalled", "68d3466f31c34ba192caa8adc79f08a3"),
    ("fence-started", "feeb4af9ef8b436e9935d5cec82da3e9"),
    ("fenced", "2a2cb50e8bec40908ad4e5c8e43ee62d"),
    ("quorum-lost", "cceb8b91e0514b47ae4996a9fab60cf4"),
    ("quorum-regained", "7002d989815b4109b770f1c1a24a303f"),
    ("ping-count", "d5ba36af11b443b0a166b61e9a9944fc"),
    ("split-brain", "c222ad125f2f42cdb87272f571922cbf"),
    ("fence-failed", "7031b8486fca4f2ea6782d9f8407e9c5"),
];

/// The catalog's kind of an event: a group starting here is a takeover.
pub fn kind(e: &Event) -> Option<&'static str> {
    Some(match e {
        Event::Ready => "ready",
        Event::PeerUp { .. } => "peer-up",
        Event::PeerLate { .. } => "peer-late",
        Event::PeerOnTime { .. } => "peer-on-time",
        Event::PeerDead { .. } => "peer-dead",
        Event::PeerLeft { .. } => "peer-left",
        Event::PeerRestarted { .. } => "peer-restarted",
        Event::LinkUp { .. } => "link-up",
        Event::LinkDown { .. } => "link-down",
        Event::GroupState {
            state: LocalGroupState::Starting,
            ..
        } => "takeover",
        Event::GroupState { .. } => "group-state",
        Event::ConfigMismatch { .. } => "config-mismatch",
        Event::ConfigAgreed { .. } => "config-agreed",
        Event::Conflict { .. } => "conflict",
        Event::RestartInPlace { .. } => "restart-in-place",
        Event::RestartBudgetSpent { .. } => "restart-budget-spent",
        Event::DuplicatePeer { .. } => "duplicate-peer",
        Event::DuplicateLocal { .. } => "duplicate-local",
        Event::SendFailed { .. } => "send-failed",
        Event::Adopted { .. } => "adopted",
        Event::Leftovers { .. } => "leftovers",
        Event::FoundUnknown { .. } => "found-unknown",
        Event::Stalled { .. } => "stalled",
        Event::Quorum { quorate: false, .. } => "quorum-lost",
        Event::Quorum { quorate: true, .. } => "quorum-regained",
        Event::PingCount { .. } => "ping-count",
        Event::SplitBrain { .. } => "split-brain",
        Event::FenceStarted { .. } => "fence-started",
        Event::Fenced { .. } => "fenced",
        Event::FenceFailed { .. } => "fence-failed",
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

pub fn message_id(e: &Event) -> Option<&'static str> {
    let k = kind(e)?;
    IDS.iter().find(|(n, _)| *n == k).map(|(_, id)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = include_str!("../../units/hbd.catalog");

    #[test]
    fn ids_are_unique_and_every_one_is_in_the_catalog() {
        let mut seen = std::collections::BTreeSet::new();
        for (name, id) in IDS {
            assert_eq!(id.len(), 32, "{name}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
            assert!(seen.insert(*id), "{name}: id used twice");
            assert!(
                CATALOG.contains(&format!("-- {id}\n")),
                "units/hbd.catalog has no entry for {name} ({id})"
            );
        }
        // And nothing else: every catalog entry is an id in use.
        let entries = CATALOG.lines().filter(|l| l.starts_with("-- ")).count();
        assert_eq!(entries, IDS.len());
    }
}
