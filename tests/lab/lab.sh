#!/bin/bash
# The hbd test lab: N nodes on one machine, each a network namespace plus its own systemd as
# PID 1 of a PID namespace, with its own system bus, joined by two switched networks.
#
#   net A  10.99.0.0/24  node i = 10.99.0.i on eth0, client = 10.99.0.254
#   net B  10.98.0.0/24  node i = 10.98.0.i on eth1, client = 10.98.0.254
#
# Both networks are bridges inside a switch namespace; nothing is routed out and no address
# outside the namespaces is ever used. A lab is named by a short id (LAB) so several labs (one
# per test) can run at once: its namespaces are hbd-lab-LAB-{sw,client,n1,...}, its files live
# under /tmp/hbd-lab/LAB, its cgroups are hbd-lab-LAB-NODE.
#
# Usage: lab.sh COMMAND LAB [ARGS...]   (lab.sh help)
set -euo pipefail

LAB_ROOT=${HBD_LAB_ROOT:-/tmp/hbd-lab}
PREFIX=hbd-lab
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NET_A=10.99.0
NET_B=10.98.0
CLIENT_HOST=254

die() { echo "lab.sh: $*" >&2; exit 1; }
log() { [ -n "${HBD_LAB_QUIET:-}" ] || echo "lab: $*" >&2; }

ns() { echo "$PREFIX-$1-$2"; }          # ns LAB NODE -> namespace name
node_dir() { echo "$LAB_ROOT/$1/$2"; }

# The unified (cgroup2) hierarchy: /sys/fs/cgroup on a pure-v2 host, /sys/fs/cgroup/unified
# on a hybrid one.
cg_root() {
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        echo /sys/fs/cgroup
    elif [ -d /sys/fs/cgroup/unified ]; then
        echo /sys/fs/cgroup/unified
    else
        die "no cgroup2 hierarchy mounted"
    fi
}
node_cg() { echo "$(cg_root)/$PREFIX-$1-$2"; }

node_index() {
    local n=${1#n}
    if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 253 ]; then
        die "node names are n1 ... n253: $1"
    fi
    echo "$n"
}

# Host PID of the node's systemd: the process in the node's network namespace that is
# PID 1 of its own PID namespace.
node_pid() {
    local want pid nspid
    [ -e "/run/netns/$(ns "$1" "$2")" ] || return 1
    want=$(stat -Lc %i "/run/netns/$(ns "$1" "$2")")
    for pid in $(ip netns pids "$(ns "$1" "$2")" 2>/dev/null); do
        [ "$(stat -Lc %i "/proc/$pid/ns/net" 2>/dev/null)" = "$want" ] || continue
        nspid=$(awk '/^NSpid:/ { print $NF }' "/proc/$pid/status" 2>/dev/null) || continue
        if [ "$nspid" = 1 ]; then echo "$pid"; return 0; fi
    done
    return 1
}

need_pid() { node_pid "$1" "$2" || die "node $2 of lab $1 is not running"; }

in_node() {
    local lab=$1 node=$2 pid
    shift 2
    pid=$(need_pid "$lab" "$node")
    nsenter -t "$pid" -m -p -u -n -C -- "$@"
}

# ---------------------------------------------------------------------------------------------

cmd_switch() {
    local lab=$1 sw
    sw=$(ns "$lab" sw)
    [ -e "/run/netns/$sw" ] && return 0
    ip netns add "$sw"
    ip -n "$sw" link set lo up
    for br in br-a br-b; do
        ip -n "$sw" link add "$br" type bridge
        # No STP or forwarding delay: ports forward as soon as they are up.
        ip -n "$sw" link set "$br" type bridge forward_delay 0 stp_state 0
        ip -n "$sw" link set "$br" up
    done
}

