#!/bin/bash
# Remove leftover hbd labs: lab systemd instances (and everything in their PID namespaces),
# namespaces, bridges, cgroups and files of every lab whose owner process (the test or demo
# that booted it) is gone. `cleanup.sh --all` removes every lab, running ones too (the machine
# may be shared: mind other people's tests). Safe any time, also when no lab exists; the Rust
# harness removes its own lab when a test ends, passes or panics.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/lab.sh" down-all "$@"
if [ "${1:-}" = --all ] && ip netns list | grep -q '^hbd-lab-'; then
    echo "cleanup: lab namespaces remain:" >&2
    ip netns list | grep '^hbd-lab-' >&2
    exit 1
fi
