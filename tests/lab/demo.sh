#!/bin/bash
# hbd's main job, live: boot a two-node lab, run hbd on both as hbd.service, show the group
# [VIP 10.99.0.100, tmpfs mount, web unit] on n1, kill -9 n1, show n2 serving, clean up.
#
#   sudo tests/lab/demo.sh        (root; installs what it needs through setup.sh)
#
# The cluster is tests/lab/web/cluster.toml; the lab is tests/lab/lab.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LAB=demo$$
VIP=10.99.0.100
URL="http://$VIP:8080/"
lab() { "$HERE/lab.sh" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '\033[2m%s$\033[0m %s\n' "$1" "${*:2}"; }
on() { local node=$1; shift; show "$node" "$*"; lab exec "$LAB" "$node" "$@"; }
from_client() { show client "$*"; lab client "$LAB" "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "demo.sh: needs root (namespaces, systemd as PID 1)" >&2; exit 1; }

say "setup"
"$HERE/setup.sh"
trap 'say "cleanup"; lab down "$LAB"; echo "lab $LAB removed"' EXIT

say "build hbd"
(cd "$REPO" && cargo build --bin hbd)
HBD="$REPO/target/debug/hbd"

say "boot two nodes (each: its own netns, systemd as PID 1, system bus)"
lab up "$LAB" 2

key=$(mktemp)
chmod 600 "$key"
cp "$HERE/web/authkey" "$key"
for n in n1 n2; do
    lab exec "$LAB" "$n" sh -c 'cat > /run/systemd/system/lab-web.service' < "$HERE/web/lab-web.service"
    lab install-hbd "$LAB" "$n" "$HBD" "$HERE/web/cluster.toml" "$key"
done
rm -f "$key"
on n1 hbd check

say "start hbd on both nodes"
for n in n1 n2; do lab exec "$LAB" "$n" systemctl start --no-block hbd.service; done
served=
for _ in $(seq 150); do
    served=$(lab client "$LAB" curl -sf --connect-timeout 0.2 --max-time 0.5 "$URL" || true)
    [ "$served" = n1 ] && break
    sleep 0.1
done
if [ "$served" != n1 ]; then
    echo "the group did not come up on n1; hbd's journal there:" >&2
    lab exec "$LAB" n1 journalctl --no-pager -u hbd.service >&2 || true
    exit 1
fi

say "the group runs on n1 (its preferred node)"
on n1 systemctl status --no-pager -n 3 hbd.service lab-web.service run-lab-www.mount || true
on n1 ip -4 addr show dev eth0
from_client curl -s "$URL"

# Past initdead (2 s) on both nodes: the takeover below is the steady-state one.
sleep 2

say "kill -9 n1 (its systemd; the kernel kills the whole node) and time the takeover"
# The clock starts just before the kill; the poll runs inside the client namespace.
t0=$(date +%s%N)
lab kill9 "$LAB" n1
# shellcheck disable=SC2016
lab client "$LAB" bash -c '
    for _ in $(seq 1000); do
        [ "$(curl -sf --connect-timeout 0.05 --max-time 0.2 "$1")" = n2 ] && exit 0
        sleep 0.01
    done
    exit 1' _ "$URL" || { echo "n2 did not take over" >&2; lab exec "$LAB" n2 journalctl --no-pager -u hbd.service >&2; exit 1; }
t1=$(date +%s%N)
echo "kill -9 n1 -> VIP answering HTTP from n2: $(( (t1 - t0) / 1000000 )) ms"

say "what n2's hbd saw"
on n2 journalctl -u hbd.service --no-pager -o short-precise -n 12

say "n2 serves the group"
on n2 systemctl status --no-pager -n 3 hbd.service lab-web.service run-lab-www.mount || true
on n2 ip -4 addr show dev eth0
from_client curl -s "$URL"
