#!/usr/bin/env python3
"""Write the payload of every UDP datagram to or from port 694 that this namespace sends or
receives on IFACE during SECONDS, one file a datagram, to DIR (NNNN.bin, in arrival order).
Prints "ready" once capturing and the number of datagrams at the end.

    ip netns exec NS capture.py IFACE SECONDS DIR
"""
import os
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003  # outgoing frames reach ETH_P_ALL sockets only
ETH_P_IP = 0x0800

iface, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
s.bind((iface, ETH_P_ALL))
s.settimeout(0.2)
print("ready", flush=True)
end = time.monotonic() + seconds
n = 0
while time.monotonic() < end:
    try:
        data, addr = s.recvfrom(65536)
    except socket.timeout:
        continue
    if addr[1] != ETH_P_IP or len(data) < 28 or data[9] != 17:
        continue
    ihl = (data[0] & 0x0F) * 4
    if len(data) < ihl + 8:
        continue
    sport, dport, ulen = struct.unpack_from("!HHH", data, ihl)
    if 694 not in (sport, dport):
        continue
    payload = data[ihl + 8 : ihl + ulen]
    with open(os.path.join(out, "%04d.bin" % n), "wb") as f:
        f.write(payload)
    n += 1
print(n, flush=True)
