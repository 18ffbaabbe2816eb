"""Chaos, end to end: a steady request loop through the gateway while its
neighbours fail and it is signalled.

  - the upstream is killed and restarted on the same port, or hangs
    (SIGSTOP) and wakes up (SIGCONT);
  - Redis, behind Redis-backed rate limits (one policy fail_open, one
    fail_closed), hangs (SIGSTOP), wakes up, is killed and restarted;
  - the gateway is sent SIGHUP ten times in a row (each reload awaited),
    then ten more at once; and ten reloads that each replace the workers'
    Redis connections, Redis hanging for some of them;
  - the gateway is sent SIGTERM while requests are in flight at the
    upstream, or held on a stopped Redis; and a second SIGTERM, which
    closes everything at once.

What is asserted: the gateway never crashes (alive while it should be, exit
status 0, no sanitizer report); no request waits past its configured
timeouts (bounds are generous: the timeouts plus two seconds, never a
speed); the failure modes hold (502/503/504 for a dead or hung upstream,
fail_open admits and fail_closed answers 503 while Redis is out); service
comes back; no request is lost by a reload or by the drain.

Every traffic loop is bounded in time and in count, every wait is a bounded
poll, and every process started here is killed by its fixture or its test."""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import base_config, free_port, poll, request
from upstream import Upstream

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "chaos-admin-token"
POST_BODY = b"chaos=" + b"p" * 2000  # what requests to /post/... send
MARGIN = 2.0  # what a request may take beyond its configured timeouts
CRASH_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "Segmentation fault", "Assertion")


# ---- one client request, with its outcome ----


class Outcome:
    """One request of the traffic loop: its path, when it started and ended
    (time.monotonic), and either a status with the response, or an error:
    'refused' (no connection), 'dropped' (connection closed or reset before
    any response byte), 'truncated' (closed mid-response) or 'timeout' (no
    complete response within the client's generous read timeout)."""

    def __init__(self, path, fresh):
        self.path = path
        self.fresh = fresh
        self.start = time.monotonic()
        self.end = None
        self.status = None
        self.headers = {}
        self.body = b""
        self.error = None

    @property
    def took(self):
        return self.end - self.start

    def within(self, t0, t1):
        """Started at or after t0 and ended at or before t1."""
        return self.start >= t0 and self.end <= t1

    def __repr__(self):
        what = self.status if self.error is None else self.error
        return "<%s %s %.3fs>" % (self.path, what, (self.end or self.start) - self.start)


class ClientClosed(Exception):
    """The gateway closed the connection; `partial` when some of a response had come."""

    def __init__(self, partial):
        super().__init__("closed after %d response bytes" % partial)
        self.partial = partial


def _fill(sock, buf, need):
    """Reads from sock until need(buf) is true; the grown buffer."""
    while not need(buf):
        try:
            d = sock.recv(65536)
        except ConnectionResetError:
            raise ClientClosed(len(buf))
        if not d:
            raise ClientClosed(len(buf))
        buf += d
    return buf


def read_response(sock, buf=b""):
    """One complete response from sock: (status, {lower-case name: value},
    body, bytes read past it). Content-Length, chunked and close-delimited
    bodies."""
    buf = _fill(sock, buf, lambda b: b"\r\n\r\n" in b)
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    done = len(head) + 4
    if status in (204, 304) or 100 <= status < 200:
        return status, headers, b"", rest
    if "content-length" in headers:
        n = int(headers["content-length"])
        rest = _fill(sock, rest, lambda b: len(b) >= n) if n else rest
        return status, headers, rest[:n], rest[n:]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            try:
                rest = _fill(sock, rest, lambda b: b"\r\n" in b)
                line, _, rest = rest.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                rest = _fill(sock, rest, lambda b: len(b) >= size + 2)
            except ClientClosed:
                raise ClientClosed(done + len(body) + 1)
            if size == 0:
                return status, headers, body, rest[2:]
            body += rest[:size]
            rest = rest[size + 2:]
    try:
        rest = _fill(sock, rest, lambda b: False)
    except ClientClosed:
        return status, headers, rest, b""


