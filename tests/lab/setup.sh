#!/bin/bash
# Install what the hbd lab needs, from Debian packages, when it is missing. Idempotent: a
# machine that has everything is left alone (no apt-get update, no network).
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "setup.sh: the lab needs root" >&2; exit 1; }

# command -> package that provides it
declare -A need=(
    [ip]=iproute2
    [nft]=nftables
    [socat]=socat
    [dbus-daemon]=dbus
    [busctl]=systemd
    [ping]=iputils-ping
    [curl]=curl
    [pgrep]=procps
    [nsenter]=util-linux
    [unshare]=util-linux
    [findmnt]=util-linux
    [python3]=python3
    # lab_package: `man hbd` in a node, dpkg's helpers for the package's scripts
    [man]=man-db
    [deb-systemd-helper]=init-system-helpers
    # lab_heartbeat_wire: a real Heartbeat 3.0.6 peer (tests/lab/hbwire/capture.sh too)
    [cl_status]=heartbeat
    # lab_observe: `promtool check metrics` on the metrics endpoint's output. Debian
    # ships promtool only with the server (about 95 MB installed); nothing lighter has it.
    [promtool]=prometheus
)
missing=()
for cmd in "${!need[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[ -x /lib/systemd/systemd ] || missing+=(systemd)
if [ "${HBD_LAB_SHELLCHECK:-}" = 1 ] && ! command -v shellcheck >/dev/null; then
    missing+=(shellcheck)
fi

if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Update the package lists only when an install cannot proceed without it.
    if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi

# Kernel features the lab relies on.
problems=()
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || problems+=("overlayfs")
grep -qw cgroup2 /proc/filesystems || problems+=("cgroup2")
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] && [ ! -d /sys/fs/cgroup/unified ]; then
    problems+=("a mounted cgroup2 hierarchy (/sys/fs/cgroup or /sys/fs/cgroup/unified)")
fi
# One probe per run: two checkouts may set the lab up at the same time.
probe=hbd-lab-setup-probe-$$
ip netns add "$probe"
trap 'ip netns del "$probe" 2>/dev/null || true' EXIT
ip -n "$probe" link add p0 type veth peer name p1 2>/dev/null || problems+=("veth")
ip -n "$probe" link add b0 type bridge 2>/dev/null || problems+=("bridge")
ip netns exec "$probe" nft add table inet probe 2>/dev/null || problems+=("nftables")
if [ ${#problems[@]} -gt 0 ]; then
    echo "setup: this kernel lacks: ${problems[*]}" >&2
    exit 1
fi
echo "setup: lab ready"
