#!/usr/bin/python3
"""frag_tool.py - fragmented UDP for tests/netns/frag.sh (scapy: run with
/usr/bin/python3).

  pairs IFACE SRC DST ORDER COUNT ID0   COUNT datagrams to DST:9001, each
        in fragments with id ID0+i, and a forged first fragment with the
        same (SRC, DST, UDP, id) to DST:9000 sent ahead of (ORDER ahead) or
        after (ORDER after) the datagram's own first fragment
  race IFACE SRC DST FORGED COUNT       in one go, so that the kernel's ids
        do not drift: learn the id the kernel gives DST now (probe), send
        FORGED forged first fragments over the ids that follow, then COUNT
        kernel datagrams to DST:9001; prints the probe id
  recv PORT SECONDS                     print how many intact datagrams of
        SIZE bytes arrived (content checked)
Frames go to $DSTMAC. Datagrams carry SIZE (3000) bytes, so that a 1500-byte MTU fragments them.
"""
import os
import socket
import sys
import time

import udp_tool  # beside this file

SIZE = 3000
MAC = os.environ.get("DSTMAC", "ff:ff:ff:ff:ff:ff")  # the l3x side's


def payload(i):
    head = f"dgram-{i:06d}-".encode()
    return (head * (SIZE // len(head) + 1))[:SIZE]


def intact(data):
    head = data[:13]
    return len(data) == SIZE and data == (head * (SIZE // 13 + 1))[:SIZE]


def scapy():
    from scapy.all import conf  # noqa: F401
    import scapy.all as s
    conf.verb = 0
    return s


def pairs(iface, src, dst, order, count, id0):
    s = scapy()
    frames = []
    for i in range(count):
        ident = (id0 + i) % 65536
        real = s.IP(src=src, dst=dst, id=ident) / s.UDP(sport=40000, dport=9001) / payload(i)
        frags = s.fragment(real, fragsize=1400)
        forged = s.IP(src=src, dst=dst, id=ident, flags="MF") / s.UDP(sport=40001, dport=9000, chksum=0) / (b"F" * 1400)
        ether = s.Ether(dst=MAC)
        seq = [forged, frags[0]] if order == "ahead" else [frags[0], forged]
        frames += [ether / f for f in seq + frags[1:]]
    s.sendp(frames, iface=iface, inter=0.002)


def csum(b):
    s = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def forged_frame(src, dst, ident, smac):
    """A forged first fragment, bytes built by hand: fast enough to send
    thousands before the kernel's id moves on."""
    body = b"S" * 64
    udp = (40001).to_bytes(2, "big") + (9000).to_bytes(2, "big") + \
        (8 + 1400).to_bytes(2, "big") + b"\0\0" + body
    ip = bytearray(b"\x45\0" + (20 + len(udp)).to_bytes(2, "big") +
                   ident.to_bytes(2, "big") + b"\x20\0\x40\x11\0\0" +
                   socket.inet_aton(src) + socket.inet_aton(dst))
    ip[10:12] = csum(bytes(ip)).to_bytes(2, "big")
    return bytes.fromhex(MAC.replace(":", "")) + smac + b"\x08\x00" + bytes(ip) + udp


def race(iface, src, dst, forged, count):
    s = scapy()
    sn = s.AsyncSniffer(iface=iface, filter=f"ip and dst host {dst} and udp", count=1)
    sn.start()
    time.sleep(0.5)
    ks = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ks.sendto(payload(0), (dst, 9003))
    sn.join(timeout=3)
    if not sn.results:
        print(-1)
        return
    id0 = sn.results[0]["IP"].id
    smac = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
    frames = [forged_frame(src, dst, (id0 + 1 + i) % 65536, smac) for i in range(forged)]
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    raw.bind((iface, 0))
    for f in frames:
        raw.send(f)
    for i in range(count):
        ks.sendto(payload(i), (dst, 9001))
        time.sleep(0.002)
    print(id0)


def recv(port, seconds):
    print(udp_tool.count("0.0.0.0", port, seconds, intact))


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "pairs":
        pairs(a[2], a[3], a[4], a[5], int(a[6]), int(a[7]))
    elif a[1] == "race":
        race(a[2], a[3], a[4], int(a[5]), int(a[6]))
    elif a[1] == "recv":
        recv(int(a[2]), float(a[3]))
    else:
        sys.exit(__doc__)
