"""Operations, end to end: the admin listener and its authentication, the
metrics, the access and security logs, SIGUSR1 log reopening, reloads
(SIGHUP) under load, graceful stop (SIGTERM), failover between upstream
servers, the circuit breaker, active health checks and least_conn.

Every wait is a bounded poll (`wait_until`) and every loop is bounded in
count and time; nothing asserts a duration. Upstreams are either
`upstream.py` servers in this process (`Server` says who it is and can be
slow or fail its health check) or `build/demo-upstream` processes (`Demo`),
which can be killed and restarted on the same port."""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

from conftest import DEMO_UPSTREAM, TEST_BIN, base_config, connect, free_port, parse_response, request, send_raw
from upstream import Upstream

TOKEN = "s3cret-token"

# name -> Prometheus type, for every metric the gateway must declare
METRIC_TYPES = {
    "portcullis_requests_total": "counter",
    "portcullis_blocked_total": "counter",
    "portcullis_waf_rule_hits_total": "counter",
    "portcullis_request_duration_seconds": "histogram",
    "portcullis_upstream_requests_total": "counter",
    "portcullis_upstream_healthy": "gauge",
    "portcullis_redis_errors_total": "counter",
    "portcullis_connections_active": "gauge",
    "portcullis_config_generation": "gauge",
}
BLOCK_REASONS = ["waf", "ratelimit", "jwt", "cors", "size", "ip", "malformed"]

ACCESS_FIELDS = ["ts", "request_id", "client_ip", "method", "path", "status", "bytes_in", "bytes_out",
                 "duration_ms", "upstream", "upstream_ms", "route", "user", "blocked_by", "rules"]
SECURITY_FIELDS = ["ts", "request_id", "client_ip", "method", "path", "status", "route", "reason",
                   "dry_run", "rules", "messages", "matched", "excerpt"]


# ---- polling ----


def wait_until(fn, timeout=10.0, step=0.05):
    """fn() until it is truthy or `timeout` seconds passed; its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


# ---- the admin listener ----


def admin_get(port, path, token=None, method="GET", headers=None):
    """One admin request: (status, {lower-case header name: value}, body bytes)."""
    hdrs = list(headers or [])
    if token is not None:
        hdrs.append(("Authorization", "Bearer " + token))
    r = request(port, method=method, path=path, headers=hdrs)
    return r.status, {k.lower(): v for k, v in r.headers}, r.body


def admin_json(port, path, token=None):
    status, _, body = admin_get(port, path, token=token)
    return status, json.loads(body)


def readyz(port):
    """(status, reasons) of /readyz; None when the admin listener is gone."""
    try:
        st, doc = admin_json(port, "/readyz")
    except OSError:
        return None
    return st, doc.get("reasons")


def status_doc(port, token=TOKEN):
    st, doc = admin_json(port, "/admin/status", token=token)
    assert st == 200, (st, doc)
    return doc


def scrape(port):
    """/metrics as {(name, frozenset of (label, value)): float}."""
    st, hdrs, body = admin_get(port, "/metrics")
    assert st == 200
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def sample(ms, name, **labels):
    """The value of one series (0 when it is absent)."""
    return ms.get((name, frozenset(labels.items())), 0.0)


def total(ms, name):
    """The sum of every series of a metric."""
    return sum(v for (n, _), v in ms.items() if n == name)


def with_admin(cfg, admin_port, token=TOKEN):
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
    if token is not None:
        cfg["admin"]["token"] = token
    return cfg


def start(gateway, cfg, **kw):
    """Starts a gateway with a full configuration (on its first listener's
    port) and waits for its admin listener too, if it has one."""
    port = int(cfg["listeners"][0]["address"].rsplit(":", 1)[1])
    g = gateway(cfg, port=port, **kw)
    if "admin" in cfg:
        g.wait_listening(int(cfg["admin"]["address"].rsplit(":", 1)[1]))
    return g


def rewrite(g, cfg):
    """Writes a new configuration file for g (a dict, or raw text)."""
    with open(g.conf_path, "w") as f:
        f.write(cfg if isinstance(cfg, str) else json.dumps(cfg, indent=1))


def reload_and_wait(g, cfg, generation):
    rewrite(g, cfg)
    g.send_signal(signal.SIGHUP)
    line = "configuration %d in effect" % generation
    assert wait_until(lambda: line in g.stderr()), g.stderr()


def read_json_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return [json.loads(l) for l in f.read().splitlines() if l.strip()]


# ---- clients ----


def _framed_end(data):
    """Where the first response in data ends, or None when it is incomplete
    (or delimited by the close of the connection)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    start = len(head) + 4
    fields = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    status = int(head.split(b" ")[1])
    if status in (204, 304) or 100 <= status < 200:
        return start
    if fields.get("transfer-encoding") == "chunked":
        pos = 0
        while True:
            eol = rest.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(rest[pos:eol].split(b";")[0], 16)
            pos = eol + 2
            if size == 0:
                end = rest.find(b"\r\n", pos)  # no trailers from the gateway's sources
                return None if end < 0 else start + end + 2
            pos += size + 2
            if pos > len(rest):
                return None
    if "content-length" in fields:
        n = int(fields["content-length"])
        return start + n if len(rest) >= n else None
    return None


class Client:
    """A keep-alive client connection: one request at a time, each response
    read to its end."""

    def __init__(self, port, timeout=5.0):
        self.sock = connect(port, timeout)
        self.buf = b""
        self.closed = False

    def get(self, path, headers=()):
        raw = "GET %s HTTP/1.1\r\nHost: a\r\n" % path
        raw += "".join("%s: %s\r\n" % kv for kv in headers) + "\r\n"
        self.sock.sendall(raw.encode())
        while True:
            end = _framed_end(self.buf)
            if end is not None:
                resp, _ = parse_response(self.buf[:end])
                self.buf = self.buf[end:]
                if (resp.header("connection") or "").lower() == "close":
                    self.close()
                return resp
            d = self.sock.recv(65536)
            if not d:
                if b"\r\n\r\n" in self.buf:  # delimited by the close
                    resp, _ = parse_response(self.buf)
                    self.buf = b""
                    self.close()
                    return resp
                raise ConnectionError("the gateway closed the connection without an answer")
            self.buf += d

    def close(self):
        if not self.closed:
            self.closed = True
            self.sock.close()


