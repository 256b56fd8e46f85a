#!/usr/bin/env bash
# Deeper model-checking runs of the real core (tests/model_check.rs) than CI's.
# Each line: test name, fault budget, depth bound. Prints states explored, depth and
# time per model; any counterexample prints as a #[test] to paste.
#   tests/model_check.sh            # the documented long run (tens of minutes on 2 cores)
#   THREADS=4 tests/model_check.sh  # checker threads per model
#   LIMIT=900 tests/model_check.sh  # seconds per model before it stops (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-2}"
limit="${LIMIT:-300}"
cargo test --test model_check --no-run
run() {
    echo "== $1 faults=$2 depth=$3"
    HBD_MODEL_FAULTS="$2" HBD_MODEL_DEPTH="$3" HBD_MODEL_THREADS="$threads" HBD_MODEL_TIMEOUT="$limit" \
        cargo test -q --test model_check "$1" -- --exact --nocapture 2>&1 |
        grep -Ev '^\s*$|^running|^test result|filtered out'
}
run two_nodes_one_group 1 60
run two_nodes_one_group_two_faults 2 26
run two_nodes_two_groups 1 40
run two_nodes_two_groups 2 20
run three_nodes_one_group 1 80
run three_nodes_one_group 2 32
