"""A scriptable HTTP/1.1 upstream for end-to-end tests.

It runs in a thread of the test process, speaks raw sockets (so tests see
exactly what the gateway forwarded) and records every request it receives.
Behaviour is chosen by the request path:

  /status/N          answer with status N
  /bytes/N           N bytes of a fixed pattern (?mode=chunked|close for other framing)
  /sleep/MS          answer after MS milliseconds
  /close             read the request, then close without answering
  /raw/NAME          send the canned raw response RAW[NAME] (malformed responses)
  /early/N           answer 200 before reading the request body (at most N bytes read)
  /stray/N           a 200 response of N bytes in all, then a second, unrequested one
  /fin               a keep-alive response, then close the connection anyway
  /headers/N         a 200 response with N extra 64-byte header fields
  anything else      200 with a JSON echo: method, target, headers, body length and sha256
"""

import hashlib
import json
import socket
import threading
import time

PATTERN = bytes(range(33, 97)) * 1024  # 64 KiB of printable bytes

RAW = {
    "bad-status": b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
    "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "bad-header": b"HTTP/1.1 200 OK\r\nX Bad: yes\r\nContent-Length: 0\r\n\r\n",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-a-bit",
    "http09": b"hello world\r\n\r\n",
    "interim": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "switch": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "hop": b"HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
    "close-delimited": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close",
    "nul": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "sec": b"HTTP/1.1 200 OK\r\nServer: legacy/1.0\r\nX-Powered-By: PHP/5\r\nX-Frame-Options: ALLOWALL\r\n"
           b"X-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
}


class Request:
    def __init__(self, conn_id, method, target, version, headers, raw_head):
        self.conn_id = conn_id
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value), as received
        self.raw_head = raw_head
        self.body_len = 0
        self.body_sha256 = hashlib.sha256()
        self.complete = False

    def header(self, name):
        """The values of a header, in order (case-insensitive name)."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def to_json(self):
        return {
            "method": self.method,
            "target": self.target,
            "headers": self.headers,
            "body_len": self.body_len,
            "body_sha256": self.body_sha256.hexdigest(),
        }


class BadRequest(Exception):
    pass


class Upstream:
    def __init__(self, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stopped = False
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in list(self.conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def reset(self):
        with self.lock:
            self.requests = []

    def wait_requests(self, n, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.requests) >= n and all(r.complete for r in self.requests[:n]):
                    return list(self.requests)
            time.sleep(0.01)
        with self.lock:
            return list(self.requests)

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                cid = self.connections
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c, cid), daemon=True).start()

    def _serve(self, c, cid):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                    if len(buf) > 1 << 20:
                        raise BadRequest("head too large")
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.split(b"\r\n")
                method, target, version = lines[0].decode("latin-1").split(" ")
                headers = []
                for line in lines[1:]:
                    k, v = line.decode("latin-1").split(":", 1)
                    headers.append((k, v.strip()))
                req = Request(cid, method, target, version, headers, head + b"\r\n\r\n")
                with self.lock:
                    self.requests.append(req)
                path = target.split("?")[0]
                if path.startswith("/early/"):
                    limit = int(path.split("/")[2])
                    buf = self._read_body(c, req, buf, limit)
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nearly")
                    return
                buf = self._read_body(c, req, buf)
                req.complete = True
                if not self._respond(c, req, target):
                    return
                if any(v.lower() == "close" for v in req.header("connection")):
                    return
        except (BadRequest, ValueError, ConnectionError, OSError):
            return
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _recv(self, c, buf, n):
        while len(buf) < n:
            d = c.recv(65536)
            if not d:
                raise BadRequest("eof in body")
            buf += d
        return buf

    def _consume(self, req, data):
        req.body_len += len(data)
        req.body_sha256.update(data)

    def _read_body(self, c, req, buf, limit=None):
        cl = req.header("content-length")
        te = req.header("transfer-encoding")
        if te:
            if te != ["chunked"]:
                raise BadRequest("te")
            while True:
                buf = self._recv_line(c, buf)
                line, buf = buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while True:  # trailers
                        buf = self._recv_line(c, buf)
                        line, buf = buf.split(b"\r\n", 1)
                        if line == b"":
                            return buf
                buf = self._recv(c, buf, size + 2)
                self._consume(req, buf[:size])
                if buf[size:size + 2] != b"\r\n":
                    raise BadRequest("chunk end")
                buf = buf[size + 2:]
                if limit is not None and req.body_len >= limit:
                    return buf
        if cl:
            n = int(cl[0])
            left = n
            while left:
                if not buf:
                    buf = c.recv(min(left, 1 << 20))
                    if not buf:
                        raise BadRequest("eof in body")
                take = buf[:left]
                self._consume(req, take)
                buf = buf[len(take):]
                left -= len(take)
                if limit is not None and req.body_len >= limit:
                    return buf
        return buf

    def _recv_line(self, c, buf):
        while b"\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                raise BadRequest("eof")
            buf += d
        return buf

    def _respond(self, c, req, target):
        path, _, query = target.partition("?")
        parts = path.split("/")
        if path.startswith("/status/"):
            status = int(parts[2])
            body = b"" if status in (204, 304) or req.method == "HEAD" else b'{"status":%d}' % status
            cl = b"" if status == 204 else b"Content-Length: %d\r\n" % len(body)
            c.sendall(b"HTTP/1.1 %d X\r\n%s\r\n%s" % (status, cl, body))
            return True
        if path.startswith("/bytes/"):
            n = int(parts[2])
            mode = "length"
            for kv in query.split("&"):
                if kv.startswith("mode="):
                    mode = kv[5:]
            if mode == "chunked":
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            elif mode == "close":
                c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            if req.method == "HEAD":
                return mode != "close"
            left = n
            while left:
                chunk = PATTERN[: min(left, len(PATTERN))]
                c.sendall((b"%x\r\n" % len(chunk) + chunk + b"\r\n") if mode == "chunked" else chunk)
                left -= len(chunk)
            if mode == "chunked":
                c.sendall(b"0\r\n\r\n")
            return mode != "close"
        if path.startswith("/sleep/"):
            time.sleep(int(parts[2]) / 1000.0)
        elif path == "/close":
            return False
        elif path.startswith("/stray/"):
            total = int(parts[2])
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
            n = total - len(head % 0)
            n = total - len(head % n)
            extra = b"HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\nSECRET-FOR-ANOTHER-CLIENT"
            c.sendall((head % n) + b"s" * n + extra)
            time.sleep(0.2)
            return False
        elif path == "/fin":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return False
        elif path.startswith("/headers/"):
            fields = b"".join(b"X-Field-%03d: %s\r\n" % (i, b"v" * 48) for i in range(int(parts[2])))
            c.sendall(b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 2\r\n\r\nok")
            return True
        elif path.startswith("/raw/"):
            c.sendall(RAW[parts[2]])
            return False
        body = json.dumps(req.to_json()).encode()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        head += b"Server: test-upstream\r\nX-Powered-By: pytest\r\n\r\n"
        c.sendall(head + (b"" if req.method == "HEAD" else body))
        return True


def pattern_sha256(n):
    """The sha256 of the first n bytes of the /bytes/N pattern."""
    h = hashlib.sha256()
    left = n
    while left:
        chunk = PATTERN[: min(left, len(PATTERN))]
        h.update(chunk)
        left -= len(chunk)
    return h.hexdigest()
