#!/usr/bin/env bash
# The one command that runs hbd's tests: installs what they need if it is missing,
# then runs every test target. Exits non-zero if anything fails.
#
#   tests/run.sh             set up if needed, then cargo test
#   tests/run.sh --setup     only set up
#   tests/run.sh -- ARGS     pass ARGS to the test binaries (e.g. a test name filter)
set -euo pipefail
cd "$(dirname "$0")/.."

setup_only=false
if [[ ${1:-} == --setup ]]; then
    setup_only=true
    shift
fi

log() { echo "tests/run.sh: $*" >&2; }

# command -> Debian package. The lab tests use these; the unit tests do not.
declare -A packages=(
    [socat]=socat
    [nft]=nftables
    [ip]=iproute2
    [dbus-daemon]=dbus
    [systemctl]=systemd
    [ping]=iputils-ping
    [curl]=curl
)
missing=()
for cmd in "${!packages[@]}"; do
    if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$cmd && ! -x /sbin/$cmd ]]; then
        missing+=("${packages[$cmd]}")
    fi
done
if ((${#missing[@]})); then
    if ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        log "warning: missing ${missing[*]} (install them as root with apt-get); tests that need them will fail"
    fi
fi

# fmt and clippy for .ci/run; cheap to check here.
if command -v rustup >/dev/null 2>&1; then
    for component in rustfmt clippy; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
            log "adding rustup component $component"
            rustup component add "$component"
        fi
    done
fi

if $setup_only; then
    exit 0
fi

# Randomized tests run a fixed seed here, so every run gives the same verdict; the hunt
# for fresh cases is tests/hunt.sh.
export PROPTEST_RNG_SEED=${PROPTEST_RNG_SEED:-2718281828}

# Unit, integration and binary tests, then doc tests (--all-targets leaves those out);
# then one closing line with the totals of every test binary.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo test --workspace --no-fail-fast --all-targets "$@" 2>&1 | tee -a "$out" || status=$?
cargo test --workspace --doc "$@" 2>&1 | tee -a "$out" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$out"
exit "$status"