# attach LAB NODE NS HOSTNUM: two veth pairs, eth0 on net A and eth1 on net B.
attach() {
    local lab=$1 node=$2 target=$3 host=$4 sw
    sw=$(ns "$lab" sw)
    ip -n "$sw" link add "$node-a" type veth peer name eth0 netns "$target"
    ip -n "$sw" link add "$node-b" type veth peer name eth1 netns "$target"
    ip -n "$sw" link set "$node-a" master br-a up
    ip -n "$sw" link set "$node-b" master br-b up
    ip -n "$target" link set lo up
    ip -n "$target" addr add "$NET_A.$host/24" dev eth0
    ip -n "$target" addr add "$NET_B.$host/24" dev eth1
    ip -n "$target" link set eth0 up
    ip -n "$target" link set eth1 up
}

cmd_client() {
    local lab=$1 c
    c=$(ns "$lab" client)
    [ -e "/run/netns/$c" ] && return 0
    cmd_switch "$lab"
    ip netns add "$c"
    attach "$lab" client "$c" "$CLIENT_HOST"
}

# boot LAB NODE: (re)create the node's namespace and links, start its systemd, wait for it.
cmd_boot() {
    local lab=$1 node=$2 idx n dir cg pid i state
    idx=$(node_index "$node")
    n=$(ns "$lab" "$node")
    dir=$(node_dir "$lab" "$node")
    cmd_switch "$lab"
    remove_node "$lab" "$node"
    mkdir -p "$dir"
    ip netns add "$n"
    attach "$lab" "$node" "$n" "$idx"
    # The node's cgroup: "node" holds its systemd (which gets a cgroup namespace rooted there,
    # so it manages only its own subtree), "supervisor" the unshare process outside it. The
    # node's cgroup itself holds no process, so controllers can be delegated to the node, and
    # freezing or killing it takes everything.
    cg=$(node_cg "$lab" "$node")
    mkdir -p "$cg/supervisor" "$cg/node"
    local c controllers
    read -ra controllers < "$cg/cgroup.controllers" || true
    for c in "${controllers[@]}"; do
        echo "+$c" > "$cg/cgroup.subtree_control" 2>/dev/null || true
    done
    local t0
    t0=$(date +%s%N)
    (
        echo "$BASHPID" > "$cg/supervisor/cgroup.procs"
        exec setsid nsenter --net="/run/netns/$n" \
            unshare --pid --fork --mount --uts --propagation private \
            "$HERE/node-init.sh" "$node" "$dir" "$cg/node"
    ) </dev/null >"$dir/boot.log" 2>&1 &
    for ((i = 0; i < 300; i++)); do
        if pid=$(node_pid "$lab" "$node"); then
            state=$(nsenter -t "$pid" -m -p -u -n -C systemctl is-system-running 2>/dev/null || true)
            case $state in
                running|degraded)
                    log "$node up (pid $pid, $state, $((($(date +%s%N) - t0) / 1000000)) ms)"
                    return 0 ;;
            esac
        fi
        sleep 0.1
    done
    echo "--- boot.log" >&2; cat "$dir/boot.log" >&2 || true
    echo "--- console" >&2; tail -n 30 "$dir/console" >&2 || true
    die "node $node of lab $lab did not come up (state: ${state:-no systemd})"
}

# up LAB N: switch, client and nodes n1..nN.
cmd_up() {
    local lab=$1 count=$2 i
    [[ $lab =~ ^[a-z0-9]{1,12}$ ]] || die "lab id must be 1-12 of [a-z0-9]: $lab"
    # The owner (the test process, demo.sh, or the shell that ran lab.sh): cleanup.sh
    # removes a lab only once its owner is gone, so it never pulls a running test's nodes.
    mkdir -p "$LAB_ROOT/$lab"
    echo "${HBD_LAB_OWNER:-$PPID}" > "$LAB_ROOT/$lab/owner"
    cmd_switch "$lab"
    cmd_client "$lab"
    for ((i = 1; i <= count; i++)); do cmd_boot "$lab" "n$i"; done
}

