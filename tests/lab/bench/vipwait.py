#!/usr/bin/env python3
"""Wait for an IPv4 address to be added in this network namespace; print the wall-clock
time (ns since the epoch) of the netlink RTM_NEWADDR event, read as it arrives (no
polling). Prints "ready" once subscribed, so the caller knows when to inject the fault.

    ip netns exec NS vipwait.py 10.99.0.100 [TIMEOUT_S]
"""
import socket
import struct
import sys
import time

RTMGRP_IPV4_IFADDR = 0x10
RTM_NEWADDR = 20
IFA_LOCAL = 2

vip = socket.inet_aton(sys.argv[1])
timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.bind((0, RTMGRP_IPV4_IFADDR))
s.settimeout(timeout)
print("ready", flush=True)
while True:
    try:
        data = s.recv(65536)
    except socket.timeout:
        sys.exit(1)
    now = time.time_ns()
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if kind == RTM_NEWADDR:
            a = off + 16 + 8  # nlmsghdr + ifaddrmsg
            end = off + length
            while a + 4 <= end:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype == IFA_LOCAL and data[a + 4:a + alen] == vip:
                    print(now, flush=True)
                    sys.exit(0)
                a += (alen + 3) & ~3
        off += (length + 3) & ~3
