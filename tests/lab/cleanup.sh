#!/bin/bash
# Remove every hbd lab on this machine: lab systemd instances (and everything in their PID
# namespaces), namespaces, bridges, cgroups and files. Safe to run any time, also when no lab
# exists; the Rust harness does the same per lab when a test ends, passes or panics.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/lab.sh" down-all
# What is left (should be nothing):
left=$(ip netns list | grep -c '^hbd-lab-' || true)
if [ "$left" -ne 0 ]; then
    echo "cleanup: $left lab namespaces remain:" >&2
    ip netns list | grep '^hbd-lab-' >&2
    exit 1
fi
