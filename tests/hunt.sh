#!/usr/bin/env bash
# Hunt for fresh counterexamples to the core's properties: the CI suite runs a fixed
# seed (and the persisted regressions); this draws new random cases.
#
#   tests/hunt.sh            20 000 fresh cases of each simulated-network property
#                            (tests/sim_properties.rs, and the mixed-cluster one in
#                            tests/sim_mixed.rs)
#   tests/hunt.sh 100000     as many as you like
#
# A failure is shrunk to a minimal fault sequence, printed, and persisted in
# tests/sim_properties.proptest-regressions (or sim_mixed's; commit it, and add the
# sequence as a `replay` test in tests/sim_properties.rs with the outcome "How hbd
# decides" gives).
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-20000}
start=$(date +%s)
HBD_FRESH_CASES=1 PROPTEST_CASES=$cases cargo test --release --test sim_properties --test sim_mixed -- --nocapture
echo "tests/hunt.sh: $cases fresh cases per property passed in $(( $(date +%s) - start )) s"
