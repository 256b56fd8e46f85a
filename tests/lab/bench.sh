#!/bin/bash
# hbd, keepalived 2.2.7 and Heartbeat 3.0.6 side by side in the lab, for the same two-node
# group: a VIP (10.99.0.100/24 on eth0) and a service answering HTTP on it (bench-web, a
# python http.server started by each manager on takeover). Installs keepalived, heartbeat
# and resource-agents (Debian packages) when missing.
#
#   sudo tests/lab/bench.sh [-n ROUNDS] [-i IDLE_S] [-s "2 8 16 32"] [-o DIR] [--systems "..."]
#
# Defaults: 20 rounds, 120 s idle, 2 8 16 32 nodes, all four systems (~40 min on 2 cores).
# -i 0 skips the idle and node-count phases (the CI smoke test: -n 1 -i 0).
#
# Per round, interleaved (hbd, hbd-noprobe, keepalived, heartbeat, then again), on a fresh
# two-node lab each:
#   handover_*: a clean hand-over n1 -> n2 (hbd: hbd standby, cleared afterwards with hbd
#               clear; keepalived: n1's priority lowered + reload; heartbeat: hb_standby),
#               from the command to the VIP added on n2 (netlink event) / to the first HTTP
#               answer from n2 at the client;
#   kill_*:     kill -9 of the owner n2 with its switch ports unplugged, to the VIP added on
#               n1 (netlink event, no polling) / to the first HTTP answer from n1 (curl from
#               the client namespace every ~10 ms);
#   hb_gap_max_*: (hbd) the longest gap between two heartbeats the survivor sent in the
#               second before the kill (idle: the machine's own noise) and in the 2 s after
#               it (takeover included); keepalive 100 ms, so 100 = on schedule;
#   arp_answer: (lan) time from an ARP probe to the holder's answer, 100 probes: what the
#               probe_wait of an ip resource must cover;
#   group_*:    (hbd) the survivor's journal: the whole group start, the VIP's part (probe
#               included), the unit's start job (the unit's own start time), and the group
#               minus the unit's job (what hbd adds);
#   dead_vip:   the survivor's journal line saying the peer is dead (hbd: "peer n2 is dead",
#               keepalived: "Entering MASTER STATE") to the VIP added.
# Detection is matched: hbd keepalive 100ms / deadtime 360ms; keepalived VRRPv3 advert_int
# 0.1 (master down 3 x 0.1 s + skew 0.061 s = 361 ms); Heartbeat keepalive 100ms /
# deadtime 360ms. Then idle at 1 Hz for IDLE_S seconds (default 120) per system: CPU (from
# schedstat, scaled to 120 s) and PSS of every process of the daemon, on the owner and the
# backup; and hbd alone at each node count of -s (multicast link, keepalive 100ms): CPU per
# node per minute, RSS and PSS, on n1 and on the last node.
#
# Output: a table (min/median/p95/max), ratios against keepalived, DIR/results.csv
# (system,nodes,round,metric,value,unit) and DIR/kill_vip.svg. HBD_BIN: the hbd to run
# (default: a release build of this tree). Default DIR: /tmp/hbd-bench. BENCH_HBD_RT=1 runs
# hbd with real-time scheduling (CPUSchedulingPolicy=rr), as Heartbeat runs itself.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ROUNDS=20
IDLE=120
SCALE="2 8 16 32"
OUT=/tmp/hbd-bench
SYSTEMS="hbd hbd-noprobe keepalived heartbeat"
while [ $# -gt 0 ]; do
    case $1 in
        -n) ROUNDS=$2; shift 2 ;;
        -i) IDLE=$2; shift 2 ;;
        -s) SCALE=$2; shift 2 ;;
        -o) OUT=$2; shift 2 ;;
        --systems) SYSTEMS=$2; shift 2 ;;
        *) sed -n '2,30p' "$0" >&2; exit 2 ;;
    esac
