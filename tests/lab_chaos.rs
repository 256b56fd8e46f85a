//! The fault matrix, at random: a seeded sequence of faults against the lab's web cluster
//! (two nodes under their own systemd, tests/lab/web/), while a sampler reads every node's
//! real state (`ip addr`, `systemctl is-active`) every ~100 ms and checks the two rules
//! that matter to an admin:
//!
//! - **never two nodes serving the group** (the VIP or the web unit up on both), except
//!   while the nodes cannot hear each other at all (a full partition: the documented split
//!   brain of a two-node cluster without fencing) and for deadtime + 2 margins after it heals;
//! - **never no holder** for longer than the fault's allowance once it is over: after each
//!   fault, exactly one node serves the group within deadtime + a margin (+ hbd's own
//!   restart when the fault restarted it).
//!
//! The faults: kill -9 of hbd (systemd restarts it, the group is adopted), a frozen node
//! (cgroup freezer) past deadtime, one link cut, every link cut (partition) and healed, 30 %
//! heartbeat loss, `systemctl restart hbd`, a clean stop and start of hbd, a reload on both,
//! a crash of the web unit (restarted in place), `hbd standby` on the holder.
//!
//! CI runs a fixed seed (`HBD_CHAOS_SEED`, default 265: it draws eight different faults) for `HBD_CHAOS_STEPS` faults
//! (default 8). The hunt for new sequences is a separate command that prints each seed:
//! `tests/lab/chaos.sh [RUNS] [STEPS]`. A failure prints the seed, the timeline of faults
//! and samples, and both nodes' journals (`HBD_CHAOS_DUMP=1`: also after a passing run).

mod lab;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lab::web::*;
use lab::{Lab, Node, wait_until};

/// splitmix64: enough randomness to pick faults, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillHbd,
    Freeze,
    CutLink,
    Partition,
    Loss,
    RestartHbd,
    StopStartHbd,
    Reload,
    CrashWeb,
    Standby,
}

const FAULTS: [Fault; 10] = [
    Fault::KillHbd,
    Fault::Freeze,
    Fault::CutLink,
    Fault::Partition,
    Fault::Loss,
    Fault::RestartHbd,
    Fault::StopStartHbd,
    Fault::Reload,
    Fault::CrashWeb,
    Fault::Standby,
];

/// What one sample saw on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    vip: bool,
    web: bool,
}

impl Seen {
    fn serving(self) -> bool {
        self.vip || self.web
    }
}

fn look(n: &Node) -> Seen {
    Seen {
        vip: n.has_addr(VIP_CIDR),
        web: n.unit_state(WEB) == "active",
    }
}

/// The shared record: faults and samples in time order, and the windows in which two
/// serving nodes are excused.
struct Record {
    start: Instant,
    lines: Vec<String>,
    /// Two nodes serving is excused until this instant (a partition and its heal).
    excused_until: Option<Instant>,
    /// A partition is on: excused until it heals (then for deadtime + margin more).
    partitioned: bool,
    violation: Option<String>,
}

impl Record {
    fn log(&mut self, what: String) {
        let t = self.start.elapsed().as_secs_f64();
        self.lines.push(format!("{t:8.2}s  {what}"));
    }
    fn excused(&self, now: Instant) -> bool {
        self.partitioned || self.excused_until.is_some_and(|u| now < u)
    }
}

fn seed_and_steps() -> (u64, usize) {
    let num = |var: &str, default: u64| -> u64 {
        match std::env::var(var) {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{var}={v}: not a number")),
            Err(_) => default,
        }
    };
    (
        num("HBD_CHAOS_SEED", 265),
        num("HBD_CHAOS_STEPS", 8) as usize,
    )
}

