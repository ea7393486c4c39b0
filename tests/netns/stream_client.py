#!/usr/bin/python3
"""stream_client.py - TCP stream and UDP checks for serve.sh, and the kernel
server they are first run against.

Clients (TARGET is ADDR:PORT, or [ADDR]:PORT for IPv6); each prints one
line saying what it saw and exits 0 when that is what a correct server
does, 1 otherwise:

  echo [--conns N] [--bytes N] [--seed S] [--timeout S] TARGET...
      N concurrent connections spread over the targets, each sending its
      own seeded random stream while reading the echo, then shutting down
      its write side: every echo must be bit-exact (checked as it arrives,
      and SHA-256 of each stream) and end with EOF, not a reset.
  halfclose [--bytes N] TARGET
      send everything, shutdown(SHUT_WR), then read: the whole echo, then
      EOF (the server closes after echoing).
  reset-by-server [--bytes N] TARGET
      send while reading; the server resets the stream part way: the client
      must see ECONNRESET (not EOF, not the whole echo).
  reset-by-client [--bytes N] TARGET
      send N bytes, read their echo, then close with SO_LINGER 0 (RST).
  udp-echo [--count N] [--size-min N] [--size-max N] [--seed S] [--timeout S]
           TARGET...
      one unconnected UDP socket per target sends it N seeded datagrams of
      sizes from --size-min (default 1) to --size-max or the largest that
      fits a 1500-byte MTU, both ends included: every one must
      come back once, unchanged, from exactly the address and port it was
      sent to (recvfrom, so a reply from elsewhere is seen, not filtered).

The kernel's own reference server, to run where l3x-serve would:

  kernel-server --mode echo|discard|http --ports P[,P]... [--abort-after N]
                [--dns ADDR[,ADDR]...]
      listens for TCP and UDP on 0.0.0.0 and :: on every port (with "ip
      route add local PREFIX dev lo" it answers any address of PREFIX, as
      l3x does), serves as l3x-serve does (UDP: echo each datagram from the
      address it was sent to, using IP_PKTINFO; drop it in the other
      modes), answers DNS queries on ADDR port 53 with NXDOMAIN as
      l3x-serve --dns does, prints "kernel-server: ready" on stderr once
      listening and, on SIGINT/SIGTERM, one closing line with the same
      counter names as l3x-serve's (accepted, closed, reset_by_client,
      aborted, flows_served, datagrams_in, datagrams_out, queries,
      answered, flows).
"""
import argparse
import errno
import hashlib
import ipaddress
import os
import random
import selectors
import signal
import socket
import struct
import sys
import time

CHUNK = 64 * 1024
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IP_TRANSPARENT = getattr(socket, "IP_TRANSPARENT", 19)
IPV6_TRANSPARENT = getattr(socket, "IPV6_TRANSPARENT", 75)
UDP_MAX = {socket.AF_INET: 1500 - 28, socket.AF_INET6: 1500 - 48}


def parse_size(s):
    mult = {"k": 1024, "m": 1 << 20, "g": 1 << 30}
    if s and s[-1].lower() in mult:
        return int(s[:-1]) * mult[s[-1].lower()]
    return int(s)


def parse_target(t):
    if t.startswith("["):
        host, _, port = t[1:].partition("]:")
        return socket.AF_INET6, (host, int(port))
    host, _, port = t.rpartition(":")
    return socket.AF_INET, (host, int(port))


def name(target):
    fam, (host, port) = target
    return f"[{host}]:{port}" if fam == socket.AF_INET6 else f"{host}:{port}"


# ------------------------------------------------------------------ echo


