#!/usr/bin/env python3
# seeds.py - write the seed corpus of the engine target
# (tests/fuzz/corpus/engine/): short conversations in the record format of
# fuzz_engine.c, so that the fuzzer starts from inputs that reach lwIP's
# TCP state machine, UDP flows, ICMP and reassembly. Checksums and lengths
# are right as written; the harness also repairs them (flags below), so
# that mutations keep getting through.
#   python3 tests/fuzz/seeds.py [DIR]
import os
import struct
import sys

FIX_LEN, FIX_CSUM, FIX_ACK, POLL = 0x04, 0x08, 0x10, 0x20
FIXED = FIX_LEN | FIX_CSUM | POLL

C4, S4 = bytes([10, 0, 0, 1]), bytes([198, 51, 100, 7])
B4 = bytes([198, 51, 100, 53])  # the harness's bound UDP socket, port 5353
C6 = bytes.fromhex("20010db8000000000000000000000001")
S6 = bytes.fromhex("20010db8010000000000000000000007")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(src, dst, proto, payload, ident=1, frag=0):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64,
                    proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ip6(src, dst, nh, payload):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, 64, src, dst) + payload


def l4(src, dst, proto, seg, off):
    """Fill the checksum at @off of @seg for the addresses' family."""
    if len(src) == 4:
        ph = src + dst + struct.pack("!BBH", 0, proto, len(seg))
    else:
        ph = src + dst + struct.pack("!IxxxB", len(seg), proto)
    c = csum(ph + seg) if proto != 1 else csum(seg)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:]


def tcp(src, dst, sport, dport, seq, ack, flags, data=b"", opts=b"", win=65535):
    opts += b"\0" * (-len(opts) % 4)
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (5 + len(opts) // 4) << 4,
                      flags, win, 0, 0) + opts + data
    seg = l4(src, dst, 6, seg, 16)
    return (ip4 if len(src) == 4 else ip6)(src, dst, 6, seg)


def udp(src, dst, sport, dport, data):
    seg = l4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data, 6)
    return (ip4 if len(src) == 4 else ip6)(src, dst, 17, seg)


def echo4(src, dst, data, ident=7):
    return ip4(src, dst, 1, l4(src, dst, 1, struct.pack("!BBHHH", 8, 0, 0, ident, 1) + data, 2))


def echo6(src, dst, data):
    return ip6(src, dst, 58, l4(src, dst, 58, struct.pack("!BBHHH", 128, 0, 0, 7, 1) + data, 2))


def pkt(p, flags=FIXED):
    return bytes([flags & ~3]) + struct.pack("<H", len(p)) + p


def ack(p):
    return pkt(p, FIXED | FIX_ACK)


def app(arg=0):
    return bytes([2 | (arg << 2) & 0xFC])


def poll(k=1):
    return bytes([3 | ((k - 1) & 3) << 2])


SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
MSS = b"\x02\x04\x05\xb4"
FULL_OPTS = MSS + b"\x01\x03\x03\x07\x04\x02\x08\x0a\0\0\0\1\0\0\0\0"


def conversation(c, s, sport, opts=MSS):
    """Handshake, data, echo, the client's FIN, our FIN, last ACK."""
    t = lambda *a, **k: tcp(c, s, sport, 80, *a, **k)
    return (pkt(t(1000, 0, SYN, opts=opts)) + ack(t(1001, 0, ACK)) +
            ack(t(1001, 0, ACK | PSH, b"hello l3x\n")) + app() +
            ack(t(1011, 0, ACK)) + ack(t(1011, 0, ACK | FIN)) + app() + poll() +
            ack(t(1012, 0, ACK)))


