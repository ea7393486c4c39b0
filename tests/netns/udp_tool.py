#!/usr/bin/python3
"""udp_tool.py - kernel-socket UDP peer for the integration tests.

  send HOST PORT COUNT TAG [GAP_US]  send COUNT datagrams "TAG-<i>"
  recv ADDR PORT SECONDS             print how many datagrams arrived
"""
import socket
import sys
import time


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def send(host, port, count, tag, gap_us=0):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    for i in range(count):
        s.sendto(f"{tag}-{i}".encode(), (host, port))
        if gap_us:
            time.sleep(gap_us / 1e6)


def count(addr, port, seconds, keep=lambda d: True):
    """How many datagrams to ADDR:PORT in SECONDS that KEEP accepts."""
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    s.settimeout(0.2)
    n = 0
    end = time.time() + seconds
    while time.time() < end:
        try:
            n += bool(keep(s.recv(65535)))
        except socket.timeout:
            pass
    return n


def recv(addr, port, seconds):
    print(count(addr, port, seconds))


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "send":
        send(a[2], int(a[3]), int(a[4]), a[5], int(a[6]) if len(a) > 6 else 0)
    elif a[1] == "recv":
        recv(a[2], int(a[3]), float(a[4]))
    else:
        sys.exit("usage: udp_tool.py send|recv ...")