# Kill a node hard and remove everything it had: namespace, links, cgroup, files.
remove_node() {
    local lab=$1 node=$2 n pid pids cg i
    n=$(ns "$lab" "$node")
    cg=$(node_cg "$lab" "$node")
    pid=$(node_pid "$lab" "$node") || pid=
    [ -n "$pid" ] && { kill -9 "$pid" 2>/dev/null || true; }
    if [ -d "$cg" ]; then
        if [ -e "$cg/cgroup.freeze" ]; then echo 0 > "$cg/cgroup.freeze" || true; fi
        if [ -e "$cg/cgroup.kill" ]; then echo 1 > "$cg/cgroup.kill" || true; fi
    fi
    # Its parent (unshare) reaps it and exits; whatever else is left in the namespace
    # (nsenter'd commands, say) is killed after that.
    for ((i = 0; i < 100; i++)); do
        if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then break; fi
        sleep 0.02
    done
    if [ -e "/run/netns/$n" ]; then
        for ((i = 0; i < 100; i++)); do
            pids=$(ip netns pids "$n" 2>/dev/null) || break
            [ -n "$pids" ] || break
            # shellcheck disable=SC2086
            kill -9 $pids 2>/dev/null || true
            sleep 0.02
        done
    fi
    ip -n "$(ns "$lab" sw)" link del "$node-a" 2>/dev/null || true
    ip -n "$(ns "$lab" sw)" link del "$node-b" 2>/dev/null || true
    if [ -e "/run/netns/$n" ]; then ip netns del "$n" || true; fi
    if [ -d "$cg" ]; then
        for ((i = 0; i < 100; i++)); do
            find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
            [ -d "$cg" ] || break
            sleep 0.05
        done
    fi
    rm -rf "$(node_dir "$lab" "$node")"
}

# down LAB: remove every node, the client and the switch of one lab.
cmd_down() {
    local lab=$1 name node
    for name in $(ip netns list | awk '{print $1}' | grep "^$PREFIX-$lab-" || true); do
        node=${name#"$PREFIX-$lab-"}
        case $node in
            sw|client) ;;
            *) remove_node "$lab" "$node" ;;
        esac
    done
    # Nodes that lost their namespace but kept a cgroup or files.
    for name in "$(cg_root)/$PREFIX-$lab-"*; do
        [ -d "$name" ] || continue
        remove_node "$lab" "${name##*/"$PREFIX-$lab-"}"
    done
    for node in client sw; do
        name=$(ns "$lab" "$node")
        if [ -e "/run/netns/$name" ]; then
            for pid in $(ip netns pids "$name" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$name"
        fi
    done
    for name in "$LAB_ROOT/$lab"/serial*.pid; do
        [ -f "$name" ] && { kill "$(cat "$name")" 2>/dev/null || true; }
    done
    rm -rf "${LAB_ROOT:?}/$lab"
    rmdir "$LAB_ROOT" 2>/dev/null || true
}

# down-all [--all]: every lab whose owner process is gone (what cleanup.sh runs), or with
# --all every lab on the machine, running tests' included.
cmd_down_all() {
    local labs lab owner
    labs=$( {
        ip netns list | awk '{print $1}'
        find "$(cg_root)" -mindepth 1 -maxdepth 1 -type d -printf '%f\n'
        if [ -d "$LAB_ROOT" ]; then
            find "$LAB_ROOT" -mindepth 1 -maxdepth 1 -type d -printf "$PREFIX-%f-\n"
        fi
    } | sed -n "s/^$PREFIX-\([a-z0-9]*\)-.*/\1/p" | sort -u)
    for lab in $labs; do
        owner=$(cat "$LAB_ROOT/$lab/owner" 2>/dev/null || true)
        if [ "${1:-}" != --all ]; then
            if [ -z "$owner" ]; then
                log "keeping lab $lab: it records no owner (--all removes it too)"
                continue
            fi
            if [ -d "/proc/$owner" ]; then
                log "keeping lab $lab: its owner (pid $owner) still runs (--all removes it too)"
                continue
            fi
        fi
        log "removing lab $lab"
        cmd_down "$lab"
    done
}

