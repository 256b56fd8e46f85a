#!/usr/bin/env python3
"""Record the heartbeats this namespace sends on IFACE (outgoing UDP to port 694) for
SECONDS, with kernel timestamps (wall clock, ns), and print them one a line: during a
takeover, a gap above the keepalive is time the daemon's event loop did not run.
Prints "ready" once capturing.

    ip netns exec NS hbgaps.py IFACE SECONDS
"""
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003  # outgoing frames reach ETH_P_ALL sockets only
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35

iface, seconds = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
s.bind((iface, ETH_P_ALL))  # Python applies htons itself here
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
s.settimeout(0.2)
print("ready", flush=True)
end = time.monotonic() + seconds
stamps = []
while time.monotonic() < end:
    try:
        data, anc, _, addr = s.recvmsg(2048, 64)
    except socket.timeout:
        continue
    if addr[1] != ETH_P_IP or addr[2] != PACKET_OUTGOING or len(data) < 28 or data[9] != 17:
        continue
    ihl = (data[0] & 0x0F) * 4
    if len(data) < ihl + 8 or struct.unpack_from("!H", data, ihl + 2)[0] != 694:
        continue
    ts = None
    for level, kind, val in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(val) >= 16:
            sec, nsec = struct.unpack_from("=qq", val)
            ts = sec * 1_000_000_000 + nsec
    stamps.append(ts if ts is not None else time.time_ns())
for t in stamps:
    print(t)
