#!/bin/bash
# Measure the takeover time in the lab, ROUNDS times (default 5): boot two nodes with the
# web cluster (tests/lab/web/), wait past initdead, kill -9 n1, and time from just before the
# kill until the VIP answers HTTP from n2, polled from the client namespace every ~10 ms.
# With --heartbeat, the same group under Heartbeat 3.0.6 with the same timings
# (tests/lab/heartbeat/; needs the Debian package heartbeat): the baseline.
#
#   sudo tests/lab/measure.sh [--heartbeat] [ROUNDS]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MODE=hbd
if [ "${1:-}" = --heartbeat ]; then MODE=heartbeat; shift; fi
ROUNDS=${1:-5}
URL=http://10.99.0.100:8080/
lab() { "$HERE/lab.sh" "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "measure.sh: needs root" >&2; exit 1; }
"$HERE/setup.sh" >/dev/null
if [ "$MODE" = hbd ]; then
    (cd "$REPO" && cargo build -q --bin hbd)
    HBD="$REPO/target/debug/hbd"
else
    command -v cl_status >/dev/null ||
        { echo "measure.sh: --heartbeat needs the heartbeat package (apt-get install heartbeat)" >&2; exit 1; }
fi

# start_cluster NODE: the web group's unit and the cluster manager, started.
start_cluster() {
    local n=$1 f
    lab exec "$LAB" "$n" sh -c 'cat > /run/systemd/system/lab-web.service' < "$HERE/web/lab-web.service"
    if [ "$MODE" = hbd ]; then
        lab install-hbd "$LAB" "$n" "$HBD" "$HERE/web/cluster.toml" "$HERE/web/authkey"
        lab exec "$LAB" "$n" systemctl start --no-block hbd.service
    else
        for f in ha.cf haresources authkeys; do
            lab exec "$LAB" "$n" sh -c "umask 077; cat > /etc/ha.d/$f" < "$HERE/heartbeat/$f"
        done
        for f in labweb labmount; do
            lab exec "$LAB" "$n" sh -c "cat > /etc/ha.d/resource.d/$f; chmod 755 /etc/ha.d/resource.d/$f" \
                < "$HERE/heartbeat/$f"
        done
        lab exec "$LAB" "$n" systemctl daemon-reload
        lab exec "$LAB" "$n" systemctl start --no-block heartbeat.service
    fi
}
LAB=
trap '[ -z "$LAB" ] || lab down "$LAB"' EXIT
export HBD_LAB_QUIET=1

results=()
for ((r = 1; r <= ROUNDS; r++)); do
    LAB=meas$$x$r
    lab up "$LAB" 2
    for n in n1 n2; do start_cluster "$n"; done
    for _ in $(seq 300); do
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
        echo "$MODE round $r: kill -9 n1 -> VIP answering HTTP from n2: $ms ms"
        results+=("$ms")
    else
        echo "round $r: n2 did not take over within 20 s" >&2
    fi
    lab down "$LAB"
    LAB=
done
[ ${#results[@]} -gt 0 ] || exit 1
printf '%s\n' "${results[@]}" | sort -n | awk -v mode="$MODE" '
    { v[NR] = $1 }
    END { printf "%s, %d rounds: min %d ms, median %d ms, max %d ms (deadtime 1000 ms, keepalive 200 ms)\n",
          mode, NR, v[1], v[int((NR + 1) / 2)], v[NR] }'
