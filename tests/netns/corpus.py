#!/usr/bin/python3
"""corpus.py - a malformed-packet corpus for a live l3x-serve, and its
accounting.

  corpus.py list
      the classes, one a line: name, sources, what it covers
  corpus.py run --mode xdp|tun --iface IF --server-pid PID --server-log F
                [--dst-mac MAC] [--seed S] [--count N] [--classes A,B]
                [--pcap-dir DIR] [--pps P]
      from the client namespace (xdp: IF is the client's veth, frames get
      an Ethernet header to DST_MAC) or from the server namespace (tun: IF
      is the TUN device, raw IP packets leave through it towards l3x):
      opens the raw TCP flows the stateful classes need, then for each
      class builds N frames (seeded: the same seed gives the same frames),
      writes them to DIR/MODE-CLASS.pcap, sends them at about P frames a
      second, waits for them to land, reads the server's counters (SIGUSR1,
      a 'counters' line in F) and checks that each frame landed in the
      counter this class expects it in. Prints 'ok ...' / 'not ok ...' per
      class and per raw flow, and one summary line.
  corpus.py replay --mode xdp|tun --iface IF PCAP...
      send the frames of a pcap again, as run sent them (to reproduce).

Frames are built by hand (struct), so that any field can lie; scapy would
build the same at 1/30 of the rate. Addresses: sources in 203.0.113.0/24
and 2001:db8:bad::/64 (the server namespace routes them to a blackhole),
destinations in 198.51.100.128/25 and 2001:db8:100::/64 (l3x-serve's
rules 'ip 198.51.100.0/24' and 'ip 2001:db8:100::/64'); nothing leaves the
test's namespaces.

Each frame carries its expected fate, one of the counters of l3x-serve's
counters line: 'passed'/'malformed' (the XDP program gives it to the kernel;
on TUN the software matcher counts the same as no_rule/not_ip), or
what became of it in the stack (rx_ip_bad, rx_frag_held, rx_tcp_listen,
...). 'a|b' allows either (for what issue 10 changes). A UDP length lie
and IPv6 UDP with checksum 0 are dropped now (lwIP patch 0021): rx_udp_bad
only; an 'a|b' whose frames go to an exclusive counter while the live
flows move the shared one would be counted twice.
"""
import argparse
import ctypes
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter

ETH_P_ALL = 0x0003
ETH_IP, ETH_IP6, ETH_VLAN, ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 1, 2, 4, 8, 16, 32, 64, 128
HOPOPT, ROUTING, FRAGMENT, DSTOPTS, NONXT = 0, 43, 44, 60, 59

# Counters that only the corpus moves while it runs (the live flows move
# rx_tcp_flow and rx_udp): a class must move these by exactly what it
# expects. Keys as in l3x-serve's counters line.
EXCLUSIVE = ["passed", "malformed", "not_ip", "no_rule", "rx_ip_bad",
             "rx_frag_held", "rx_frag_bad", "rx_tcp_listen", "rx_tcp_timewait",
             "rx_tcp_bad", "rx_udp_bad", "rx_icmp", "rx_icmp_bad",
             "rx_ring_dropped"]
SHARED = ["rx_tcp_flow", "rx_udp"]
FATES = EXCLUSIVE + SHARED


# ------------------------------------------------------------ checksums

def csum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def pseudo(src, dst, proto, length):
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def l4_csum(src, dst, proto, seg):
    return csum(pseudo(src, dst, proto, len(seg)) + seg)


# ------------------------------------------------------------ builders

def ip4(src, dst, proto, payload, ihl=5, tot=None, ver=4, ident=0, frag=0,
        ttl=64, opts=b"", good_csum=True):
    hlen = 20 + len(opts)
    if tot is None:
        tot = hlen + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", (ver << 4) | ihl, 0, tot & 0xFFFF, ident, frag,
                    ttl, proto, 0, src, dst) + opts
    c = csum(h[:ihl * 4] if ihl * 4 <= len(h) else h)
    if not good_csum:
        c ^= 0x5A5A
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def ip6(src, dst, nh, payload, plen=None, ver=6, hlim=64):
    if plen is None:
        plen = len(payload)
    return struct.pack("!IHBB16s16s", ver << 28, plen & 0xFFFF, nh, hlim, src, dst) + payload


def tcp_seg(src, dst, sport, dport, seq, ack, flags, data=b"", opts=b"", win=65535,
            doff=None, good_csum=True, urg=0):
    if doff is None:
        doff = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                    (doff & 15) << 4, flags, win, 0, urg) + opts
    seg = h + data
    c = l4_csum(src, dst, TCP, seg)
    if not good_csum:
        c ^= 0x1234
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp_dgram(src, dst, sport, dport, data=b"", length=None, ck=None):
    ln = 8 + len(data) if length is None else length
    seg = struct.pack("!HHHH", sport, dport, ln & 0xFFFF, 0) + data
    if ck is None:
        c = l4_csum(src, dst, UDP, seg) or 0xFFFF
    else:
        c = ck
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def icmp4(typ, code, body):
    m = struct.pack("!BBH", typ, code, 0) + body
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def icmp6(src, dst, typ, code, body, good_csum=True):
    m = struct.pack("!BBH", typ, code, 0) + body
    c = l4_csum(src, dst, ICMP6, m)
    if not good_csum:
        c ^= 0x4321
    return m[:2] + struct.pack("!H", c) + m[4:]


def ext(nh, body_len8=0, fill=None, kind=DSTOPTS):
    """An 8*(1+body_len8)-byte option header (PadN filled) of next header nh."""
    n = 8 * (1 + body_len8)
    if fill is None:
        fill = bytes([1, n - 4]) + bytes(n - 4)  # PadN over the rest
    return bytes([nh, body_len8]) + fill[:n - 2]


def frag6_hdr(nh, off8, more, ident):
    return struct.pack("!BBHI", nh, 0, (off8 << 3) | (1 if more else 0), ident)


def eth(dst, src, typ, payload, tags=()):
    h = dst + src
    for tpid, vid in tags:
        h += struct.pack("!HH", tpid, vid)
    return h + struct.pack("!H", typ) + payload


# ------------------------------------------------------------ context

class Ctx:
    """Addresses and the per-class random source."""

    def __init__(self, rng, mode, flows):
        self.rng, self.mode, self.flows = rng, mode, flows
        self.port = rng.randrange(1024, 30000)

    def s4(self):
        return bytes([203, 0, 113, self.rng.randrange(1, 200)])

    def d4(self):
        return bytes([198, 51, 100, self.rng.randrange(128, 255)])

    def s6(self):
        return bytes.fromhex("20010db80bad0000") + self.rng.randbytes(8)

    def d6(self):
        return bytes.fromhex("20010db801000000") + b"\0\0\0\0" + self.rng.randbytes(4)

    def sport(self):
        # Every frame its own source port: no two share a 4-tuple, so no
        # frame lands on a connection an earlier one opened.
        self.port = self.port + 1 if self.port < 65000 else 1024
        return self.port

    def dport(self):
        return self.rng.randrange(1, 65536)

    def fam(self):
        return 4 if self.rng.random() < 0.5 else 6

    def pair(self, fam=None):
        fam = fam or self.fam()
        return (fam, self.s4(), self.d4()) if fam == 4 else (fam, self.s6(), self.d6())

    def data(self, lo=0, hi=64):
        return self.rng.randbytes(self.rng.randrange(lo, hi + 1))