class Traffic:
    """The steady request loop: `threads` client threads, each in turn
    sending one request on a fresh connection (Connection: close), then up
    to `per_connection` on one keep-alive connection. `path(tid, n)` names
    each request. Every request is recorded as an Outcome. Bounded by
    `seconds` and by `max_requests` in all; a refused connection is
    retried after `pause_refused`. Reads give up after `read_timeout`
    (recorded as 'timeout': longer than any configured timeout here)."""

    def __init__(self, port, path, threads=3, per_connection=8, seconds=60.0, max_requests=20000,
                 pause=0.003, pause_refused=0.02, read_timeout=20.0):
        self.port = port
        self.path = path
        self.per_connection = per_connection
        self.deadline = time.monotonic() + seconds
        self.max_requests = max_requests
        self.pause, self.pause_refused = pause, pause_refused
        self.read_timeout = read_timeout
        self.results = []
        self.pending = set()
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(threads)]
        for t in self.threads:
            t.start()

    def _more(self):
        return not self.halt.is_set() and time.monotonic() < self.deadline and len(self.results) < self.max_requests

    def _record(self, o):
        with self.lock:
            self.pending.discard(o)
            self.results.append(o)

    def waiting(self, since, longer_than):
        """Requests started at or after `since` and still unanswered after
        `longer_than` seconds."""
        now = time.monotonic()
        with self.lock:
            return [o for o in self.pending if o.start >= since and now - o.start > longer_than]

    def _one(self, sock, buf, o, close):
        """Sends o's request on sock; reads its response into o; returns
        (buffered bytes, whether the connection can carry another)."""
        method, body = ("POST", POST_BODY) if o.path.startswith("/post/") else ("GET", b"")
        raw = "%s %s HTTP/1.1\r\nHost: chaos\r\n" % (method, o.path)
        raw += ("Content-Length: %d\r\n" % len(body) if body else "") + ("Connection: close\r\n" if close else "")
        raw += "\r\n"
        with self.lock:
            self.pending.add(o)
        try:
            sock.sendall(raw.encode() + body)
            o.status, o.headers, o.body, buf = read_response(sock, buf)
            reusable = not close and o.headers.get("connection", "").lower() != "close"
        except ClientClosed as e:
            o.error = "truncated" if e.partial else "dropped"
            reusable = False
        except socket.timeout:
            o.error = "timeout"
            reusable = False
        except (BrokenPipeError, ConnectionResetError):
            o.error = "dropped"
            reusable = False
        except OSError as e:
            o.error = "error: %r" % e
            reusable = False
        o.end = time.monotonic()
        self._record(o)
        return buf, reusable

    def _connect(self, o):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=self.read_timeout)
            s.settimeout(self.read_timeout)
            return s
        except ConnectionRefusedError:
            o.error = "refused"
        except socket.timeout:
            o.error = "timeout"
        except OSError as e:
            o.error = "error: %r" % e
        o.end = time.monotonic()
        self._record(o)
        return None

    def _run(self, tid):
        n = 0
        while self._more():
            n += 1
            o = Outcome(self.path(tid, n), fresh=True)
            s = self._connect(o)
            if s is None:
                self.halt.wait(self.pause_refused)
                continue
            with s:
                self._one(s, b"", o, close=True)
            self.halt.wait(self.pause)
            k, buf, s = 0, b"", None
            try:
                while k < self.per_connection and self._more():
                    k += 1
                    n += 1
                    o = Outcome(self.path(tid, n), fresh=False)
                    if s is None:
                        s = self._connect(o)
                        if s is None:
                            break
                    buf, reusable = self._one(s, buf, o, close=False)
                    if not reusable:
                        break
                    self.halt.wait(self.pause)
            finally:
                if s is not None:
                    s.close()

    def snapshot(self):
        with self.lock:
            return list(self.results)

    def wait(self, pred, timeout):
        """Polls pred(snapshot) until it is true or timeout passes; its last value."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred(self.snapshot()):
                return True
            time.sleep(0.05)
        return pred(self.snapshot())

    def finish(self):
        self.halt.set()
        for t in self.threads:
            t.join(self.read_timeout + 10)
            assert not t.is_alive(), "a client thread is stuck"
        return self.snapshot()


def summary(name, results):
    """One line of counts, shown by pytest -s (or on a failure)."""
    counts = {}
    for r in results:
        k = r.status if r.error is None else r.error
        counts[k] = counts.get(k, 0) + 1
    slowest = max((r.took for r in results), default=0.0)
    print("%s: %d requests %s, slowest %.3fs" % (name, len(results), sorted(counts.items(), key=str), slowest))


def ok_since(t0, prefix=""):
    """A predicate for Traffic.wait: the number of 200s started after t0."""
    return lambda rs: sum(1 for r in rs if r.start >= t0 and r.status == 200 and r.path.startswith(prefix))


def at_least(n, count):
    return lambda rs: count(rs) >= n


# ---- upstreams ----


class Named(Upstream):
    """An upstream.py server answering 200 with a body that names it (and
    pads it, so a cut body shows). /slow/MS/... waits MS milliseconds first.
    `inflight` counts requests received and not yet answered."""

    PAD = b"." * 3000

    def __init__(self, name, port=0):
        self.name = name
        self.inflight = 0
        super().__init__(port)

    def body(self):
        return self.name.encode() + self.PAD

    def _respond(self, c, req, target):
        with self.lock:
            self.inflight += 1
        try:
            parts = target.split("?")[0].split("/")
            if len(parts) > 2 and parts[1] == "slow":
                time.sleep(int(parts[2]) / 1000.0)
            body = self.body()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body))
            return True
        finally:
            with self.lock:
                self.inflight -= 1

    def targets(self):
        with self.lock:
            return [r.target for r in self.requests]


def served_by(o):
    """Which Named server a 200 outcome came from, checking its body is whole."""
    for name in ("one", "two"):
        if o.body == name.encode() + Named.PAD:
            return name
    return None


PROC_UPSTREAM = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from upstream import Upstream
u = Upstream(int(sys.argv[2]))
print(u.port, flush=True)
while True:
    time.sleep(3600)
"""


class ProcUpstream:
    """upstream.py in a process of its own, so that it can be killed, stopped
    and started again on the same port."""

    def __init__(self):
        self.port = 0
        self.proc = None
        self.start()
        self.address = "127.0.0.1:%d" % self.port

    def start(self):
        """Starts the process on self.port (0: any); retried while the port
        is briefly unavailable after a kill."""
        for _ in range(20):
            self.proc = subprocess.Popen([sys.executable, "-c", PROC_UPSTREAM, HERE, str(self.port)],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            ready, _, _ = select.select([self.proc.stdout], [], [], 10)
            line = self.proc.stdout.readline() if ready else b""
            if line.strip():
                self.port = int(line)
                return
            self.kill()
            time.sleep(0.2)
        raise AssertionError("the upstream process did not start on port %d" % self.port)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        if self.proc:
            self.proc.wait(10)
            self.proc.stdout.close()

    def pause(self):
        stop_process(self.proc)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)


