"""Operations: the admin listener and its auth, metrics, the access and
security logs, SIGUSR1, reloads under load, graceful stop, failover, the
circuit breaker, active health checks and least_conn."""

import json
import os
import re
import signal
import socket
import threading
import time

import subprocess

from conftest import DEMO_UPSTREAM, TEST_BIN, base_config, free_port, request
from upstream import Upstream

TOKEN = "s3cret-token"

METRICS = ["portcullis_requests_total", "portcullis_blocked_total", "portcullis_waf_rule_hits_total",
           "portcullis_request_duration_seconds", "portcullis_upstream_requests_total",
           "portcullis_upstream_healthy", "portcullis_redis_errors_total",
           "portcullis_connections_active", "portcullis_config_generation", "portcullis_dry_run_total"]


def ops_config(upstream_addr, port, admin_port, token=TOKEN, **extra):
    cfg = base_config(upstream_addr, port, **extra)
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
    if token:
        cfg["admin"]["token"] = token
    return cfg


def admin(port, path, method="GET", token=None):
    headers = [("Authorization", "Bearer " + token)] if token else []
    return request(port, method=method, path=path, headers=headers)


def metrics(port):
    """{(name, frozenset(labels)): value} from /metrics."""
    r = admin(port, "/metrics")
    assert r.status == 200
    out = {}
    for line in r.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        assert m, line
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(ms, name, **labels):
    return ms.get((name, frozenset(labels.items())), 0.0)


def start(gateway, cfg, **kw):
    """Starts a gateway with a full configuration (its first listener's port)."""
    port = int(cfg["listeners"][0]["address"].rsplit(":", 1)[1])
    return gateway(cfg, port=port, **kw)