/// Which node serves the group alone, if one does.
fn sole_holder(lab: &Lab) -> Option<String> {
    let serving: Vec<(String, Seen)> = lab
        .nodes()
        .map(|n| (n.name().to_string(), look(&n)))
        .collect();
    match serving
        .iter()
        .filter(|(_, s)| s.serving())
        .collect::<Vec<_>>()[..]
    {
        [(name, s)] if s.vip && s.web => Some(name.clone()),
        _ => None,
    }
}

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn random_faults_never_leave_two_holders_or_none() {
    if !lab::available("random_faults_never_leave_two_holders_or_none") {
        return;
    }
    let _s = serial();
    let (seed, steps) = seed_and_steps();
    eprintln!("chaos: seed {seed}, {steps} faults (HBD_CHAOS_SEED={seed} repeats this run)");
    let lab = web_lab("cha", CLUSTER, |_| {});
    let record = Mutex::new(Record {
        start: Instant::now(),
        lines: Vec::new(),
        excused_until: None,
        partitioned: false,
        violation: None,
    });
    let done = AtomicBool::new(false);
    let mut rng = Rng(seed);

    std::thread::scope(|s| {
        // The sampler: both nodes' real state, every ~100 ms.
        s.spawn(|| {
            let mut last: Vec<Seen> = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let seen: Vec<Seen> = lab.nodes().map(|n| look(&n)).collect();
                let now = Instant::now();
                let mut r = record.lock().unwrap_or_else(|p| p.into_inner());
                if seen != last {
                    let desc = seen
                        .iter()
                        .zip(lab.nodes())
                        .map(|(s, n)| format!("{}: vip {} web {}", n.name(), s.vip, s.web))
                        .collect::<Vec<_>>()
                        .join(", ");
                    r.log(format!("seen {desc}"));
                    last = seen.clone();
                }
                if seen.iter().filter(|s| s.serving()).count() > 1
                    && !r.excused(now)
                    && r.violation.is_none()
                {
                    r.violation = Some(format!(
                        "two nodes serve the group at {:.2?} (no partition excuses it)",
                        r.start.elapsed()
                    ));
                }
                drop(r);
                std::thread::sleep(Duration::from_millis(100));
            }
        });

        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for step in 0..steps {
                let fault = FAULTS[rng.below(FAULTS.len() as u64) as usize];
                let holder = sole_holder(&lab).unwrap_or_else(|| "n1".to_string());
                let other = if holder == "n1" { "n2" } else { "n1" };
                // Most faults hit the holder, where they matter; some hit the other node.
                let target = if rng.below(4) == 0 {
                    other
                } else {
                    holder.as_str()
                };
                let log = |what: String| record.lock().unwrap_or_else(|p| p.into_inner()).log(what);
                log(format!(
                    "step {step}: {fault:?} on {target} (holder {holder})"
                ));
                let extra = inject(&lab, fault, target, &record, &mut rng);
                // Exactly one holder within deadtime + margin (+ what the fault adds).
                let allowance = DEADTIME + MARGIN + Duration::from_secs(3) + extra;
                let settled = wait_until(allowance, Duration::from_millis(100), || {
                    sole_holder(&lab).is_some()
                });
                match settled {
                    Some(t) => log(format!(
                        "step {step}: one holder ({}) {:.2?} after the fault ended",
                        sole_holder(&lab).unwrap_or_default(),
                        t
                    )),
                    None => {
                        let msg = format!(
                            "step {step} ({fault:?} on {target}): no single holder {allowance:?} after the fault ended"
                        );
                        let mut r = record.lock().unwrap_or_else(|p| p.into_inner());
                        r.violation.get_or_insert(msg);
                        break;
                    }
                }
                if record
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .violation
                    .is_some()
                {
                    break;
                }
                // Steady state for a moment before the next fault (hold_down is 2 s).
                std::thread::sleep(Duration::from_secs(2));
            }
        }));
        done.store(true, Ordering::Relaxed);
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    });

    let r = record.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = r.violation {
        eprintln!("chaos timeline (seed {seed}):\n{}", r.lines.join("\n"));
        dump(&lab);
        panic!("seed {seed}: {v}");
    }
    eprintln!("chaos timeline (seed {seed}):\n{}", r.lines.join("\n"));
    if std::env::var_os("HBD_CHAOS_DUMP").is_some() {
        dump(&lab);
    }
}

/// Inject `fault` on `node`, wait out its duration, undo it; the extra settling time the
/// fault needs beyond deadtime + margin.
fn inject(lab: &Lab, fault: Fault, node: &str, record: &Mutex<Record>, rng: &mut Rng) -> Duration {
    let n = lab.node(node);
    let hold = Duration::from_millis(1500 + rng.below(2000));
    match fault {
        Fault::KillHbd => {
            n.exec_ok(&["systemctl", "kill", "--signal=KILL", "hbd.service"]);
            // systemd restarts it after RestartSec=2s; it adopts what runs, after initdead.
            Duration::from_secs(2) + INITDEAD
        }
        Fault::Freeze => {
            lab.freeze(node);
            std::thread::sleep(DEADTIME * 2 + hold);
            lab.thaw(node);
            Duration::ZERO
        }
        Fault::CutLink => {
            lab.cut_link(node, "eth1");
            std::thread::sleep(hold);
            lab.restore_link(node, "eth1");
            Duration::ZERO
        }
        Fault::Partition => {
            record.lock().unwrap_or_else(|p| p.into_inner()).partitioned = true;
            lab.partition("n1", "n2");
            std::thread::sleep(DEADTIME * 2 + hold);
            lab.heal();
            let mut r = record.lock().unwrap_or_else(|p| p.into_inner());
            r.partitioned = false;
            r.excused_until = Some(Instant::now() + DEADTIME + MARGIN * 2);
            r.log("healed".into());
            Duration::ZERO
        }
        Fault::Loss => {
            lab.drop_percent("n1", 30);
            lab.drop_percent("n2", 30);
            std::thread::sleep(hold * 2);
            lab.drop_percent("n1", 0);
            lab.drop_percent("n2", 0);
            Duration::ZERO
        }
        Fault::RestartHbd => {
            n.exec_ok(&["systemctl", "restart", "hbd.service"]);
            INITDEAD
        }
        Fault::StopStartHbd => {
            n.exec_ok(&["systemctl", "stop", "hbd.service"]);
            std::thread::sleep(hold);
            n.exec_ok(&["systemctl", "start", "--no-block", "hbd.service"]);
            INITDEAD
        }
        Fault::Reload => {
            for n in lab.nodes() {
                n.exec_ok(&["systemctl", "reload", "hbd.service"]);
            }
            Duration::ZERO
        }
        Fault::CrashWeb => {
            // Restarted in place (max_restarts = 2 within 1 min), or moved after that.
            n.exec(&["systemctl", "kill", "--signal=KILL", WEB]);
            Duration::from_secs(2)
        }
        Fault::Standby => {
            // On the holder: the group moves to the other node (which then keeps it: a
            // standby lasts until a takeover here, so take it back right away to keep the
            // other faults meaningful). On the other node: nothing to give up.
            let o = n.exec(&["hbd", "standby"]);
            record
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .log(format!(
                    "hbd standby on {node}: {}",
                    String::from_utf8_lossy(&o.stdout).trim()
                ));
            std::thread::sleep(hold);
            let o = n.exec(&["hbd", "takeover"]);
            record
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .log(format!(
                    "hbd takeover on {node}: {}{}",
                    String::from_utf8_lossy(&o.stdout).trim(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            Duration::ZERO
        }
    }
}
