"""Fixtures for end-to-end tests: a real gateway process and a scriptable
upstream, both on ephemeral loopback ports, plus raw-socket helpers."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from upstream import Upstream

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("PORTCULLIS_BUILD", "build"))
BIN = os.path.join(BUILD, "portcullis")
TEST_BIN = os.path.join(BUILD, "portcullis-test")
DEMO_UPSTREAM = os.path.join(BUILD, "demo-upstream")


_ports_given = set()


def free_port():
    """A loopback port nothing listens on, never the same twice in a run: the
    kernel can hand the same port to two binds in a row, and a test asking for
    a listener port and an admin port then got one port for both."""
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no port not handed out before in 100 tries")


def base_config(upstream_addr, port, **extra):
    """A minimal valid configuration: one listener, upstream 'app', route '/'."""
    cfg = {
        "workers": 2,
        "shutdown_timeout": "5s",
        "listeners": [{"name": "http", "address": "127.0.0.1:%d" % port}],
        "upstreams": {"app": {"servers": [upstream_addr], "connect_timeout": "1s", "response_timeout": "3s"}},
        "routes": [{"match": {"path_prefix": "/"}, "upstream": "app"}],
    }
    cfg.update(extra)
    return cfg


class Gateway:
    def __init__(self, tmp_path, config, port, binary=BIN, stage=None, env=None, name="gw"):
        self.dir = tmp_path
        self.port = port
        self.binary = binary
        self.stage = stage
        self.env = dict(os.environ, **(env or {}))
        self.conf_path = os.path.join(str(tmp_path), name + ".yaml")
        self.out_path = os.path.join(str(tmp_path), name + ".out")
        self.err_path = os.path.join(str(tmp_path), name + ".err")
        if not isinstance(config, str):
            config = json.dumps(config, indent=1)  # JSON is YAML
        with open(self.conf_path, "w") as f:
            f.write(config)
        self.proc = None

    def args(self):
        a = [self.binary, "-c", self.conf_path]
        if self.stage:
            a += ["--stage", self.stage]
        return a

    def start(self, wait=True):
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(self.args(), stdout=self.out, stderr=self.err, env=self.env)
        if wait:
            self.wait_listening(self.port)
        return self

    def wait_listening(self, port, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("gateway exited with %s:\n%s" % (self.proc.returncode, self.stderr()))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("gateway did not listen on %d:\n%s" % (port, self.stderr()))

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("gateway did not exit within %ss" % timeout)

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def access_log(self, wait_for=0, timeout=3.0):
        """Parsed access-log lines (stdout), waiting until at least wait_for exist."""
        deadline = time.time() + timeout
        while True:
            with open(self.out_path, "rb") as f:
                lines = [json.loads(l) for l in f.read().splitlines() if l.strip()]
            if len(lines) >= wait_for or time.time() > deadline:
                return lines
            time.sleep(0.05)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.stop()


@pytest.fixture
def gateway(tmp_path, upstream):
    """gateway(**extra_config) -> a started Gateway in front of `upstream`."""
    started = []

    def make(config=None, port=None, binary=BIN, stage=None, env=None, start=True, **extra):
        """config: a dict or YAML text (its listener must use `port`)."""
        port = port or free_port()
        cfg = config if config is not None else base_config(upstream.address, port, **extra)
        g = Gateway(tmp_path, cfg, port, binary=binary, stage=stage, env=env, name="gw%d" % len(started))
        started.append(g)
        if start:
            g.start()
        return g

    yield make
    for g in started:
        try:
            g.stop(sig=signal.SIGKILL) if g.proc and g.proc.poll() is None else None
        finally:
            for f in ("out", "err"):
                if hasattr(g, f):
                    getattr(g, f).close()


# ---- raw HTTP helpers ----


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def read_one_response(s):
    """One Content-Length-framed response from a keep-alive socket (plain or
    TLS): (head bytes, body bytes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(65536)
        if not d:
            raise ValueError("connection closed before a response head: %r" % data[:200])
        data += d
    head, _, body = data.partition(b"\r\n\r\n")
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    while len(body) < n:
        body += s.recv(65536)
    return head, body


def read_until_close(s, limit=1 << 26):
    data = b""
    while len(data) < limit:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not d:
            break
        data += d
    return data


def send_raw(port, data, timeout=5.0, half_close=False):
    """Sends bytes on a new connection and returns everything read until the
    gateway closes it (or timeout)."""
    s = connect(port, timeout)
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return read_until_close(s)
    finally:
        s.close()


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return vals[0] if vals else None

    def headers_named(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def parse_response(data, head_request=False):
    """Parses one response from the start of data; returns (Response, rest)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("incomplete response head: %r" % data[:200])
    lines = head.decode("latin-1").split("\r\n")
    version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    assert version == "HTTP/1.1", lines[0]
    headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:]]
    resp = Response(int(status), reason, headers, b"")
    te = resp.header("transfer-encoding")
    cl = resp.header("content-length")
    if head_request or resp.status in (204, 304) or 100 <= resp.status < 200:
        return resp, rest
    if te:
        assert te == "chunked"
        body = b""
        while True:
            line, _, rest = rest.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                _, _, rest = rest.partition(b"\r\n")
                break
            body += rest[:size]
            rest = rest[size + 2:]
        resp.body = body
        return resp, rest
    if cl is not None:
        n = int(cl)
        resp.body = rest[:n]
        return resp, rest[n:]
    resp.body = rest
    return resp, b""


def parse_responses(data):
    out = []
    while data:
        r, data = parse_response(data)
        out.append(r)
    return out


def request(port, method="GET", path="/", headers=None, body=b"", version="HTTP/1.1", host="a"):
    """One request on a fresh connection with Connection: close; returns a Response."""
    hdrs = [("Host", host)] if host else []
    hdrs += list(headers or [])
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hdrs):
        hdrs.append(("Content-Length", str(len(body))))
    hdrs.append(("Connection", "close"))
    raw = ("%s %s %s\r\n" % (method, path, version)).encode()
    raw += b"".join(("%s: %s\r\n" % kv).encode() for kv in hdrs) + b"\r\n" + body
    data = send_raw(port, raw)
    resp, _ = parse_response(data, head_request=(method == "HEAD"))
    return resp


def poll(fn, timeout=10.0):
    """Calls fn until it returns true (True) or timeout passes (False); a
    connection refused counts as not yet (a listener may still be opening)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            if fn():
                return True
        except ConnectionError:
            pass
        time.sleep(0.1)
    return False


class Redis:
    """A real redis-server on an ephemeral loopback port, no persistence."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert poll(lambda: self.cmd("PING") == "PONG", timeout=10)

    def cmd(self, *args):
        """One command over RESP; returns a str, an int or None."""
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        except OSError:
            return None
        with s:
            s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in
                                                        (x.encode() for x in args)))
            data = b""
            while not data.endswith(b"\r\n") or (data[:1] == b"$" and not data.startswith(b"$-1") and
                                                   len(data) < data.index(b"\r\n") + 4 + int(data[1:data.index(b"\r\n")])):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if data[:1] in (b"+", b"-"):
            return data[1:].strip().decode()
        if data[:1] == b":":
            return int(data[1:])
        if data[:1] == b"$":
            if data.startswith(b"$-1"):
                return None
            head = data.index(b"\r\n")
            return data[head + 2:head + 2 + int(data[1:head])].decode()
        return data.decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=10)

    def restart(self, tmp_path):
        """A new, empty server on the same port (no scripts loaded)."""
        port = self.port
        self.stop()
        self.port = port
        self.proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert poll(lambda: self.cmd("PING") == "PONG", timeout=10)


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path)
    yield r
    if r.proc.poll() is None:
        r.stop()