def stop_process(proc):
    """SIGSTOP, then waits until the kernel shows the process stopped."""
    proc.send_signal(signal.SIGSTOP)

    def stopped():
        with open("/proc/%d/stat" % proc.pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")

    assert poll(stopped, timeout=5), "process %d did not stop" % proc.pid


@pytest.fixture
def proc_upstream():
    u = ProcUpstream()
    yield u
    u.kill()


# ---- the gateway ----


def with_admin(cfg):
    aport = free_port()
    cfg["admin"] = {"address": "127.0.0.1:%d" % aport, "token": TOKEN}
    cfg["waf"] = {"mode": "off"}  # not under test here: keep the loop cheap
    return cfg, aport


def start(gateway, cfg):
    port = int(cfg["listeners"][0]["address"].rsplit(":", 1)[1])
    g = gateway(config=cfg, port=port)
    g.admin = int(cfg["admin"]["address"].rsplit(":", 1)[1])
    g.wait_listening(g.admin)
    return g


def readyz(g):
    """(status, reasons) of /readyz; (None, None) when the admin listener does not answer."""
    try:
        r = request(g.admin, path="/readyz")
    except (OSError, ValueError):
        return None, None
    return r.status, json.loads(r.body).get("reasons")


def status_doc(g):
    r = request(g.admin, path="/admin/status", headers=[("Authorization", "Bearer " + TOKEN)])
    assert r.status == 200, r.body
    return json.loads(r.body)


def assert_no_crash(g):
    err = g.stderr()
    for mark in CRASH_MARKS:
        assert mark not in err, err[-4000:]


def assert_alive(g):
    assert g.proc.poll() is None, "the gateway exited (%s):\n%s" % (g.proc.returncode, g.stderr()[-4000:])
    assert_no_crash(g)


def stop_cleanly(g, drain_timeout):
    """SIGTERM: the gateway exits 0 within its drain timeout (plus a margin)
    and reported nothing; how long it took."""
    t0 = time.monotonic()
    g.send_signal(signal.SIGTERM)
    try:
        rc = g.proc.wait(drain_timeout + MARGIN + 10)
    except subprocess.TimeoutExpired:
        raise AssertionError("the gateway did not exit after SIGTERM:\n" + g.stderr()[-4000:])
    took = time.monotonic() - t0
    assert rc == 0, "exit status %s:\n%s" % (rc, g.stderr()[-4000:])
    assert took <= drain_timeout + MARGIN, "exited %.1fs after SIGTERM (shutdown_timeout %ss)" % (took, drain_timeout)
    assert_no_crash(g)
    return took


def gateway_reply(o, status, error):
    """o is the gateway's own JSON reply with this status and error."""
    assert o.status == status, o
    doc = json.loads(o.body)
    assert doc["status"] == status and doc["error"] == error, (o, doc)


UPSTREAM_FAILURES = {502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout"}


def assert_upstream_failure(o):
    assert o.status in UPSTREAM_FAILURES, o
    gateway_reply(o, o.status, UPSTREAM_FAILURES[o.status])


# ==== 1. the upstream dies and comes back ====


def test_upstream_killed_and_restarted(gateway, proc_upstream):
    up = proc_upstream
    port = free_port()
    cfg, _ = with_admin(base_config(up.address, port))
    app = cfg["upstreams"]["app"]
    app.update(connect_timeout="1s", response_timeout="2s", circuit_breaker={"failures": 3, "cooldown": "1s"})
    bound = 1.0 + 2.0 + MARGIN  # connect_timeout + response_timeout + margin
    g = start(gateway, cfg)
    # thread 0 asks for slow answers, so that some request is in flight at
    # the kill; thread 2 posts a body (not retried on another connection)
    load = Traffic(g.port, lambda t, n: "%s/%d-%d" % (("/sleep/200", "/fast", "/post")[t], t, n))
    try:
        assert load.wait(at_least(30, ok_since(0)), 10), load.snapshot()[-5:]

        t_kill0 = time.monotonic()
        up.kill()
        t_kill = time.monotonic()
        outage = lambda rs: [r for r in rs if r.start >= t_kill]
        # failures at once (502), then the circuit opens (503 without trying)
        assert load.wait(lambda rs: len(outage(rs)) >= 20 and any(r.status == 503 for r in outage(rs)), 15), \
            outage(load.snapshot())[-10:]
        assert poll(lambda: readyz(g)[0] == 503, timeout=5)
        assert_alive(g)

        t_back = time.monotonic()
        up.start()  # the same port
        # after the cooldown one probe gets through, and closes the circuit
        assert load.wait(at_least(30, ok_since(t_back)), 15), load.snapshot()[-10:]
        assert poll(lambda: readyz(g)[0] == 200, timeout=5)
    finally:
        results = load.finish()
    summary("upstream killed", results)

    assert_alive(g)
    errors = [r for r in results if r.error]
    assert not errors, errors[:10]  # every request got a whole response
    slow = [r for r in results if r.took > bound]
    assert not slow, slow[:10]
    before = [r for r in results if r.end <= t_kill0]
    assert before and all(r.status == 200 for r in before), [r for r in before if r.status != 200][:10]
    during = [r for r in results if r.within(t_kill, t_back)]
    assert during
    for r in during:
        assert_upstream_failure(r)
    # refused connections (502), then the open circuit (503)
    statuses = {r.status for r in results if t_kill0 <= r.end <= t_back}
    assert 502 in statuses and 503 in statuses, statuses
    # around the edges a request may have either fate
    for r in results:
        if r.status != 200:
            assert_upstream_failure(r)
    # once a request has succeeded after the restart, every later one does
    first = min(r.end for r in results if r.start >= t_back and r.status == 200)
    late = [r for r in results if r.start >= first]
    assert len(late) >= 20 and all(r.status == 200 for r in late), [r for r in late if r.status != 200][:10]
    assert all(served_ok(r) for r in results if r.status == 200)
    err = g.stderr()
    assert "circuit open" in err and "circuit closed" in err, err[-3000:]
    stop_cleanly(g, 5)


def served_ok(o):
    """A 200 from upstream.py's echo: the JSON of the request it received."""
    try:
        doc = json.loads(o.body)
        return doc["target"] == o.path and doc["body_len"] == (len(POST_BODY) if o.path.startswith("/post/") else 0)
    except (ValueError, KeyError):
        return False


def test_upstream_hangs_and_wakes_up(gateway, proc_upstream):
    """A stopped upstream still accepts connections (the kernel does), so
    requests wait for their response_timeout: 504, then 503 once the circuit
    opens; never longer than the timeouts."""
    up = proc_upstream
    port = free_port()
    cfg, _ = with_admin(base_config(up.address, port))
    cfg["upstreams"]["app"].update(connect_timeout="1s", response_timeout="1s",
                                   circuit_breaker={"failures": 2, "cooldown": "1s"})
    bound = 1.0 + 1.0 + MARGIN
    g = start(gateway, cfg)
    load = Traffic(g.port, lambda t, n: "/x/%d-%d" % (t, n), threads=2)
    try:
        assert load.wait(at_least(20, ok_since(0)), 10), load.snapshot()[-5:]

        t_stop0 = time.monotonic()
        up.pause()
        t_stop = time.monotonic()
        hung = lambda rs: [r for r in rs if r.start >= t_stop]
        # timeouts (504), then the circuit opens; a second probe after the cooldown times out again
        assert load.wait(lambda rs: sum(1 for r in hung(rs) if r.status == 504) >= 3 and
                         any(r.status == 503 for r in hung(rs)), 20), hung(load.snapshot())[-10:]
        assert_alive(g)

        t_cont = time.monotonic()
        up.resume()
        assert load.wait(at_least(20, ok_since(t_cont)), 15), load.snapshot()[-10:]
    finally:
        results = load.finish()
    summary("upstream hangs", results)

    assert_alive(g)
    errors = [r for r in results if r.error]
    assert not errors, errors[:10]
    slow = [r for r in results if r.took > bound]
    assert not slow, slow[:10]
    before = [r for r in results if r.end <= t_stop0]
    assert before and all(r.status == 200 and served_ok(r) for r in before)
    during = [r for r in results if r.within(t_stop, t_cont)]
    for r in during:
        assert_upstream_failure(r)
    statuses = {r.status for r in results if t_stop0 <= r.end <= t_cont}
    assert {504, 503} <= statuses, statuses
    for r in results:
        if r.status != 200:
            assert_upstream_failure(r)
    first = min(r.end for r in results if r.start >= t_cont and r.status == 200)
    late = [r for r in results if r.start >= first]
    assert len(late) >= 10 and all(r.status == 200 for r in late), [r for r in late if r.status != 200][:10]
    stop_cleanly(g, 5)


# ==== 2. Redis hangs, wakes up, dies and comes back ====


def test_redis_stopped_continued_killed_restarted(gateway, upstream, redis, tmp_path):
    """/open/ is limited by a fail_open policy, /closed/ by a fail_closed
    one, both through Redis with rates no loop can reach: while Redis is
    out, /open/ is admitted and /closed/ gets 503 rate_limit_unavailable,
    and no request waits more than redis.timeout (plus the margin)."""
    port = free_port()
    cfg, _ = with_admin(base_config(upstream.address, port))
    timeout = 0.25
    cfg["redis"] = {"address": "127.0.0.1:%d" % redis.port, "timeout": "250ms", "on_failure": "fail_open"}
    cfg["rate_limits"] = {"open": {"key": "ip", "rate": "100000/1s"},
                          "closed": {"key": "ip", "rate": "100000/1s", "on_failure": "fail_closed"}}
    cfg["routes"] = [{"name": "open", "match": {"path_prefix": "/open/"}, "upstream": "app", "rate_limits": ["open"]},
                     {"name": "closed", "match": {"path_prefix": "/closed/"}, "upstream": "app",
                      "rate_limits": ["closed"]}]
    g = start(gateway, cfg)
    assert poll(lambda: readyz(g)[0] == 200, timeout=10), readyz(g)
    bound = timeout + MARGIN
    load = Traffic(g.port, lambda t, n: "/%s/%d-%d" % ("open" if n % 2 else "closed", t, n))
    marks = {}

    def both_since(t0, n):
        return lambda rs: (ok_since(t0, "/open/")(rs) >= n and ok_since(t0, "/closed/")(rs) >= n)

    def refused_since(t0, n):
        return lambda rs: (sum(1 for r in rs if r.start >= t0 and r.path.startswith("/closed/") and r.status == 503)
                           >= n and ok_since(t0, "/open/")(rs) >= n)

    def recovered(t_event):
        """Redis is usable again for every worker: /readyz says so after
        any command sent before t_event has timed out."""
        assert poll(lambda: time.monotonic() > t_event + timeout + 0.5 and readyz(g)[0] == 200, timeout=20), \
            readyz(g)
        return time.monotonic()

    try:
        assert load.wait(both_since(0, 15), 10), load.snapshot()[-6:]

        # hangs
        marks["stop0"] = time.monotonic()
        stop_process(redis.proc)
        marks["stop"] = time.monotonic()
        assert load.wait(refused_since(marks["stop"], 10), 15), load.snapshot()[-10:]
        assert poll(lambda: readyz(g) == (503, ["redis not connected"]), timeout=5), readyz(g)
        assert_alive(g)

        # wakes up
        marks["cont"] = time.monotonic()
        redis.proc.send_signal(signal.SIGCONT)
        marks["ok1"] = recovered(marks["cont"])
        assert load.wait(both_since(marks["ok1"], 10), 10), load.snapshot()[-10:]

        # dies
        marks["kill0"] = time.monotonic()
        redis.proc.kill()
        redis.proc.wait(10)
        marks["kill"] = time.monotonic()
        assert load.wait(refused_since(marks["kill"], 10), 15), load.snapshot()[-10:]
        assert poll(lambda: readyz(g) == (503, ["redis not connected"]), timeout=5), readyz(g)
        assert_alive(g)

        # a new, empty Redis on the same port (its script cache empty too)
        marks["restart"] = time.monotonic()
        redis.restart(tmp_path)
        marks["ok2"] = recovered(marks["restart"])
        assert load.wait(both_since(marks["ok2"], 10), 10), load.snapshot()[-10:]
        marks["end"] = time.monotonic()
    finally:
        results = load.finish()
    summary("redis", results)

    assert_alive(g)
    errors = [r for r in results if r.error]
    assert not errors, errors[:10]
    slow = [r for r in results if r.took > bound]
    assert not slow, slow[:10]
    opened = [r for r in results if r.path.startswith("/open/")]
    closed = [r for r in results if r.path.startswith("/closed/")]
    # fail_open: always admitted, through every outage
    assert all(r.status == 200 and served_ok(r) for r in opened), [r for r in opened if r.status != 200][:10]
    # fail_closed: 503 while Redis is out, admitted while it is up, nothing else ever
    for r in closed:
        if r.status != 200:
            gateway_reply(r, 503, "rate_limit_unavailable")
    for t0, t1 in ((marks["stop"], marks["cont"]), (marks["kill"], marks["restart"])):
        out = [r for r in closed if r.within(t0, t1)]
        assert len(out) >= 10 and all(r.status == 503 for r in out), [r for r in out if r.status != 503][:10]
    for t0, t1 in ((0, marks["stop0"]), (marks["ok1"], marks["kill0"]), (marks["ok2"], marks["end"])):
        up_ = [r for r in closed if r.within(t0, t1)]
        assert len(up_) >= 10 and all(r.status == 200 for r in up_), [r for r in up_ if r.status != 200][:10]
    assert status_doc(g)["redis"]["state"] == "connected"
    metrics = request(g.admin, path="/metrics").body.decode()
    errs = [l for l in metrics.splitlines() if l.startswith("portcullis_redis_errors_total ")]
    assert errs and float(errs[0].split()[1]) >= 2, errs
    stop_cleanly(g, 5)


# ==== 3. ten reloads in a row ====


def reload_config(port, aport, one, two, redis, gen):
    """Generation gen: the one route goes to server one or two, alternately,
    and is named after both, so the access log tells which configuration
    served each request. Every request is rate limited through Redis by a
    fail_closed policy: a reload that disturbed the workers' Redis
    connections would show as 503s."""
    cfg = base_config(one.address, port)
    cfg["redis"] = {"address": "127.0.0.1:%d" % redis.port, "timeout": "1s"}
    cfg["rate_limits"] = {"rl": {"key": "ip", "rate": "100000/1s", "on_failure": "fail_closed"}}
    cfg["admin"] = {"address": "127.0.0.1:%d" % aport, "token": TOKEN}
    cfg["waf"] = {"mode": "off"}
    cfg["upstreams"]["other"] = {"servers": [two.address], "connect_timeout": "1s", "response_timeout": "3s"}
    to = "two" if gen % 2 == 0 else "one"
    cfg["routes"] = [{"name": "g%d-%s" % (gen, to), "match": {"path_prefix": "/"},
                      "upstream": "app" if to == "one" else "other", "rate_limits": ["rl"]}]
    return cfg, to


def test_ten_sighups_under_load_lose_nothing(gateway, redis):
    one, two = Named("one"), Named("two")
    try:
        port, aport = free_port(), free_port()
        cfg, _ = reload_config(port, aport, one, two, redis, 1)
        g = start(gateway, cfg)
        assert poll(lambda: readyz(g)[0] == 200, timeout=10), readyz(g)
        # a fifth of the requests take 100 ms upstream, so reloads land on requests in flight
        load = Traffic(g.port, lambda t, n: "/slow/100/%d-%d" % (t, n) if n % 5 == 0 else "/r/%d-%d" % (t, n),
                       threads=3, per_connection=25)
        probes = []

        def probe():
            probes.append(1)
            return served_by_path(g.port, "/probe")
        try:
            assert load.wait(at_least(30, ok_since(0)), 10), load.snapshot()[-5:]
            # ten reloads in a row, each one changing where requests go
            for gen in range(2, 12):
                cfg, to = reload_config(port, aport, one, two, redis, gen)
                with open(g.conf_path, "w") as f:
                    json.dump(cfg, f)
                g.send_signal(signal.SIGHUP)
                line = "configuration %d in effect" % gen
                assert poll(lambda: line in g.stderr(), timeout=10), g.stderr()[-3000:]
                assert poll(lambda: probe() == to, timeout=5), (gen, probe())
                # some of the load runs on this generation before the next reload
                t_gen = time.monotonic()
                assert load.wait(at_least(10, ok_since(t_gen)), 10), load.snapshot()[-5:]
                assert_alive(g)
            n = len(load.snapshot())
            assert load.wait(lambda rs: len(rs) >= n + 50, 10)

            # ten at once, the file unchanged: each is applied, or refused
            # while the previous is being taken up, or merged by the kernel
            for _ in range(10):
                g.send_signal(signal.SIGHUP)
            applied = lambda: g.stderr().count(" in effect for new requests")
            refusals = lambda: g.stderr().count("the previous reload is still being applied")
            assert poll(lambda: applied() + refusals() >= 11 and status_doc(g)["config_generation"] == applied() + 1,
                        timeout=10), (status_doc(g), g.stderr()[-3000:])
            n = len(load.snapshot())
            assert load.wait(lambda rs: len(rs) >= n + 100, 10)
            assert probe() == to  # the configuration stayed in effect
        finally:
            results = load.finish()
        summary("sighup", results)

        assert_alive(g)
        err = g.stderr()
        assert "stays in effect" not in err, err[-3000:]
        bad = [r for r in results if r.status != 200 or served_by(r) is None]
        assert not bad, bad[:10]  # no request failed, every body whole
        sent = [r.path for r in results]
        assert len(set(sent)) == len(sent)
        received = set(one.targets()) | set(two.targets())
        assert set(sent) <= received, sorted(set(sent) - received)[:10]  # none lost on the way
        # every request logged once, by the configuration that served it
        logged = {}
        for line in g.access_log(wait_for=len(results) + len(probes)):
            logged.setdefault(line["path"], []).append(line)
        for r in results:
            lines = logged.get(r.path.split("?")[0], [])
            assert len(lines) == 1 and lines[0]["status"] == 200, (r, lines)
            assert lines[0]["route"].endswith("-" + served_by(r)), (r, lines[0]["route"])
        gens = {int(l[0]["route"][1:].split("-")[0]) for p, l in logged.items() if p.startswith(("/r/", "/slow/"))}
        assert len(gens) >= 8, gens  # the load really ran across the reloads
        # and every request was decided by Redis (one EVALSHA each; the probes too)
        stats = redis.cmd("INFO", "commandstats")
        calls = [int(l.split("calls=")[1].split(",")[0])
                 for l in stats.splitlines() if l.startswith("cmdstat_evalsha:")]
        assert calls and calls[0] >= len(results), (calls, len(results))
        stop_cleanly(g, 5)
    finally:
        one.stop()
        two.stop()


def served_by_path(port, path):
    r = request(port, path=path)
    if r.status != 200:
        return r.status
    for name in ("one", "two"):
        if r.body == name.encode() + Named.PAD:
            return name
    return r.body[:20]


# ==== 4. SIGTERM under load ====


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def test_sigterm_under_load_drains(gateway):
    """In-flight requests complete, new connections are refused, the process
    exits 0 within shutdown_timeout. Requests the gateway never read (sent
    on an idle connection it closed, or queued on a listener it closed) may
    fail with no response at all, which HTTP clients retry; a request the
    gateway did read is never lost."""
    one = Named("one")
    try:
        port = free_port()
        cfg, _ = with_admin(base_config(one.address, port, shutdown_timeout="5s"))
        g = start(gateway, cfg)
        load = Traffic(g.port, lambda t, n: "/slow/300/%d-%d" % (t, n) if n % 2 else "/r/%d-%d" % (t, n),
                       threads=4, per_connection=4)
        long = {}
        try:
            assert load.wait(at_least(30, ok_since(0)), 15), load.snapshot()[-5:]
            # one long request, so the drain lasts long enough to be observed
            lt = threading.Thread(target=lambda: long.update(r=one_request(g.port, "/slow/1500/long")), daemon=True)
            lt.start()
            assert poll(lambda: "/slow/1500/long" in one.targets(), timeout=5)
            assert poll(lambda: one.inflight >= 3, timeout=5), one.inflight
            t_term = time.monotonic()
            g.send_signal(signal.SIGTERM)
            # the listener closes at once, the admin listener says why, the process lives on
            assert poll(lambda: refused(g.port), timeout=5)
            assert poll(lambda: readyz(g) == (503, ["shutting down"]), timeout=5), readyz(g)
            assert g.proc.poll() is None, "the gateway exited before its in-flight requests finished"
            try:
                g.proc.wait(5 + MARGIN + 10)
            except subprocess.TimeoutExpired:
                raise AssertionError("the gateway did not exit after SIGTERM")
            t_exit = time.monotonic()
            lt.join(10)
        finally:
            results = load.finish()
        summary("sigterm", results)

        assert g.proc.returncode == 0, g.stderr()[-4000:]
        assert t_exit - t_term <= 5 + MARGIN, t_exit - t_term
        assert_no_crash(g)
        assert "SIGTERM: draining in-flight requests" in g.stderr()
        lr = long["r"]
        assert lr.status == 200 and served_by(lr) == "one", lr
        assert lr.headers.get("connection", "").lower() == "close"

        # every answer is a whole 200: nothing was cut, nothing answered 5xx
        answered = [r for r in results if r.error is None]
        bad = [r for r in answered if r.status != 200 or served_by(r) != "one"]
        assert not bad, bad[:10]
        failed = [r for r in results if r.error is not None]
        assert all(r.error in ("refused", "dropped") for r in failed), failed[:10]
        # refusals only once the stop began
        assert all(r.start >= t_term for r in failed if r.error == "refused"), failed[:10]
        assert any(r.error == "refused" for r in failed)
        # what the upstream received was answered to the client; what the
        # gateway read was logged with its answer
        received = set(one.targets())
        ok_paths = {r.path for r in answered} | {"/slow/1500/long"}
        assert received <= ok_paths, sorted(received - ok_paths)[:10]
        log = g.access_log(wait_for=len(answered) + 1)
        assert len(log) == len(answered) + 1, (len(log), len(answered))
        assert all(l["status"] == 200 and not l.get("detail") for l in log), \
            [l for l in log if l["status"] != 200 or l.get("detail")][:5]
        # a failed request was never read by the gateway: one per client thread at most
        logged = {l["path"] for l in log}
        dropped = [r for r in failed if r.error == "dropped"]
        assert all(r.path not in logged and r.path not in received for r in dropped), dropped
        assert len(dropped) <= len(load.threads), dropped
        # requests were in flight at the signal, and they all completed
        in_flight = [r for r in answered if r.start < t_term < r.end]
        assert len(in_flight) >= 2, in_flight
    finally:
        one.stop()


def one_request(port, path, timeout=20.0):
    """One keep-alive request on a fresh connection: an Outcome."""
    o = Outcome(path, fresh=True)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(("GET %s HTTP/1.1\r\nHost: chaos\r\n\r\n" % path).encode())
        o.status, o.headers, o.body, _ = read_response(s)
    o.end = time.monotonic()
    return o


def test_sigterm_while_redis_hangs(gateway, upstream, redis):
    """Requests waiting on a stopped Redis when SIGTERM comes are decided by
    their policy's on_failure once redis.timeout passes, answered, and the
    process still exits 0 (closing its connections to the stopped Redis)."""
    port = free_port()
    cfg, _ = with_admin(base_config(upstream.address, port, shutdown_timeout="5s"))
    cfg["redis"] = {"address": "127.0.0.1:%d" % redis.port, "timeout": "1s"}
    cfg["rate_limits"] = {"open": {"key": "ip", "rate": "100000/1s", "on_failure": "fail_open"},
                          "closed": {"key": "ip", "rate": "100000/1s", "on_failure": "fail_closed"}}
    cfg["routes"] = [{"match": {"path_prefix": "/open/"}, "upstream": "app", "rate_limits": ["open"]},
                     {"match": {"path_prefix": "/closed/"}, "upstream": "app", "rate_limits": ["closed"]}]
    g = start(gateway, cfg)
    assert poll(lambda: readyz(g)[0] == 200, timeout=10), readyz(g)
    load = Traffic(g.port, lambda t, n: "/%s/%d-%d" % ("open" if n % 2 else "closed", t, n), threads=4)
    try:
        assert load.wait(at_least(30, ok_since(0)), 10), load.snapshot()[-5:]
        stop_process(redis.proc)
        # requests are held, waiting on Redis (the upstream answers at once:
        # nothing else takes this long)
        assert poll(lambda: len(load.waiting(0, 0.2)) >= 2, timeout=5), load.waiting(0, 0)
        held = load.waiting(0, 0.2)
        t_term = time.monotonic()
        g.send_signal(signal.SIGTERM)
        assert poll(lambda: refused(g.port), timeout=5)
        try:
            g.proc.wait(5 + MARGIN + 10)
        except subprocess.TimeoutExpired:
            raise AssertionError("the gateway did not exit after SIGTERM")
        t_exit = time.monotonic()
    finally:
        results = load.finish()
    summary("sigterm, redis stopped", results)

    assert g.proc.returncode == 0, g.stderr()[-4000:]
    assert t_exit - t_term <= 5 + MARGIN, t_exit - t_term
    assert_no_crash(g)
    # the held requests were answered, by on_failure, within redis.timeout (plus the margin)
    for o in held:
        assert o.error is None and o.took <= 1.0 + MARGIN, o
        if o.path.startswith("/open/"):
            assert o.status == 200 and served_ok(o), o
        else:
            gateway_reply(o, 503, "rate_limit_unavailable")
    answered = [r for r in results if r.error is None]
    for r in answered:
        assert r.took <= 1.0 + MARGIN, r
        if r.path.startswith("/open/") or r.status == 200:
            assert r.status == 200 and served_ok(r), r
        else:
            gateway_reply(r, 503, "rate_limit_unavailable")
    failed = [r for r in results if r.error is not None]
    assert all(r.error in ("refused", "dropped") for r in failed), failed[:10]
    assert all(r.start >= t_term for r in failed if r.error == "refused"), failed[:10]
    # what the gateway read, it answered and logged
    log = g.access_log(wait_for=len(answered))
    assert len(log) == len(answered), (len(log), len(answered))
    assert sorted(l["status"] for l in log) == sorted(r.status for r in answered)
    logged = {l["path"] for l in log}
    dropped = [r for r in failed if r.error == "dropped"]
    assert all(r.path not in logged for r in dropped) and len(dropped) <= len(load.threads), dropped


def test_reloads_that_replace_the_redis_connection(gateway, upstream, redis):
    """Each reload changes redis.timeout, so every worker drops its Redis
    connection for a new one while requests wait on it; Redis hangs for a
    few of the reloads. With a fail_open policy every request is admitted,
    none waits past redis.timeout (plus the margin), nothing crashes."""
    port = free_port()
    cfg, _ = with_admin(base_config(upstream.address, port))
    cfg["rate_limits"] = {"open": {"key": "ip", "rate": "100000/1s", "on_failure": "fail_open"}}
    cfg["routes"] = [{"match": {"path_prefix": "/"}, "upstream": "app", "rate_limits": ["open"]}]
    cfg["redis"] = {"address": "127.0.0.1:%d" % redis.port, "timeout": "500ms"}
    g = start(gateway, cfg)
    assert poll(lambda: readyz(g)[0] == 200, timeout=10), readyz(g)
    load = Traffic(g.port, lambda t, n: "/a/%d-%d" % (t, n), threads=4)
    try:
        assert load.wait(at_least(30, ok_since(0)), 10), load.snapshot()[-5:]
        for gen in range(2, 12):
            cfg["redis"]["timeout"] = "%dms" % (500 - gen)
            with open(g.conf_path, "w") as f:
                json.dump(cfg, f)
            g.send_signal(signal.SIGHUP)
            assert poll(lambda: "configuration %d in effect" % gen in g.stderr(), timeout=10), g.stderr()[-3000:]
            if gen == 4:
                stop_process(redis.proc)
            elif gen == 8:
                redis.proc.send_signal(signal.SIGCONT)
            n = len(load.snapshot())
            assert load.wait(lambda rs: len(rs) >= n + 20, 10)
        assert poll(lambda: readyz(g)[0] == 200, timeout=20), readyz(g)
    finally:
        results = load.finish()
    summary("reloads moving redis", results)

    assert_alive(g)
    bad = [r for r in results if r.error or r.status != 200 or not served_ok(r)]
    assert not bad, bad[:10]
    slow = [r for r in results if r.took > 0.5 + MARGIN]
    assert not slow, slow[:10]
    stop_cleanly(g, 5)


def test_second_sigterm_closes_everything_at_once(gateway, upstream, redis):
    """A second SIGTERM during the drain closes every connection at once:
    requests in flight at the upstream and requests held on a stopped
    Redis are cut (logged as such), clients see their connection close
    rather than hang, and the process exits 0 long before shutdown_timeout."""
    port = free_port()
    cfg, _ = with_admin(base_config(upstream.address, port, shutdown_timeout="30s"))
    cfg["upstreams"]["app"]["response_timeout"] = "20s"
    cfg["rate_limits"] = {"open": {"key": "ip", "rate": "100000/1s", "on_failure": "fail_open"}}
    cfg["routes"] = [{"match": {"path_prefix": "/rl/"}, "upstream": "app", "rate_limits": ["open"]},
                     {"match": {"path_prefix": "/"}, "upstream": "app"}]
    cfg["redis"] = {"address": "127.0.0.1:%d" % redis.port, "timeout": "20s"}
    g = start(gateway, cfg)
    assert poll(lambda: readyz(g)[0] == 200, timeout=10), readyz(g)
    # even threads wait 10 s at the upstream, odd ones are rate limited through Redis
    load = Traffic(g.port, lambda t, n: ("/sleep/10000/%d-%d" if t % 2 == 0 else "/rl/%d-%d") % (t, n),
                   threads=4, read_timeout=25.0)
    try:
        assert load.wait(at_least(20, ok_since(0, "/rl/")), 10), load.snapshot()[-5:]
        stop_process(redis.proc)
        kinds = lambda: {o.path.split("/")[1] for o in load.waiting(0, 0.3)}
        assert poll(lambda: kinds() == {"sleep", "rl"}, timeout=5), load.waiting(0, 0)
        g.send_signal(signal.SIGTERM)
        assert poll(lambda: readyz(g) == (503, ["shutting down"]), timeout=5), readyz(g)
        held = load.waiting(0, 0.3)
        t_second = time.monotonic()
        g.send_signal(signal.SIGTERM)
        try:
            g.proc.wait(MARGIN + 10)
        except subprocess.TimeoutExpired:
            raise AssertionError("the gateway did not exit after a second SIGTERM")
        t_exit = time.monotonic()
    finally:
        results = load.finish()
    summary("second sigterm", results)

    assert g.proc.returncode == 0, g.stderr()[-4000:]
    assert t_exit - t_second <= MARGIN, t_exit - t_second
    assert_no_crash(g)
    assert "SIGTERM: closing every connection now" in g.stderr()
    assert {o.path.split("/")[1] for o in held} == {"sleep", "rl"}
    # the held requests were cut: closed without an answer, not left hanging
    for o in held:
        assert o.error in ("dropped", "truncated") and o.end <= t_exit + MARGIN, o
    assert all(r.error in ("refused", "dropped", "truncated") for r in results if r.error), \
        [r for r in results if r.error][:10]
    # what was answered before is whole
    answered = [r for r in results if r.error is None]
    assert all(r.status == 200 and served_ok(r) for r in answered), [r for r in answered if r.status != 200][:10]
    # every request cut is logged as cut
    log = {l["path"]: l for l in g.access_log(wait_for=len(answered) + len(held))}
    for o in held:
        line = log.get(o.path)
        assert line and line.get("detail") == "cut at shutdown" and line["status"] == 499, (o, line)
