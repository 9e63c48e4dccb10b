#!/usr/bin/python3
"""A real server's UDP service for the e2e lab: answers every datagram with "rs1 10.10.0.2\n".

With --digest it answers "rs1 10.10.0.2 len=N sha256=HEX\n" instead, N and HEX being the length
and sha256 of the datagram it got (a fragmented datagram is checked whole, after the kernel
reassembled it).
"""
import argparse
import hashlib
import signal
import socket
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True, help="server name put in every answer, e.g. rs1")
    ap.add_argument("--addr", required=True, help="the server's address, put in every answer")
    ap.add_argument("--listen", help="address to listen on (default --addr; the VIP for tun/dr, "
                    "so that answers come from it)")
    ap.add_argument("--port", type=int, default=5353)
    ap.add_argument("--digest", action="store_true",
                    help="answer with the datagram's length and sha256 after the name")
    a = ap.parse_args()
    answer = ("%s %s\n" % (a.name, a.addr)).encode()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.listen or a.addr, a.port))
    while True:
        try:
            data, peer = s.recvfrom(65535)
            if a.digest:
                s.sendto(answer[:-1] + b" len=%d sha256=%s\n" % (
                    len(data), hashlib.sha256(data).hexdigest().encode()), peer)
            else:
                s.sendto(answer, peer)
        except KeyboardInterrupt:
            return
        except OSError as e:  # e.g. ICMP unreachable reported on the socket: keep serving
            sys.stderr.write("udp_echo: %s\n" % e)


if __name__ == "__main__":
    main()