def seeds():
    t4 = lambda sp, *a, **k: tcp(C4, S4, sp, 80, *a, **k)
    yield "tcp4-conversation", conversation(C4, S4, 40000)
    yield "tcp6-conversation", conversation(C6, S6, 40001)
    yield "tcp4-options", conversation(C4, S4, 40002, FULL_OPTS)
    yield "tcp4-ooo", (pkt(t4(40003, 5000, 0, SYN, opts=MSS)) + ack(t4(40003, 5001, 0, ACK)) +
                       ack(t4(40003, 5011, 0, ACK, b"B" * 10)) +
                       ack(t4(40003, 5021, 0, ACK, b"C" * 10)) +
                       ack(t4(40003, 5001, 0, ACK, b"A" * 10)) + app() +
                       ack(t4(40003, 5031, 0, ACK | RST)))
    yield "tcp4-reset", (pkt(t4(40004, 7000, 0, SYN, opts=MSS)) +
                         ack(t4(40004, 7001, 0, ACK)) + app() +
                         pkt(t4(40004, 7001, 0, RST)) + app())
    yield "tcp4-app-close", (pkt(t4(40005, 9000, 0, SYN, opts=MSS)) +
                             ack(t4(40005, 9001, 0, ACK)) + app(0) + app(4 << 2) +
                             ack(t4(40005, 9001, 0, ACK)) + app(1) +
                             ack(t4(40005, 9001, 0, ACK | FIN)) + app(2) + poll(4) +
                             ack(t4(40005, 9002, 0, ACK)))
    # An ACK carrying an MSS option: only a SYN's counts (0042); taken,
    # it lifted the IPv6 MSS past what a 1500-byte MTU holds.
    t6 = lambda *a, **k: tcp(C6, S6, 40006, 80, *a, **k)
    yield "tcp6-mss-on-ack", (pkt(t6(3000, 0, SYN, opts=MSS)) +
                              ack(t6(3001, 0, ACK, opts=MSS)) +
                              app(0x3C) + app(0x3C) + app(0x3C) + app(0x3C) +
                              poll(4))
    # MSS kind in the last byte of the options of a SYN without data:
    # its length byte would lie past the packet (0041).
    yield "tcp4-opt-kind-last", pkt(t4(40010, 100, 0, SYN, opts=b"\x01\x01\x01\x02"))
    yield "tcp4-syn-flood", b"".join(
        pkt(tcp(bytes([10, 1, i, 1]), S4, 1024 + i, 443, i * 77, 0, SYN, opts=MSS))
        for i in range(40))
    yield "udp4-flow", (pkt(udp(C4, S4, 5000, 53, b"query")) + app() +
                        pkt(udp(C4, S4, 5000, 53, b"again")) + app() +
                        pkt(udp(C4, B4, 5001, 5353, b"bound")) + app())
    yield "udp6-flow", pkt(udp(C6, S6, 5000, 53, b"query6")) + app()
    yield "icmp-echo", (pkt(echo4(C4, S4, b"ping" * 8)) + pkt(echo6(C6, S6, b"ping" * 8)) +
                        pkt(echo4(C4, S4, b"\0" * 1472)))
    # An echo request of 2000 bytes in two fragments: the reply is
    # larger than the MTU and must leave fragmented (or not at all).
    big = l4(C4, S4, 1, struct.pack("!BBHHH", 8, 0, 0, 9, 1) + bytes(range(256)) * 8, 2)
    yield "icmp4-frag-echo", (pkt(ip4(C4, S4, 1, big[:1480], 99, 0x2000), POLL) +
                              pkt(ip4(C4, S4, 1, big[1480:], 99, 185), POLL))
    dgram = l4(C6, S6, 17, struct.pack("!HHHH", 6000, 53, 8 + 1600, 0) + b"x" * 1600, 6)
    f1 = struct.pack("!BBHI", 17, 0, 0x0001, 0x1234) + dgram[:1400]
    f2 = struct.pack("!BBHI", 17, 0, 1400, 0x1234) + dgram[1400:]
    yield "udp6-frag", (pkt(ip6(C6, S6, 44, f1), POLL) + pkt(ip6(C6, S6, 44, f2), POLL) + app())
    u = l4(C4, S4, 17, struct.pack("!HHHH", 6001, 53, 8 + 3000, 0) + b"y" * 3000, 6)
    yield "udp4-frag", b"".join(pkt(ip4(C4, S4, 17, u[o:o + 1000], 55,
                                        (o // 8) | (0x2000 if o + 1000 < len(u) else 0)),
                                    POLL)
                                for o in range(0, len(u), 1000)) + app()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "engine")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