class Stream:
    """One seeded stream: what is sent, and what must come back."""

    def __init__(self, idx, target, size, seed):
        self.idx, self.target, self.size = idx, target, size
        self.tx_rng = random.Random(seed * 1000003 + idx)
        self.rx_rng = random.Random(seed * 1000003 + idx)
        self.sent = self.recvd = self.rx_made = 0
        self.txbuf, self.txoff = b"", 0
        self.expect, self.expoff = bytearray(), 0
        self.sha_tx, self.sha_rx = hashlib.sha256(), hashlib.sha256()
        self.mismatch = None
        self.err = None
        self.shut = self.eof = self.connected = False
        self.sock = socket.socket(target[0], socket.SOCK_STREAM)
        self.sock.setblocking(False)
        rc = self.sock.connect_ex(target[1])
        if rc not in (0, errno.EINPROGRESS):
            self.err = f"connect: {os.strerror(rc)}"

    def next_tx(self):
        n = min(CHUNK, self.size - self.sent - (len(self.txbuf) - self.txoff))
        self.txbuf, self.txoff = self.tx_rng.randbytes(n), 0
        self.sha_tx.update(self.txbuf)

    def on_writable(self):
        if not self.connected:
            rc = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if rc:
                raise OSError(rc, os.strerror(rc))
            self.connected = True
        while self.sent < self.size:
            if self.txoff == len(self.txbuf):
                self.next_tx()
            try:
                n = self.sock.send(memoryview(self.txbuf)[self.txoff:])
            except BlockingIOError:
                return
            self.txoff += n
            self.sent += n
        if not self.shut:
            self.sock.shutdown(socket.SHUT_WR)
            self.shut = True

    def verify(self, data):
        while len(self.expect) - self.expoff < len(data) and self.rx_made < self.size:
            n = min(CHUNK, self.size - self.rx_made)
            self.expect += self.rx_rng.randbytes(n)
            self.rx_made += n
        want = bytes(self.expect[self.expoff:self.expoff + len(data)])
        if self.mismatch is None and want != data:
            if len(want) < len(data):
                self.mismatch = self.size
            else:
                self.mismatch = self.recvd + next(
                    i for i in range(len(data)) if want[i] != data[i])
        self.expoff += len(data)
        if self.expoff > 4 * CHUNK:
            del self.expect[:self.expoff]
            self.expoff = 0

    def on_readable(self):
        while True:
            try:
                data = self.sock.recv(256 * 1024)
            except BlockingIOError:
                return
            if not data:
                self.eof = True
                return
            self.verify(data)
            self.sha_rx.update(data)
            self.recvd += len(data)

    def events(self):
        ev = selectors.EVENT_READ
        if not self.connected or self.sent < self.size or not self.shut:
            ev |= selectors.EVENT_WRITE
        return ev

    def verdict(self):
        where = f"stream {self.idx} to {name(self.target)}"
        counts = f"(sent {self.sent}, received {self.recvd} of {self.size})"
        if self.err:
            return f"{where}: {self.err} {counts}"
        if self.mismatch is not None:
            return f"{where}: echo differs from what was sent at byte {self.mismatch} {counts}"
        if not self.eof:
            return f"{where}: no EOF before the timeout {counts}"
        if self.recvd != self.size or self.sent != self.size:
            return f"{where}: EOF before the whole echo {counts}"
        if self.sha_tx.digest() != self.sha_rx.digest():
            return f"{where}: SHA-256 of the echo differs {counts}"
        return None


def cmd_echo(args):
    targets = [parse_target(t) for t in args.targets]
    streams = [Stream(i, targets[i % len(targets)], args.bytes, args.seed)
               for i in range(args.conns)]
    sel = selectors.DefaultSelector()
    live = {}
    for st in streams:
        if not st.err:
            sel.register(st.sock, st.events(), st)
            live[st.sock] = st
    start = time.monotonic()
    deadline = start + args.timeout
    while live and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=0.5):
            st = key.data
            try:
                if ev & selectors.EVENT_WRITE:
                    st.on_writable()
                if ev & selectors.EVENT_READ:
                    st.on_readable()
            except OSError as e:
                st.err = f"{errno.errorcode.get(e.errno, e.errno)} ({e.strerror})"
            if st.err or st.eof:
                sel.unregister(st.sock)
                del live[st.sock]
                st.sock.close()
            else:
                sel.modify(st.sock, st.events(), st)
    took = time.monotonic() - start
    bad = [v for v in (st.verdict() for st in streams) if v]
    for v in bad[:10]:
        print(v)
    total = sum(st.recvd for st in streams)
    if bad:
        return say(f"echo: {len(bad)} of {len(streams)} streams wrong", 1)
    print(f"echo: {len(streams)} streams x {args.bytes} bytes to {len(targets)} "
          f"targets bit-exact (SHA-256 equal), each ended by EOF; "
          f"{total} bytes in {took:.1f} s, {total * 8 / took / 1e6:.0f} Mbit/s")
    return 0