def served_by(resp):
    """Which server answered: a Server's body is its name; upstream.py's
    echo is JSON."""
    return "echo" if resp.body.startswith(b"{") else resp.body.decode("latin-1")


class Load:
    """Requests in a loop on a thread of their own: a request on a fresh
    connection, then a few on one keep-alive connection, and again; bounded
    by `seconds` and `max_requests`. Records (status or error, server) for
    each request, in order."""

    def __init__(self, port, path, seconds=4.0, max_requests=20000, per_connection=5):
        self.port, self.path = port, path
        self.seconds, self.max_requests, self.per_connection = seconds, max_requests, per_connection
        self.results = []
        self.fresh = self.kept = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _record(self, fn):
        try:
            r = fn()
            self.results.append((r.status, served_by(r)))
        except (OSError, ValueError) as e:
            self.results.append(("error: %r" % e, None))

    def _run(self):
        deadline = time.time() + self.seconds
        i = 0

        def more():
            return not self.stop.is_set() and time.time() < deadline and len(self.results) < self.max_requests

        while more():
            i += 1
            self.fresh += 1
            self._record(lambda: request(self.port, path="%s?n=%d" % (self.path, i)))
            c = None
            try:
                c = Client(self.port)
                for _ in range(self.per_connection):
                    if not more() or c.closed:
                        break
                    i += 1
                    self.kept += 1
                    self._record(lambda: c.get("%s?n=%d" % (self.path, i)))
            except OSError as e:
                self.results.append(("error: %r" % e, None))
            finally:
                if c:
                    c.close()

    @property
    def ok(self):
        return sum(1 for s, _ in self.results if s == 200)

    def count(self, server, since=0):
        return sum(1 for s, who in self.results[since:] if s == 200 and who == server)

    def failures(self):
        return [(i, s) for i, (s, _) in enumerate(self.results) if s != 200]

    def finish(self):
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()


# ---- upstream servers ----


