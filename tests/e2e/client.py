#!/usr/bin/python3
"""Client-side helpers for the e2e lab. Every operation is bounded by --timeout.

  client.py download   --host H [--port P] --size N     GET /big?size=N, check its sha256
  client.py upload     --host H [--port P] --size N     POST /upload N bytes, check the answer
  client.py concurrent --host H [--port P] --count N    N GET / at once, one connection each
  client.py seq        --host H [--port P] --count N    N GET / one after the other, one
                       [--source A] [--sport S]         connection each (closed before the next),
                                                        from source address A and ports S, S+1,
                                                        ... (default: the kernel's); prints the
                                                        servers in order and per server
  client.py hold       --host H [--port P] --count N    opens N connections one after the other
                       [--source A] [--sport S]         (GET /hold: each is established and has
                       [--go-file F]                    named its server before the next opens),
                                                        prints `ready`, waits for file F to exist,
                                                        then ends them all and checks that each
                                                        ended on the server it started on
  client.py udp        --host H --port P --count N      N datagrams from N source ports
                       [--size B] [--no-df]             B-byte payloads; DF clear (no PMTU
                                                        discovery: the kernel sends them whole
                                                        up to the interface MTU)

Each prints what it saw and exits 0 only if everything succeeded. Every TCP operation makes
exactly one connection per request and never retries, so callers can count connections.
"""
import argparse
import hashlib
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpd import expected_sha256, payload  # noqa: E402  the servers' own generator

IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)  # linux/in.h
IP_PMTUDISC_DONT = getattr(socket, "IP_PMTUDISC_DONT", 0)
PAGE_RE = re.compile(rb"^(rs\d+) (\d+\.\d+\.\d+\.\d+), it works!\n$")


def connect(host, port, timeout, source=None, sport=None):
    """A TCP connection to host:port, from address `source` and port `sport` if given."""
    if not source and not sport:
        return socket.create_connection((host, port), timeout=timeout)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        if sport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((source or "0.0.0.0", sport or 0))
        s.connect((host, port))
        return s
    except BaseException:
        s.close()
        raise


def http_request(host, port, method, path, timeout, body_iter=None, body_len=0, sink=None,
                 source=None, sport=None):
    """One HTTP/1.0 request on one new connection. Returns (status, body bytes or b"" if sink)."""
    deadline = time.monotonic() + timeout
    with connect(host, port, timeout, source, sport) as s:
        head = "%s %s HTTP/1.0\r\nHost: %s\r\n" % (method, path, host)
        if body_iter is not None:
            head += "Content-Length: %d\r\n" % body_len
        s.sendall((head + "\r\n").encode())
        if body_iter is not None:
            for part in body_iter:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                s.sendall(part)
        buf = b""
        while b"\r\n\r\n" not in buf:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the response header")
            buf += chunk
        header, rest = buf.split(b"\r\n\r\n", 1)
        status = int(header.split(b" ", 2)[1])
        body = []
        if sink:
            sink(rest)
        else:
            body.append(rest)
        while True:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            if time.monotonic() > deadline:
                raise TimeoutError("timed out reading the body")
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            if sink:
                sink(chunk)
            else:
                body.append(chunk)
        return status, b"".join(body)


def cmd_download(a):
    h = hashlib.sha256()
    got = [0]

    def sink(b):
        got[0] += len(b)
        h.update(b)

    t0 = time.monotonic()
    status, _ = http_request(a.host, a.port, "GET", "/big?size=%d" % a.size, a.timeout, sink=sink)
    dt = time.monotonic() - t0
    want = expected_sha256(a.size)
    ok = status == 200 and got[0] == a.size and h.hexdigest() == want
    print("download status=%d bytes=%d/%d sha256=%s expected=%s %.2fs %.1f MB/s %s" % (
        status, got[0], a.size, h.hexdigest(), want, dt, got[0] / dt / 1e6 if dt else 0,
        "ok" if ok else "MISMATCH"))
    return 0 if ok else 1