done
VIP=10.99.0.100
URL=http://$VIP:8080/
lab() { "$HERE/lab.sh" "$@"; }
T0=$(date +%s)
log() { echo "bench [$(($(date +%s) - T0))s]: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { echo "bench.sh: needs root" >&2; exit 1; }
"$HERE/setup.sh" >/dev/null
missing=()
command -v keepalived >/dev/null || missing+=(keepalived)
command -v cl_status >/dev/null || missing+=(heartbeat)
[ -e /usr/lib/ocf/resource.d/heartbeat/IPaddr ] || missing+=(resource-agents)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi
if [ -z "${HBD_BIN:-}" ]; then
    (cd "$REPO" && cargo build -q --release --bin hbd)
    HBD_BIN=$REPO/target/release/hbd
fi
mkdir -p "$OUT"
CSV=$OUT/results.csv
echo "system,nodes,round,metric,value,unit" > "$CSV"
WORK=$(mktemp -d /tmp/hbd-bench.XXXXXX)
LAB=
cleanup() {
    [ -z "$LAB" ] || lab down "$LAB" || true
    jobs -p | xargs -r kill 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
export HBD_LAB_QUIET=1 HBD_LAB_OWNER=$$
now_ns() { date +%s%N; }
SEQ=0
new_lab() { SEQ=$((SEQ + 1)); LAB=b${SEQ}x$$; }
per() { awk -v d="$1" -v s="$2" -v w="$3" 'BEGIN { printf "%.2f", d / 1e6 * w / s }'; } # NS SECS WINDOW -> ms per window
ms() { echo $((($2 - $1) / 1000)) | awk '{ printf "%.1f", $1 / 1000 }'; }
row() { echo "$1,$2,$3,$4,$5,$6" >> "$CSV"; }

# ---- configurations ----------------------------------------------------------------------
printf '1 %s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$WORK/authkey"
hbd_conf() { # KEEPALIVE WARN DEAD INIT PROBE
    cat <<EOF
[cluster]
name = "bench"
[timing]
keepalive = "$1"
warntime = "$2"
deadtime = "$3"
initdead = "$4"
[failover]
auto_failback = false
hold_down = "1s"
[[link]]
name = "a"
kind = "udp-unicast"
interface = "eth0"
[[link]]
name = "b"
kind = "udp-unicast"
interface = "eth1"
[[node]]
name = "n1"
address.a = "10.99.0.1"
address.b = "10.98.0.1"
[[node]]
name = "n2"
address.a = "10.99.0.2"
address.b = "10.98.0.2"
[[group]]
name = "web"
preferred = "n1"
[[group.resource]]
kind = "ip"
address = "$VIP/24"
interface = "eth0"
probe_wait = "$5"
[[group.resource]]
kind = "unit"
unit = "bench-web.service"
EOF
}
keepalived_conf() { # NODE PRIORITY ADVERT
    local me=$1 peer
    [ "$me" = n1 ] && peer=10.99.0.2 || peer=10.99.0.1
    cat <<EOF
global_defs {
    vrrp_version 3
    vrrp_garp_master_delay 0
    enable_script_security
    script_user root
}
vrrp_instance web {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority $2
    advert_int $3
    unicast_src_ip 10.99.0.${me#n}
    unicast_peer {
        $peer
    }
    virtual_ipaddress {
        $VIP/24 dev eth0
    }
    notify_master "/bin/systemctl start bench-web.service"
    notify_backup "/bin/systemctl stop bench-web.service"
    notify_fault "/bin/systemctl stop bench-web.service"
}
EOF
}
heartbeat_conf() { # KEEPALIVE WARN DEAD INITDEAD
    cat <<EOF
logfile /var/log/ha-log
debugfile /dev/null
keepalive $1
warntime $2
deadtime $3
initdead $4
udpport 694
ucast eth0 10.99.0.1
ucast eth0 10.99.0.2
ucast eth1 10.98.0.1
ucast eth1 10.98.0.2
auto_failback off
node n1
node n2
crm no
EOF
}
cat > "$WORK/bench-web.service" <<EOF
[Unit]
Description=bench web server on the VIP
[Service]
ExecStartPre=/bin/sh -c 'mkdir -p /run/bench && hostname > /run/bench/index.html'
ExecStart=/usr/bin/python3 -m http.server --bind $VIP --directory /run/bench 8080
EOF
cat > "$WORK/benchweb" <<'EOF'
#!/bin/sh
case "$1" in
    start) exec systemctl start bench-web.service ;;
    stop) exec systemctl stop bench-web.service ;;
    status) if systemctl -q is-active bench-web.service; then echo running; else echo stopped; fi ;;