cmd_list() {
    local name node pid
    for name in $(ip netns list | awk '{print $1}' | grep "^$PREFIX-" || true); do
        node=${name#"$PREFIX-"}
        pid=$(node_pid "${node%%-*}" "${node#*-}" 2>/dev/null || echo -)
        echo "$name $pid"
    done
}

# ---------------------------------------------------------------------------------------------
# Faults

# kill9 LAB NODE: SIGKILL the node's systemd (the kernel kills its whole PID namespace) and
# pull its cables, so its addresses stop answering like a dead machine's.
cmd_kill9() {
    local lab=$1 node=$2 pid sw i
    pid=$(need_pid "$lab" "$node")
    sw=$(ns "$lab" sw)
    kill -9 "$pid"
    ip -n "$sw" link set "$node-a" down
    ip -n "$sw" link set "$node-b" down
    for ((i = 0; i < 200; i++)); do
        [ -d "/proc/$pid" ] || return 0
        sleep 0.02
    done
    die "node $node (pid $pid) survived kill -9"
}

# shutdown LAB NODE: clean poweroff (SIGRTMIN+4), wait until the node's systemd is gone.
cmd_shutdown() {
    local lab=$1 node=$2 pid i
    pid=$(need_pid "$lab" "$node")
    kill -s RTMIN+4 "$pid"
    for ((i = 0; i < 600; i++)); do
        [ -d "/proc/$pid" ] || { ip -n "$(ns "$lab" sw)" link set "$node-a" down; ip -n "$(ns "$lab" sw)" link set "$node-b" down; return 0; }
        sleep 0.05
    done
    die "node $node did not power off within 30 s"
}

# freeze/thaw LAB NODE: every process of the node stops (cgroup freezer), as in a hung machine.
cmd_freeze() { set_frozen "$1" "$2" 1; }
cmd_thaw() { set_frozen "$1" "$2" 0; }
set_frozen() {
    local cg i
    cg=$(node_cg "$1" "$2")
    need_pid "$1" "$2" >/dev/null
    echo "$3" > "$cg/cgroup.freeze"
    for ((i = 0; i < 200; i++)); do
        grep -qx "frozen $3" "$cg/cgroup.events" && return 0
        sleep 0.02
    done
    die "node $2 did not reach frozen=$3"
}

# link-down/link-up LAB NODE IFACE: pull or replug one cable inside the node.
cmd_link_down() { ip -n "$(ns "$1" "$2")" link set "$3" down; }
cmd_link_up() { ip -n "$(ns "$1" "$2")" link set "$3" up; }

nft_node() {
    local n
    n=$(ns "$1" "$2")
    shift 2
    ip netns exec "$n" nft "$@"
}

ensure_table() {
    nft_node "$1" "$2" -f - <<'NFT'
table inet hbdlab {
    chain input { type filter hook input priority -10; policy accept; }
    chain output { type filter hook output priority -10; policy accept; }
}
NFT
}

# drop LAB NODE PERCENT: the node loses PERCENT % of incoming heartbeat packets (udp/694);
# 0 removes the loss.
cmd_drop() {
    local lab=$1 node=$2 pct=$3
    if ! [[ $pct =~ ^[0-9]+$ ]] || [ "$pct" -gt 100 ]; then die "percent must be 0..100: $pct"; fi
    ensure_table "$lab" "$node"
    # Replace the loss rule only.
    local h
    for h in $(nft_node "$lab" "$node" -a list chain inet hbdlab input | sed -n 's/.*"loss" # handle \([0-9]*\)/\1/p'); do
        nft_node "$lab" "$node" delete rule inet hbdlab input handle "$h"
    done
    [ "$pct" -eq 0 ] && return 0
    nft_node "$lab" "$node" add rule inet hbdlab input \
        udp dport 694 numgen random mod 100 lt "$pct" counter drop comment '"loss"'
}

# partition LAB A B: the switch stops forwarding anything (ARP included) between A's and B's
# ports on both networks, as if the cables between them were cut; each still reaches the
# other nodes and the client.
cmd_partition() {
    local lab=$1 a=$2 b=$3 sw net
    sw=$(ns "$lab" sw)
    ip netns exec "$sw" nft -f - <<'NFT'
table bridge hbdlab {
    chain forward { type filter hook forward priority -10; policy accept; }
}
NFT
    for net in a b; do
        ip netns exec "$sw" nft add rule bridge hbdlab forward \
            iifname "$a-$net" oifname "$b-$net" counter drop comment "\"part-$a-$b\""
        ip netns exec "$sw" nft add rule bridge hbdlab forward \
            iifname "$b-$net" oifname "$a-$net" counter drop comment "\"part-$a-$b\""
    done
}

# heal LAB: remove every partition and loss rule and replug every cable of every node
# (cut with link-down; a kill9'ed node stays dead).
cmd_heal() {
    local lab=$1 name
    for name in $(ip netns list | awk '{print $1}' | grep "^$PREFIX-$lab-" || true); do
        case $name in
            *-sw) ip netns exec "$name" nft delete table bridge hbdlab 2>/dev/null || true; continue ;;
        esac
        ip netns exec "$name" nft delete table inet hbdlab 2>/dev/null || true
        ip -n "$name" link set eth0 up 2>/dev/null || true
        ip -n "$name" link set eth1 up 2>/dev/null || true
    done
}

