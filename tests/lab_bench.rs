//! tests/lab/bench.sh, short: one round of each system (hbd, keepalived, Heartbeat) and
//! no idle phase. Checks the script runs end to end and writes what its readers rely on
//! (the CSV's columns, a kill -> VIP figure per system, the plot); the figures themselves
//! are printed, never asserted.

mod lab;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

#[test]
#[cfg_attr(
    not(hbd_lab),
    ignore = "lab tests need root: build and run them as root"
)]
fn bench_smoke_writes_csv_and_plot() {
    if !lab::available("lab_bench") {
        return;
    }
    let out = tempfile::tempdir().expect("temp dir");
    let o = Command::new(lab::script("bench.sh"))
        .args([
            "-n",
            "1",
            "-i",
            "0",
            "--systems",
            "hbd keepalived heartbeat",
            "-o",
        ])
        .arg(out.path())
        .env("HBD_BIN", env!("CARGO_BIN_EXE_hbd"))
        .output()
        .expect("run bench.sh");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("{stderr}\n{stdout}");
    assert!(o.status.success(), "bench.sh failed: {}", o.status);

    let csv = std::fs::read_to_string(out.path().join("results.csv")).expect("results.csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("system,nodes,round,metric,value,unit"),
        "CSV header"
    );
    let mut metrics: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 6, "CSV row {line:?}");
        let v: f64 = f[4].parse().unwrap_or_else(|_| panic!("value of {line:?}"));
        assert!(v.is_finite() && v >= 0.0, "value of {line:?}");
        metrics
            .entry(f[0].to_string())
            .or_default()
            .insert(f[3].to_string());
    }
    for sys in ["hbd", "keepalived", "heartbeat"] {
        let m = metrics
            .get(sys)
            .unwrap_or_else(|| panic!("no rows for {sys}"));
        for want in [
            "kill_vip_ms",
            "kill_http_ms",
            "handover_vip_ms",
            "handover_http_ms",
        ] {
            assert!(m.contains(want), "{sys} has no {want}: {m:?}");
        }
    }
    for want in ["dead_vip_ms", "hb_gap_max_takeover_ms"] {
        assert!(metrics["hbd"].contains(want), "hbd has no {want}");
    }
    assert!(
        metrics
            .get("lan")
            .is_some_and(|m| m.contains("arp_answer_ms"))
    );
    assert!(stdout.contains("kill_vip_ms") && stdout.contains("ratios"));
    let svg = std::fs::read_to_string(out.path().join("kill_vip.svg")).expect("plot");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for sys in ["hbd", "keepalived", "heartbeat"] {
        assert!(
            svg.contains(&format!(">{sys}<")),
            "plot has no row for {sys}"
        );
    }
}
