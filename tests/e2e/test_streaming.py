"""Large bodies stream through with back-pressure: hashes match and the
gateway's memory stays bounded (it never holds a body)."""

import hashlib
import socket
import threading
import time

from conftest import connect, parse_response, read_until_close
from upstream import PATTERN, pattern_sha256

MIB = 1 << 20


class RssSampler:
    def __init__(self, gw):
        self.gw = gw
        self.peak = 0
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, self.gw.rss_kb())
            time.sleep(0.01)

    def __enter__(self):
        self.base = self.gw.rss_kb()
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop = True
        self.t.join()


def upload(port, size, chunked):
    s = connect(port, timeout=60)
    head = b"POST /up HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"Content-Length: %d\r\n\r\n" % size
    s.sendall(head)
    h = hashlib.sha256()
    left = size
    block = PATTERN
    while left:
        part = block[: min(left, len(block))]
        h.update(part)
        s.sendall((b"%x\r\n" % len(part) + part + b"\r\n") if chunked else part)
        left -= len(part)
    if chunked:
        s.sendall(b"0\r\n\r\n")
    r, _ = parse_response(read_until_close(s))
    s.close()
    return r, h.hexdigest()


def download(port, size, mode):
    s = connect(port, timeout=60)
    s.sendall(b"GET /bytes/%d?mode=%s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % (size, mode.encode()))
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    h = hashlib.sha256()
    total = 0
    chunked = b"transfer-encoding: chunked" in head.lower()
    buf = rest
    # decode incrementally so 100 MiB never sits in the test's memory either
    while True:
        if chunked:
            while b"\r\n" not in buf:
                buf += s.recv(65536)
            line, _, buf = buf.partition(b"\r\n")
            n = int(line, 16)
            if n == 0:
                break
            while len(buf) < n + 2:
                d = s.recv(1 << 20)
                assert d, "eof in chunk"
                buf += d
            h.update(buf[:n])
            total += n
            buf = buf[n + 2:]
        else:
            if buf:
                h.update(buf)
                total += len(buf)
                buf = b""
            if total >= size:
                break
            d = s.recv(1 << 20)
            if not d:
                break
            buf = d
    s.close()
    return head, total, h.hexdigest()


def test_1mib_upload_and_download(gateway, upstream):
    g = gateway()
    for chunked in (False, True):
        r, sha = upload(g.port, MIB, chunked)
        assert r.status == 200 and r.json()["body_len"] == MIB and r.json()["body_sha256"] == sha
    for mode in ("length", "chunked", "close"):
        head, total, sha = download(g.port, MIB, mode)
        assert head.startswith(b"HTTP/1.1 200") and total == MIB and sha == pattern_sha256(MIB), mode


def test_100mib_upload_streams(gateway, upstream):
    g = gateway(limits={"max_body": "1GiB"})
    for chunked in (False, True):
        with RssSampler(g) as rss:
            r, sha = upload(g.port, 100 * MIB, chunked)
        assert r.status == 200
        assert r.json()["body_len"] == 100 * MIB and r.json()["body_sha256"] == sha
        assert rss.peak - rss.base < 32 * 1024, "gateway RSS grew by %d KiB" % (rss.peak - rss.base)


def test_100mib_download_streams(gateway, upstream):
    g = gateway()
    for mode in ("length", "chunked"):
        with RssSampler(g) as rss:
            head, total, sha = download(g.port, 100 * MIB, mode)
        assert total == 100 * MIB and sha == pattern_sha256(100 * MIB), mode
        assert rss.peak - rss.base < 32 * 1024, "gateway RSS grew by %d KiB" % (rss.peak - rss.base)


def test_slow_reader_applies_backpressure(gateway, upstream):
    """A client that does not read makes the gateway stop reading the upstream."""
    g = gateway()
    s = connect(g.port, timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % (200 * MIB))
    base = g.rss_kb()
    time.sleep(1.0)  # the upstream would have sent 200 MiB by now if nothing pushed back
    assert g.rss_kb() - base < 16 * 1024
    s.close()