esac
EOF

# put NODE FILE MODE PATH: copy a host file into the node.
put() { lab exec "$LAB" "$1" sh -c "umask 077; cat > '$4'; chmod $3 '$4'" < "$2"; }

# start SYSTEM NODE RATE: install and start SYSTEM on NODE; RATE is fast (takeover) or idle.
start() {
    local sys=$1 n=$2 rate=$3 prio
    put "$n" "$WORK/bench-web.service" 644 /run/systemd/system/bench-web.service
    case $sys in
        hbd | hbd-noprobe)
            if [ "$rate" = fast ]; then
                hbd_conf 100ms 200ms 360ms 1s "$([ "$sys" = hbd ] && echo 15ms || echo 0s)"
            else
                hbd_conf 1s 2s 3s 6s 15ms
            fi > "$WORK/cluster.toml"
            lab install-hbd "$LAB" "$n" "$HBD_BIN" "$WORK/cluster.toml" "$WORK/authkey"
            if [ "${BENCH_HBD_RT:-0}" = 1 ]; then
                # Real-time scheduling, as Heartbeat gives itself: separates the event
                # loop's own delays from the machine's run-queue waits.
                printf '[Service]\nCPUSchedulingPolicy=rr\nCPUSchedulingPriority=50\n' > "$WORK/rt.conf"
                lab exec "$LAB" "$n" mkdir -p /run/systemd/system/hbd.service.d
                put "$n" "$WORK/rt.conf" 644 /run/systemd/system/hbd.service.d/rt.conf
                lab exec "$LAB" "$n" systemctl daemon-reload
            fi
            lab exec "$LAB" "$n" systemctl start --no-block hbd.service ;;
        keepalived)
            [ "$n" = n1 ] && prio=150 || prio=100
            lab exec "$LAB" "$n" mkdir -p /etc/keepalived
            keepalived_conf "$n" $prio "$([ "$rate" = fast ] && echo 0.1 || echo 1)" > "$WORK/ka-$n.conf"
            put "$n" "$WORK/ka-$n.conf" 644 /etc/keepalived/keepalived.conf
            lab exec "$LAB" "$n" systemctl daemon-reload
            lab exec "$LAB" "$n" systemctl start --no-block keepalived.service ;;
        heartbeat)
            if [ "$rate" = fast ]; then heartbeat_conf 100ms 200ms 360ms 2; else heartbeat_conf 1 2 3 6; fi > "$WORK/ha.cf"
            put "$n" "$WORK/ha.cf" 644 /etc/ha.d/ha.cf
            echo "n1 IPaddr::$VIP/24/eth0 benchweb" > "$WORK/haresources"
            put "$n" "$WORK/haresources" 644 /etc/ha.d/haresources
            printf 'auth 1\n1 sha1 %s\n' "$(cut -d' ' -f2 "$WORK/authkey")" > "$WORK/authkeys"
            put "$n" "$WORK/authkeys" 600 /etc/ha.d/authkeys
            put "$n" "$WORK/benchweb" 755 /etc/ha.d/resource.d/benchweb
            lab exec "$LAB" "$n" systemctl daemon-reload
            lab exec "$LAB" "$n" systemctl start --no-block heartbeat.service ;;
    esac
}

# wait_http NODE [TRIES]: until the VIP answers HTTP with NODE's name (10 ms steps).
wait_http() {
    # shellcheck disable=SC2016
    lab client "$LAB" bash -c '
        for _ in $(seq "$3"); do
            [ "$(curl -sf --connect-timeout 0.05 --max-time 0.2 "$1")" = "$2" ] && { date +%s%N; exit 0; }
            sleep 0.01
        done
        exit 1' _ "$URL" "$1" "${2:-2000}"
}

