#!/usr/bin/env bash
# The fuzz hunt (not part of .ci/run, which must pass on every run: fresh inputs are a
# hunt, like tests/hunt.sh for the property tests; CI replays the checked-in corpus on
# stable in tests/fuzz_corpus.rs). Builds the cargo-fuzz targets (fuzz/) on nightly and
# runs each for FUZZ_SECONDS (default 20) from the checked-in corpus, failing on any
# crash; prints the executions each target reached. A crash found here goes into
# fuzz/corpus/TARGET/ with its fix, so every later CI run replays it. Without a nightly toolchain the fuzz run is
# skipped, saying so, and the corpus is still replayed on stable (tests/fuzz_corpus.rs).
# New inputs found here go to a temporary directory, never into fuzz/corpus: growing
# the checked-in corpus is the longer run in fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
seconds=${FUZZ_SECONDS:-20}
targets=(decode config import packet heartbeat)
log() { echo ".ci/fuzz.sh: $*" >&2; }

log "replaying fuzz/corpus on stable"
cargo test --test fuzz_corpus

if ! command -v rustup >/dev/null 2>&1 || ! rustup run nightly rustc --version >/dev/null 2>&1; then
    log "SKIPPED: the fuzz run needs a nightly toolchain (rustup toolchain install nightly), and there is none; only the corpus was replayed (on stable, above)"
    exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

log "building the fuzz targets on nightly (release, debug assertions on, no ASan: the targets are safe Rust)"
start=$(date +%s)
(cd fuzz && cargo +nightly fuzz build --sanitizer none --debug-assertions)
log "built in $(($(date +%s) - start)) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The project's own configs and Heartbeat trees seed config and import too.
fuzz/seed.sh "$work/seeds"
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$work/artifacts/$t"
    seeds=()
    [[ -d $work/seeds/$t ]] && seeds=("$work/seeds/$t")
    out=$work/$t.log
    # -fork/-jobs stay at 1: this machine's two cores are shared.
    if (cd fuzz && cargo +nightly fuzz run --sanitizer none --debug-assertions "$t" "$work/$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=1024 -timeout=10 \
        -artifact_prefix="$work/artifacts/$t/") >"$out" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
        cov=$(grep -Eo 'cov: [0-9]+' "$out" | tail -1)
        log "$t: ${execs:-?} executions in ${seconds} s (${cov:-cov: ?}), no crash"
    else
        failed+=("$t")
        tail -n 60 "$out" >&2
        mkdir -p fuzz/artifacts/"$t"
        cp -r "$work/artifacts/$t/." fuzz/artifacts/"$t"/ 2>/dev/null || true
        log "$t: CRASH (input kept in fuzz/artifacts/$t/; replay: cd fuzz && cargo +nightly fuzz run --sanitizer none --debug-assertions $t artifacts/$t/FILE)"
    fi
done
log "fuzzing took $(($(date +%s) - start)) s in all"
if ((${#failed[@]})); then
    log "FAILED: ${failed[*]}"
    exit 1
fi