# serial LAB A B [N]: a null-modem cable between A and B (a socat pty pair), appearing as
# /run/lab-ttyN (default 0) inside both, so one cluster.toml names the same device on each.
cmd_serial() {
    local lab=$1 a=$2 b=$3 num=${4:-0} dir pid i node pty
    dir="$LAB_ROOT/$lab"
    mkdir -p "$dir"
    setsid socat pty,raw,echo=0,link="$dir/tty$num-$a" pty,raw,echo=0,link="$dir/tty$num-$b" \
        </dev/null >"$dir/serial$num.log" 2>&1 &
    pid=$!
    echo "$pid" > "$dir/serial$num.pid"
    for ((i = 0; i < 100; i++)); do
        [ -L "$dir/tty$num-$a" ] && [ -L "$dir/tty$num-$b" ] && break
        sleep 0.02
    done
    for node in "$a" "$b"; do
        pty=$(readlink -f "$dir/tty$num-$node") || die "socat made no pty for $node"
        # shellcheck disable=SC2016
        in_node "$lab" "$node" sh -c 'touch "$2" && mount --bind "$1" "$2"' _ "$pty" "/run/lab-tty$num"
    done
}

# serial-cut LAB [N]: pull the serial cable (socat ends; both ends see a hang-up).
cmd_serial_cut() {
    local pidfile="$LAB_ROOT/$1/serial${2:-0}.pid"
    [ -f "$pidfile" ] || die "lab $1 has no serial link ${2:-0}"
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
}

# ---------------------------------------------------------------------------------------------

