#!/usr/bin/env bash
# The hunt for fault sequences that break the lab's invariants (tests/lab_chaos.rs):
# RUNS runs (default 10) of STEPS random faults each (default 12), each with a fresh seed,
# printed before it runs. Stops at the first failure, printing the seed that repeats it:
#   HBD_CHAOS_SEED=SEED HBD_CHAOS_STEPS=STEPS cargo test --test lab_chaos -- --nocapture
# CI runs one fixed seed (tests/run.sh); this is the longer, fresh search. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-10}
steps=${2:-12}
cargo test --test lab_chaos --no-run -q
for ((i = 1; i <= runs; i++)); do
    seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
    echo "chaos.sh: run $i/$runs: HBD_CHAOS_SEED=$seed HBD_CHAOS_STEPS=$steps" >&2
    if ! HBD_CHAOS_SEED=$seed HBD_CHAOS_STEPS=$steps cargo test -q --test lab_chaos -- --nocapture; then
        echo "chaos.sh: FAILED with seed $seed: HBD_CHAOS_SEED=$seed HBD_CHAOS_STEPS=$steps cargo test --test lab_chaos -- --nocapture" >&2
        exit 1
    fi
done
echo "chaos.sh: $runs runs of $steps faults, no violation" >&2