def ipx(fam, src, dst, proto, payload, **kw):
    return ip4(src, dst, proto, payload, **kw) if fam == 4 else ip6(src, dst, proto, payload, **kw)


def echo_req(fam, src, dst, rng, size=None):
    body = struct.pack("!HH", rng.randrange(65536), rng.randrange(65536)) + \
        rng.randbytes(rng.randrange(0, 64) if size is None else size)
    if fam == 4:
        return ip4(src, dst, ICMP, icmp4(8, 0, body))
    return ip6(src, dst, ICMP6, icmp6(src, dst, 128, 0, body))


def seg_to_listener(c, fam, flags, **kw):
    _, s, d = c.pair(fam)
    return ipx(fam, s, d, TCP, tcp_seg(s, d, c.sport(), c.dport(), c.rng.getrandbits(32),
                                       c.rng.getrandbits(32) if flags & ACK else 0, flags, **kw))


def listener_fate(flags):
    """Every segment to a port with no connection goes to the listener."""
    return "rx_tcp_listen"


# ------------------------------------------------------------ classes
# Each class: a generator of (frame, fate) for one frame, or of a list of
# them (fragments, flows), from Ctx. 'l3' frames are IP packets (both
# sources); 'l2' frames are whole Ethernet frames (AF_XDP only). Fates for
# TUN follow from the XDP ones: passed -> no_rule, malformed -> not_ip
# (rx_no_rule and rx_not_ip, as the counters line names them).

CLASSES = []


def cls(name, doc, l2=False, sources=("xdp", "tun"), special=None):
    def deco(fn):
        CLASSES.append(dict(name=name, doc=doc, fn=fn, l2=l2, sources=sources, special=special))
        return fn
    return deco


# ---- IPv4 header lies

def echo4_with(c, **fields):
    """An ICMP echo request between c's IPv4 pair, its IPv4 header made
    again with each of fields: a function of the request, called once the
    request is made (so the seed draws in the same order)."""
    p = echo_req(4, c.s4(), c.d4(), c.rng)
    return ip4(p[12:16], p[16:20], ICMP, p[20:], **{k: f(p) for k, f in fields.items()})


@cls("ip4-totlen-past-frame", "IPv4 total length past the end of the frame")
def _(c):
    return echo4_with(c, tot=lambda p: len(p) + c.rng.randrange(1, 1400)), "malformed"


@cls("ip4-totlen-short-of-header", "IPv4 total length below its own header")
def _(c):
    return echo4_with(c, tot=lambda p: c.rng.randrange(0, 20)), "malformed"


@cls("ip4-totlen-cuts-tcp", "IPv4 total length ends inside the TCP header")
def _(c):
    s, d = c.s4(), c.d4()
    seg = tcp_seg(s, d, c.sport(), c.dport(), 1, 0, SYN)
    cut = c.rng.randrange(4, 20)
    return ip4(s, d, TCP, seg, tot=20 + cut), "rx_tcp_bad"


@cls("ip4-ihl-below-5", "IPv4 IHL 0 to 4")
def _(c):
    return echo4_with(c, ihl=lambda p: c.rng.randrange(0, 5)), "malformed"


@cls("ip4-ihl-past-frame", "IPv4 IHL longer than the frame")
def _(c):
    ihl = c.rng.randrange(6, 16)
    s, d = c.s4(), c.d4()
    body = c.rng.randbytes(c.rng.randrange(0, ihl * 4 - 20))
    return ip4(s, d, ICMP, body, ihl=ihl, tot=20 + len(body)), "malformed"


@cls("ip-version-lie", "a version nibble that is neither 4 nor 6, or the other one")
def _(c):
    fam = c.fam()
    p = echo_req(fam, *c.pair(fam)[1:], c.rng)
    v = c.rng.choice([0, 1, 2, 3, 5, 7, 9, 15] + ([6] if fam == 4 else [4]) * 4)
    if c.mode == "tun" and v in (4, 6):
        # No Ethernet type to contradict: the nibble alone says the family,
        # and a packet of one family read as the other is malformed.
        pass
    b = bytearray(p)
    b[0] = (v << 4) | (b[0] & 15)
    return bytes(b), "malformed"


@cls("ip4-bad-header-checksum", "IPv4 header checksum wrong")
def _(c):
    s, d = c.s4(), c.d4()
    return ip4(s, d, ICMP, echo_req(4, s, d, c.rng)[20:], good_csum=False), "rx_ip_bad"