def wait_until(fn, timeout=10.0, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return [json.loads(l) for l in f.read().splitlines() if l.strip()]


# ---- the admin listener ----


def test_admin_endpoints_and_auth(gateway, upstream):
    aport = free_port()
    g = start(gateway, ops_config(upstream.address, free_port(), aport))
    g.wait_listening(aport)
    r = admin(aport, "/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}
    r = admin(aport, "/readyz")
    assert r.status == 200 and r.json()["status"] == "ready"
    r = admin(aport, "/metrics")
    assert r.status == 200 and r.header("content-type").startswith("text/plain")
    text = r.body.decode()
    for name in METRICS:
        kind = "histogram" if name.endswith("_seconds") else "gauge" if name in (
            "portcullis_upstream_healthy", "portcullis_connections_active",
            "portcullis_config_generation") else "counter"
        assert "# HELP %s " % name in text and "# TYPE %s %s\n" % (name, kind) in text, name
    # /admin/ needs the token
    r = admin(aport, "/admin/status")
    assert r.status == 401 and "Bearer" in r.header("www-authenticate")
    assert admin(aport, "/admin/status", token="wrong").status == 401
    assert admin(aport, "/admin/status", token=TOKEN + "x").status == 401
    r = admin(aport, "/admin/status", token=TOKEN)
    assert r.status == 200
    st = r.json()
    assert st["config_generation"] == 1 and st["workers"] == 2 and st["version"]
    assert st["upstreams"]["app"]["servers"][0]["address"] == upstream.address
    assert st["upstreams"]["app"]["servers"][0]["circuit"] == "closed"
    assert st["redis"]["state"] == "not_configured"
    # other methods, unknown paths
    assert admin(aport, "/healthz", method="POST").status == 405
    assert admin(aport, "/nope").status == 404
    assert admin(aport, "/admin/nope", token=TOKEN).status == 404


def test_admin_api_disabled_without_token(gateway, upstream):
    aport = free_port()
    g = start(gateway, ops_config(upstream.address, free_port(), aport, token=None))
    g.wait_listening(aport)
    r = admin(aport, "/admin/status", token="anything")
    assert r.status == 403 and r.json()["error"] == "admin_api_disabled"
    assert admin(aport, "/metrics").status == 200  # metrics and health need no token


def test_metrics_move_with_requests_and_blocks(gateway, upstream):
    aport = free_port()
    cfg = ops_config(upstream.address, free_port(), aport)
    cfg["routes"] = [{"name": "api", "match": {"path_prefix": "/api/"}, "upstream": "app"}]
    cfg["limits"] = {"max_uri": "1KiB"}
    g = start(gateway, cfg)
    g.wait_listening(aport)
    before = metrics(aport)
    for _ in range(3):
        assert request(g.port, path="/api/x").status == 200
    assert request(g.port, path="/other").status == 404
    assert request(g.port, path="/api/" + "a" * 2000).status == 414
    assert request(g.port, path="/api/x", headers=[("Content-Length", "1"), ("Transfer-Encoding", "chunked")]).status == 400
    after = wait_until(lambda: (lambda m: m if metric(m, "portcullis_request_duration_seconds_count")
                                - metric(before, "portcullis_request_duration_seconds_count") >= 6 else None)(metrics(aport)))
    assert after, "histogram count did not move"
    d = lambda name, **l: metric(after, name, **l) - metric(before, name, **l)
    assert d("portcullis_requests_total", route="api", status="200") == 3
    assert d("portcullis_requests_total", route="", status="404") == 1
    assert d("portcullis_blocked_total", reason="size") == 1
    assert d("portcullis_blocked_total", reason="malformed") == 1
    assert d("portcullis_blocked_total", reason="waf") == 0
    assert d("portcullis_upstream_requests_total", upstream="app", status="200") == 3
    assert d("portcullis_request_duration_seconds_count") == 6
    assert metric(after, "portcullis_request_duration_seconds_bucket", le="+Inf") == \
        metric(after, "portcullis_request_duration_seconds_count")
    assert metric(after, "portcullis_upstream_healthy", upstream="app", server=upstream.address) == 1
    assert metric(after, "portcullis_config_generation") == 1


# ---- logs ----

ACCESS_FIELDS = {"ts", "request_id", "client_ip", "method", "path", "status", "bytes_in", "bytes_out",
                 "duration_ms", "upstream", "upstream_ms", "route", "user", "blocked_by", "rules"}


def test_access_and_security_logs(gateway, upstream, tmp_path):
    sec = str(tmp_path / "security.log")
    g = gateway(logging={"security": {"path": sec}})
    assert request(g.port, path="/fine?q=1", headers=[("User-Agent", 'say "hi"\\')]).status == 200
    assert request(g.port, path="/" + "a" * 9000).status == 414
    lines = g.access_log(wait_for=2)
    assert len(lines) == 2
    for l in lines:
        assert ACCESS_FIELDS <= set(l), ACCESS_FIELDS - set(l)
    ok, blocked = lines
    assert ok["status"] == 200 and ok["path"] == "/fine" and ok["upstream"] == "app"
    assert ok["blocked_by"] is None and ok["rules"] == [] and ok["upstream_ms"] is not None
    assert blocked["status"] == 414 and blocked["blocked_by"] == "size"
    sec_lines = wait_until(lambda: read_lines(sec), timeout=5)
    assert len(sec_lines) == 1  # only the blocked request
    s = sec_lines[0]
    assert s["reason"] == "size" and s["status"] == 414 and s["dry_run"] is False
    assert s["request_id"] == blocked["request_id"]
    assert {"ts", "client_ip", "method", "path", "rules", "messages", "matched", "excerpt"} <= set(s)
    assert s["messages"] and all(isinstance(m, str) for m in s["messages"])


def test_sigusr1_reopens_a_moved_log(gateway, upstream, tmp_path):
    path = str(tmp_path / "access.log")
    g = gateway(logging={"access": {"path": path}})
    assert request(g.port, path="/one").status == 200
    assert wait_until(lambda: len(read_lines(path)) == 1)
    os.rename(path, path + ".1")
    assert request(g.port, path="/two").status == 200  # still goes to the moved file
    assert wait_until(lambda: len(read_lines(path + ".1")) == 2)
    g.send_signal(signal.SIGUSR1)
    assert wait_until(lambda: os.path.exists(path))
    assert request(g.port, path="/three").status == 200
    assert wait_until(lambda: [l["path"] for l in read_lines(path)] == ["/three"])
    assert [l["path"] for l in read_lines(path + ".1")] == ["/one", "/two"]


# ---- reload ----


class Load:
    """Requests in a loop on another thread (fresh and keep-alive
    connections alternately), counting failures; bounded in time."""

    def __init__(self, port, path, seconds=8.0):
        self.port, self.path, self.seconds = port, path, seconds
        self.ok = self.failed = 0
        self.statuses = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        deadline = time.time() + self.seconds
        while not self.stop.is_set() and time.time() < deadline:
            try:
                r = request(self.port, path=self.path)
                self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failed += 1
            except OSError:
                self.failed += 1

    def finish(self):
        self.stop.set()
        self.thread.join(15)


def test_reload_under_load_loses_nothing(gateway, upstream, tmp_path):
    other = Upstream()
    try:
        aport = free_port()
        cfg = ops_config(upstream.address, free_port(), aport)
        cfg["upstreams"]["other"] = {"servers": [other.address]}
        cfg["routes"] = [{"name": "main", "match": {"path_prefix": "/"}, "upstream": "app"}]
        g = start(gateway, cfg)
        g.wait_listening(aport)
        load = Load(g.port, "/v2/x")
        wait_until(lambda: load.ok >= 20)
        # a changed route: /v2/ now goes to the other upstream
        cfg["routes"].insert(0, {"name": "v2", "match": {"path_prefix": "/v2/"}, "upstream": "other"})
        with open(g.conf_path, "w") as f:
            json.dump(cfg, f)
        g.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "configuration 2 in effect" in g.stderr())
        n = len(other.requests)
        assert wait_until(lambda: len(other.requests) >= n + 20)
        # an invalid configuration changes nothing
        with open(g.conf_path, "w") as f:
            f.write("listeners: []\nbogus: 1\n")
        g.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "configuration 2 stays in effect" in g.stderr())
        n = len(other.requests)
        assert wait_until(lambda: len(other.requests) >= n + 20)
        load.finish()
        assert load.failed == 0, load.statuses
        assert load.ok > 40
        st = admin(aport, "/admin/status", token=TOKEN).json()
        assert st["config_generation"] == 2
        # a reload that adds a listener opens it
        extra = free_port()
        cfg["listeners"].append({"name": "extra", "address": "127.0.0.1:%d" % extra})
        with open(g.conf_path, "w") as f:
            json.dump(cfg, f)
        g.send_signal(signal.SIGHUP)
        g.wait_listening(extra)
        assert request(extra, path="/x").status == 200
        assert request(g.port, path="/x").status == 200
        assert wait_until(lambda: admin(aport, "/admin/status", token=TOKEN).json()["config_generation"] == 3)
    finally:
        other.stop()


