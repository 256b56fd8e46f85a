#!/bin/sh
# PID 1 of a lab node's PID namespace, until it execs systemd.
#
# Started by lab.sh inside the node's network namespace with
#   unshare --pid --fork --mount --uts --cgroup --propagation private
# so every mount below is private to the node. Nothing the node's systemd writes may reach
# the host: /etc, /var and /usr become overlays with per-node upper dirs (without them
# systemd-machine-id-commit rewrote the host's /etc/machine-id and journald wrote into the
# host's /var/log/journal; with /usr private too, `dpkg -i` and the binaries the lab copies
# in stay inside the node), /run and /tmp become tmpfs.
#
# Usage: node-init.sh NODE NODE_DIR NODE_CGROUP (the host path of the node's cgroup2 dir)
set -eu

node=$1
dir=$2
cgroup=$3

# Into the node's own cgroup (through the host's cgroup2 mount, still visible here).
echo $$ > "$cgroup/cgroup.procs"
mount -t proc proc /proc
# A fresh sysfs shows this network namespace's interfaces (cgroup2 is mounted on it last).
mount -t sysfs sysfs /sys

for d in etc var usr; do
    mkdir -p "$dir/$d.upper" "$dir/$d.work"
    mount -t overlay overlay \
        -o "lowerdir=/$d,upperdir=$dir/$d.upper,workdir=$dir/$d.work" "/$d"
done
# The console would be the host's: systemd's boot messages go to a per-node file instead.
: > "$dir/console"
mount --bind "$dir/console" /dev/console
# The host's mounts under /run (notably every /run/netns/* of other labs) would otherwise stay
# in this mount namespace, hidden under the new /run yet pinning those namespaces alive.
awk '$5 ~ "^/run/" { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
done
# Last, as /tmp hides $dir (which lives under the host's /tmp) from the node.
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp

# Identity: a fresh machine id and the node name as host name.
rm -f /etc/machine-id
tr -d '-' < /proc/sys/kernel/random/uuid > /etc/machine-id
echo "$node" > /etc/hostname
hostname "$node"

# Units that must not run in a node: they would act on the host's kernel, clock, disks or
# packages (sysctl, binfmt, modules, time sync, trim, apt), or expect a real console.
mkdir -p /run/systemd/system
for u in systemd-sysctl.service systemd-binfmt.service systemd-modules-load.service \
    systemd-remount-fs.service systemd-machine-id-commit.service \
    proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
    getty@tty1.service console-getty.service getty.target systemd-logind.service \
    systemd-timesyncd.service systemd-pstore.service systemd-udevd.service \
    systemd-udev-trigger.service systemd-udev-settle.service kmod-static-nodes.service \
    systemd-tmpfiles-setup-dev.service systemd-repart.service systemd-pcrphase.service \
    systemd-pcrphase-sysinit.service systemd-firstboot.service \
    timers.target apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer \
    e2scrub_reap.service man-db.timer dpkg-db-backup.timer postgresql.service \
    remote-fs.target; do
    ln -sf /dev/null "/run/systemd/system/$u"
done

# journald would log its own messages to the host's kernel log.
mkdir -p /run/systemd/system/systemd-journald.service.d
printf '[Service]\nEnvironment=SYSTEMD_LOG_TARGET=null\n' \
    > /run/systemd/system/systemd-journald.service.d/50-lab.conf

cat > /run/systemd/system/hbd-lab.target <<'UNIT'
[Unit]
Description=hbd lab node
Requires=dbus.socket systemd-journald.socket
Wants=dbus.service
After=dbus.socket systemd-journald.socket
AllowIsolate=yes
UNIT

# container= puts systemd in container mode: among other things its shutdown does not
# swapoff, detach loop devices or touch device-mapper on the (shared) host.
export container=hbd-lab
# A cgroup namespace rooted at the node's cgroup, and cgroup2 mounted in it: two nodes'
# systemds never manage the same cgroup paths (the host's is not touched either).
exec unshare --cgroup sh -c 'mount -t cgroup2 cgroup2 /sys/fs/cgroup &&
    exec /lib/systemd/systemd --system --unit=hbd-lab.target'