@cls("ip4-options-valid", "IPv4 options with good lengths (NOP, RR, timestamp, router alert)")
def _(c):
    s, d = c.s4(), c.d4()
    o = c.rng.choice([b"\x01\x01\x01\x00", b"\x07\x07\x04" + bytes(4) + b"\x00",
                      b"\x94\x04\x00\x00", b"\x44\x0c\x05\x00" + bytes(8)])
    o += bytes(-len(o) % 4)
    return ip4(s, d, ICMP, echo_req(4, s, d, c.rng)[20:], ihl=5 + len(o) // 4, opts=o), "rx_icmp"


@cls("ip4-options-bad-length", "IPv4 options of length 0, 1 or past the header")
def _(c):
    s, d = c.s4(), c.d4()
    kind = c.rng.choice([7, 68, 131, 137, 148])
    ln = c.rng.choice([0, 1, 40, 255])
    o = bytes([kind, ln]) + c.rng.randbytes(6)
    # lwIP reads no option, so the datagram goes on, here a RST for the
    # listener, which ignores it. (Not an echo: the answer would carry
    # the options back, and the client's kernel would answer those with
    # a parameter problem.)
    seg = tcp_seg(s, d, c.sport(), c.dport(), c.rng.getrandbits(32), 0, RST)
    return ip4(s, d, TCP, seg, ihl=7, opts=o), "rx_tcp_listen"


@cls("ip-unknown-protocol", "IPv4 protocol / IPv6 next header lwIP does not speak")
def _(c):
    fam, s, d = c.pair()
    proto = c.rng.choice([2, 4, 41, 47, 50, 51 if fam == 4 else 47, 89, 103, 132, 200, 254])
    return ipx(fam, s, d, proto, c.data(8, 64)), "rx_ip_bad"


@cls("ip4-bad-source", "IPv4 from a multicast or broadcast source")
def _(c):
    src = c.rng.choice([bytes([224 + c.rng.randrange(16), 0, 0, 1]), b"\xff\xff\xff\xff"])
    d = c.d4()
    return ip4(src, d, ICMP, echo_req(4, src, d, c.rng)[20:]), "rx_ip_bad"


# ---- IPv6 header lies and extension headers

@cls("ip6-plen-past-frame", "IPv6 payload length past the end of the frame")
def _(c):
    s, d = c.s6(), c.d6()
    p = echo_req(6, s, d, c.rng)
    return ip6(s, d, ICMP6, p[40:], plen=len(p) - 40 + c.rng.randrange(1, 1400)), "malformed"


@cls("ip6-plen-cuts-tcp", "IPv6 payload length ends inside the TCP header")
def _(c):
    s, d = c.s6(), c.d6()
    seg = tcp_seg(s, d, c.sport(), c.dport(), 1, 0, SYN)
    return ip6(s, d, TCP, seg[:c.rng.randrange(4, 20)]), "rx_tcp_bad"


@cls("ip6-cut-in-fixed-header", "IPv6 frame shorter than its fixed header")
def _(c):
    s, d = c.s6(), c.d6()
    return echo_req(6, s, d, c.rng)[:c.rng.randrange(1, 40)], "malformed"


@cls("ip6-v4mapped-address", "IPv6 from or to a v4-mapped address")
def _(c):
    s = bytes(10) + b"\xff\xff" + c.s4()
    d = c.d6()
    return ip6(s, d, ICMP6, icmp6(s, d, 128, 0, c.data(4, 32))), "rx_ip_bad"


def echo6(c):
    """c's IPv6 pair and an ICMPv6 echo request between them."""
    s, d = c.s6(), c.d6()
    return s, d, icmp6(s, d, 128, 0, c.data(4, 16))


@cls("ip6-ext-chain-long", "IPv6 with 7 to 12 extension headers (the steering walks 6)")
def _(c):
    s, d = c.s6(), c.d6()
    n = c.rng.randrange(7, 13)
    body = icmp6(s, d, 128, 0, c.data(4, 16))
    nh = ICMP6
    for _ in range(n):
        body = ext(nh) + body
        nh = DSTOPTS
    return ip6(s, d, nh, body), "malformed"


@cls("ip6-ext-chain-ok", "IPv6 with 1 to 6 destination-option and routing headers, then an echo")
def _(c):
    s, d, body = echo6(c)
    nh = ICMP6
    for _ in range(c.rng.randrange(1, 7)):
        if c.rng.random() < 0.3:  # routing header, segments left 0: skipped
            body = bytes([nh, 0, c.rng.randrange(256), 0]) + bytes(4) + body
            nh = ROUTING
        else:
            body = ext(nh, c.rng.randrange(0, 3)) + body
            nh = DSTOPTS
    return ip6(s, d, nh, body), "rx_icmp"


@cls("ip6-ext-hbh-not-first", "IPv6 hop-by-hop header after another header (a loop of types)")
def _(c):
    s, d, body = echo6(c)
    body = ext(ICMP6, kind=HOPOPT) + body
    body = ext(HOPOPT) + body  # a destination header naming hop-by-hop next
    if c.rng.random() < 0.5:
        body = ext(DSTOPTS, kind=HOPOPT) + body  # hop-by-hop first, twice
        return ip6(s, d, HOPOPT, body), "rx_ip_bad"
    return ip6(s, d, DSTOPTS, body), "rx_ip_bad"


@cls("ip6-ext-bad-length", "IPv6 extension header whose length runs past the packet")
def _(c):
    s, d = c.s6(), c.d6()
    n = c.rng.randrange(2, 256)
    h = bytes([ICMP6, n]) + bytes([1, 4]) + bytes(4)
    return ip6(s, d, c.rng.choice([DSTOPTS, HOPOPT, ROUTING]), h + c.data(0, 8)), "malformed"


@cls("ip6-ext-unknown-next", "IPv6 chains ending in an unknown next header, or in none (59)")
def _(c):
    s, d = c.s6(), c.d6()
    nh = c.rng.choice([NONXT, 143, 200, 253, 254, 99])
    body = ext(nh) + c.data(0, 32)
    return ip6(s, d, DSTOPTS, body), "rx_ip_bad"


@cls("ip6-hbh-bad-option", "IPv6 hop-by-hop options that say discard, or whose length byte is past the header")
def _(c):
    s, d = c.s6(), c.d6()
    if c.rng.random() < 0.5:
        t = c.rng.choice([0x41, 0x5F, 0x80, 0x9E, 0xC3, 0xFF])  # action 01, 10, 11
        h = bytes([ICMP6, 0, t, 4]) + bytes(4)
        return ip6(s, d, HOPOPT, h + icmp6(s, d, 128, 0, c.data(4, 8))), "rx_ip_bad"
    # An option type in the header's last byte, its length byte beyond it:
    # the packet ends there (no next header). Stock lwIP read that byte
    # past the buffer (patch 0031).
    h = bytes([NONXT, 0, 1, 3, 0, 0, 0, c.rng.choice([5, 0xC2, 0x05, 0x1E])])
    return ip6(s, d, c.rng.choice([HOPOPT, DSTOPTS]), h), "rx_ip_bad"


# ---- fragments

def frags4(s, d, proto, payload, ident, sizes):
    """IPv4 fragments of payload at the given 8-byte-multiple sizes."""
    out, off = [], 0
    for i, n in enumerate(sizes):
        last = i == len(sizes) - 1
        chunk = payload[off:off + n] if not last else payload[off:]
        out.append(ip4(s, d, proto, chunk, ident=ident, frag=(0 if last else 0x2000) | (off // 8)))
        off += n
    return out


@cls("frag4-overlap", "IPv4 teardrop: a second fragment overlapping the first")
def _(c):
    s, d = c.s4(), c.d4()
    ident = c.rng.randrange(65536)
    a = ip4(s, d, UDP, c.rng.randbytes(24), ident=ident, frag=0x2000)
    b = ip4(s, d, UDP, c.rng.randbytes(c.rng.randrange(16, 200)), ident=ident,
            frag=c.rng.randrange(1, 3))
    return [(a, "rx_frag_held"), (b, "rx_frag_bad")]


@cls("frag6-overlap", "IPv6 teardrop: a second fragment overlapping the first")
def _(c):
    s, d = c.s6(), c.d6()
    ident = c.rng.getrandbits(32)
    a = ip6(s, d, FRAGMENT, frag6_hdr(UDP, 0, True, ident) + c.rng.randbytes(24))
    b = ip6(s, d, FRAGMENT, frag6_hdr(UDP, c.rng.randrange(1, 3), True, ident) + c.rng.randbytes(32))
    return [(a, "rx_frag_held"), (b, "rx_frag_bad")]


@cls("frag4-tiny-first", "IPv4 first fragment cut inside the TCP header; the rest completes it (dropped)")
def _(c):
    s, d = c.s4(), c.d4()
    seg = tcp_seg(s, d, c.sport(), c.dport(), c.rng.getrandbits(32), c.rng.getrandbits(32), ACK,
                  c.data(0, 16))
    # lwIP wants the whole TCP header in the first buffer of a segment,
    # and drops a reassembled one whose first fragment cut it (RFC 1858)
    return [(f, fate) for f, fate in zip(frags4(s, d, TCP, seg, c.rng.randrange(65536), [8, 0]),
                                         ["rx_frag_held", "rx_tcp_bad"])]


@cls("frag4-tiny-no-ports", "IPv4 first fragment of 0 to 3 bytes: no ports to steer by")
def _(c):
    s, d = c.s4(), c.d4()
    return ip4(s, d, TCP, c.rng.randbytes(c.rng.randrange(0, 4)), ident=c.rng.randrange(65536),
               frag=0x2000), "malformed"


@cls("frag-never-completed", "IPv4 and IPv6 fragments of datagrams whose last fragment never comes")
def _(c):
    fam, s, d = c.pair()
    off = c.rng.randrange(0, 100)
    if fam == 4:
        return ip4(s, d, UDP, c.rng.randbytes(8 * c.rng.randrange(1, 8)), ident=c.rng.randrange(65536),
                   frag=0x2000 | off), "rx_frag_held"
    return ip6(s, d, FRAGMENT, frag6_hdr(UDP, off, True, c.rng.getrandbits(32))
               + c.rng.randbytes(8 * c.rng.randrange(1, 8))), "rx_frag_held"


@cls("frag-too-many", "300 fragments of one datagram: lwIP holds 256, drops the rest")
def _(c):
    fam, s, d = c.pair()
    ident = c.rng.randrange(65536) if fam == 4 else c.rng.getrandbits(32)
    out = []
    for i in range(300):
        if fam == 4:
            f = ip4(s, d, UDP, c.rng.randbytes(8), ident=ident, frag=0x2000 | (2 * i))
        else:
            f = ip6(s, d, FRAGMENT, frag6_hdr(UDP, 2 * i, True, ident) + c.rng.randbytes(8))
        out.append((f, "rx_frag_held" if i < 256 else "rx_frag_bad"))
    return out


@cls("frag6-chain-not-in-first", "IPv6 first fragment with the upper-layer header in the second")
def _(c):
    s, d = c.s6(), c.d6()
    ident = c.rng.getrandbits(32)
    seg = tcp_seg(s, d, c.sport(), c.dport(), 1, 0, SYN)
    first = ip6(s, d, FRAGMENT, frag6_hdr(DSTOPTS, 0, True, ident) + ext(TCP))
    second = ip6(s, d, FRAGMENT, frag6_hdr(DSTOPTS, 1, False, ident) + seg)
    # The steering cannot see ports in the first: malformed, to the kernel.
    # The second is for the rules' prefix: held, its first never comes.
    return [(first, "malformed"), (second, "rx_frag_held")]


@cls("frag4-reassembled-echo", "IPv4 and IPv6 echo requests in 2 to 4 good fragments")
def _(c):
    fam, s, d = c.pair()
    n = c.rng.randrange(2, 5)
    ident = c.rng.randrange(65536) if fam == 4 else c.rng.getrandbits(32)
    if fam == 4:
        m = icmp4(8, 0, struct.pack("!HH", 1, 2) + c.rng.randbytes(8 * 4 * n - 8))
        fr = frags4(s, d, ICMP, m, ident, [32] * (n - 1) + [0])
    else:
        m = icmp6(s, d, 128, 0, struct.pack("!HH", 1, 2) + c.rng.randbytes(8 * 4 * n - 8))
        fr = [ip6(s, d, FRAGMENT, frag6_hdr(ICMP6, 4 * i, i < n - 1, ident)
                  + (m[32 * i:32 * (i + 1)] if i < n - 1 else m[32 * i:])) for i in range(n)]
    return [(f, "rx_frag_held" if i < n - 1 else "rx_icmp") for i, f in enumerate(fr)]


# ---- TCP to the listener (no connection has the 4-tuple)

@cls("tcp-flag-combos", "TCP SYN+FIN, null, xmas, SYN+RST, FIN, URG... to any port")
def _(c):
    flags = c.rng.choice([SYN | FIN, 0, FIN | PSH | URG, SYN | RST, FIN, URG, PSH, RST | ACK,
                          SYN | FIN | RST | PSH | ACK | URG | ECE | CWR, ECE | CWR, SYN | URG, FIN | ACK])
    return seg_to_listener(c, c.fam(), flags), listener_fate(flags)


@cls("tcp-doff-below-5", "TCP data offset 0 to 4")
def _(c):
    return seg_to_listener(c, c.fam(), SYN, doff=c.rng.randrange(0, 5)), "rx_tcp_bad"


@cls("tcp-doff-past-segment", "TCP data offset past the end of the segment")
def _(c):
    return seg_to_listener(c, c.fam(), SYN, doff=c.rng.randrange(6, 16), data=c.data(0, 3)), "rx_tcp_bad"


@cls("tcp-bad-checksum", "TCP checksum wrong")
def _(c):
    return seg_to_listener(c, c.fam(), c.rng.choice([SYN, ACK, RST, FIN | ACK]), good_csum=False), "rx_tcp_bad"


@cls("tcp-opt-bad-length", "TCP options of length 0, 1, or past the header, in SYNs")
def _(c):
    kind = c.rng.choice([2, 3, 4, 5, 8, 30, 254])
    ln = c.rng.choice([0, 1, 60, 255])
    o = bytes([kind, ln]) + c.rng.randbytes(2)
    return seg_to_listener(c, c.fam(), SYN, opts=o), "rx_tcp_listen"


@cls("tcp-sack-garbage", "TCP SACK blocks of garbage (and SACK-permitted) on SYNs and ACKs")
def _(c):
    n = c.rng.randrange(1, 5)
    o = b"\x04\x02" + b"\x01\x01" + bytes([5, 2 + 8 * n]) + c.rng.randbytes(8 * n)
    o += b"\x01" * (-len(o) % 4)
    return seg_to_listener(c, c.fam(), c.rng.choice([SYN, ACK]), opts=o), "rx_tcp_listen"


@cls("tcp-mss-edges", "TCP SYN with MSS 0, 1 or 65535")
def _(c):
    o = b"\x02\x04" + struct.pack("!H", c.rng.choice([0, 1, 65535]))
    return seg_to_listener(c, c.fam(), SYN, opts=o), "rx_tcp_listen"


@cls("tcp-wscale-over-14", "TCP SYN with window scale 15 to 255")
def _(c):
    o = b"\x01\x03\x03" + bytes([c.rng.randrange(15, 256)])
    return seg_to_listener(c, c.fam(), SYN, opts=o), "rx_tcp_listen"


@cls("tcp-syn-with-data", "TCP SYN carrying data")
def _(c):
    return seg_to_listener(c, c.fam(), SYN, data=c.data(1, 512)), "rx_tcp_listen"


# ---- TCP against live flows of our own (RawFlow): state known exactly

@cls("live-rst-outside-window", "RST with a sequence number outside the window of a live flow")
def _(c):
    f = c.flows[c.rng.randrange(len(c.flows))]
    seq = f.snd_nxt - c.rng.randrange(1, 1 << 20) if c.rng.random() < 0.5 else \
        f.snd_nxt + f.wnd + c.rng.randrange(1, 1 << 30)
    return f.segment(RST | c.rng.choice([0, ACK]), seq, f.rcv_nxt), "rx_tcp_flow"


@cls("live-rst-in-window", "RST inside the window of a live flow, not exact: a challenge ACK (RFC 5961)")
def _(c):
    f = c.flows[c.rng.randrange(len(c.flows))]
    f.expect_challenge += 1
    return f.segment(RST, f.snd_nxt + c.rng.randrange(1, f.wnd // 2), 0), "rx_tcp_flow"


@cls("live-syn", "SYN on a live flow, in and out of its window: a challenge ACK (RFC 5961)")
def _(c):
    f = c.flows[c.rng.randrange(len(c.flows))]
    f.expect_challenge += 1
    seq = f.snd_nxt + c.rng.randrange(-(1 << 20), f.wnd // 2)
    return f.segment(SYN | c.rng.choice([0, ACK]), seq, f.rcv_nxt), "rx_tcp_flow"


@cls("live-ack-outside-window", "ACKs of data never sent, and data outside the window, on live flows")
def _(c):
    f = c.flows[c.rng.randrange(len(c.flows))]
    if c.rng.random() < 0.5:
        return f.segment(ACK, f.snd_nxt, f.rcv_nxt + c.rng.randrange(1 << 16, 1 << 30)), "rx_tcp_flow"
    seq = f.snd_nxt + f.wnd + c.rng.randrange(1, 1 << 24) if c.rng.random() < 0.5 else \
        f.snd_nxt - c.rng.randrange(1 << 17, 1 << 24)
    return f.segment(ACK | PSH, seq, f.rcv_nxt, c.data(1, 64)), "rx_tcp_flow"


@cls("live-sack-garbage", "duplicate ACKs with garbage SACK blocks on live flows")
def _(c):
    f = c.flows[c.rng.randrange(len(c.flows))]
    o = b"\x01\x01" + bytes([5, 2 + 8 * 2]) + c.rng.randbytes(16)
    return f.segment(ACK, f.snd_nxt, f.rcv_nxt, opts=o), "rx_tcp_flow"


@cls("live-seq-wrap", "a live flow of our own whose sequence numbers wrap past 2^32: 1000 "
     "segments of 64 bytes echoed exactly", special="wrap")
def _(c):
    raise AssertionError("sent by cmd_run")


# ---- UDP

@cls("udp-length-below-8", "UDP length field 0 to 7; and UDP headers cut short")
def _(c):
    fam, s, d = c.pair()
    if c.rng.random() < 0.5:
        u = udp_dgram(s, d, c.sport(), c.dport(), c.data(0, 32), length=c.rng.randrange(0, 8))
        return ipx(fam, s, d, UDP, u), "rx_udp_bad"
    u = udp_dgram(s, d, c.sport(), c.dport())[:c.rng.randrange(4, 8)]
    return ipx(fam, s, d, UDP, u), "rx_udp_bad"


@cls("udp-length-lie", "UDP length field longer or shorter than the IP payload")
def _(c):
    fam, s, d = c.pair()
    data = c.data(8, 64)
    ln = 8 + len(data) + c.rng.choice([-1, 1]) * c.rng.randrange(1, 8)
    return ipx(fam, s, d, UDP, udp_dgram(s, d, c.sport(), c.dport(), data, length=ln)), "rx_udp_bad"


@cls("udp4-zero-checksum", "UDP over IPv4 with checksum 0 (none): valid")
def _(c):
    s, d = c.s4(), c.d4()
    return ip4(s, d, UDP, udp_dgram(s, d, c.sport(), c.dport(), c.data(1, 64), ck=0)), "rx_udp"


@cls("udp6-zero-checksum", "UDP over IPv6 with checksum 0: must be dropped (RFC 8200)")
def _(c):
    s, d = c.s6(), c.d6()
    return ip6(s, d, UDP, udp_dgram(s, d, c.sport(), c.dport(), c.data(1, 64), ck=0)), "rx_udp_bad"


@cls("udp-empty", "UDP datagrams with no payload")
def _(c):
    fam, s, d = c.pair()
    return ipx(fam, s, d, UDP, udp_dgram(s, d, c.sport(), c.dport())), "rx_udp"


@cls("udp-bad-checksum", "UDP checksum wrong")
def _(c):
    fam, s, d = c.pair()
    u = udp_dgram(s, d, c.sport(), c.dport(), c.data(1, 64))
    ck = struct.unpack("!H", u[6:8])[0] ^ 0x0F0F or 1
    return ipx(fam, s, d, UDP, u[:6] + struct.pack("!H", ck) + u[8:]), "rx_udp_bad"


# ---- ICMP

@cls("icmp-errors-forged", "ICMP errors quoting live flows with forged sequence numbers")
def _(c):
    f = c.flows[c.rng.randrange(len(c.flows))]
    # the error goes back the way the quoted segment went: to the client
    # from the server, quoting what the server sent
    if f.fam == 4:
        q = ip4(f.dst, f.src, TCP, tcp_seg(f.dst, f.src, f.dport, f.sport, f.rcv_nxt + c.rng.getrandbits(16),
                                          f.snd_nxt, ACK))
        typ, code = c.rng.choice([(3, 0), (3, 1), (3, 3), (3, 4), (11, 0), (12, 0), (5, 1), (4, 0)])
        m = icmp4(typ, code, struct.pack("!HH", 0, 1280 if code == 4 else 0) + q[:28])
        return ip4(c.s4(), f.dst, ICMP, m), "rx_icmp_bad"
    q = ip6(f.dst, f.src, TCP, tcp_seg(f.dst, f.src, f.dport, f.sport, f.rcv_nxt + c.rng.getrandbits(16),
                                      f.snd_nxt, ACK))
    typ = c.rng.choice([1, 3, 4, 2])
    rs = c.s6()
    m = icmp6(rs, f.dst, typ, 0, struct.pack("!I", 1280 if typ == 2 else 0) + q[:48])
    # Packet too big goes to neighbour discovery, which reads it: taken
    return ip6(rs, f.dst, ICMP6, m), "rx_icmp" if typ == 2 else "rx_icmp_bad"


@cls("icmp-bad", "ICMP echo with a bad checksum, ICMP too short, unknown types")
def _(c):
    fam, s, d = c.pair()
    k = c.rng.randrange(3)
    if fam == 4:
        if k == 0:
            m = bytearray(icmp4(8, 0, c.data(4, 32)))
            m[2] ^= 0x11
            return ip4(s, d, ICMP, bytes(m)), "rx_icmp_bad"
        if k == 1:
            return ip4(s, d, ICMP, bytes([8]) + c.rng.randbytes(c.rng.randrange(0, 3))), "rx_icmp_bad"
        return ip4(s, d, ICMP, icmp4(c.rng.choice([1, 2, 6, 7, 40, 99, 200]), 0, c.data(4, 16))), "rx_icmp_bad"
    if k == 0:
        return ip6(s, d, ICMP6, icmp6(s, d, 128, 0, c.data(4, 32), good_csum=False)), "rx_icmp_bad"
    if k == 1:
        # no type at all: the steering cannot tell neighbour discovery
        if c.rng.random() < 0.2:
            return ip6(s, d, ICMP6, b""), "malformed"
        return ip6(s, d, ICMP6, bytes([128]) + c.rng.randbytes(c.rng.randrange(0, 3))), "rx_icmp_bad"
    return ip6(s, d, ICMP6, icmp6(s, d, c.rng.choice([5, 100, 127, 150, 200]), 0, c.data(4, 16))), "rx_icmp_bad"


@cls("icmp-echo", "good ICMP and ICMPv6 echo requests of 0 to 1400 bytes (a control)")
def _(c):
    fam, s, d = c.pair()
    return echo_req(fam, s, d, c.rng, size=c.rng.randrange(0, 1400)), "rx_icmp"


@cls("not-for-the-rules", "good packets to addresses no rule takes")
def _(c):
    fam = c.fam()
    if fam == 4:
        s, d = c.s4(), bytes([198, 51, 101, c.rng.randrange(1, 255)])
    else:
        s, d = c.s6(), bytes.fromhex("20010db80200") + bytes(9) + bytes([c.rng.randrange(1, 255)])
    return echo_req(fam, s, d, c.rng), "passed"


# ---- layer 2 (AF_XDP only)

@cls("vlan-odd", "one or two VLAN tags with an unknown inner type, three tags, tags cut short",
     l2=True, sources=("xdp",))
def _(c, dmac, smac):
    s, d = c.s4(), c.d4()
    p = echo_req(4, s, d, c.rng)
    k = c.rng.randrange(5)
    if k == 0:
        return eth(dmac, smac, c.rng.choice([0x1234, 0x88CC, 0x0806 + 1, 0x9000]), p,
                   tags=[(ETH_VLAN, c.rng.randrange(1, 4095))]), "passed"
    if k == 1:
        return eth(dmac, smac, ETH_IP, p, tags=[(ETH_QINQ, 5), (ETH_VLAN, 6), (ETH_VLAN, 7)]), "passed"
    if k == 2:
        f = eth(dmac, smac, ETH_IP, p, tags=[(ETH_VLAN, 9)])
        return f[:c.rng.randrange(14, 18)], "malformed"
    if k == 3:
        f = eth(dmac, smac, ETH_IP, p, tags=[(ETH_QINQ, 9), (ETH_VLAN, 10)])
        return f[:c.rng.randrange(19, 21)], "malformed"
    # a good double-tagged echo: answered, tags kept
    return eth(dmac, smac, ETH_IP, p, tags=[(ETH_QINQ, 11), (ETH_VLAN, 12)]), "rx_icmp"


@cls("runt-below-34", "frames of 14 to 33 bytes: Ethernet and part of an IP header",
     l2=True, sources=("xdp",))
def _(c, dmac, smac):
    fam = c.fam()
    p = echo_req(fam, *c.pair(fam)[1:], c.rng)
    return eth(dmac, smac, ETH_IP if fam == 4 else ETH_IP6, p)[:c.rng.randrange(14, 34)], "malformed"


@cls("over-mtu", "IPv4 and IPv6 echo requests of 1501 to 1504 bytes, past the 1500 MTU",
     l2=True, sources=("xdp",))
def _(c, dmac, smac):
    fam, s, d = c.pair()
    size = c.rng.randrange(1501, 1505) - (28 if fam == 4 else 48) - 4
    p = echo_req(fam, s, d, c.rng, size=size)
    return eth(dmac, smac, ETH_IP if fam == 4 else ETH_IP6, p), "rx_icmp"


# ------------------------------------------------------------ raw io

class RawIO:
    """Frames out of IF (with an Ethernet header to the server on xdp),
    and in: the IP packets sent to our source prefixes."""

    def __init__(self, mode, iface, dmac=None):
        self.mode, self.iface = mode, iface
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 << 20)
        self.attach_filter()
        self.sock.bind((iface, ETH_P_ALL))
        self.sock.setblocking(False)
        self.dmac = dmac
        self.smac = self.sock.getsockname()[4] if mode == "xdp" else b""
        self.sent = 0
        self.flows = {}

    def attach_filter(self):
        """Only replies to our sources: the live flows also cross IF."""
        out = subprocess.run(["tcpdump", "-i", self.iface, "-dd",
                              "dst net 203.0.113.0/24 or dst net 2001:db8:bad::/64"],
                             capture_output=True, text=True, check=True).stdout
        ins = [tuple(int(x, 0) for x in re.findall(r"0x[0-9a-f]+|\d+", line))
               for line in out.splitlines() if line.startswith("{")]
        prog = b"".join(struct.pack("HBBI", *i) for i in ins)
        self._prog = ctypes.create_string_buffer(prog)
        fprog = struct.pack("HL", len(ins), ctypes.addressof(self._prog))
        self.sock.setsockopt(socket.SOL_SOCKET, 26, fprog)  # SO_ATTACH_FILTER
        # Drop what queued before the filter took hold.
        self.sock.setblocking(False)
        try:
            while self.sock.recv(65535):
                pass
        except BlockingIOError:
            pass

    def frame(self, ip_pkt):
        if self.mode == "tun":
            return ip_pkt
        return eth(self.dmac, self.smac, ETH_IP if ip_pkt[0] >> 4 == 4 else ETH_IP6, ip_pkt)

    def send(self, frame):
        while True:
            try:
                self.sock.send(frame)
                self.sent += 1
                return True
            except BlockingIOError:
                select.select([], [self.sock], [], 0.1)
            except OSError:
                return False

    def poll(self, timeout=0.0):
        """Hand every received packet to its flow; count the rest."""
        end = time.monotonic() + timeout
        while True:
            try:
                b, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                left = end - time.monotonic()
                if left <= 0:
                    return
                select.select([self.sock], [], [], left)
                continue
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            if self.mode == "xdp":
                b = strip_l2(b)
                if b is None:
                    continue
            key = tcp_key(b)
            if key in self.flows:
                self.flows[key].input(b)


def strip_l2(b):
    off = 12
    typ = struct.unpack("!H", b[off:off + 2])[0]
    while typ in (ETH_VLAN, ETH_QINQ):
        off += 4
        typ = struct.unpack("!H", b[off:off + 2])[0]
    return b[off + 2:] if typ in (ETH_IP, ETH_IP6) else None


def tcp_key(p):
    """(our address, our port) of a TCP packet to us, or None."""
    if p[0] >> 4 == 4 and p[9] == TCP:
        o = (p[0] & 15) * 4
        return p[16:20], struct.unpack("!H", p[o + 2:o + 4])[0]
    if p[0] >> 4 == 6 and p[6] == TCP:
        return p[24:40], struct.unpack("!H", p[42:44])[0]
    return None


class RawFlow:
    """A TCP client of our own whose state is known exactly: no window
    scaling, SACK or timestamps; it echoes data through l3x and checks it."""

    def __init__(self, io, fam, src, dst, sport, dport, isn):
        self.io, self.fam, self.src, self.dst = io, fam, src, dst
        self.sport, self.dport = sport, dport
        self.snd_nxt, self.rcv_nxt, self.wnd = isn, 0, 0
        self.state = "closed"
        self.rx = bytearray()
        self.acks = 0  # pure ACKs received (challenge ACKs among them)
        self.expect_challenge = 0
        self.rst = False
        io.flows[(src, sport)] = self

    def segment(self, flags, seq, ack, data=b"", opts=b""):
        return ipx(self.fam, self.src, self.dst, TCP,
                   tcp_seg(self.src, self.dst, self.sport, self.dport, seq, ack, flags, data, opts))

    def send(self, flags, data=b"", opts=b""):
        self.io.send(self.io.frame(self.segment(flags, self.snd_nxt, self.rcv_nxt, data, opts)))
        self.snd_nxt = (self.snd_nxt + len(data) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF

    def input(self, p):
        o = (p[0] & 15) * 4 if self.fam == 4 else 40
        seq, ack, doff, flags, win = struct.unpack("!IIBBH", p[o + 4:o + 16])
        data = p[o + (doff >> 4) * 4:]
        if self.fam == 4:
            data = data[:struct.unpack("!H", p[2:4])[0] - o - (doff >> 4) * 4]
        if flags & RST:
            self.rst = True
            return
        self.wnd = win
        if flags & SYN and self.state == "syn-sent":
            self.rcv_nxt = (seq + 1) & 0xFFFFFFFF
            self.state = "established"
            return
        if data and seq == self.rcv_nxt:
            self.rx += data
            self.rcv_nxt = (self.rcv_nxt + len(data)) & 0xFFFFFFFF
            self.need_ack = True
        elif not data and not flags & (SYN | FIN):
            self.acks += 1

    def connect(self):
        self.state = "syn-sent"
        self.send(SYN, opts=b"\x02\x04\x05\xb4")
        end = time.monotonic() + 3
        while self.state != "established" and time.monotonic() < end:
            self.io.poll(0.05)
        if self.state != "established":
            return False
        self.send(ACK)
        return True

    def echo(self, data, seg=512, timeout=5.0):
        """Send data in segments (at most 16 unacknowledged), read the echo;
        returns the frames sent and whether all came back exact."""
        frames0 = self.io.sent
        self.rx = bytearray()
        off = 0
        end = time.monotonic() + timeout
        while len(self.rx) < len(data) and time.monotonic() < end and not self.rst:
            while off < len(data) and off - len(self.rx) < 16 * seg:
                self.send(ACK | PSH, data[off:off + seg])
                off += seg
            self.need_ack = False
            self.io.poll(0.02)
            if self.need_ack:
                self.send(ACK)
        return self.io.sent - frames0, bytes(self.rx) == data

    def close(self):
        self.send(RST | ACK)


def open_flows(io, rng, n):
    flows = []
    for i in range(n):
        fam = 4 if i % 2 == 0 else 6
        src = bytes([203, 0, 113, 220 + i]) if fam == 4 else \
            bytes.fromhex("20010db80bad0000000000000000ff") + bytes([i])
        dst = bytes([198, 51, 100, 240 + i]) if fam == 4 else \
            bytes.fromhex("20010db8010000000000000000ff00") + bytes([i])
        f = RawFlow(io, fam, src, dst, 40000 + i, 7 + i, rng.getrandbits(32))
        if not f.connect():
            return None, f"raw flow {i} (IPv{fam}): no SYN-ACK"
        flows.append(f)
    return flows, None


# ------------------------------------------------------------ counters

class Server:
    """The l3x-serve under test: SIGUSR1, then its 'counters' line."""

    def __init__(self, pid, log):
        self.pid, self.log = pid, log
        self.seen = 0

    def counters(self):
        with open(self.log, errors="replace") as f:
            n0 = sum(1 for line in f if ": counters: " in line)
        os.kill(self.pid, signal.SIGUSR1)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            time.sleep(0.05)
            with open(self.log, errors="replace") as f:
                lines = [line for line in f if ": counters: " in line]
            if len(lines) > n0 and lines[-1].endswith("\n"):
                return {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", lines[-1])}
        raise RuntimeError("the server printed no counters line on SIGUSR1")


def iface_stat(iface, what):
    with open(f"/sys/class/net/{iface}/statistics/{what}") as f:
        return int(f.read())


def tun_fate(fate):
    return {"passed": "no_rule", "malformed": "not_ip"}.get(fate, fate)


STEERED_AWAY = {"passed", "malformed", "not_ip", "no_rule", "rx_ring_dropped"}


def check_class(want, got, n):
    """want: Counter of fates ('a|b' allows either); got: counter deltas.
    Returns None or what is wrong. A frame the AF_XDP socket dropped
    (its ring full) is counted in rx_ring_dropped instead of its fate in
    the stack: any stack fate may come short by that many."""
    lo, hi = Counter(), Counter()
    for fate, k in want.items():
        alts = fate.split("|")
        for a in alts:
            hi[a] += k
        if len(alts) == 1:
            lo[fate] += k
        if not set(alts) & STEERED_AWAY:
            hi["rx_ring_dropped"] += k
    ring = got.get("rx_ring_dropped", 0)
    for c in lo:
        if c not in STEERED_AWAY:
            lo[c] = max(0, lo[c] - ring)
    bad = []
    for c in EXCLUSIVE:
        if not lo[c] <= got.get(c, 0) <= hi[c]:
            bad.append(f"{c} {got.get(c, 0)} (want {lo[c]}" + (f"..{hi[c]}" if hi[c] != lo[c] else "") + ")")
    for c in SHARED:
        if got.get(c, 0) < lo[c]:
            bad.append(f"{c} {got.get(c, 0)} (want at least {lo[c]})")
    total = sum(got.get(c, 0) for c in EXCLUSIVE) + sum(min(got.get(c, 0), hi[c]) for c in SHARED)
    if not bad and total != n:
        bad.append(f"{total} of {n} frames found in their counters")
    return "; ".join(bad) or None


def write_pcap(path, frames, linktype):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for b in frames:
            f.write(struct.pack("<IIII", 0, 0, len(b), len(b)) + b)


def read_pcap(path):
    with open(path, "rb") as f:
        d = f.read()
    off, out = 24, []
    while off + 16 <= len(d):
        n = struct.unpack("<I", d[off + 8:off + 12])[0]
        out.append(d[off + 16:off + 16 + n])
        off += 16 + n
    return out


def build(cl, c, io, count):
    """The class's frames (at least count, whole groups) and their fates."""
    frames = []
    while len(frames) < count:
        r = cl["fn"](c, io.dmac, io.smac) if cl["l2"] else cl["fn"](c)
        for f, fate in r if isinstance(r, list) else [r]:
            frames.append((f if cl["l2"] else io.frame(f), fate if io.mode == "xdp" else tun_fate(fate)))
    return frames


def settle(srv, before, want, n, tries=20):
    """Counters once the class's n frames have landed (or it gives up):
    the exclusive counters have all they should, and every counter
    together at least n."""
    excl = sum(k for fate, k in want.items() if fate in EXCLUSIVE)
    for i in range(tries):
        time.sleep(0.1 if i else 0.15)
        now = srv.counters()
        d = {k: now.get(k, 0) - before.get(k, 0) for k in FATES}
        if sum(d[k] for k in EXCLUSIVE) >= excl and sum(d.values()) >= n:
            time.sleep(0.05)
            return srv.counters()
    return now


def cmd_run(a):
    io = RawIO(a.mode, a.iface, bytes.fromhex(a.dst_mac.replace(":", "")) if a.dst_mac else None)
    srv = Server(a.server_pid, a.server_log)
    rng = random.Random(a.seed)
    names = a.classes.split(",") if a.classes else None
    todo = [cl for cl in CLASSES if a.mode in cl["sources"] and (not names or cl["name"] in names)]
    unknown = set(names or []) - {cl["name"] for cl in CLASSES}
    if unknown:
        print(f"not ok corpus {a.mode}: no class {', '.join(sorted(unknown))} (corpus.py list)")
        return 1
    fails = 0
    for cl in CLASSES:
        if a.mode not in cl["sources"] and (not names or cl["name"] in names):
            print(f"skip corpus {a.mode}: {cl['name']}: a TUN device carries no Ethernet header, "
                  "and the kernel sends no packet past its MTU into it", flush=True)
    if a.mode == "xdp" and not names:
        print("skip corpus xdp: runts below 14 bytes: a packet socket will not send one on a "
              "veth (EINVAL), nor will BPF_PROG_TEST_RUN run the program on one", flush=True)
    flows, err = open_flows(io, random.Random(a.seed + 1), 4)
    if err:
        print(f"not ok corpus {a.mode}: {err}")
        return 1
    wrap, err = open_flows_wrap(io, rng)
    if err:
        print(f"not ok corpus {a.mode}: {err}")
        return 1
    for f in flows:
        n, good = f.echo(rng.randbytes(4096))
        if not good:
            print(f"not ok corpus {a.mode}: raw flow {f.sport} does not echo before the corpus")
            return 1
    if a.pcap_dir:
        os.makedirs(a.pcap_dir, exist_ok=True)
    t0 = time.monotonic()
    start = srv.counters()
    per_class = []
    total = 0
    for cl in todo:
        c = Ctx(random.Random(f"{a.seed}/{cl['name']}"), a.mode, flows)
        before = srv.counters()
        d0 = iface_stat(a.iface, "tx_dropped")
        why = None
        if cl["special"] == "wrap":
            n, good = wrap.echo(random.Random(a.seed).randbytes(64 * a.count), seg=64, timeout=30)
            frames, want = [None] * n, Counter(rx_tcp_flow=n)
            if wrap.rst or not good:
                why = f"the flow across 2^32 came back {'reset' if wrap.rst else 'different'}"
        else:
            frames = build(cl, c, io, a.count)
            if a.pcap_dir:
                write_pcap(os.path.join(a.pcap_dir, f"{a.mode}-{cl['name']}.pcap"),
                           [f for f, _ in frames], 1 if a.mode == "xdp" else 101)
            ok_sent = send_paced(io, [f for f, _ in frames], a.pps)
            if sum(ok_sent) != len(frames):
                why = f"{len(frames) - sum(ok_sent)} frames the kernel would not send"
            frames = [fr for fr, sent in zip(frames, ok_sent) if sent]
            want = Counter(fate for _, fate in frames)
        extra = 0
        if cl["name"].startswith("live-") or cl["name"] == "icmp-errors-forged":
            extra = check_flows(a.mode, cl["name"], flows, rng)
            want["rx_tcp_flow"] += extra
        after = settle(srv, before, want, len(frames) + extra)
        got = {k: after.get(k, 0) - before.get(k, 0) for k in FATES}
        lost = iface_stat(a.iface, "tx_dropped") - d0
        why = why or check_class(want, got, len(frames) + extra)
        if lost:
            why = (why + "; " if why else "") + f"{lost} frames dropped on {a.iface} before the server"
        shown = " ".join(f"{k} {v}" for k, v in sorted(want.items()))
        if got.get("rx_ring_dropped"):
            shown += f" ({got['rx_ring_dropped']} of them dropped by the socket, its ring full)"
        if why:
            fails += 1
            print(f"not ok corpus {a.mode}: {cl['name']}: {len(frames)} frames: {why}", flush=True)
        else:
            print(f"ok corpus {a.mode}: {cl['name']}: {len(frames)} frames: {shown}", flush=True)
        per_class.append(f"{cl['name']}={len(frames)}")
        total += len(frames) + extra
    end = srv.counters()
    for f in flows + [wrap]:
        f.close()
    d = {k: end.get(k, 0) - start.get(k, 0) for k in FATES + ["rx_packets", "redirected"]}
    print(f"corpus {a.mode}: {len(todo)} classes, {total} frames in {time.monotonic() - t0:.1f} s "
          f"(seed {a.seed}); " + " ".join(per_class) + "; counters moved: "
          + " ".join(f"{k} {v}" for k, v in d.items() if v), flush=True)
    return 1 if fails else 0


def send_paced(io, frames, pps):
    """Send at about pps frames a second, in bursts of 32; which went."""
    t = time.monotonic()
    sent = []
    for i, f in enumerate(frames):
        sent.append(io.send(f))
        if i % 32 == 31:
            io.poll()
            lag = t + (i + 1) / pps - time.monotonic()
            if lag > 0:
                time.sleep(lag)
    return sent


def check_flows(mode, name, flows, rng):
    """After a class aimed at the raw flows: in-window RSTs and SYNs got
    their challenge ACKs, and each flow still echoes exactly (the frames
    that takes are returned). Failures print their own 'not ok' line."""
    sent = 0
    flows[0].io.poll(0.2)
    for f in flows:
        what = f"raw flow IPv{f.fam} :{f.sport}"
        if f.acks < f.expect_challenge:
            print(f"not ok corpus {mode}: {name}: {what}: {f.acks} challenge ACKs for "
                  f"{f.expect_challenge} in-window RSTs and SYNs", flush=True)
        f.expect_challenge = f.acks = 0
        n, good = f.echo(rng.randbytes(2048))
        sent += n
        if f.rst or not good:
            print(f"not ok corpus {mode}: {name}: {what} "
                  + ("was reset" if f.rst else "no longer echoes exactly"), flush=True)
    return sent


def open_flows_wrap(io, rng):
    """A flow whose sequence numbers wrap past 2^32 within its first 64 KiB."""
    f = RawFlow(io, 4, bytes([203, 0, 113, 250]), bytes([198, 51, 100, 250]), 45000, 9,
                (1 << 32) - rng.randrange(1000, 60000))
    if not f.connect():
        return None, "the wrapping raw flow got no SYN-ACK"
    return f, None


def cmd_list(a):
    for cl in CLASSES:
        print(f"{cl['name']:28} {','.join(cl['sources']):8} {cl['doc']}")
    return 0


def cmd_replay(a):
    io = RawIO(a.mode, a.iface, b"\0" * 6)
    n = 0
    for p in a.pcaps:
        for f in read_pcap(p):
            n += io.send(f)
    print(f"replay: {n} frames sent on {a.iface}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    p = sub.add_parser("run")
    p.add_argument("--mode", choices=("xdp", "tun"), required=True)
    p.add_argument("--iface", required=True)
    p.add_argument("--dst-mac")
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--server-log", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--classes")
    p.add_argument("--pcap-dir")
    p.add_argument("--pps", type=float, default=20000)
    p = sub.add_parser("replay")
    p.add_argument("--mode", choices=("xdp", "tun"), required=True)
    p.add_argument("--iface", required=True)
    p.add_argument("pcaps", nargs="+")
    a = ap.parse_args()
    return {"list": cmd_list, "run": cmd_run, "replay": cmd_replay}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