# ---- graceful stop ----


def test_sigterm_lets_a_slow_request_finish(gateway, upstream):
    g = gateway()
    result = {}

    def slow():
        result["r"] = request(g.port, path="/sleep/800")

    t = threading.Thread(target=slow)
    t.start()
    assert upstream.wait_requests(1)  # it is in flight
    time.sleep(0.1)
    g.send_signal(signal.SIGTERM)
    t.join(10)
    assert result["r"].status == 200
    assert g.proc.wait(10) == 0


# ---- upstream failures ----


def two_servers_config(a, b, port, **up):
    cfg = base_config(a.address, port)
    cfg["upstreams"]["app"]["servers"] = [a.address, b.address]
    cfg["upstreams"]["app"].update(up)
    return cfg


class Demo:
    """build/demo-upstream in its own process, so that it can be killed."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen([DEMO_UPSTREAM, "--listen", self.address, "--quiet"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: self._up(), timeout=5)

    def _up(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_killing_one_server_moves_traffic_to_the_other(gateway, upstream):
    a, b = Demo(), Demo()
    try:
        g = start(gateway, two_servers_config(a, b, free_port()))
        for i in range(10):
            assert request(g.port, path="/warm%d" % i).status == 200
        a.kill()
        statuses = [request(g.port, path="/after%d" % i).status for i in range(30)]
        assert statuses == [200] * 30  # connect failures are retried on the other server
        log = g.access_log(wait_for=40)
        assert all(l["status"] == 200 for l in log)
    finally:
        a.kill()
        b.kill()


def test_circuit_opens_and_closes(gateway, upstream, tmp_path):
    a, b = Demo(), Demo()
    aport = free_port()
    cfg = two_servers_config(a, b, free_port(), circuit_breaker={"failures": 2, "cooldown": "1s"})
    cfg["admin"] = {"address": "127.0.0.1:%d" % aport}
    try:
        g = start(gateway, cfg)
        g.wait_listening(aport)
        assert request(g.port, path="/ok").status == 200
        a.kill()
        b.kill()
        statuses = [request(g.port, path="/down%d" % i).status for i in range(8)]
        assert set(statuses) <= {502, 503} and 502 in statuses and statuses[-1] == 503, statuses
        log = wait_until(lambda: [l for l in g.access_log() if l["status"] == 503])
        assert log[-1]["detail"] == "circuit open"
        ms = metrics(aport)
        assert metric(ms, "portcullis_upstream_healthy", upstream="app", server=a.address) == 0
        r = admin(aport, "/readyz")
        assert r.status == 503 and "app" in r.json()["reasons"][0]
        # the servers come back: after the cooldown a probe closes the circuit
        a, b = Demo(a.port), Demo(b.port)
        assert wait_until(lambda: request(g.port, path="/back").status == 200, timeout=10, step=0.2)
        assert [request(g.port, path="/again%d" % i).status for i in range(6)] == [200] * 6
        assert wait_until(lambda: admin(aport, "/readyz").status == 200)
        assert "circuit open" in g.stderr() and "circuit closed" in g.stderr()
    finally:
        a.kill()
        b.kill()


def test_health_check_takes_a_server_out_and_back(gateway, upstream):
    b = Upstream()
    aport = free_port()
    cfg = two_servers_config(upstream, b, free_port(),
                             health_check={"path": "/health", "interval": "100ms", "timeout": "500ms",
                                           "healthy_threshold": 1, "unhealthy_threshold": 1})
    cfg["admin"] = {"address": "127.0.0.1:%d" % aport}
    g = start(gateway, cfg)
    g.wait_listening(aport)
    assert wait_until(lambda: any(r.target == "/health" for r in b.requests))  # probed
    bport = b.port
    b.stop()
    healthy = lambda v: metric(metrics(aport), "portcullis_upstream_healthy", upstream="app",
                               server="127.0.0.1:%d" % bport) == v
    assert wait_until(lambda: healthy(0))
    assert "is unhealthy" in g.stderr()
    st = admin(aport, "/admin/status")  # no token configured: disabled
    assert st.status == 403
    assert admin(aport, "/readyz").status == 200  # the other server still serves
    n = len(upstream.requests)
    assert [request(g.port, path="/only%d" % i).status for i in range(10)] == [200] * 10
    assert len([r for r in upstream.requests[n:] if r.target.startswith("/only")]) == 10
    b2 = Upstream(port=bport)
    try:
        assert wait_until(lambda: healthy(1))
        assert "healthy again" in g.stderr()
        for i in range(10):
            assert request(g.port, path="/both%d" % i).status == 200
        assert any(r.target.startswith("/both") for r in b2.requests)
    finally:
        b2.stop()


def test_no_healthy_server_is_503_at_once(gateway, upstream):
    cfg = base_config(upstream.address, free_port())
    cfg["upstreams"]["app"]["health_check"] = {"path": "/health", "interval": "100ms",
                                               "unhealthy_threshold": 1}
    g = start(gateway, cfg)
    upstream.stop()
    assert wait_until(lambda: request(g.port, path="/x").status == 503)
    log = wait_until(lambda: [l for l in g.access_log() if l["status"] == 503])
    assert log[-1]["detail"] == "no healthy upstream server"


def test_least_conn_prefers_the_idle_server(gateway, upstream):
    b = Upstream()
    try:
        cfg = two_servers_config(upstream, b, free_port(), balance="least_conn")
        cfg["workers"] = 1
        g = start(gateway, cfg)
        # one slow request holds a connection to one server ...
        t = threading.Thread(target=lambda: request(g.port, path="/sleep/1500"))
        t.start()
        slow = wait_until(lambda: [u for u in (upstream, b) if any(r.target == "/sleep/1500" for r in u.requests)])
        assert slow
        busy, idle = (upstream, b) if slow[0] is upstream else (b, upstream)
        # ... so the others all go to the other one
        for i in range(6):
            assert request(g.port, path="/lc%d" % i).status == 200
        assert len([r for r in idle.requests if r.target.startswith("/lc")]) == 6
        assert not [r for r in busy.requests if r.target.startswith("/lc")]
        t.join(10)
    finally:
        b.stop()


def test_suspended_request_survives_sigterm(gateway, upstream):
    """A request held by a filter (the test build's suspend) finishes before exit."""
    cfg = base_config(upstream.address, free_port())
    cfg["routes"][0]["test_suspend"] = "600ms"
    g = start(gateway, cfg, binary=TEST_BIN)
    result = {}
    t = threading.Thread(target=lambda: result.update(r=request(g.port, path="/held")))
    t.start()
    time.sleep(0.2)
    g.send_signal(signal.SIGTERM)
    t.join(10)
    assert result["r"].status == 200
    assert g.proc.wait(10) == 0


def test_reload_that_removes_a_check_puts_the_server_back(gateway, upstream):
    """A server marked down by a check a reload removes is used again."""
    b = Demo()
    aport = free_port()
    cfg = two_servers_config(upstream, b, free_port(),
                             health_check={"path": "/health", "interval": "100ms",
                                           "unhealthy_threshold": 1})
    cfg["admin"] = {"address": "127.0.0.1:%d" % aport}
    try:
        g = start(gateway, cfg)
        g.wait_listening(aport)
        bport = b.port
        b.kill()
        healthy = lambda v: metric(metrics(aport), "portcullis_upstream_healthy", upstream="app",
                                   server="127.0.0.1:%d" % bport) == v
        assert wait_until(lambda: healthy(0))
        b = Demo(bport)  # back, but nobody checks it any more once the check is gone
        del cfg["upstreams"]["app"]["health_check"]
        with open(g.conf_path, "w") as f:
            json.dump(cfg, f)
        g.send_signal(signal.SIGHUP)
        assert wait_until(lambda: healthy(1))
    finally:
        b.kill()


def test_readyz_says_not_ready_while_draining(gateway, upstream):
    aport = free_port()
    g = start(gateway, ops_config(upstream.address, free_port(), aport))
    g.wait_listening(aport)
    t = threading.Thread(target=lambda: request(g.port, path="/sleep/1500"))
    t.start()
    assert upstream.wait_requests(1)
    g.send_signal(signal.SIGTERM)
    r = wait_until(lambda: (lambda x: x if x.status == 503 else None)(admin(aport, "/readyz")))
    assert r and r.json()["reasons"] == ["shutting down"]
    t.join(10)
    assert g.proc.wait(10) == 0
