#!/bin/bash
# Capture real Heartbeat 3.0.6 traffic between two lab nodes, once per authentication
# method, into OUT/<method>/NNNN.bin (one UDP payload a file). How the fixtures under
# tests/data/heartbeat-wire/ were made; see its README for the keys used.
#
#   sudo tests/lab/hbwire/capture.sh OUT
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LABSH=$HERE/../lab.sh
OUT=${1:?usage: capture.sh OUT}
LAB=hbwcap$$
mkdir -p "$OUT"
"$HERE/../setup.sh" >/dev/null # installs heartbeat too
trap '"$LABSH" down "$LAB" >/dev/null 2>&1 || true' EXIT
"$LABSH" up "$LAB" 2 >/dev/null
put() { "$LABSH" exec "$LAB" "$1" sh -c "umask 077; cat > '$3'; chmod $2 '$3'"; }

for spec in "sha1:1:hbwire-lab-sha1-key" "md5:3:hbwire-lab-md5-key" "crc:2:"; do
    IFS=: read -r method id key <<<"$spec"
    for n in n1 n2; do
        put $n 644 /etc/ha.d/ha.cf <<CF
logfile /var/log/ha-log
debugfile /dev/null
keepalive 500ms
warntime 2
deadtime 3
initdead 6
udpport 694
ucast eth0 10.99.0.1
ucast eth0 10.99.0.2
auto_failback off
node n1
node n2
crm no
CF
        echo "n1 hbwnop" | put $n 644 /etc/ha.d/haresources
        printf 'auth %s\n%s %s %s\n' "$id" "$id" "$method" "$key" | put $n 600 /etc/ha.d/authkeys
        put $n 755 /etc/ha.d/resource.d/hbwnop <<'SH'
#!/bin/sh
case "$1" in
    start) touch /run/hbwnop ;;
    stop) rm -f /run/hbwnop ;;
    status) if [ -e /run/hbwnop ]; then echo running; else echo stopped; fi ;;
esac
SH
    done
    pid=$("$LABSH" pid "$LAB" n1)
    rm -rf "${OUT:?}/$method"
    nsenter -t "$pid" -n "$HERE/capture.py" eth0 14 "$OUT/$method" >"$OUT/$method.count" &
    cap=$!
    sleep 0.5
    for n in n1 n2; do "$LABSH" exec "$LAB" $n systemctl start --no-block heartbeat.service; done
    sleep 8
    "$LABSH" exec "$LAB" n1 cl_status nodestatus n2 || true
    "$LABSH" exec "$LAB" n1 /usr/share/heartbeat/hb_standby all >/dev/null 2>&1 || true
    sleep 3
    "$LABSH" exec "$LAB" n2 systemctl stop heartbeat.service || true
    wait $cap
    "$LABSH" exec "$LAB" n1 systemctl stop heartbeat.service || true
    echo "$method: $(tail -1 "$OUT/$method.count") datagrams"
done
