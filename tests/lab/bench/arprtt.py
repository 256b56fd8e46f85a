#!/usr/bin/env python3
"""How fast a host answers the duplicate-address probe hbd sends before adding a VIP:
send COUNT RFC 5227 ARP probes (sender IP 0.0.0.0) for ADDR on IFACE, 20 ms apart, and
print the time to each answer in ms (kernel timestamps), "lost" for none within 1 s.
This is what a probe_wait must cover on the link.

    ip netns exec NS arprtt.py IFACE ADDR COUNT
"""
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806
SO_TIMESTAMPNS = 35
iface, addr, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ARP))
s.bind((iface, ETH_P_ARP))
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
mac = open(f"/sys/class/net/{iface}/address").read().strip()
our = bytes.fromhex(mac.replace(":", ""))
target = socket.inet_aton(addr)
probe = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, our, b"\0" * 4, b"\0" * 6, target)
for _ in range(count):
    sent = time.time_ns()
    s.sendto(probe, (iface, ETH_P_ARP, 0, 0, b"\xff" * 6))
    s.settimeout(1.0)
    answer = None
    try:
        while answer is None:
            data, anc, _, a = s.recvmsg(2048, 64)
            if len(data) >= 28 and data[14:18] == target and data[8:14] != our:
                answer = time.time_ns()
                for level, kind, val in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack_from("=qq", val)
                        answer = sec * 1_000_000_000 + nsec
    except socket.timeout:
        pass
    print(f"{(answer - sent) / 1e6:.3f}" if answer else "lost", flush=True)
    time.sleep(0.02)
