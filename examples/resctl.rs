//! resctl: drive hbd's resource layer by hand, for the lab tests and for debugging.
//!
//! ```text
//! resctl CONFIG start GROUP    start the group (in order, rollback on failure)
//! resctl CONFIG stop GROUP     stop it (reverse order)
//! resctl CONFIG active GROUP   print true/false (adoption check)
//! resctl CONFIG flap GROUP    start it, stop it at once, then stay alive 3 s (as a
//!                              daemon outlives a group that moved away)
//! resctl CONFIG run GROUP      start it (or adopt it when already active), watch it,
//!                              print a Failure and stop it when one comes, or
//!                              stop it on SIGTERM
//! ```
//! GROUP is the group's name or index. Exit status: 0 ok, 1 failed, 2 blocked, 3 usage.
//! Each line on stdout is one result: `ok start 12ms`, `failed: …`, `FAILURE group 0: …`.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use hbd::config::Config;
use hbd::resource::{Manager, ResourceError};

fn out(line: &str) {
    let mut s = std::io::stdout().lock();
    let _ = writeln!(s, "{line}");
    let _ = s.flush();
}

fn exit_for(e: &ResourceError) -> i32 {
    if e.is_blocked() { 2 } else { 1 }
}

fn main() {
    std::process::exit(resctl_main(std::env::args().collect()));
}

/// The whole tool; `args[0]` is the program name. Returns the exit status. (The lab
/// tests include this file and call it inside a node.)
pub fn resctl_main(args: Vec<String>) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("resctl: cannot start a runtime: {e}");
            return 1;
        }
    };
    rt.block_on(run(args))
}

async fn run(args: Vec<String>) -> i32 {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    if args.len() != 4 {
        eprintln!("usage: resctl CONFIG start|stop|active|flap|run GROUP");
        return 3;
    }
    let text = match std::fs::read_to_string(&args[1]) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("resctl: cannot read {}: {e}", args[1]);
            return 3;
        }
    };
    let cfg: Config = match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("resctl: {}: {e}", args[1]);
            return 3;
        }
    };
    let group = match args[3].parse::<usize>() {
        Ok(i) => i,
        Err(_) => match cfg.groups.iter().position(|g| g.name == args[3]) {
            Some(i) => i,
            None => {
                eprintln!("resctl: no group {}", args[3]);
                return 3;
            }
        },
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let t0 = Instant::now();
    let Some((max, window)) = cfg
        .groups
        .get(group)
        .map(|g| (g.max_restarts, g.restart_window.get()))
    else {
        eprintln!("resctl: no group {}", args[3]);
        return 3;
    };
    let m = match Manager::connect(Arc::new(cfg), tx).await {
        Ok(m) => m,
        Err(e) => {
            out(&format!("failed: {e}"));
            return 1;
        }
    };
    eprintln!("resctl: connected in {:?}", t0.elapsed());
    let t0 = Instant::now();
    match args[2].as_str() {
        "start" | "stop" => {
            let r = if args[2] == "start" {
                m.start_group(group).await
            } else {
                m.stop_group(group).await
            };
            match r {
                Ok(()) => out(&format!("ok {} {}ms", args[2], t0.elapsed().as_millis())),
                Err(e) => {
                    out(&format!(
                        "{}: {e}",
                        if e.is_blocked() { "blocked" } else { "failed" }
                    ));
                    return exit_for(&e);
                }
            }
        }
        "flap" => {
            for (what, r) in [
                ("start", m.start_group(group).await),
                ("stop", m.stop_group(group).await),
            ] {
                match r {
                    Ok(()) => out(&format!("ok {what} {}ms", t0.elapsed().as_millis())),
                    Err(e) => {
                        out(&format!("failed: {e}"));
                        return exit_for(&e);
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        }
        "active" => match m.is_active(group).await {
            Ok(a) => out(&a.to_string()),
            Err(e) => {
                out(&format!("failed: {e}"));
                return 1;
            }
        },
        "run" => {
            let adopted = matches!(m.is_active(group).await, Ok(true));
            if adopted {
                out(&format!("ok adopted {}ms", t0.elapsed().as_millis()));
            } else if let Err(e) = m.start_group(group).await {
                out(&format!("failed: {e}"));
                return exit_for(&e);
            } else {
                out(&format!("ok start {}ms", t0.elapsed().as_millis()));
            }
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        out(&format!("failed: cannot catch SIGTERM: {e}"));
                        return 1;
                    }
                };
            // A resource found down is restarted in place within the group's budget,
            // as hbd's core decides; past it (or when a restart fails) the group
            // should move: stop it here, as the daemon would. Or SIGTERM.
            let mut budget = hbd::cluster::restart::RestartBudget::default();
            loop {
                tokio::select! {
                    f = rx.recv() => {
                        let Some(f) = f else { break };
                        match budget.take(Instant::now(), max, window) {
                            Ok(n) => {
                                tracing::warn!("group {}: {}; restarting in place ({n}/{max})", f.group, f.reason);
                                if let Err(e) = m.restart_in_place(group, f.resource).await {
                                    out(&format!("FAILURE group {}: {}; restart in place failed: {e}", f.group, f.reason));
                                    break;
                                }
                            }
                            Err(n) => {
                                out(&format!(
                                    "FAILURE group {}: {}; already restarted {n} times within {window:?}",
                                    f.group, f.reason
                                ));
                                break;
                            }
                        }
                    }
                    _ = term.recv() => break,
                }
            }
            let t1 = Instant::now();
            match m.stop_group(group).await {
                Ok(()) => out(&format!("ok stop {}ms", t1.elapsed().as_millis())),
                Err(e) => {
                    out(&format!("failed: {e}"));
                    return exit_for(&e);
                }
            }
        }
        other => {
            eprintln!("resctl: unknown command {other}");
            return 3;
        }
    }
    0
}