class Server(Upstream):
    """An upstream.py server whose answers' body is its name. /health answers
    `health_status`, /sleep/MS waits MS milliseconds, any other request waits
    `delay` seconds first."""

    def __init__(self, name, delay=0.0, port=0):
        self.name = name
        self.delay = delay
        self.health_status = 200
        super().__init__(port)

    def _respond(self, c, req, target):
        path = target.split("?")[0]
        status = 200
        if path == "/health":
            status = self.health_status
        elif path.startswith("/sleep/"):
            time.sleep(int(path.split("/")[2]) / 1000.0)
        elif self.delay:
            time.sleep(self.delay)
        body = self.name.encode()
        c.sendall(b"HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                  % (status, len(body), body))
        return True

    def served(self, prefix="/"):
        """Requests received other than health probes."""
        with self.lock:
            return [r for r in self.requests if r.target.startswith(prefix) and r.target != "/health"]

    def probes(self):
        with self.lock:
            return sum(1 for r in self.requests if r.target == "/health")


class Demo:
    """build/demo-upstream in a process of its own, so that it can be killed
    and started again on the same port."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen([DEMO_UPSTREAM, "--listen", self.address, "--quiet"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: self.proc.poll() is not None or not refused(self.port), timeout=5)
        assert self.proc.poll() is None, "demo-upstream did not start on %s" % self.address

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def upstream_config(servers, port, **up):
    """base_config with upstream 'app' on the given servers (anything with .address)."""
    cfg = base_config(servers[0].address, port)
    cfg["upstreams"]["app"]["servers"] = [s.address for s in servers]
    cfg["upstreams"]["app"].update(up)
    return cfg


def healthy_gauge(admin_port, server, upstream="app"):
    return sample(scrape(admin_port), "portcullis_upstream_healthy", upstream=upstream, server=server.address)


# ==== 1. the admin endpoints and their authentication ====


def test_admin_endpoints_and_auth(gateway, upstream):
    aport = free_port()
    g = start(gateway, with_admin(base_config(upstream.address, free_port()), aport))

    st, hdrs, body = admin_get(aport, "/healthz")
    assert st == 200 and json.loads(body) == {"status": "ok"}
    assert hdrs["content-type"].startswith("application/json")
    st, hdrs, body = admin_get(aport, "/healthz", method="HEAD")
    assert st == 200 and body == b""
    st, doc = admin_json(aport, "/readyz")
    assert st == 200 and doc == {"status": "ready"}

    st, hdrs, body = admin_get(aport, "/metrics")
    assert st == 200 and hdrs["content-type"].startswith("text/plain")
    text = body.decode()
    for name, kind in METRIC_TYPES.items():
        assert re.search(r"^# HELP %s \S" % name, text, re.M), name
        assert re.search(r"^# TYPE %s %s$" % (name, kind), text, re.M), name
    for reason in BLOCK_REASONS:  # every reason exported, even at 0
        assert re.search(r'^portcullis_blocked_total\{reason="%s"\} 0$' % reason, text, re.M), reason
    ms = scrape(aport)
    assert sample(ms, "portcullis_config_generation") == 1
    assert sample(ms, "portcullis_redis_errors_total") == 0
    assert sample(ms, "portcullis_upstream_healthy", upstream="app", server=upstream.address) == 1
    # the shipped rule set is on by default: one sample per rule id, at 0
    waf = {dict(k[1])["rule"]: v for k, v in ms.items() if k[0] == "portcullis_waf_rule_hits_total"}
    assert waf and all(r.isdigit() for r in waf) and set(waf.values()) == {0}

    # /admin/ needs the bearer token
    st, hdrs, body = admin_get(aport, "/admin/status")
    assert st == 401 and hdrs["www-authenticate"].startswith("Bearer")
    assert json.loads(body)["error"] == "unauthorized"
    for wrong in ("wrong", TOKEN + "x", TOKEN[:-1], "", " " + TOKEN):
        assert admin_get(aport, "/admin/status", token=wrong)[0] == 401, wrong
    assert admin_get(aport, "/admin/status", headers=[("Authorization", "Basic " + TOKEN)])[0] == 401
    st, hdrs, body = admin_get(aport, "/admin/status", token=TOKEN)
    assert st == 200 and hdrs["content-type"].startswith("application/json")
    doc = json.loads(body)
    assert doc["config_generation"] == 1 and doc["version"] and doc["workers"] == 2
    assert doc["config_file"] == g.conf_path
    assert isinstance(doc["uptime_seconds"], int) and doc["uptime_seconds"] >= 0
    assert isinstance(doc["connections_active"], int)
    assert doc["redis"] == {"state": "not_configured"}
    assert doc["upstreams"] == {"app": {"balance": "round_robin", "healthy": True, "servers": [
        {"address": upstream.address, "check": "none", "circuit": "closed", "consecutive_failures": 0}]}}

    # methods and paths
    for method in ("POST", "PUT", "DELETE"):
        st, hdrs, _ = admin_get(aport, "/healthz", method=method)
        assert st == 405 and "GET" in hdrs["allow"], method
    assert admin_get(aport, "/metrics", method="POST")[0] == 405
    assert admin_get(aport, "/admin/status", method="POST", token=TOKEN)[0] == 405
    assert admin_get(aport, "/admin/status", method="POST")[0] == 401  # the token first
    st, _, body = admin_get(aport, "/nope")
    assert st == 404 and json.loads(body)["error"] == "not_found"
    assert admin_get(aport, "/admin/nope", token=TOKEN)[0] == 404
    assert admin_get(aport, "/admin/nope")[0] == 401
    assert not upstream.requests  # the admin listener never touches an upstream


def test_admin_api_disabled_without_token(gateway, upstream):
    for token in (None, ""):
        aport = free_port()
        start(gateway, with_admin(base_config(upstream.address, free_port()), aport, token=token))
        for sent in (None, "anything", ""):
            st, _, body = admin_get(aport, "/admin/status", token=sent)
            assert st == 403 and json.loads(body)["error"] == "admin_api_disabled", (token, sent)
        # health and metrics need no token
        assert admin_get(aport, "/healthz")[0] == 200
        assert admin_get(aport, "/readyz")[0] == 200
        assert admin_get(aport, "/metrics")[0] == 200


# ==== 2. metrics move with traffic ====


def test_metrics_move_with_requests_and_blocks(gateway, upstream):
    aport = free_port()
    cfg = with_admin(base_config(upstream.address, free_port()), aport)
    # two routes that do not cover everything
    cfg["routes"] = [{"name": "api", "match": {"path_prefix": "/api/"}, "upstream": "app"},
                     {"name": "codes", "match": {"path_prefix": "/status/"}, "upstream": "app"}]
    cfg["limits"] = {"max_uri": "1KiB"}
    g = start(gateway, cfg)
    before = scrape(aport)

    expected = [200, 200, 200, 404, 404, 404, 414, 400]
    got = [request(g.port, path="/api/ok%d" % i).status for i in range(3)]
    got += [request(g.port, path="/status/404").status for _ in range(2)]  # the upstream's 404
    got.append(request(g.port, path="/elsewhere").status)  # no route: the gateway's 404
    got.append(request(g.port, path="/api/" + "a" * 2000).status)
    got.append(request(g.port, path="/api/x", headers=[("Content-Length", "1"),
                                                       ("Transfer-Encoding", "chunked")]).status)
    assert got == expected

    n = len(expected)
    count = "portcullis_request_duration_seconds_count"
    after = wait_until(lambda: (lambda m: m if sample(m, count) - sample(before, count) >= n else None)(scrape(aport)))
    assert after, "the histogram count did not reach +%d" % n

    def delta(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta(count) == n
    assert total(after, "portcullis_requests_total") - total(before, "portcullis_requests_total") == n
    assert delta("portcullis_requests_total", route="api", status="200") == 3
    assert delta("portcullis_requests_total", route="codes", status="404") == 2
    assert delta("portcullis_requests_total", route="", status="404") == 1
    assert delta("portcullis_requests_total", route="", status="414") + \
        delta("portcullis_requests_total", route="api", status="414") == 1
    assert delta("portcullis_blocked_total", reason="size") == 1
    assert delta("portcullis_blocked_total", reason="malformed") == 1
    for reason in ("waf", "ratelimit", "jwt", "cors", "ip"):
        assert delta("portcullis_blocked_total", reason=reason) == 0, reason
    assert delta("portcullis_upstream_requests_total", upstream="app", status="200") == 3
    assert delta("portcullis_upstream_requests_total", upstream="app", status="404") == 2
    assert total(after, "portcullis_upstream_requests_total") - \
        total(before, "portcullis_upstream_requests_total") == 5
    # the histogram is consistent: cumulative buckets, +Inf equals the count, a sum that grew
    buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in after.items()
                      if k[0] == "portcullis_request_duration_seconds_bucket"), key=lambda x: x[0])
    assert len(buckets) == 15 and buckets[-1][0] == float("inf")
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    assert buckets[-1][1] == sample(after, count)
    assert sample(after, "portcullis_request_duration_seconds_sum") > \
        sample(before, "portcullis_request_duration_seconds_sum")

    # connections_active counts open client connections, idle keep-alive ones too
    c = Client(g.port)
    try:
        assert c.get("/api/held").status == 200
        assert wait_until(lambda: sample(scrape(aport), "portcullis_connections_active") >= 1)
        assert status_doc(aport)["connections_active"] >= 1
    finally:
        c.close()
    assert wait_until(lambda: sample(scrape(aport), "portcullis_connections_active") == 0)


# ==== 3. the access log and the security log ====


def test_access_and_security_logs(gateway, upstream, tmp_path):
    sec = str(tmp_path / "security.log")
    cfg = base_config(upstream.address, free_port(), logging={"security": {"path": sec}})
    cfg["routes"][0]["name"] = "main"
    cfg["limits"] = {"max_uri": "1KiB"}
    g = start(gateway, cfg)

    raw_ok = (b'GET /fine/a%22b%C3%A9?q=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: say "hi"\\\r\n'
              b'Connection: close\r\n\r\n')
    raw_answer = send_raw(g.port, raw_ok)
    ok, _ = parse_response(raw_answer)
    assert ok.status == 200
    big = request(g.port, path="/" + "a" * 2000 + "%22")
    assert big.status == 414
    bad = request(g.port, path="/x", headers=[("Content-Length", "1"), ("Transfer-Encoding", "chunked")])
    assert bad.status == 400
    ok2 = request(g.port, method="POST", path="/post", body=b"hello")
    assert ok2.status == 200

    lines = g.access_log(wait_for=4)  # every line parses as JSON
    assert len(lines) == 4
    for l in lines:
        missing = [f for f in ACCESS_FIELDS if f not in l]
        assert not missing, (missing, l)
        assert isinstance(l["ts"], str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", l["ts"]), l["ts"]
        assert l["client_ip"] == "127.0.0.1"
        assert isinstance(l["status"], int) and isinstance(l["bytes_in"], int) and isinstance(l["bytes_out"], int)
        assert l["bytes_in"] > 0 and l["bytes_out"] > 0
        assert isinstance(l["duration_ms"], (int, float)) and l["duration_ms"] >= 0
        assert l["user"] is None and l["rules"] == []
    by_id = {l["request_id"]: l for l in lines}  # each joins its response's X-Request-Id
    a, b, c, post = (by_id[r.header("x-request-id")] for r in (ok, big, bad, ok2))
    assert (a["status"], b["status"], c["status"], post["status"]) == (200, 414, 400, 200)
    assert a["method"] == "GET" and a["path"].startswith("/fine/a") and "?" not in a["path"]
    assert a["upstream"] == "app" and a["route"] == "main" and a["blocked_by"] is None
    assert isinstance(a["upstream_ms"], (int, float)) and a["upstream_ms"] >= 0
    assert a["bytes_in"] == len(raw_ok) and a["bytes_out"] == len(raw_answer)
    assert b["blocked_by"] == "size" and b["upstream"] is None and b["upstream_ms"] is None
    assert c["blocked_by"] == "malformed" and c["upstream"] is None
    assert post["method"] == "POST" and post["path"] == "/post" and post["upstream"] == "app"

    # the security log: one line per blocked request, none for the others
    sec_lines = wait_until(lambda: (lambda x: x if len(x) >= 2 else None)(read_json_lines(sec)), timeout=5)
    assert sec_lines and len(sec_lines) == 2, sec_lines
    time.sleep(0.3)  # nothing more comes (the good requests)
    sec_lines = read_json_lines(sec)
    assert len(sec_lines) == 2
    by_id = {s["request_id"]: s for s in sec_lines}
    assert set(by_id) == {b["request_id"], c["request_id"]}
    for s in sec_lines:
        missing = [f for f in SECURITY_FIELDS if f not in s]
        assert not missing, (missing, s)
        assert s["dry_run"] is False and s["client_ip"] == "127.0.0.1"
        assert s["messages"] and all(isinstance(m, str) for m in s["messages"])
        assert isinstance(s["rules"], list) and isinstance(s["matched"], list)
    assert by_id[b["request_id"]]["reason"] == "size" and by_id[b["request_id"]]["status"] == 414
    assert by_id[c["request_id"]]["reason"] == "malformed" and by_id[c["request_id"]]["status"] == 400


def test_access_log_bytes_in_counts_the_body(gateway, upstream):
    """bytes_in is "request head plus body payload" (docs/configuration.md),
    for proxied requests too."""
    g = start(gateway, base_config(upstream.address, free_port()))
    sent = {}
    for n in (5, 1000, 100000):
        raw = b"POST /body%d HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (n, n)
        raw += b"x" * n
        assert parse_response(send_raw(g.port, raw))[0].status == 200
        sent["/body%d" % n] = len(raw)
    assert [r.body_len for r in upstream.wait_requests(3)] == [5, 1000, 100000]
    logged = {l["path"]: l["bytes_in"] for l in g.access_log(wait_for=3)}
    assert logged == sent


# ==== 4. SIGUSR1 reopens moved log files ====


def test_sigusr1_reopens_moved_logs(gateway, upstream, tmp_path):
    acc, sec = str(tmp_path / "access.log"), str(tmp_path / "security.log")
    cfg = base_config(upstream.address, free_port(),
                      logging={"access": {"path": acc}, "security": {"path": sec}})
    cfg["limits"] = {"max_uri": "1KiB"}
    g = start(gateway, cfg)
    paths = lambda p: [l["path"] for l in read_json_lines(p)]

    assert request(g.port, path="/one").status == 200
    assert request(g.port, path="/big" + "a" * 2000).status == 414
    assert wait_until(lambda: len(paths(acc)) == 2 and len(paths(sec)) == 1)
    os.rename(acc, acc + ".1")
    os.rename(sec, sec + ".1")
    assert request(g.port, path="/two").status == 200  # still written to the moved file
    assert wait_until(lambda: len(paths(acc + ".1")) == 3)
    assert not os.path.exists(acc)

    g.send_signal(signal.SIGUSR1)
    assert wait_until(lambda: os.path.exists(acc) and os.path.exists(sec)), g.stderr()
    assert request(g.port, path="/three").status == 200
    assert request(g.port, path="/big2" + "b" * 2000).status == 414
    assert wait_until(lambda: len(paths(acc)) == 2 and len(paths(sec)) == 1)
    # lines of different workers are not strictly in order: compare sorted
    statuses = lambda p: sorted(l["status"] for l in read_json_lines(p))
    assert statuses(acc) == [200, 414] and statuses(sec) == [414]
    assert "/three" in paths(acc)
    blocked = [l for l in read_json_lines(acc) if l["status"] == 414][0]
    assert read_json_lines(sec)[0]["request_id"] == blocked["request_id"]
    # the moved files got nothing more
    time.sleep(0.3)
    assert statuses(acc + ".1") == [200, 200, 414]
    assert sorted(p for p in paths(acc + ".1") if p in ("/one", "/two")) == ["/one", "/two"]
    assert statuses(sec + ".1") == [414]
    assert "reopen" in g.stderr().lower()
    assert g.proc.poll() is None


# ==== 5. reloads ====


def test_reload_under_load_loses_nothing(gateway, upstream):
    one, two = Server("one"), Server("two")
    try:
        aport = free_port()
        cfg = with_admin(base_config(one.address, free_port()), aport)
        cfg["upstreams"]["other"] = {"servers": [two.address]}
        cfg["routes"] = [{"name": "main", "match": {"path_prefix": "/"}, "upstream": "app"}]
        g = start(gateway, cfg)
        held = Client(g.port)  # a connection that stays open across the reloads
        assert served_by(held.get("/v2/before")) == "one"

        load = Load(g.port, "/v2/x")
        assert wait_until(lambda: load.ok >= 30, timeout=5), load.results[-5:]
        # a changed route: /v2/ now goes to the other upstream
        cfg["routes"].insert(0, {"name": "v2", "match": {"path_prefix": "/v2/"}, "upstream": "other"})
        reload_and_wait(g, cfg, 2)
        assert wait_until(lambda: load.count("two") >= 100, timeout=5), load.results[-5:]
        mark = len(load.results)
        assert served_by(held.get("/v2/after")) == "two"  # its next request uses the new routes
        assert wait_until(lambda: status_doc(aport)["config_generation"] == 2)

        # an invalid configuration changes nothing
        rewrite(g, "listeners: []\nbogus: 1\n")
        g.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "configuration 2 stays in effect" in g.stderr()), g.stderr()
        err = g.stderr()
        assert "bogus" in err and "listeners" in err, err
        n = len(load.results)
        assert wait_until(lambda: len(load.results) >= n + 100, timeout=5)
        load.finish()

        assert not load.failures(), load.failures()[:5]
        assert load.fresh > 5 and load.kept > 5
        assert load.results[0][1] == "one"
        late = [who for _, who in load.results[mark:]]
        assert late and set(late) == {"two"}, late  # after the switch, no request went to the old upstream
        assert served_by(held.get("/v2/last")) == "two"
        held.close()
        assert wait_until(lambda: status_doc(aport)["config_generation"] == 2)
        assert sample(scrape(aport), "portcullis_config_generation") == 2
        # counters survive reloads: every request of the load is counted
        ms = scrape(aport)
        counted = sample(ms, "portcullis_requests_total", route="main", status="200") + \
            sample(ms, "portcullis_requests_total", route="v2", status="200")
        assert counted >= len(load.results)
    finally:
        one.stop()
        two.stop()


def test_reload_adds_and_removes_listeners_and_moves_admin(gateway, upstream):
    aport = free_port()
    cfg = with_admin(base_config(upstream.address, free_port()), aport)
    g = start(gateway, cfg)

    extra = free_port()
    cfg["listeners"].append({"name": "extra", "address": "127.0.0.1:%d" % extra})
    reload_and_wait(g, cfg, 2)
    g.wait_listening(extra)
    assert "listener extra opened" in g.stderr()
    assert [request(extra, path="/e%d" % i).status for i in range(3)] == [200] * 3
    assert request(g.port, path="/main").status == 200
    assert wait_until(lambda: status_doc(aport)["config_generation"] == 2)

    # removed again: it closes; the first listener keeps serving
    cfg["listeners"].pop()
    reload_and_wait(g, cfg, 3)
    assert wait_until(lambda: refused(extra), timeout=5)
    assert request(g.port, path="/main").status == 200

    # the admin listener moves, and a new token applies
    aport2 = free_port()
    cfg = with_admin(cfg, aport2, token="new-token")
    reload_and_wait(g, cfg, 4)
    g.wait_listening(aport2)
    assert wait_until(lambda: refused(aport), timeout=5)
    assert admin_get(aport2, "/admin/status", token=TOKEN)[0] == 401
    assert status_doc(aport2, token="new-token")["config_generation"] == 4
    assert sample(scrape(aport2), "portcullis_config_generation") == 4


def test_reload_that_cannot_bind_changes_nothing(gateway, upstream):
    other = Server("other")
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        busy = blocker.getsockname()[1]
        aport = free_port()
        cfg = with_admin(base_config(upstream.address, free_port()), aport)
        g = start(gateway, cfg)
        # a new route and a listener on a port that is taken: the whole reload fails
        cfg["upstreams"]["other"] = {"servers": [other.address]}
        cfg["routes"].insert(0, {"match": {"path_prefix": "/new/"}, "upstream": "other"})
        cfg["listeners"].append({"name": "taken", "address": "127.0.0.1:%d" % busy})
        rewrite(g, cfg)
        g.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "configuration 1 stays in effect" in g.stderr()), g.stderr()
        assert "cannot listen" in g.stderr()
        assert served_by(request(g.port, path="/new/x")) == "echo"
        assert not other.served()
        assert status_doc(aport)["config_generation"] == 1
        # once the port is free, the same file loads
        blocker.close()
        g.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "configuration 2 in effect" in g.stderr()), g.stderr()
        g.wait_listening(busy)
        assert served_by(request(busy, path="/new/x")) == "other"
    finally:
        blocker.close()
        other.stop()


# ==== 6. SIGTERM drains ====


def test_sigterm_lets_a_slow_request_finish(gateway, upstream):
    aport = free_port()
    g = start(gateway, with_admin(base_config(upstream.address, free_port()), aport))
    result = {}

    def slow():
        try:
            c = Client(g.port, timeout=10)
            result["r"] = c.get("/sleep/1500")
            c.close()
        except OSError as e:
            result["e"] = e

    t = threading.Thread(target=slow)
    t.start()
    assert wait_until(lambda: any(r.target == "/sleep/1500" for r in upstream.requests), timeout=5)
    g.send_signal(signal.SIGTERM)
    # the listener closes at once; the admin listener says not ready
    assert wait_until(lambda: refused(g.port), timeout=1.0)
    assert wait_until(lambda: readyz(aport) == (503, ["shutting down"]), timeout=1.0)
    t.join(10)
    assert "e" not in result, result
    assert result["r"].status == 200
    assert (result["r"].header("connection") or "").lower() == "close"
    assert g.proc.wait(10) == 0
    assert g.access_log(wait_for=1)[-1]["status"] == 200


def test_sigterm_lets_a_suspended_request_finish(gateway, upstream):
    """The test build's route key test_suspend holds a request in a filter."""
    aport = free_port()
    cfg = with_admin(base_config(upstream.address, free_port()), aport)
    cfg["routes"][0]["test_suspend"] = "1s"
    g = start(gateway, cfg, binary=TEST_BIN)
    result = {}
    t = threading.Thread(target=lambda: result.update(r=request(g.port, path="/held")))
    t.start()
    assert wait_until(lambda: sample(scrape(aport), "portcullis_connections_active") >= 1, timeout=5)
    time.sleep(0.2)  # its head is read: the request is suspended, not an idle connection
    g.send_signal(signal.SIGTERM)
    t.join(10)
    assert result["r"].status == 200
    assert [r.target for r in upstream.requests] == ["/held"]
    assert g.proc.wait(10) == 0


def test_shutdown_timeout_cuts_a_slow_request(gateway, upstream):
    """After shutdown_timeout the gateway closes what remains and exits 0.
    The access log must not blame the client: `detail` is "present when the
    gateway answered itself or cut the exchange" (docs/operations.md), and
    499 means "the client left before any answer"."""
    g = start(gateway, base_config(upstream.address, free_port(), shutdown_timeout="1s"))
    result = {}

    def slow():
        result["data"] = send_raw(g.port, b"GET /sleep/5000 HTTP/1.1\r\nHost: a\r\n\r\n", timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    assert wait_until(lambda: any(r.target == "/sleep/5000" for r in upstream.requests), timeout=5)
    g.send_signal(signal.SIGTERM)
    assert g.proc.wait(10) == 0
    t.join(10)
    assert result["data"] == b""  # closed without an answer
    line = [l for l in g.access_log(wait_for=1) if l["path"] == "/sleep/5000"]
    assert len(line) == 1, g.access_log()
    assert line[0].get("detail"), "a request the gateway cut at shutdown is logged as %r" % line[0]


def test_shutdown_timeout_logs_a_suspended_request(gateway, upstream):
    """A request still held by a filter (test_suspend) when shutdown_timeout
    ends is cut like any other, and still gets its access-log line."""
    aport = free_port()
    cfg = with_admin(base_config(upstream.address, free_port(), shutdown_timeout="1s"), aport)
    cfg["routes"][0]["test_suspend"] = "4s"
    g = start(gateway, cfg, binary=TEST_BIN)
    result = {}
    t = threading.Thread(target=lambda: result.update(data=send_raw(
        g.port, b"GET /held HTTP/1.1\r\nHost: a\r\n\r\n", timeout=10)))
    t.start()
    assert wait_until(lambda: sample(scrape(aport), "portcullis_connections_active") >= 1, timeout=5)
    time.sleep(0.2)  # its head is read: the request is suspended
    g.send_signal(signal.SIGTERM)
    assert g.proc.wait(10) == 0
    t.join(10)
    assert result["data"] == b""
    assert not upstream.requests
    paths = [l["path"] for l in g.access_log(wait_for=1)]
    assert paths == ["/held"], "access log: %r" % paths


# ==== 7. one server dies: traffic moves to the other ====


def test_killing_one_server_moves_traffic_to_the_other(gateway, upstream):
    a, b = Demo(), Demo()
    try:
        aport = free_port()
        g = start(gateway, with_admin(upstream_config([a, b], free_port()), aport))
        for i in range(10):  # both servers used, their connections pooled
            assert request(g.port, path="/warm%d" % i).status == 200
        load = Load(g.port, "/during")
        assert wait_until(lambda: load.ok >= 20, timeout=5)
        a.kill()
        n = len(load.results)
        assert wait_until(lambda: len(load.results) >= n + 50, timeout=5)
        load.finish()
        # at most the one request in flight at the kill fails (the load has one at a time)
        assert len(load.failures()) <= 1, load.failures()
        # afterwards: connect failures are retried on the other server
        statuses = [request(g.port, path="/after%d" % i).status for i in range(30)]
        assert statuses == [200] * 30
        doc = status_doc(aport)
        servers = {s["address"]: s for s in doc["upstreams"]["app"]["servers"]}
        assert servers[a.address]["consecutive_failures"] >= 1
        assert servers[b.address]["consecutive_failures"] == 0
    finally:
        a.kill()
        b.kill()


# ==== 8. the circuit breaker ====


def test_circuit_opens_and_closes(gateway, upstream):
    a, b = Demo(), Demo()
    aport = free_port()
    cfg = with_admin(upstream_config([a, b], free_port(), circuit_breaker={"failures": 2, "cooldown": "1s"}), aport)
    try:
        g = start(gateway, cfg)
        assert [request(g.port, path="/ok%d" % i).status for i in range(4)] == [200] * 4
        before = scrape(aport)
        a.kill()
        b.kill()
        # each request fails on both servers: after two, both circuits are open
        statuses = []
        for i in range(10):
            statuses.append(request(g.port, path="/down%d" % i).status)
            if statuses[-1] == 503:
                break
        assert statuses[-1] == 503 and set(statuses[:-1]) == {502} and len(statuses) <= 3, statuses
        r = request(g.port, path="/fast")
        assert r.status == 503 and r.json()["error"] == "service_unavailable"
        log = wait_until(lambda: (lambda ls: ls if len(ls) >= 2 else None)(
            [l for l in g.access_log() if l["status"] == 503]))
        assert log and all(l["detail"] == "circuit open" for l in log), log

        ms = scrape(aport)
        assert healthy_gauge(aport, a) == 0 and healthy_gauge(aport, b) == 0
        # the 502s are counted as upstream answers, the 503s are not (no server was contacted)
        assert sample(ms, "portcullis_upstream_requests_total", upstream="app", status="502") - \
            sample(before, "portcullis_upstream_requests_total", upstream="app", status="502") == statuses.count(502)
        assert sample(ms, "portcullis_upstream_requests_total", upstream="app", status="503") == 0
        doc = status_doc(aport)
        assert doc["upstreams"]["app"]["healthy"] is False
        for s in doc["upstreams"]["app"]["servers"]:
            assert s["circuit"] == "open" and s["consecutive_failures"] >= 2, s
        st, body = admin_json(aport, "/readyz")
        assert st == 503 and body["status"] == "not_ready"
        assert body["reasons"] == ["upstream app has no healthy server"]

        # one server comes back on the same port: after the cooldown a probe closes its circuit
        a = Demo(a.port)
        assert wait_until(lambda: request(g.port, path="/back").status == 200, timeout=10, step=0.2)
        assert [request(g.port, path="/again%d" % i).status for i in range(10)] == [200] * 10
        assert wait_until(lambda: admin_get(aport, "/readyz")[0] == 200)
        assert wait_until(lambda: healthy_gauge(aport, a) == 1)
        servers = {s["address"]: s for s in status_doc(aport)["upstreams"]["app"]["servers"]}
        assert servers[a.address]["circuit"] == "closed" and servers[a.address]["consecutive_failures"] == 0
        err = g.stderr()
        assert "circuit open" in err and "circuit closed" in err
    finally:
        a.kill()
        b.kill()


def test_circuit_half_open_probe(gateway, upstream):
    """5xx answers count as failures; after the cooldown one request probes:
    a failing probe opens the circuit again, a passing one closes it."""
    aport = free_port()
    g = start(gateway, with_admin(upstream_config([upstream], free_port(),
                                                  circuit_breaker={"failures": 2, "cooldown": "1s"}), aport))
    circuit = lambda: status_doc(aport)["upstreams"]["app"]["servers"][0]
    assert [request(g.port, path="/status/503").status for _ in range(2)] == [503, 503]  # the upstream's
    assert circuit()["circuit"] == "open" and circuit()["consecutive_failures"] == 2
    n = len(upstream.requests)
    assert request(g.port, path="/status/200").status == 503  # the gateway's: nothing sent
    assert len(upstream.requests) == n
    assert wait_until(lambda: circuit()["circuit"] == "half_open", timeout=5)
    assert healthy_gauge(aport, upstream) == 1  # half-open counts as usable
    assert request(g.port, path="/status/502").status == 502  # the probe fails ...
    assert circuit()["circuit"] == "open"  # ... and the circuit opens again
    assert request(g.port, path="/status/200").status == 503
    assert wait_until(lambda: circuit()["circuit"] == "half_open", timeout=5)
    assert request(g.port, path="/status/200").status == 200  # the probe passes
    assert circuit() == {"address": upstream.address, "check": "none", "circuit": "closed",
                         "consecutive_failures": 0}
    details = [l.get("detail") for l in g.access_log(wait_for=6) if l["status"] in (502, 503)]
    assert details.count("circuit open") == 2, details
    ms = scrape(aport)
    assert sample(ms, "portcullis_upstream_requests_total", upstream="app", status="503") == 2
    assert sample(ms, "portcullis_upstream_requests_total", upstream="app", status="502") == 1


# ==== 9. active health checks ====


def health_config(servers, port, aport):
    """Upstream 'app' on servers, checked every 100 ms; two probes decide."""
    return with_admin(upstream_config(servers, port, health_check={
        "path": "/health", "interval": "100ms", "timeout": "500ms",
        "healthy_threshold": 2, "unhealthy_threshold": 2}), aport)


def test_failing_health_check_takes_a_server_out_and_back(gateway, upstream):
    good, flaky = Server("good"), Server("flaky")
    try:
        aport = free_port()
        cfg = health_config([good, flaky], free_port(), aport)
        # a second upstream with the flaky server alone, for /solo/
        cfg["upstreams"]["solo"] = dict(cfg["upstreams"]["app"], servers=[flaky.address])
        cfg["routes"].insert(0, {"name": "solo", "match": {"path_prefix": "/solo/"}, "upstream": "solo"})
        g = start(gateway, cfg)
        assert wait_until(lambda: flaky.probes() >= 2 and good.probes() >= 2)
        assert admin_get(aport, "/readyz")[0] == 200
        # round robin per worker: among 10 requests, some reach each server
        before = [served_by(request(g.port, path="/rr%d" % i)) for i in range(10)]
        assert "flaky" in before and "good" in before

        flaky.health_status = 500
        assert wait_until(lambda: healthy_gauge(aport, flaky) == 0 and healthy_gauge(aport, flaky, "solo") == 0)
        assert healthy_gauge(aport, good) == 1
        assert "is unhealthy" in g.stderr()
        doc = status_doc(aport)
        checks = {s["address"]: s["check"] for s in doc["upstreams"]["app"]["servers"]}
        assert checks == {good.address: "passing", flaky.address: "failing"}
        assert doc["upstreams"]["app"]["healthy"] is True and doc["upstreams"]["solo"]["healthy"] is False
        st, body = admin_json(aport, "/readyz")
        assert st == 503 and body["reasons"] == ["upstream solo has no healthy server"], body
        # no traffic for it: app's requests all go to the good server, solo's get 503 at once
        n = len(flaky.served())
        assert [served_by(request(g.port, path="/out%d" % i)) for i in range(10)] == ["good"] * 10
        r = request(g.port, path="/solo/x")
        assert r.status == 503 and r.json()["error"] == "service_unavailable"
        assert len(flaky.served()) == n
        log = wait_until(lambda: [l for l in g.access_log() if l["status"] == 503])
        assert log and log[-1]["detail"] == "no healthy upstream server"

        flaky.health_status = 200
        assert wait_until(lambda: healthy_gauge(aport, flaky) == 1 and healthy_gauge(aport, flaky, "solo") == 1)
        assert "healthy again" in g.stderr()
        assert wait_until(lambda: admin_get(aport, "/readyz")[0] == 200)
        assert [served_by(request(g.port, path="/in%d" % i)) for i in range(10)].count("flaky") >= 1
        assert served_by(request(g.port, path="/solo/y")) == "flaky"
    finally:
        good.stop()
        flaky.stop()


def test_health_check_of_a_dead_server(gateway, upstream):
    a, dead = Demo(), Demo()
    try:
        aport = free_port()
        g = start(gateway, health_config([a, dead], free_port(), aport))
        dead.kill()
        assert wait_until(lambda: healthy_gauge(aport, dead) == 0)
        assert healthy_gauge(aport, a) == 1
        assert admin_get(aport, "/readyz")[0] == 200  # the other one still serves
        # no request reaches it: not even a connect attempt fails
        assert [request(g.port, path="/x%d" % i).status for i in range(10)] == [200] * 10
        servers = {s["address"]: s for s in status_doc(aport)["upstreams"]["app"]["servers"]}
        assert servers[dead.address]["check"] == "failing"
        failures = servers[dead.address]["consecutive_failures"]
        assert [request(g.port, path="/y%d" % i).status for i in range(10)] == [200] * 10
        servers = {s["address"]: s for s in status_doc(aport)["upstreams"]["app"]["servers"]}
        assert servers[dead.address]["consecutive_failures"] == failures
        # both down: 503 at once, and /readyz names the upstream
        a.kill()
        assert wait_until(lambda: healthy_gauge(aport, a) == 0)
        st, body = admin_json(aport, "/readyz")
        assert st == 503 and body["reasons"] == ["upstream app has no healthy server"]
        assert request(g.port, path="/none").status == 503
        # back on the same ports
        a, dead = Demo(a.port), Demo(dead.port)
        assert wait_until(lambda: healthy_gauge(aport, a) == 1 and healthy_gauge(aport, dead) == 1)
        assert wait_until(lambda: admin_get(aport, "/readyz")[0] == 200)
        assert [request(g.port, path="/z%d" % i).status for i in range(10)] == [200] * 10
    finally:
        a.kill()
        dead.kill()


def test_reload_that_removes_a_check_puts_the_server_back(gateway, upstream):
    """A server a check marked down counts as healthy once a reload removes the check."""
    b = Demo()
    aport = free_port()
    cfg = health_config([upstream, b], free_port(), aport)
    try:
        g = start(gateway, cfg)
        b.kill()
        assert wait_until(lambda: healthy_gauge(aport, b) == 0)
        b = Demo(b.port)
        del cfg["upstreams"]["app"]["health_check"]
        reload_and_wait(g, cfg, 2)
        assert wait_until(lambda: healthy_gauge(aport, b) == 1)
    finally:
        b.kill()


# ==== 10. least_conn ====


def test_least_conn_avoids_a_busy_server(gateway, upstream):
    """One worker: while one server holds a request, every other request goes to the other."""
    a, b = Server("a"), Server("b")
    try:
        cfg = upstream_config([a, b], free_port(), balance="least_conn")
        cfg["workers"] = 1
        g = start(gateway, cfg)
        t = threading.Thread(target=lambda: request(g.port, path="/sleep/1500"))
        t.start()
        assert wait_until(lambda: a.served("/sleep/") or b.served("/sleep/"), timeout=5)
        busy, idle = (a, b) if a.served("/sleep/") else (b, a)
        answers = [served_by(request(g.port, path="/lc%d" % i)) for i in range(6)]
        t.join(10)
        assert answers == [idle.name] * 6
        assert not busy.served("/lc")
    finally:
        a.stop()
        b.stop()


def test_sighup_during_start_up_reloads_instead_of_killing(gateway, upstream):
    """A SIGHUP (or SIGUSR1) that arrives while the gateway starts — loading
    its configuration, opening its listeners — waits for its handler: it
    used to take the default action and kill the process. The test build
    stretches the start-up (PC_TEST_START_DELAY_MS) so the signal lands in
    it every time."""
    port = free_port()
    g = gateway(config=base_config(upstream.address, port), port=port, binary=TEST_BIN, start=False,
                env={"PC_TEST_START_DELAY_MS": "400"})
    g.start(wait=False)
    time.sleep(0.2)
    g.send_signal(signal.SIGUSR1)
    g.send_signal(signal.SIGHUP)
    g.wait_listening(port)
    assert wait_until(lambda: "configuration 2 in effect" in g.stderr()), g.stderr()
    assert g.proc.poll() is None
    assert request(port, path="/x").status == 200