def cmd_upload(a):
    t0 = time.monotonic()
    status, body = http_request(a.host, a.port, "POST", "/upload", a.timeout,
                                body_iter=payload(a.size), body_len=a.size)
    dt = time.monotonic() - t0
    want = expected_sha256(a.size)
    got = body.decode(errors="replace").strip()
    ok = status == 200 and got == want
    print("upload status=%d bytes=%d server-sha256=%s expected=%s %.2fs %s" % (
        status, a.size, got, want, dt, "ok" if ok else "MISMATCH"))
    return 0 if ok else 1


def cmd_concurrent(a):
    barrier = threading.Barrier(a.count, timeout=a.timeout)
    results = [None] * a.count

    def one(i):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        try:
            status, body = http_request(a.host, a.port, "GET", "/", a.timeout)
            m = PAGE_RE.match(body)
            if status == 200 and m:
                results[i] = ("ok", m.group(1).decode())
            else:
                results[i] = ("bad", "status %d body %r" % (status, body[:80]))
        except Exception as e:  # noqa: BLE001  any failure is a failed connection
            results[i] = ("err", "%s: %s" % (type(e).__name__, e))

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(a.count)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, a.timeout * 2 + 5 - (time.monotonic() - t0)))
    dt = time.monotonic() - t0
    ok = [r for r in results if r and r[0] == "ok"]
    per = {}
    for _, name in ok:
        per[name] = per.get(name, 0) + 1
    errors = [r[1] if r else "no result (thread still running)" for r in results
              if not r or r[0] != "ok"]
    print("concurrent ok=%d failed=%d of %d in %.2fs by-server=%s" % (
        len(ok), a.count - len(ok), a.count, dt,
        ",".join("%s:%d" % kv for kv in sorted(per.items()))))
    for e in sorted(set(errors))[:10]:
        print("  error: %s (x%d)" % (e, errors.count(e)))
    return 0 if len(ok) == a.count else 1


def cmd_seq(a):
    order, per, errors = [], {}, []
    t0 = time.monotonic()
    for i in range(a.count):
        try:
            status, body = http_request(a.host, a.port, "GET", "/", a.timeout, source=a.source,
                                        sport=a.sport + i if a.sport else None)
            m = PAGE_RE.match(body)
            if status != 200 or not m:
                raise ValueError("status %d body %r" % (status, body[:80]))
            name = m.group(1).decode()
        except Exception as e:  # noqa: BLE001  any failure is a failed connection
            name = "?"
            errors.append("#%d %s: %s" % (i + 1, type(e).__name__, e))
        order.append(name)
        per[name] = per.get(name, 0) + 1
    print("seq ok=%d failed=%d of %d in %.2fs by-server=%s order=%s" % (
        a.count - len(errors), len(errors), a.count, time.monotonic() - t0,
        ",".join("%s:%d" % kv for kv in sorted(per.items())), ",".join(order)))
    for e in errors[:10]:
        print("  error: %s" % e)
    return 0 if not errors else 1


def _hold_open(a, i):
    """Opens connection i, sends GET /hold, reads up to the server's "NAME ADDR start" line."""
    s = connect(a.host, a.port, a.timeout, a.source, a.sport + i if a.sport else None)
    try:
        s.sendall(("GET /hold HTTP/1.0\r\nHost: %s\r\n\r\n" % a.host).encode())
        buf = b""
        deadline = time.monotonic() + a.timeout
        while not re.search(rb"\r\n\r\n[^\n]*\n", buf):
            s.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed before the start line (got %r)" % buf[-80:])
            buf += chunk
        line = buf.split(b"\r\n\r\n", 1)[1].split(b"\n", 1)[0].decode(errors="replace")
        m = re.match(r"^(rs\d+) \S+ start$", line)
        if not m:
            raise ValueError("bad start line %r" % line)
        return s, m.group(1)
    except BaseException:
        s.close()
        raise


