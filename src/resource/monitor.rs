//! Monitoring without polling.
//!
//! While a group runs, one task per group listens to systemd's PropertiesChanged
//! signals of each unit, mount and script unit (ActiveState) and to netlink address
//! events (RTM_DELADDR of each virtual IP). Every event is checked against the real
//! state before anything happens (so the echoes of hbd's own restarts are ignored).
//! A resource that is really down is reported as a [`Failure`] (once, until it is
//! seen up again); the core decides whether to restart it in place (within the
//! group's `max_restarts` per `restart_window`) or to move the group, and the
//! manager's `restart_in_place` does the restart under the group's lock, so this
//! monitor sees the group again only when it is back up. `stop_group` aborts the task
//! before it stops anything, so a stop never looks like a failure. When the machine
//! is shutting down (SystemState "stopping"), nothing is reported.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::NetlinkPayload;
use tokio::sync::mpsc::UnboundedSender;

use super::group::Resource;
use super::unit::SystemdLink;
use super::{Failure, ip};

/// What the monitor watches for one resource.
#[derive(Debug, Clone)]
pub enum Watch {
    /// A systemd unit's ActiveState.
    Unit(String),
    /// A virtual IP's presence.
    Address(IpAddr),
}

/// Everything a group's monitor needs.
pub struct Plan {
    pub group: usize,
    pub name: String,
    pub resources: Arc<Vec<Box<dyn Resource>>>,
    pub watches: Vec<Watch>,
    pub sd: SystemdLink,
    pub lock: Arc<tokio::sync::Mutex<()>>,
    pub failures: UnboundedSender<Failure>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An event that means "the event sources must be set up again".
const RESUBSCRIBE: usize = usize::MAX;

type Events = SelectAll<BoxStream<'static, (usize, String)>>;

/// A stream that ends with a RESUBSCRIBE event (a source that ends has lost its
/// connection: systemd went away, the netlink socket closed).
fn ending_in_resubscribe(
    s: BoxStream<'static, (usize, String)>,
    what: String,
) -> BoxStream<'static, (usize, String)> {
    s.chain(futures::stream::once(async move {
        (RESUBSCRIBE, format!("lost the events of {what}"))
    }))
    .boxed()
}

/// Set up every watch; also returns the netlink task (kept alive with the events)
/// and whether every watch could be set up.
async fn subscribe(plan: &Plan) -> (Events, Option<AbortOnDrop>, bool) {
    let mut events: Events = SelectAll::new();
    let mut netlink = None;
    let mut complete = true;
    let mut addresses = Vec::new();
    for (i, w) in plan.watches.iter().enumerate() {
        match w {
            Watch::Unit(unit) => {
                let watched = match plan.sd.get().await {
                    Ok(sd) => sd.watch_active_state(unit).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match watched {
                    Ok(s) => {
                        let u = unit.clone();
                        let s = s
                            .filter(|st| {
                                futures::future::ready(matches!(st.as_str(), "failed" | "inactive"))
                            })
                            .map(move |st| (i, format!("unit {u} became {st}")))
                            .boxed();
                        events.push(ending_in_resubscribe(s, unit.clone()));
                    }
                    Err(e) => {
                        tracing::error!("group {}: cannot monitor {unit}: {e}", plan.name);
                        complete = false;
                    }
                }
            }
            Watch::Address(a) => addresses.push((i, *a)),
        }
    }
    if !addresses.is_empty() {
        match rtnetlink::new_multicast_connection(&[
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ]) {
            Ok((conn, _handle, messages)) => {
                netlink = Some(AbortOnDrop(tokio::spawn(conn)));
                let s = messages
                    .filter_map(move |(msg, _)| {
                        let hit = match msg.payload {
                            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => {
                                ip::event_address(&m).and_then(|(_, a)| {
                                    addresses
                                        .iter()
                                        .find(|(_, x)| *x == a)
                                        .map(|(i, x)| (*i, format!("ip {x} was removed")))
                                })
                            }
                            _ => None,
                        };
                        futures::future::ready(hit)
                    })
                    .boxed();
                events.push(ending_in_resubscribe(s, "the addresses".into()));
            }
            Err(e) => {
                tracing::error!("group {}: cannot watch addresses: {e}", plan.name);
                complete = false;
            }
        }
    }
    if !complete {
        events.push(
            futures::stream::once(async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                (RESUBSCRIBE, "retrying the watches that failed".to_string())
            })
            .boxed(),
        );
    }
    // Anything that went down before the watches were in place counts too.
    let mut initial = Vec::new();
    for (i, r) in plan.resources.iter().enumerate() {
        if let Ok(false) = r.is_active().await {
            initial.push((i, format!("{} is not active", r.name())));
        }
    }
    events.push(futures::stream::iter(initial).boxed());
    (events, netlink, complete)
}

/// Watch the group until the task is aborted (by a stop, a restart, a new start).
pub async fn run(plan: Plan) {
    let mut reported = vec![false; plan.resources.len()];
    loop {
        let (mut events, _netlink, _) = subscribe(&plan).await;
        loop {
            match events.next().await {
                Some((RESUBSCRIBE, why)) => {
                    tracing::warn!("group {}: {why}; setting the watches up again", plan.name);
                    break;
                }
                Some((i, why)) => {
                    if handle(&plan, &mut reported, i, why).await.is_break() {
                        return;
                    }
                }
                // Every watch's stream ends with RESUBSCRIBE: the events end only when
                // there is nothing to watch (a group without resources). Polling again
                // would wake the daemon five times a second for nothing.
                None => return,
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One event: check the real state, then report a resource that is down (once until
/// it is seen up again). Break ends the monitor.
async fn handle(
    plan: &Plan,
    reported: &mut [bool],
    i: usize,
    why: String,
) -> std::ops::ControlFlow<()> {
    use std::ops::ControlFlow::{Break, Continue};
    // Under the group's lock: a restart in progress finishes before we look.
    let _guard = plan.lock.lock().await;
    let Some(res) = plan.resources.get(i) else {
        return Continue(());
    };
    match res.is_active().await {
        Ok(true) => {
            reported[i] = false;
            return Continue(());
        }
        Ok(false) => {}
        Err(e) => tracing::warn!("group {}: cannot check {}: {e}", plan.name, res.name()),
    }
    if reported[i] {
        return Continue(());
    }
    if let Ok(sd) = plan.sd.get().await
        && sd.system_state().await.is_ok_and(|s| s == "stopping")
    {
        tracing::info!(
            "group {}: {why} while the system shuts down; not restarting",
            plan.name
        );
        return Break(());
    }
    reported[i] = true;
    let _ = plan.failures.send(Failure {
        group: plan.group,
        name: plan.name.clone(),
        resource: i,
        reason: why,
    });
    Continue(())
}