# ----------------------------------------------------- single connections


def connect(target, timeout):
    s = socket.socket(target[0], socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(target[1])
    return s


def connect_first(args):
    """The first target, connected, and the seeded bytes to send it."""
    data = random.Random(args.seed).randbytes(args.bytes)
    return connect(parse_target(args.targets[0]), args.timeout), data


def recv_into(s, got, want=None):
    """Append what s receives to got until EOF, or until it holds want
    bytes."""
    while want is None or len(got) < want:
        d = s.recv(65536)
        if not d:
            break
        got += d


def say(line, status):
    """Print the command's one line; return its exit status."""
    print(line)
    return status


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def cmd_halfclose(args):
    s, data = connect_first(args)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = bytearray()
    try:
        recv_into(s, got)
    except socket.timeout:
        return say(f"halfclose: no EOF within {args.timeout} s after {len(got)} of {len(data)} bytes", 1)
    except OSError as e:
        return say(f"halfclose: {err_name(e)} after {len(got)} of {len(data)} bytes, not EOF", 1)
    if bytes(got) != data:
        return say(f"halfclose: EOF, but the echo differs ({len(got)} bytes back of {len(data)})", 1)
    return say(f"halfclose: full echo of {len(data)} bytes after shutdown(SHUT_WR), then EOF", 0)


def cmd_reset_by_server(args):
    s, data = connect_first(args)
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent = got = 0
    deadline = time.monotonic() + args.timeout
    try:
        while time.monotonic() < deadline:
            for _, ev in sel.select(timeout=0.5):
                if ev & selectors.EVENT_WRITE and sent < len(data):
                    try:
                        sent += s.send(data[sent:sent + CHUNK])
                    except BlockingIOError:
                        pass
                    if sent == len(data):
                        sel.modify(s, selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    d = s.recv(65536)
                    if not d:
                        return say(f"reset-by-server: EOF, not a reset (sent {sent}, received {got})", 1)
                    got += len(d)
        return say(f"reset-by-server: no reset within {args.timeout} s (sent {sent}, received {got})", 1)
    except OSError as e:
        if e.errno == errno.ECONNRESET:
            return say(f"reset-by-server: ECONNRESET after sending {sent} and receiving {got} bytes", 0)
        return say(f"reset-by-server: {err_name(e)}, not ECONNRESET (sent {sent}, received {got})", 1)


def cmd_reset_by_client(args):
    s, data = connect_first(args)
    s.sendall(data)
    got = bytearray()
    recv_into(s, got, len(data))
    if bytes(got) != data:
        return say(f"reset-by-client: echo wrong before the reset ({len(got)} of {len(data)} bytes)", 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    return say(f"reset-by-client: {len(data)} bytes echoed, then closed with RST (SO_LINGER 0)", 0)


# ------------------------------------------------------------------- udp


class UdpTarget:
    """One target, one unconnected socket, N seeded datagrams."""

    def __init__(self, idx, target, count, seed, size_min, size_max):
        rng = random.Random(seed * 1000003 + idx)
        lo, top = size_min, min(size_max, UDP_MAX[target[0]])
        sizes = [lo, top] + [rng.randrange(lo, top + 1) for _ in range(count - 2)]
        self.target, self.want = target, {}
        self.dgrams = [rng.randbytes(n) for n in sizes[:count]]
        for d in self.dgrams:
            self.want[d] = self.want.get(d, 0) + 1
        self.sock = socket.socket(target[0], socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sent = self.got = 0
        self.wrong_src, self.wrong_data, self.extra = [], 0, 0

    def read(self):
        while True:
            try:
                d, src = self.sock.recvfrom(65536)
            except BlockingIOError:
                return
            if (ipaddress.ip_address(src[0].split("%")[0]), src[1]) != \
                    (ipaddress.ip_address(self.target[1][0]), self.target[1][1]):
                self.wrong_src.append(src[:2])
            elif d not in self.want:
                self.wrong_data += 1
            elif self.want[d] == 0:
                self.extra += 1
            else:
                self.want[d] -= 1
                self.got += 1

    def done(self):
        return self.got == len(self.dgrams)

    def verdict(self):
        where = f"to {name(self.target)}"
        if self.wrong_src:
            return f"{where}: {len(self.wrong_src)} replies from elsewhere, first {self.wrong_src[0]}"
        if self.wrong_data or self.extra:
            return f"{where}: {self.wrong_data} replies not sent, {self.extra} duplicated"
        if not self.done():
            return f"{where}: {len(self.dgrams) - self.got} of {len(self.dgrams)} never came back"
        return None


def cmd_udp_echo(args):
    targets = [parse_target(t) for t in args.targets]
    ts = [UdpTarget(i, t, args.count, args.seed, args.size_min, args.size_max)
          for i, t in enumerate(targets)]
    sel = selectors.DefaultSelector()
    for t in ts:
        sel.register(t.sock, selectors.EVENT_READ, t)
    start = time.monotonic()
    deadline = start + args.timeout
    # Round by round, at most a few datagrams in flight per target, so a
    # burst never overflows a queue and a loss means the server lost it.
    for rnd in range(args.count):
        for t in ts:
            t.sock.sendto(t.dgrams[rnd], t.target[1])
            t.sent += 1
        while time.monotonic() < deadline and any(t.sent - t.got > 4 for t in ts):
            for key, _ in sel.select(timeout=0.2):
                key.data.read()
    while time.monotonic() < deadline and not all(t.done() for t in ts):
        for key, _ in sel.select(timeout=0.2):
            key.data.read()
    time.sleep(0.2)		# duplicates or stray replies would come now
    for t in ts:
        t.read()
    took = time.monotonic() - start
    bad = [v for v in (t.verdict() for t in ts) if v]
    for v in bad[:10]:
        print(v)
    if bad:
        return say(f"udp-echo: {len(bad)} of {len(ts)} targets wrong", 1)
    top = max(min(args.size_max, UDP_MAX[t[0]]) for t in targets)
    print(f"udp-echo: {len(ts)} targets x {args.count} datagrams ({args.size_min} to "
          f"{top} bytes) echoed once each, unchanged, "
          f"from the address and port sent to; {took:.1f} s")
    return 0


# ------------------------------------------------------------------- dns


def dns_reply(q):
    """As l3x-serve's dns_reply(): NXDOMAIN with the question, or None."""
    if len(q) < 12 or q[2] & 0x80:
        return None
    rcode = 4 if (q[2] >> 3) & 0xF else 3
    off = 12 if q[4:6] == b"\x00\x01" else 0
    while off and off < len(q) and q[off]:
        off = 0 if q[off] > 63 or off - 12 > 255 else off + q[off] + 1
    off = off + 5 if off and off + 5 <= len(q) and off - 12 <= 255 else 0
    if not off:
        rcode = 1
    hdr = q[:2] + bytes([0x80 | (q[2] & 0x79), rcode, 0, 1 if off else 0, 0, 0, 0, 0, 0, 0])
    return hdr + (q[12:off] if off else b"")


# --------------------------------------------------------- kernel server


class Server:
    """The kernel doing what l3x-serve does, counted the same way."""

    def __init__(self, mode, abort_after):
        self.mode, self.abort_after = mode, abort_after
        self.sel = selectors.DefaultSelector()
        self.accepted = self.closed = self.reset = self.aborted = 0
        self.bytes_in = self.bytes_out = 0
        self.conns = {}
        self.udp_flows, self.dg_in, self.dg_out = set(), 0, 0
        self.queries = self.answered = 0

    @staticmethod
    def udp_socket(fam):
        """Transparent: it may bind to, and reply from, any address of a
        prefix routed "local" (l3x does the same for any destination)."""
        us = socket.socket(fam, socket.SOCK_DGRAM)
        if fam == socket.AF_INET6:
            us.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)
        else:
            us.setsockopt(socket.IPPROTO_IP, IP_TRANSPARENT, 1)
        return us

    def listen_udp(self, port):
        for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            us = self.udp_socket(fam)
            if fam == socket.AF_INET6:
                us.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                us.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            else:
                us.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            us.bind((addr, port))
            us.setblocking(False)
            self.sel.register(us, selectors.EVENT_READ, "udp")

    def listen_dns(self, addr):
        us = self.udp_socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
        us.bind((addr, 53))
        us.setblocking(False)
        self.sel.register(us, selectors.EVENT_READ, "dns")

    def udp(self, us):
        """Echo from the address the datagram was sent to: IP_PKTINFO."""
        while True:
            try:
                d, anc, _, src = us.recvmsg(65536, 256)
            except BlockingIOError:
                return
            self.dg_in += 1
            self.bytes_in += len(d)
            for level, typ, data in anc:
                if us.family == socket.AF_INET and typ == IP_PKTINFO:
                    dst = socket.inet_ntop(socket.AF_INET, data[8:12])
                    info = (IP_PKTINFO, struct.pack("i4s4s", 0, data[8:12], b"\0" * 4))
                elif us.family == socket.AF_INET6 and typ == socket.IPV6_PKTINFO:
                    dst = socket.inet_ntop(socket.AF_INET6, data[:16])
                    info = (socket.IPV6_PKTINFO, data[:16] + b"\0" * 4)
            self.udp_flows.add((src[:2], dst, us.getsockname()[1]))
            if self.mode != "echo":
                continue
            us.sendmsg([d], [(level, *info)], 0, src)
            self.dg_out += 1
            self.bytes_out += len(d)

    def dns(self, us):
        while True:
            try:
                q, src = us.recvfrom(65536)
            except BlockingIOError:
                return
            self.queries += 1
            r = dns_reply(q) if len(q) <= 512 else None
            if r:
                us.sendto(r, src)
                self.answered += 1

    def listen(self, port):
        for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            ls = socket.socket(fam, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            ls.bind((addr, port))
            ls.listen(1024)
            ls.setblocking(False)
            self.sel.register(ls, selectors.EVENT_READ, None)

    def accept(self, ls):
        while True:
            try:
                s, _ = ls.accept()
            except BlockingIOError:
                return
            s.setblocking(False)
            c = {"s": s, "pend": b"", "in": 0, "eof": False, "req": b"", "resp": False}
            self.accepted += 1
            self.conns[s] = c
            self.sel.register(s, selectors.EVENT_READ, c)
            self.serve(c)

    def end(self, c, reset=False):
        s = c["s"]
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.aborted += 1
        self.sel.unregister(s)
        del self.conns[s]
        s.close()

    def flush(self, c):
        while c["pend"]:
            try:
                n = c["s"].send(c["pend"])
            except BlockingIOError:
                self.sel.modify(c["s"], selectors.EVENT_WRITE, c)
                return False
            c["pend"] = c["pend"][n:]
            self.bytes_out += n
        self.sel.modify(c["s"], selectors.EVENT_READ, c)
        return True

    def read(self, c):
        d = c["s"].recv(65536)
        self.bytes_in += len(d)
        c["in"] += len(d)
        return d

    def serve(self, c):
        try:
            getattr(self, "serve_" + self.mode)(c)
        except BlockingIOError:
            pass
        except ConnectionResetError:
            self.reset += 1
            self.end(c)
        except OSError:
            self.end(c)

    def over(self, c):
        return self.abort_after and c["in"] >= self.abort_after

    def serve_echo(self, c):
        while True:
            if not self.flush(c):
                return
            if c["eof"]:
                self.closed += 1
                return self.end(c)
            d = self.read(c)
            if not d:
                c["eof"] = True
                continue
            if self.over(c):
                return self.end(c, reset=True)
            c["pend"] = d

    def serve_discard(self, c):
        while True:
            d = self.read(c)
            if not d:
                self.closed += 1
                return self.end(c)
            if self.over(c):
                return self.end(c, reset=True)

    def serve_http(self, c):
        if not c["resp"]:
            while b"\r\n\r\n" not in c["req"] and b"\n\n" not in c["req"]:
                if len(c["req"]) >= 8192:
                    break
                d = self.read(c)
                if not d:
                    return self.end(c)
                c["req"] += d
            c["resp"] = True
            c["pend"] = self.answer(c)
        if self.flush(c):
            self.closed += 1
            self.end(c)

    @staticmethod
    def fmt(sa, fam):
        return f"[{sa[0]}]:{sa[1]}" if fam == socket.AF_INET6 else f"{sa[0]}:{sa[1]}"

    def answer(self, c):
        s, req = c["s"], c["req"]
        body = (f"client {self.fmt(s.getpeername(), s.family)}\n"
                f"destination {self.fmt(s.getsockname(), s.family)}\n").encode()
        get, head = req.startswith(b"GET "), req.startswith(b"HEAD ")
        complete = b"\r\n\r\n" in req or b"\n\n" in req
        status = "200 OK" if complete and (get or head) else (
            "400 Bad Request" if not complete else "405 Method Not Allowed")
        allow = "" if get or head else "Allow: GET, HEAD\r\n"
        hdr = (f"HTTP/1.1 {status}\r\nServer: kernel-server\r\nContent-Type: text/plain\r\n"
               f"Content-Length: {len(body)}\r\n{allow}Connection: close\r\n\r\n").encode()
        return hdr + (b"" if head else body)

    def report(self):
        print(f"kernel-server: {self.mode}: read {self.bytes_in} bytes written {self.bytes_out} "
              f"bytes; tcp accepted {self.accepted} closed {self.closed} reset_by_client "
              f"{self.reset} aborted {self.aborted}; udp flows_served {len(self.udp_flows)} "
              f"datagrams_in {self.dg_in} datagrams_out {self.dg_out}; dns queries "
              f"{self.queries} answered {self.answered}; flows {len(self.conns)}",
              file=sys.stderr, flush=True)

    def run(self):
        stop = []
        signal.signal(signal.SIGINT, lambda *_: stop.append(1))
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        print("kernel-server: ready", file=sys.stderr, flush=True)
        while not stop:
            for key, _ in self.sel.select(timeout=0.2):
                if key.data is None:
                    self.accept(key.fileobj)
                elif key.data == "udp":
                    self.udp(key.fileobj)
                elif key.data == "dns":
                    self.dns(key.fileobj)
                elif key.fileobj in self.conns:
                    self.serve(key.data)
        self.report()


def cmd_kernel_server(args):
    srv = Server(args.mode, args.abort_after)
    for p in args.ports.split(","):
        srv.listen(int(p))
        srv.listen_udp(int(p))
    for a in filter(None, args.dns.split(",")):
        srv.listen_dns(a)
    srv.run()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for cmd, size in (("echo", "4M"), ("halfclose", "64K"),
                      ("reset-by-server", "4M"), ("reset-by-client", "16K")):
        p = sub.add_parser(cmd)
        p.add_argument("--bytes", type=parse_size, default=parse_size(size))
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--timeout", type=float, default=20.0)
        p.add_argument("targets", nargs="+")
        if cmd == "echo":
            p.add_argument("--conns", type=int, default=32)
    p = sub.add_parser("udp-echo")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--size-min", type=int, default=1)
    p.add_argument("--size-max", type=int, default=65535)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("targets", nargs="+")
    p = sub.add_parser("kernel-server")
    p.add_argument("--mode", choices=("echo", "discard", "http"), required=True)
    p.add_argument("--ports", required=True)
    p.add_argument("--abort-after", type=parse_size, default=0)
    p.add_argument("--dns", default="")
    args = ap.parse_args()
    fn = {"echo": cmd_echo, "halfclose": cmd_halfclose, "reset-by-server": cmd_reset_by_server,
          "reset-by-client": cmd_reset_by_client, "udp-echo": cmd_udp_echo,
          "kernel-server": cmd_kernel_server}[args.cmd]
    try:
        return fn(args)
    except OSError as e:
        return say(f"{args.cmd}: {err_name(e)} ({e.strerror})", 1)


if __name__ == "__main__":
    sys.exit(main())