# vip_watch NODE FILE: start a netlink watcher for the VIP in NODE's namespace, wait until
# it listens; it writes the event's time (ns) to FILE.
vip_watch() {
    local f=$2
    : > "$f"
    ip netns exec "hbd-lab-$LAB-$1" python3 "$HERE/bench/vipwait.py" "$VIP" 30 > "$f" 2>/dev/null &
    for _ in $(seq 200); do grep -q ready "$f" && return 0; sleep 0.01; done
    log "the VIP watcher did not start"; return 1
}
# gaps_watch NODE FILE: record NODE's heartbeats on eth1 for 3 s from now (hbgaps.py).
gaps_watch() {
    : > "$2"
    ip netns exec "hbd-lab-$LAB-$1" python3 "$HERE/bench/hbgaps.py" eth1 3 > "$2" 2>/dev/null &
    for _ in $(seq 200); do grep -q ready "$2" && return 0; sleep 0.01; done
    return 1
}
vip_time() { for _ in $(seq 300); do sed -n 2p "$1" | grep -q . && { sed -n 2p "$1"; return 0; }; sleep 0.05; done; return 1; }

# journal_ns NODE UNIT PATTERN: wall-clock ns of the last journal line matching PATTERN.
journal_ns() {
    lab exec "$LAB" "$1" journalctl -q -u "$2" -o short-unix --no-pager 2>/dev/null |
        grep -- "$3" | tail -1 | awk '{ printf "%d\n", $1 * 1000000000 }'
}

handover() { # SYSTEM: n1 gives the group to n2
    case $1 in
        hbd | hbd-noprobe) lab exec "$LAB" n1 hbd standby --no-wait >/dev/null ;;
        keepalived)
            keepalived_conf n1 50 0.1 > "$WORK/ka-n1.conf"
            put n1 "$WORK/ka-n1.conf" 644 /etc/keepalived/keepalived.conf
            lab exec "$LAB" n1 systemctl reload keepalived.service ;;
        heartbeat) lab exec "$LAB" n1 /usr/share/heartbeat/hb_standby all >/dev/null 2>&1 ;;
    esac
}

# round SYSTEM R: one hand-over and one kill on a fresh lab.
round() {
    local sys=$1 r=$2 t0 tv th td unit pat hv hh
    new_lab
    lab up "$LAB" 2
    start "$sys" n1 fast
    start "$sys" n2 fast
    wait_http n1 3000 >/dev/null || { log "$sys round $r: n1 never served"; lab down "$LAB"; LAB=; return 0; }
    sleep 1.5 # past initdead (1 s), both settled
    vip_watch n2 "$WORK/vip"
    t0=$(now_ns)
    handover "$sys"
    if ! th=$(wait_http n2) || ! tv=$(vip_time "$WORK/vip"); then
        log "$sys round $r: no hand-over"; lab down "$LAB"; LAB=; return 0
    fi
    hv=$(ms "$t0" "$tv") hh=$(ms "$t0" "$th")
    row "$sys" 2 "$r" handover_vip_ms "$hv" ms
    row "$sys" 2 "$r" handover_http_ms "$hh" ms
    # n1 back as the backup (hbd: forget the standby; the others are backups already).
    case $sys in hbd | hbd-noprobe) lab exec "$LAB" n1 hbd clear >/dev/null ;; esac
    sleep 1.5
    vip_watch n1 "$WORK/vip"
    case $sys in hbd*) gaps_watch n1 "$WORK/gaps" && sleep 1 ;; esac
    t0=$(now_ns)
    lab kill9 "$LAB" n2
    if ! th=$(wait_http n1) || ! tv=$(vip_time "$WORK/vip"); then
        log "$sys round $r: no takeover"; lab down "$LAB"; LAB=; return 0
    fi
    row "$sys" 2 "$r" kill_vip_ms "$(ms "$t0" "$tv")" ms
    row "$sys" 2 "$r" kill_http_ms "$(ms "$t0" "$th")" ms
    case $sys in
        hbd | hbd-noprobe) unit=hbd pat="peer n2 is dead" ;;
        keepalived) unit=keepalived pat="Entering MASTER STATE" ;;
        *) unit= ;;
    esac
    if [ -n "$unit" ]; then
        # The last MASTER line of keepalived is the takeover (the first was at start).
        # The last line: the one of this takeover (hbd on n1 ran twice, keepalived
        # entered MASTER at start too).
        td=$(journal_ns n1 "$unit" "$pat")
        [ -z "$td" ] || row "$sys" 2 "$r" dead_vip_ms "$(ms "$td" "$tv")" ms
    fi
    case $sys in
        hbd*)
            # The survivor's own account of the group start: the whole group, the VIP
            # (probe included), the unit's start job (the unit's own start time).
            lab exec "$LAB" n1 journalctl -q -u hbd -o cat --no-pager | awk '
                function msec(d) {
                    if (d ~ /ms$/) return d + 0
                    if (d ~ /µs$/) return d / 1000
                    if (d ~ /ns$/) return d / 1e6
                    return d * 1000
                }
                { if (match($0, /\(([0-9.]+[a-zµ]+)\)$/)) { v = substr($0, RSTART + 1, RLENGTH - 2) } else next }
                /^group web started/ { g = msec(v) }
                /up on eth0/ { i = msec(v) }
                /^bench-web.service is active/ { u = msec(v) }
                END { if (g != "") printf "%.2f %.2f %.2f\n", g, i, u }' > "$WORK/start"
            read -r g i u < "$WORK/start" || true
            if [ -n "${g:-}" ]; then
                row "$sys" 2 "$r" group_start_ms "$g" ms
                row "$sys" 2 "$r" group_vip_ms "$i" ms
                row "$sys" 2 "$r" group_unit_job_ms "$u" ms
                row "$sys" 2 "$r" group_overhead_ms "$(awk -v g="$g" -v u="$u" 'BEGIN { printf "%.2f", g - u }')" ms
            fi ;;
    esac
    case $sys in
        hbd*)
            wait
            # The longest gap between two sends in the second before the kill (the
            # machine's own noise) and in the 2 s after it (takeover included).
            read -r before after < <(sed 1d "$WORK/gaps" | awk -v t0="$t0" '
                NR > 1 { g = ($1 - prev) / 1e6; if ($1 < t0) { if (g > b) b = g } else if (g > a) a = g }
                { prev = $1 }
                END { printf "%.2f %.2f\n", b, a }')
            row "$sys" 2 "$r" hb_gap_max_idle_ms "$before" ms
            row "$sys" 2 "$r" hb_gap_max_takeover_ms "$after" ms ;;
    esac
    log "$sys round $r: hand-over -> VIP $hv ms, -> HTTP $hh ms; kill -> VIP $(ms "$t0" "$tv") ms, -> HTTP $(ms "$t0" "$th") ms"
    lab down "$LAB"
    LAB=
}

