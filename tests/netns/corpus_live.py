#!/usr/bin/python3
"""corpus_live.py - the live flows that run beside the corpus: kernel TCP
and UDP sockets echoing through the server, checked bit for bit.

  corpus_live.py [--tcp N] [--udp N] [--rate BYTES_PER_S] [--seed S]
                 [--max-seconds S] TARGET...

TARGET is ADDR:PORT or [ADDR]:PORT. For each target: N TCP streams, each
sending its own seeded stream at about --rate bytes a second while reading
the echo (checked as it arrives, and by SHA-256 at the end), and N UDP
flows, each sending one seeded datagram at a time and waiting for its echo
(resent after 0.5 s, at most 5 times: the corpus may fill a ring now and
then; a datagram that never comes back, or comes back different, fails).

It prints "live: ready" once every stream is connected, runs until SIGTERM
(or --max-seconds), then half-closes every stream, reads the rest of the
echo and EOF, and prints one line: streams, bytes, datagrams, resends, and
the first failure. Exit 0 when everything came back exact, 1 otherwise.
"""
import argparse
import hashlib
import random
import selectors
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from stream_client import parse_target  # noqa: E402 (beside this file)

CHUNK = 16 * 1024


class Bytes:
    """A seeded stream of bytes, read in pieces of any size: the same seed
    gives the same bytes however they are cut."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.buf = b""

    def take(self, n):
        while len(self.buf) < n:
            self.buf += self.rng.randbytes(CHUNK)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class Stream:
    """One TCP stream: seeded bytes out at a pace, the same bytes back."""

    def __init__(self, name, target, seed, rate):
        self.name, self.rate = name, rate
        self.tx = Bytes(seed)
        self.rx = Bytes(seed)
        self.sent = self.recvd = 0
        self.pending = b""
        self.sha_tx, self.sha_rx = hashlib.sha256(), hashlib.sha256()
        self.fail = None
        self.shut = self.eof = False
        self.sock = socket.create_connection(target[1], timeout=5)
        self.sock.setblocking(False)
        self.start = time.monotonic()

    def owed(self, now):
        """Bytes the pace allows now."""
        return int((now - self.start) * self.rate) - self.sent

    def write(self, now):
        if self.shut:
            return
        n = self.owed(now)
        if not self.pending and n > 0:
            self.pending = self.tx.take(min(n, CHUNK))
            self.sha_tx.update(self.pending)
        if not self.pending:
            return
        try:
            k = self.sock.send(self.pending)
        except BlockingIOError:
            return
        except OSError as e:
            self.fail = f"{self.name}: send: {e.strerror}"
            return
        self.sent += k
        self.pending = self.pending[k:]

    def finish(self):
        """Everything owed is sent: half-close."""
        if not self.shut and not self.pending:
            self.sock.shutdown(socket.SHUT_WR)
            self.shut = True

    def read(self):
        while True:
            try:
                data = self.sock.recv(256 * 1024)
            except BlockingIOError:
                return
            except OSError as e:
                self.fail = self.fail or f"{self.name}: recv: {e.strerror} after {self.recvd} bytes"
                self.eof = True
                return
            if not data:
                self.eof = True
                return
            want = self.rx.take(len(data))
            if data != want and not self.fail:
                at = next(i for i in range(len(data)) if data[i] != want[i])
                self.fail = f"{self.name}: echo differs at byte {self.recvd + at}"
            self.sha_rx.update(data)
            self.recvd += len(data)

    def verdict(self):
        if self.fail:
            return self.fail
        if not self.eof:
            return f"{self.name}: no EOF (sent {self.sent}, received {self.recvd})"
        if self.recvd != self.sent or self.sha_rx.digest() != self.sha_tx.digest():
            return f"{self.name}: echo {self.recvd} of {self.sent} bytes, SHA-256 differs"
        return None


class Flow:
    """One UDP flow: a seeded datagram, its echo, then the next."""

    def __init__(self, name, target, seed):
        self.name, self.target = name, target
        self.rng = random.Random(seed)
        self.sock = socket.socket(target[0], socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect(target[1])
        self.count = self.resends = 0
        self.cur = self.due = None
        self.recent = []
        self.fail = None
        self.next()

    def next(self):
        self.cur = self.rng.randbytes(self.rng.randrange(1, 1200))
        self.tries = 0
        self.send()

    def send(self):
        self.tries += 1
        self.when = time.monotonic()
        try:
            self.sock.send(self.cur)
        except OSError:
            pass  # resent by tick()

    def read(self, more):
        while True:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                return
            if data != self.cur:
                # A late copy of a datagram sent again is not an error;
                # anything else is.
                if not self.fail and data not in self.recent:
                    self.fail = f"{self.name}: datagram {self.count} came back different"
                continue
            self.recent = (self.recent + [data])[-8:]
            self.count += 1
            self.cur = None
            # the next one in 2 ms: a steady flow, not a flood
            self.due = time.monotonic() + 0.002 if more else None

    def tick(self, now):
        if self.cur is None and self.due is not None and now >= self.due:
            self.next()
        if self.cur is None or now - self.when < 0.5:
            return
        if self.tries >= 6:
            self.fail = self.fail or f"{self.name}: datagram {self.count} never came back"
            self.cur = None
            return
        self.resends += 1
        self.send()

    def verdict(self):
        if self.fail:
            return self.fail
        if self.cur is not None:
            return f"{self.name}: datagram {self.count} unanswered at the end"
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tcp", type=int, default=2)
    ap.add_argument("--udp", type=int, default=1)
    ap.add_argument("--rate", type=int, default=256 * 1024)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    streams, flows = [], []
    try:
        for ti, t in enumerate(a.targets):
            tgt = parse_target(t)
            for i in range(a.tcp):
                streams.append(Stream(f"tcp {t} #{i}", tgt, a.seed * 7919 + ti * 97 + i, a.rate))
            for i in range(a.udp):
                flows.append(Flow(f"udp {t} #{i}", tgt, a.seed * 7907 + ti * 89 + i))
    except OSError as e:
        print(f"live: cannot connect: {e.strerror or e}", flush=True)
        return 1
    sel = selectors.DefaultSelector()
    for s in streams:
        sel.register(s.sock, selectors.EVENT_READ, s)
    for f in flows:
        sel.register(f.sock, selectors.EVENT_READ, f)
    print("live: ready", flush=True)
    t0 = time.monotonic()
    end = None
    while True:
        now = time.monotonic()
        if end is None and (stop or now - t0 > a.max_seconds):
            end = now
        for s in streams:
            s.write(now)
            if end is not None:
                s.finish()
        for f in flows:
            f.tick(now)
        for key, _ in sel.select(timeout=0.01):
            if isinstance(key.data, Stream):
                key.data.read()
            else:
                key.data.read(end is None)
        done = all(s.eof for s in streams) and all(f.cur is None for f in flows)
        if end is not None and (done or now - end > 20):
            break
    fails = [v for v in (x.verdict() for x in streams + flows) if v]
    tcp_bytes = sum(s.recvd for s in streams)
    print(f"live: {len(streams)} tcp streams {tcp_bytes} bytes echoed exact, "
          f"{len(flows)} udp flows {sum(f.count for f in flows)} datagrams "
          f"({sum(f.resends for f in flows)} resent), {now - t0:.1f} s"
          + (f"; {len(fails)} failed, first: {fails[0]}" if fails else ""), flush=True)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
