#!/usr/bin/python3
"""A real server's web server for the e2e lab (the seed's "192.168.10.2, it works!" page).

GET /              -> "rs1 10.10.0.2, it works!\n" (names the server)
GET /big?size=N    -> N deterministic pseudo-random bytes (see payload()), so a client can
                      check the sha256 of what arrived against expected_sha256(N)
POST /upload       -> the sha256 hex of the request body, then "\n"
GET /hold          -> "rs1 10.10.0.2 start\n" at once, then waits (up to 300 s) for a line from
                      the client, answers "rs1 10.10.0.2 end\n" and closes: a connection held
                      open as long as the client wants, naming its server at both ends
"""
import argparse
import hashlib
import http.server
import socketserver
import sys
import urllib.parse

MAX_SIZE = 1 << 30
_BLOCK = 64  # sha512 output size


def payload(size, chunk=1 << 16):
    """Yields `size` bytes: the concatenation of sha512(b"lb-e2e" + i as 8 bytes BE), i = 0, 1, ..."""
    i = 0
    left = size
    while left > 0:
        n = min(chunk, left)
        blocks = (n + _BLOCK - 1) // _BLOCK
        buf = b"".join(hashlib.sha512(b"lb-e2e" + (i + k).to_bytes(8, "big")).digest()
                       for k in range(blocks))
        i += blocks
        yield buf[:n]
        left -= n


def expected_sha256(size):
    h = hashlib.sha256()
    for part in payload(size):
        h.update(part)
    return h.hexdigest()


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024  # listen backlog: 200+ clients arrive at once
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer.server_bind asks DNS for getfqdn(addr): seconds of resolver timeouts in a
        # namespace with no way out. Nothing here needs the name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "lb-e2e-httpd/1"
    protocol_version = "HTTP/1.0"  # one request per connection: one LVS connection per curl
    page = b""

    def log_message(self, fmt, *args):  # quiet: errors still reach stderr via log_error
        pass

    def log_error(self, fmt, *args):
        sys.stderr.write("%s - %s\n" % (self.client_address[0], fmt % args))

    def _reply(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/":
            self._reply(200, self.page)
            return
        if url.path == "/big":
            q = urllib.parse.parse_qs(url.query)
            try:
                size = int(q.get("size", ["0"])[0])
            except ValueError:
                size = -1
            if not 0 <= size <= MAX_SIZE:
                self._reply(400, b"bad size\n")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            for part in payload(size):
                self.wfile.write(part)
            return
        if url.path == "/hold":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            name = self.page.split(b",", 1)[0]  # "rs1 10.10.0.2"
            self.wfile.write(name + b" start\n")
            self.connection.settimeout(300)
            try:
                self.rfile.readline()
            except OSError:
                return
            self.wfile.write(name + b" end\n")
            return
        self._reply(404, b"not found\n")

    def do_POST(self):
        if urllib.parse.urlsplit(self.path).path != "/upload":
            self._reply(404, b"not found\n")
            return
        try:
            left = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._reply(411, b"length required\n")
            return
        h = hashlib.sha256()
        while left > 0:
            part = self.rfile.read(min(left, 1 << 16))
            if not part:
                break
            h.update(part)
            left -= len(part)
        if left:
            self._reply(400, b"short body\n")
            return
        self._reply(200, (h.hexdigest() + "\n").encode())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="server name shown on the page, e.g. rs1")
    ap.add_argument("--addr", required=True, help="the server's address, shown on the page")
    ap.add_argument("--listen", help="address to listen on (default --addr; the VIP for tun/dr)")
    ap.add_argument("--port", type=int, default=80)
    a = ap.parse_args()
    Handler.page = ("%s %s, it works!\n" % (a.name, a.addr)).encode()
    with Server((a.listen or a.addr, a.port), Handler) as srv:
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