# put LAB NODE SRC DEST [MODE]: copy a host file into the node (through /proc/PID/root, the
# node's own view of its files) as DEST, mode MODE (default 0755). The node cannot see the
# host's /tmp and /run, so a binary built under them is copied in rather than named; DEST
# under /usr lands in the node's private /usr overlay, never in the host's /usr.
cmd_put() {
    local lab=$1 node=$2 src=$3 dest=$4 mode=${5:-0755} pid
    [ -f "$src" ] || die "put: no file $src"
    # Only where the node's files are its own: elsewhere the node's / is the host's.
    case $dest in
        /usr/*|/etc/*|/var/*|/run/*|/tmp/*) ;;
        *) die "put: DEST must be under /usr, /etc, /var, /run or /tmp (the node's own): $dest" ;;
    esac
    pid=$(need_pid "$lab" "$node")
    in_node "$lab" "$node" mkdir -p "$(dirname "$dest")"
    # A new file renamed into place: a running copy of the old one is not disturbed.
    cp "$src" "/proc/$pid/root$dest.lab-new"
    chmod "$mode" "/proc/$pid/root$dest.lab-new"
    mv -f "/proc/$pid/root$dest.lab-new" "/proc/$pid/root$dest"
}

# install-hbd LAB NODE BINARY CONFIG_FILE AUTHKEY_FILE: BINARY as the node's /usr/sbin/hbd
# (copied into its private /usr), the project's units/hbd.service as it is (the lab's
# stand-in tests/lab/hbd.service if units/ has none) as the node's hbd.service, and
# /etc/hbd/cluster.toml and /etc/hbd/authkey (0600) in the node's /etc. Does not start it.
cmd_install_hbd() {
    local lab=$1 node=$2 bin=$3 conf=$4 key=$5 unit
    [ -x "$bin" ] || die "no hbd binary at $bin"
    unit="$HERE/../../units/hbd.service"
    [ -f "$unit" ] || unit="$HERE/hbd.service"
    cmd_put "$lab" "$node" "$bin" /usr/sbin/hbd 0755
    in_node "$lab" "$node" mkdir -p /etc/hbd /run/systemd/system
    in_node "$lab" "$node" sh -c 'umask 022; cat > /etc/hbd/cluster.toml' < "$conf"
    in_node "$lab" "$node" sh -c 'umask 077; cat > /etc/hbd/authkey; chmod 600 /etc/hbd/authkey' < "$key"
    in_node "$lab" "$node" sh -c 'cat > /run/systemd/system/hbd.service' < "$unit"
    in_node "$lab" "$node" systemctl daemon-reload
}

usage() {
    cat <<'USAGE'
lab.sh up LAB N                 boot switch, client and nodes n1..nN
lab.sh boot LAB NODE            (re)boot one node
lab.sh down LAB                 remove one lab
lab.sh down-all [--all]         remove every lab whose owner is gone (or every lab)
lab.sh list                     lab namespaces and their systemd pids
lab.sh pid LAB NODE             host pid of the node's systemd
lab.sh exec LAB NODE CMD...     run CMD inside the node (nsenter)
lab.sh client LAB CMD...        run CMD in the client namespace
lab.sh kill9|shutdown|freeze|thaw LAB NODE
lab.sh link-down|link-up LAB NODE IFACE
lab.sh drop LAB NODE PERCENT    lose PERCENT % of heartbeats arriving at NODE (0 = none)
lab.sh partition LAB A B        A and B stop hearing each other
lab.sh heal LAB                 undo partitions, loss and cut links
lab.sh serial LAB A B [N]       a serial cable between A and B: /run/lab-ttyN in both
lab.sh serial-cut LAB [N]       pull it
lab.sh put LAB NODE SRC DEST [MODE]   copy a host file into the node
lab.sh install-hbd LAB NODE BIN CONFIG AUTHKEY
USAGE
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
command=$1
shift
case $command in
    help|-h|--help) usage ;;
    up) cmd_up "$@" ;;
    boot) cmd_boot "$@" ;;
    down) cmd_down "$@" ;;
    down-all) cmd_down_all "$@" ;;
    list) cmd_list ;;
    pid) need_pid "$@" ;;
    exec) in_node "$@" ;;
    client) lab=$1; shift; ip netns exec "$(ns "$lab" client)" "$@" ;;
    kill9) cmd_kill9 "$@" ;;
    shutdown) cmd_shutdown "$@" ;;
    freeze) cmd_freeze "$@" ;;
    thaw) cmd_thaw "$@" ;;
    link-down) cmd_link_down "$@" ;;
    link-up) cmd_link_up "$@" ;;
    drop) cmd_drop "$@" ;;
    partition) cmd_partition "$@" ;;
    heal) cmd_heal "$@" ;;
    serial) cmd_serial "$@" ;;
    serial-cut) cmd_serial_cut "$@" ;;
    put) cmd_put "$@" ;;
    install-hbd) cmd_install_hbd "$@" ;;
    *) usage >&2; exit 2 ;;
esac
