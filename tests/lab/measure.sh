#!/bin/bash
# Measure hbd's takeover time in the lab, ROUNDS times (default 5): boot two nodes with the
# web cluster (tests/lab/web/), wait past initdead, kill -9 n1, and time from just before the
# kill until the VIP answers HTTP from n2, polled from the client namespace every ~10 ms.
#
#   sudo tests/lab/measure.sh [ROUNDS]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ROUNDS=${1:-5}
URL=http://10.99.0.100:8080/
lab() { "$HERE/lab.sh" "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "measure.sh: needs root" >&2; exit 1; }
"$HERE/setup.sh" >/dev/null
(cd "$REPO" && cargo build -q --bin hbd)
HBD="$REPO/target/debug/hbd"
LAB=
trap '[ -z "$LAB" ] || lab down "$LAB"' EXIT
export HBD_LAB_QUIET=1

results=()
for ((r = 1; r <= ROUNDS; r++)); do
    LAB=meas$$x$r
    lab up "$LAB" 2
    for n in n1 n2; do
        lab exec "$LAB" "$n" sh -c 'cat > /run/systemd/system/lab-web.service' < "$HERE/web/lab-web.service"
        lab install-hbd "$LAB" "$n" "$HBD" "$HERE/web/cluster.toml" "$HERE/web/authkey"
        lab exec "$LAB" "$n" systemctl start --no-block hbd.service
    done
    for _ in $(seq 150); do
        [ "$(lab client "$LAB" curl -sf --max-time 0.5 "$URL" || true)" = n1 ] && break
        sleep 0.1
    done
    sleep 2.5 # past initdead
    t0=$(date +%s%N)
    lab kill9 "$LAB" n1
    # shellcheck disable=SC2016
    if lab client "$LAB" bash -c '
        for _ in $(seq 2000); do
            [ "$(curl -sf --connect-timeout 0.05 --max-time 0.2 "$1")" = n2 ] && exit 0
            sleep 0.01
        done
        exit 1' _ "$URL"; then
        ms=$((($(date +%s%N) - t0) / 1000000))
        echo "round $r: kill -9 n1 -> VIP answering HTTP from n2: $ms ms"
        results+=("$ms")
    else
        echo "round $r: n2 did not take over within 20 s" >&2
    fi
    lab down "$LAB"
    LAB=
done
[ ${#results[@]} -gt 0 ] || exit 1
printf '%s\n' "${results[@]}" | sort -n | awk '
    { v[NR] = $1 }
    END { printf "%d rounds: min %d ms, median %d ms, max %d ms (deadtime 1000 ms, keepalive 200 ms)\n",
          NR, v[1], v[int((NR + 1) / 2)], v[NR] }'