# usage NODE NAME...: "cpu_ns pss_kb rss_kb" summed over every process named NAME in NODE.
usage() {
    local n=$1
    shift
    # shellcheck disable=SC2016
    lab exec "$LAB" "$n" sh -c '
        cpu=0 pss=0 rss=0
        for name in "$@"; do
            for p in $(pgrep -x "$name"); do
                for t in /proc/$p/task/*/schedstat; do
                    read -r c _ < "$t" && cpu=$((cpu + c))
                done
                pss=$((pss + $(awk "/^Pss:/ { print \$2 }" /proc/$p/smaps_rollup)))
                rss=$((rss + $(awk "/^Rss:/ { print \$2 }" /proc/$p/smaps_rollup)))
            done
        done
        echo $cpu $pss $rss' _ "$@"
}
procs() { case $1 in hbd*) echo hbd ;; keepalived) echo keepalived ;; heartbeat) echo heartbeat ;; esac; }

idle() { # SYSTEM: both nodes at 1 Hz for IDLE seconds
    local sys=$1 a1 a2 b1 b2
    new_lab
    lab up "$LAB" 2
    start "$sys" n1 idle
    start "$sys" n2 idle
    wait_http n1 3000 >/dev/null || log "$sys idle: n1 never served"
    sleep 8 # past hbd's initdead at 1 Hz, everything settled
    read -r -a a1 <<< "$(usage n1 "$(procs "$sys")")"
    read -r -a a2 <<< "$(usage n2 "$(procs "$sys")")"
    sleep "$IDLE"
    read -r -a b1 <<< "$(usage n1 "$(procs "$sys")")"
    read -r -a b2 <<< "$(usage n2 "$(procs "$sys")")"
    row "$sys" 2 n1 idle_cpu_ms_per_120s "$(per "$((b1[0] - a1[0]))" "$IDLE" 120)" ms
    row "$sys" 2 n1 idle_pss_kb "${b1[1]}" kB
    row "$sys" 2 n2 idle_cpu_ms_per_120s "$(per "$((b2[0] - a2[0]))" "$IDLE" 120)" ms
    row "$sys" 2 n2 idle_pss_kb "${b2[1]}" kB
    log "$sys idle: owner cpu $(((b1[0] - a1[0]) / 1000000)) ms / $IDLE s, pss ${b1[1]} kB; backup $(((b2[0] - a2[0]) / 1000000)) ms, pss ${b2[1]} kB"
    lab down "$LAB"
    LAB=
}

scale_conf() { # N
    printf '[cluster]\nname = "scale"\n[timing]\nkeepalive = "100ms"\nwarntime = "300ms"\ndeadtime = "600ms"\ninitdead = "2s"\n'
    printf '[[link]]\nname = "m"\nkind = "udp-multicast"\ninterface = "eth0"\ngroup = "239.0.0.94"\n'
    for ((i = 1; i <= $1; i++)); do printf '[[node]]\nname = "n%d"\n' "$i"; done
    printf '[[group]]\nname = "web"\npreferred = "n1"\n[[group.resource]]\nkind = "ip"\naddress = "%s/24"\ninterface = "eth0"\n' "$VIP"
}

scale() { # N: hbd alone on N nodes
    local count=$1 i n secs=$IDLE a1 an b1 bn
    [ "$secs" -le 60 ] || secs=60
    new_lab
    lab up "$LAB" "$count"
    scale_conf "$count" > "$WORK/scale.toml"
    for ((i = 1; i <= count; i++)); do
        lab install-hbd "$LAB" "n$i" "$HBD_BIN" "$WORK/scale.toml" "$WORK/authkey"
        lab exec "$LAB" "n$i" systemctl start --no-block hbd.service
    done
    sleep 5
    read -r -a a1 <<< "$(usage n1 hbd)"
    read -r -a an <<< "$(usage "n$count" hbd)"
    sleep "$secs"
    read -r -a b1 <<< "$(usage n1 hbd)"
    read -r -a bn <<< "$(usage "n$count" hbd)"
    row hbd "$count" n1 scale_cpu_ms_per_min "$(per "$((b1[0] - a1[0]))" "$secs" 60)" ms
    row hbd "$count" "n$count" scale_cpu_ms_per_min "$(per "$((bn[0] - an[0]))" "$secs" 60)" ms
    row hbd "$count" n1 scale_pss_kb "${b1[1]}" kB
    row hbd "$count" n1 scale_rss_kb "${b1[2]}" kB
    row hbd "$count" "n$count" scale_pss_kb "${bn[1]}" kB
    row hbd "$count" "n$count" scale_rss_kb "${bn[2]}" kB
    log "hbd at $count nodes: n1 $(((b1[0] - a1[0]) / 1000000)) ms CPU in ${secs}s, rss ${b1[2]} kB"
    lab down "$LAB"
    LAB=
}

# How fast a holder answers the duplicate-address probe on this LAN: what hbd's
# probe_wait must cover (100 probes from n2 for n1's address).
arp_answers() {
    new_lab
    lab up "$LAB" 2
    ip netns exec "hbd-lab-$LAB-n2" python3 "$HERE/bench/arprtt.py" eth0 10.99.0.1 100 |
        while read -r v; do [ "$v" = lost ] || row lan 2 probe arp_answer_ms "$v" ms; done
    lab down "$LAB"
    LAB=
}

log "rounds $ROUNDS, idle ${IDLE}s, nodes $SCALE, systems $SYSTEMS, hbd $HBD_BIN"
arp_answers
for ((r = 1; r <= ROUNDS; r++)); do
    for sys in $SYSTEMS; do round "$sys" "$r"; done
done
if [ "$IDLE" -gt 0 ]; then
    for sys in $SYSTEMS; do [ "$sys" = hbd-noprobe ] || idle "$sys"; done
    for count in $SCALE; do scale "$count"; done
fi
python3 "$HERE/bench/report.py" "$CSV" "$OUT/kill_vip.svg" \
    "$(date -u +%F), $(nproc) cores, $ROUNDS rounds, tests/lab/bench.sh"
echo "csv: $CSV"
