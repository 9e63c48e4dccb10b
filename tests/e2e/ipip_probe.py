#!/usr/bin/python3
"""Checks a tun real server's decapsulation without a director: run in the client namespace.

  ipip_probe.py --real 198.51.100.11 --real-mac MAC --vip 198.51.100.10 [--timeout S]

Sends, as a director would, IP-in-IP packets (outer client -> real, protocol 4) that carry an
ICMP echo request client -> VIP:
  1. a plain one                                     -> an echo reply from the VIP
  2. a 1500-byte one, its outer packet in 2 fragments -> an echo reply from the VIP (the real's
     kernel reassembles the outer packet before the decapsulator sees it)
  3. one whose inner header is cut short             -> dropped (bad_inner)
  4. one whose outer destination is the VIP          -> dropped (not_for_us)
and prints `ok` if exactly the replies of 1 and 2 came back, from the VIP, with the right ids.
The decapsulator's own counters tell the rest (lab_decap_counters).
"""
import argparse
import os
import sys
import threading
import time

from scapy.all import ICMP, IP, AsyncSniffer, Ether, conf, fragment, raw, send, sendp  # noqa: E402

conf.verb = 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--real", required=True)
    ap.add_argument("--real-mac", required=True)
    ap.add_argument("--vip", required=True)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--timeout", type=float, default=3.0)
    a = ap.parse_args()

    ident = os.getpid() & 0xFFFF
    capturing = threading.Event()
    replies = []  # echo replies from the VIP, as they arrive (AsyncSniffer.results waits for stop)
    sniffer = AsyncSniffer(iface=a.iface, filter="icmp and src host %s" % a.vip, store=False,
                           prn=lambda p: replies.append(p) if ICMP in p and p[ICMP].type == 0
                           else None, started_callback=capturing.set)
    sniffer.start()
    if not capturing.wait(a.timeout):
        print("FAILED: the capture on %s did not start" % a.iface)
        return 1

    inner_plain = IP(dst=a.vip) / ICMP(id=ident, seq=1) / b"lb-ipip-probe"
    inner_big = IP(dst=a.vip, flags=0) / ICMP(id=ident, seq=2) / (b"x" * (1500 - 28))
    outer = IP(dst=a.real, proto=4, flags=0)
    send(outer / inner_plain, iface=a.iface)
    for frag in fragment(outer / inner_big, fragsize=1480):
        send(frag, iface=a.iface)
    cut = raw(IP(dst=a.vip) / ICMP(id=ident, seq=3) / b"cut")[:12]  # half an IPv4 header
    send(IP(dst=a.real, proto=4) / cut, iface=a.iface)
    sendp(Ether(dst=a.real_mac) / IP(dst=a.vip, proto=4) / IP(dst=a.vip) /
          ICMP(id=ident, seq=4), iface=a.iface)

    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline and len(replies) < 2:
        time.sleep(0.05)
    time.sleep(0.3)  # a late, unexpected reply to 3 or 4 would still show
    sniffer.stop()
    seqs = sorted(p[ICMP].seq for p in replies if p[ICMP].id == ident)
    lens = sorted(len(p[IP]) for p in replies)
    ok = seqs == [1, 2]
    print("%s: echo replies from %s: seq %s, IP lengths %s (expected seq [1, 2])" % (
        "ok" if ok else "FAILED", a.vip, seqs, lens))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
