//! resctl: drive hbd's resource layer by hand, for the lab tests and for debugging.
//!
//! ```text
//! resctl CONFIG start GROUP    start the group (in order, rollback on failure)
//! resctl CONFIG stop GROUP     stop it (reverse order)
//! resctl CONFIG active GROUP   print true/false (adoption check)
//! resctl CONFIG run GROUP      start it (or adopt it when already active), watch it,
//!                              print every Failure, stop it on SIGTERM
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

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: resctl CONFIG start|stop|active|run GROUP");
        std::process::exit(3);
    }
    let text = match std::fs::read_to_string(&args[1]) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("resctl: cannot read {}: {e}", args[1]);
            std::process::exit(3);
        }
    };
    let cfg: Config = match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("resctl: {}: {e}", args[1]);
            std::process::exit(3);
        }
    };
    let group = match args[3].parse::<usize>() {
        Ok(i) => i,
        Err(_) => match cfg.groups.iter().position(|g| g.name == args[3]) {
            Some(i) => i,
            None => {
                eprintln!("resctl: no group {}", args[3]);
                std::process::exit(3);
            }
        },
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let t0 = Instant::now();
    let m = match Manager::connect(Arc::new(cfg), tx).await {
        Ok(m) => m,
        Err(e) => {
            out(&format!("failed: {e}"));
            std::process::exit(1);
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
                    std::process::exit(exit_for(&e));
                }
            }
        }
        "active" => match m.is_active(group).await {
            Ok(a) => out(&a.to_string()),
            Err(e) => {
                out(&format!("failed: {e}"));
                std::process::exit(1);
            }
        },
        "run" => {
            let adopted = matches!(m.is_active(group).await, Ok(true));
            if adopted {
                out(&format!("ok adopted {}ms", t0.elapsed().as_millis()));
            } else if let Err(e) = m.start_group(group).await {
                out(&format!("failed: {e}"));
                std::process::exit(exit_for(&e));
            } else {
                out(&format!("ok start {}ms", t0.elapsed().as_millis()));
            }
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        out(&format!("failed: cannot catch SIGTERM: {e}"));
                        std::process::exit(1);
                    }
                };
            loop {
                tokio::select! {
                    f = rx.recv() => match f {
                        Some(f) => out(&format!("FAILURE group {}: {}", f.group, f.reason)),
                        None => break,
                    },
                    _ = term.recv() => break,
                }
            }
            let t1 = Instant::now();
            match m.stop_group(group).await {
                Ok(()) => out(&format!("ok stop {}ms", t1.elapsed().as_millis())),
                Err(e) => {
                    out(&format!("failed: {e}"));
                    std::process::exit(exit_for(&e));
                }
            }
        }
        other => {
            eprintln!("resctl: unknown command {other}");
            std::process::exit(3);
        }
    }
}