def cmd_hold(a):
    conns, starts, errors = [], [], []
    t0 = time.monotonic()
    for i in range(a.count):
        try:
            s, name = _hold_open(a, i)
            conns.append((i, s, name))
            starts.append(name)
        except Exception as e:  # noqa: BLE001
            starts.append("?")
            errors.append("open #%d %s: %s" % (i + 1, type(e).__name__, e))
    per = {}
    for n in starts:
        per[n] = per.get(n, 0) + 1
    print("hold open=%d of %d in %.2fs by-server=%s order=%s" % (
        len(conns), a.count, time.monotonic() - t0,
        ",".join("%s:%d" % kv for kv in sorted(per.items())), ",".join(starts)))
    print("ready", flush=True)
    if a.go_file:
        deadline = time.monotonic() + a.wait
        while not os.path.exists(a.go_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not os.path.exists(a.go_file):
            errors.append("no %s within %.0fs" % (a.go_file, a.wait))
    ended, moved = 0, 0
    for i, s, name in conns:
        try:
            s.settimeout(a.timeout)
            s.sendall(b"go\n")
            buf = b""
            deadline = time.monotonic() + a.timeout
            while True:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            m = re.search(rb"(?:^|\n)(rs\d+) \S+ end\n$", buf)
            if not m:
                raise ValueError("no end line, got %r" % buf[-80:])
            end = m.group(1).decode()
            if end != name:
                moved += 1
                raise ValueError("started on %s, ended on %s" % (name, end))
            ended += 1
        except Exception as e:  # noqa: BLE001
            errors.append("end #%d (%s) %s: %s" % (i + 1, name, type(e).__name__, e))
        finally:
            s.close()
    print("hold ended-ok=%d of %d moved=%d failed=%d" % (ended, a.count, moved,
                                                        a.count - ended))
    for e in errors[:10]:
        print("  error: %s" % e)
    return 0 if ended == a.count and not errors else 1


def cmd_udp(a):
    # All sockets stay open until the end, so the N source ports are distinct.
    socks = []
    failed = 0
    try:
        for i in range(a.count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.settimeout(a.timeout)
            if a.no_df:
                s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
            s.connect((a.host, a.port))  # answers from any other address:port are not accepted
            msg = b"hello %d\n" % i
            if a.size is not None:
                msg = (msg * (a.size // len(msg) + 1))[:a.size]
            s.send(msg)
            try:
                data = s.recv(65535)
                print("%d %s" % (s.getsockname()[1], data.decode(errors="replace").strip()))
            except (socket.timeout, OSError) as e:
                failed += 1
                print("%d timeout (%s)" % (s.getsockname()[1], e or "no answer"))
    finally:
        for s in socks:
            s.close()
    return 0 if failed == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("download", "upload", "concurrent", "udp", "seq", "hold"):
        p = sub.add_parser(name)
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, default=53 if name == "udp" else 80)
        p.add_argument("--timeout", type=float, default=30.0 if name in ("download", "upload")
                       else (10.0 if name in ("concurrent", "seq", "hold") else 2.0))
        if name in ("download", "upload"):
            p.add_argument("--size", type=int, required=True)
        else:
            p.add_argument("--count", type=int, default=200 if name == "concurrent" else 10)
        if name in ("seq", "hold"):
            p.add_argument("--source", help="source address to bind (default: the kernel's)")
            p.add_argument("--sport", type=int, help="source port of the first connection; "
                           "the next ones count up from it (default: the kernel's)")
        if name == "hold":
            p.add_argument("--go-file", help="end the connections once this file exists "
                           "(default: at once)")
            p.add_argument("--wait", type=float, default=120.0,
                           help="seconds to wait for --go-file")
        if name == "udp":
            p.add_argument("--size", type=int, help="payload bytes (default: \"hello N\\n\")")
            p.add_argument("--no-df", action="store_true", help="send with DF clear")
    a = ap.parse_args()
    try:
        return {"download": cmd_download, "upload": cmd_upload, "concurrent": cmd_concurrent,
                "udp": cmd_udp, "seq": cmd_seq, "hold": cmd_hold}[a.cmd](a)
    except Exception as e:  # noqa: BLE001
        print("%s failed: %s: %s" % (a.cmd, type(e).__name__, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
