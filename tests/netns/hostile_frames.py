#!/usr/bin/python3
"""hostile_frames.py IFACE DST_MAC SRC4 DST4 SRC6 DST6 PORT

Sends, on IFACE, frames for the steering program to judge, and prints
'malformed=N steered=M': how many were malformed (the program must count
each as malformed and pass it) and how many are well-formed frames to
PORT that the program must steer (and the capture must hold).
"""
import sys

from scapy.all import Ether, IP, IPv6, UDP, Dot1Q, Raw, sendp, conf  # noqa
from scapy.layers.inet6 import IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt

conf.verb = 0
iface, mac, s4, d4, s6, d6, port = sys.argv[1:8]
port = int(port)
eth = Ether(dst=mac)


def udp4(**ip):
    return eth / IP(src=s4, dst=d4, **ip) / UDP(sport=4444, dport=port) / Raw(b"hostile-ok")


malformed = []
good4 = bytes(udp4())
# IHL below 5
b = bytearray(good4)
b[14] = 0x44
malformed.append(bytes(b))
# total length past the frame
b = bytearray(good4)
b[16:18] = (1400).to_bytes(2, "big")
malformed.append(bytes(b))
# cut inside the IPv4 header
malformed.append(good4[:14 + 12])
# cut before the UDP ports: IPv4 header says 22 bytes
b = bytearray(good4[:14 + 22])
b[16:18] = (22).to_bytes(2, "big")
malformed.append(bytes(b))
# version 4 ethertype carrying a version 6 header
b = bytearray(good4)
b[14] = 0x65
malformed.append(bytes(b))
# IPv6 cut inside the fixed header
good6 = bytes(eth / IPv6(src=s6, dst=d6) / UDP(sport=4444, dport=port) / Raw(b"hostile-ok"))
malformed.append(good6[:14 + 20])
# IPv6 with a chain of 7 extension headers
chain = IPv6(src=s6, dst=d6)
for _ in range(7):
    chain = chain / IPv6ExtHdrDestOpt()
malformed.append(bytes(eth / chain / UDP(sport=4444, dport=port) / Raw(b"x")))
# Ethernet header cut short
malformed.append(good4[:14])

steered = [
    good4,
    bytes(udp4(options=b"\x01\x01\x01\x00")),           # IPv4 with options
    bytes(Ether(dst=mac) / Dot1Q(vlan=7) / IP(src=s4, dst=d4) / UDP(sport=4444, dport=port) / Raw(b"vlan1")),
    bytes(Ether(dst=mac, type=0x88a8) / Dot1Q(vlan=8) / Dot1Q(vlan=9) / IP(src=s4, dst=d4)
          / UDP(sport=4444, dport=port) / Raw(b"vlan2")),
    good6,
    bytes(eth / IPv6(src=s6, dst=d6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
          / UDP(sport=4444, dport=port) / Raw(b"ext-ok")),
]

for f in malformed + steered:
    sendp(Raw(f), iface=iface)
print(f"malformed={len(malformed)} steered={len(steered)}")
