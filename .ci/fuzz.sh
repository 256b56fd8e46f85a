#!/usr/bin/env bash
# Fuzzing (cargo-fuzz, nightly), in two modes:
#   .ci/fuzz.sh                  CI: each target from the checked-in corpus for a fixed number
#                                of executions with a fixed seed (FUZZ_SEED, default 1), so a
#                                commit's result is the same on every run; fails on any crash.
#   FUZZ_SECONDS=600 .ci/fuzz.sh the hunt: each target for that long with a fresh seed
#                                (printed), like tests/hunt.sh for the property tests.
# A crash goes into fuzz/artifacts/TARGET/; commit it to fuzz/corpus/TARGET/ with its fix,
# so every later run replays it (tests/fuzz_corpus.rs replays the corpus on stable too).
# Without a nightly toolchain the fuzz run is skipped, saying so. New inputs go to a
# temporary directory, never into fuzz/corpus: growing the corpus is fuzz/README.md's run.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
log() { echo ".ci/fuzz.sh: $*" >&2; }
seconds=${FUZZ_SECONDS:-}
if [[ -n $seconds ]]; then
    seed=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
    log "hunting: ${seconds} s per target, seed $seed (FUZZ_SEED=$seed repeats it)"
else
    seed=${FUZZ_SEED:-1}
fi
# Executions per target in CI mode: about 10 s each on the shared 2-core machine.
declare -A runs=([decode]=400000 [config]=150000 [import]=60000 [packet]=80000 [heartbeat]=200000)
targets=(decode config import packet heartbeat)

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
    if [[ -n $seconds ]]; then bound=(-max_total_time="$seconds"); else bound=(-runs="${runs[$t]}"); fi
    # -fork/-jobs stay at 1: this machine's two cores are shared.
    if (cd fuzz && cargo +nightly fuzz run --sanitizer none --debug-assertions "$t" "$work/$t" "corpus/$t" "${seeds[@]}" -- \
        "${bound[@]}" -seed="$seed" -print_final_stats=1 -rss_limit_mb=1024 -timeout=10 \
        -artifact_prefix="$work/artifacts/$t/") >"$out" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
        cov=$(grep -Eo 'cov: [0-9]+' "$out" | tail -1)
        log "$t: ${execs:-?} executions, seed $seed (${cov:-cov: ?}), no crash"
    else
        failed+=("$t")
        tail -n 60 "$out" >&2
        mkdir -p fuzz/artifacts/"$t"
        cp -r "$work/artifacts/$t/." fuzz/artifacts/"$t"/ 2>/dev/null || true
        log "$t: CRASH (input kept in fuzz/artifacts/$t/; seed $seed; replay: cd fuzz && cargo +nightly fuzz run --sanitizer none --debug-assertions $t artifacts/$t/FILE)"
    fi
done
log "fuzzing took $(($(date +%s) - start)) s in all"
if ((${#failed[@]})); then
    log "FAILED: ${failed[*]}"
    exit 1
fi
