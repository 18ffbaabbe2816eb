"""Slow and flooding clients, end to end: a dribbled head is cut at
header_timeout counted from its first byte; a dribbled chunked body is cut by
min_body_rate; at max_connections accepting pauses (the client waits and is
served later, never reset) and idle keep-alive connections are closed first
to let a waiting client in; one address at its max_connections_per_ip does
not keep another out; normal clients are served while 200 slowloris
connections are held.

Already covered elsewhere (test_proxy_errors.py): a head completed field by
field past header_timeout (408), a silent connection closed at
header_timeout, a Content-Length body slower than min_body_rate (408) and a
fast enough one, the per-address refusal, and a single-worker pause at
max_connections.

Nothing asserts a duration: waits are bounded polls, loops are bounded in
count and time. A few checks need time to pass (a client left idle longer
than a timeout; "nothing arrives for a while" while paused); those waits are
short and a slow machine only makes them weaker, never failing.
"""

import json
import os
import select
import socket
import subprocess
import threading
import time

import pytest

from conftest import (BUILD, ROOT, base_config, connect, free_port, parse_response, read_one_response,
                      read_until_close, request)


def start(gateway, upstream, workers=2, waf=None, **limits):
    """A gateway with an admin listener; returns (gateway, admin port)."""
    aport, port = free_port(), free_port()
    cfg = base_config(upstream.address, port, workers=workers, limits=limits,
                      admin={"address": "127.0.0.1:%d" % aport})
    if waf:
        cfg["waf"] = waf
    g = gateway(config=cfg, port=port)
    g.wait_listening(aport)
    return g, aport


def active(aport):
    """portcullis_connections_active, or None when /metrics cannot be read."""
    try:
        body = request(aport, path="/metrics").body.decode()
    except (OSError, ValueError):
        return None
    for line in body.splitlines():
        if line.startswith("portcullis_connections_active "):
            return int(float(line.split()[1]))
    return None


def wait_until(fn, timeout=10.0, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def partial_head(port, path="/held", source=None):
    """A connection that has sent part of a request head (counted, not idle)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0) if source else None)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: a\r\n")
    return s


def finish_head(s):
    """Completes a partial_head with Connection: close; returns the response."""
    s.sendall(b"Connection: close\r\n\r\n")
    r, _ = parse_response(read_until_close(s))
    s.close()
    return r


def keepalive_conn(port, path):
    """A connection that served one request and now idles, kept alive."""
    s = connect(port, timeout=10)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status(s) == 200
    return s


def status(s):
    """The status of the next response on keep-alive socket s (read whole)."""
    head, _ = read_one_response(s)
    return int(head[9:12])


def closed_by_peer(s, timeout):
    """True when the gateway closed s (EOF or reset) within timeout; False
    when nothing came; raises if it sent data."""
    r, _, _ = select.select([s], [], [], timeout)
    if not r:
        return False
    try:
        d = s.recv(1)
    except ConnectionResetError:
        return True
    assert d == b"", "unexpected data: %r" % d
    return True


# ---- header_timeout ----


def test_dribbled_head_cut_at_header_timeout_from_its_first_byte(gateway, upstream):
    g, _ = start(gateway, upstream, workers=1, header_timeout="1s", idle_timeout="30s")
    s = keepalive_conn(g.port, "/first")
    # Idle for longer than header_timeout: the clock of the next head has not started.
    time.sleep(1.5)
    head = b"GET /second HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 20 + b"\r\n\r\n"
    for b in head:  # one byte at a time, all of it well within header_timeout
        s.sendall(bytes([b]))
        time.sleep(0.003)
    assert status(s) == 200
    # A head that never ends, a byte every 20 ms: cut once header_timeout has
    # passed since its first byte, not at the first byte and never extended.
    endless = b"GET /third HTTP/1.1\r\nHost: a\r\n" + b"X-Slow: keep-waiting\r\n" * 20  # ~10 s of bytes
    s.settimeout(0.02)
    sent, got, t0 = 0, b"", time.monotonic()
    while sent < len(endless):
        try:
            s.sendall(endless[sent:sent + 1])
        except OSError:
            break
        sent += 1
        try:
            got = s.recv(65536)
            if got:
                break
        except socket.timeout:
            pass
    elapsed = time.monotonic() - t0
    s.settimeout(5)
    got += read_until_close(s)
    assert sent < len(endless), "the dribbled head was never cut"
    assert elapsed >= 0.95, "cut %.3fs after its first byte, before header_timeout" % elapsed
    r, _ = parse_response(got)
    assert r.status == 408 and r.json()["error"] == "request_timeout"
    assert r.header("Connection") == "close"
    assert [q.target for q in upstream.requests] == ["/first", "/second"]
    logs = g.access_log(wait_for=3)
    assert [l["detail"] for l in logs if l["status"] == 408] == ["header timeout"]


# ---- min_body_rate ----


@pytest.mark.parametrize("waf", ["block", "off"])  # the body held for inspection, or streamed upstream
def test_dribbled_chunked_body_cut_by_min_body_rate(gateway, upstream, waf):
    g, _ = start(gateway, upstream, workers=1, waf={"mode": waf}, min_body_rate="100/500ms", body_timeout="30s")
    s = connect(g.port, timeout=10)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    # One byte every 20 ms (about 50 B/s, under 100 B per 500 ms), never silent
    # for long enough for body_timeout; at most 8 s of it.
    body = b"1\r\nx\r\n" * 70
    s.settimeout(0.02)
    sent, got = 0, b""
    while sent < len(body):
        try:
            s.sendall(body[sent:sent + 1])
        except OSError:
            break
        sent += 1
        try:
            got = s.recv(65536)
            if got:
                break
        except socket.timeout:
            pass
    s.settimeout(5)
    got += read_until_close(s)
    assert sent < len(body), "the slow body was never cut"
    r, _ = parse_response(got)
    assert r.status == 408 and r.json()["error"] == "request_timeout"
    log = g.access_log(wait_for=1)[-1]
    assert log["status"] == 408 and log["detail"] == "request body slower than min_body_rate"
    # the upstream got at most the start of the body, never a complete request
    assert not any(q.complete for q in upstream.requests if q.target == "/upload")
    if waf == "block":  # held for inspection: nothing went upstream
        assert upstream.requests == []


# ---- max_connections ----


def test_accept_pauses_at_the_cap_and_waiting_clients_are_served_later(gateway, upstream):
    g, aport = start(gateway, upstream, workers=2, max_connections="3", max_connections_per_ip="100",
                     header_timeout="30s")
    assert wait_until(lambda: active(aport) == 0)  # the fixture's readiness probe is gone
    held = [partial_head(g.port, "/held%d" % i) for i in range(3)]
    assert wait_until(lambda: active(aport) == 3)
    # Beyond the cap: the TCP handshake completes in the kernel's backlog, the
    # request is sent, and the client waits: no answer, no reset.
    waiting = []
    for i in range(4):
        s = connect(g.port, timeout=10)
        s.sendall(b"GET /late%d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % i)
        waiting.append(s)
    ready, _, _ = select.select(waiting, [], [], 0.5)
    assert ready == [], "a connection beyond max_connections was served or reset"
    assert active(aport) == 3
    # Each held connection that ends makes room for one waiting client, on
    # either worker.
    counts = []
    for s in held:
        assert finish_head(s).status == 200
        counts.append(active(aport))
    for s in waiting:
        r, _ = parse_response(read_until_close(s))
        assert r.status == 200
        s.close()
    assert all(c is not None and c <= 3 for c in counts), counts
    assert sorted(q.target for q in upstream.wait_requests(7)) == \
        sorted(["/held0", "/held1", "/held2", "/late0", "/late1", "/late2", "/late3"])
    assert wait_until(lambda: active(aport) == 0)


def test_idle_keepalive_connections_give_way_at_the_cap_oldest_first(gateway, upstream):
    g, aport = start(gateway, upstream, workers=1, max_connections="4", max_connections_per_ip="100",
                     header_timeout="30s", idle_timeout="60s")
    assert wait_until(lambda: active(aport) == 0)
    busy = partial_head(g.port, "/busy")  # mid-head: not idle, never closed to make room
    a = keepalive_conn(g.port, "/a")
    b = keepalive_conn(g.port, "/b")
    c = keepalive_conn(g.port, "/c")
    assert wait_until(lambda: active(aport) == 4)
    # At the cap, a new client gets in at once (not after idle_timeout): the
    # connection idle the longest is closed for it.
    n1 = keepalive_conn(g.port, "/n1")
    assert closed_by_peer(a, 5)
    assert not closed_by_peer(b, 0) and not closed_by_peer(c, 0)
    n2 = keepalive_conn(g.port, "/n2")
    assert closed_by_peer(b, 5)
    assert not closed_by_peer(c, 0) and not closed_by_peer(n1, 0)
    assert active(aport) == 4
    # the connection in the middle of its head was left alone
    assert finish_head(busy).status == 200
    for s in (a, b, c, n1, n2):
        s.close()
    assert "max_connections (4) reached" in g.stderr()
    assert g.stop() == 0 and "Sanitizer" not in g.stderr()


def test_idle_keepalive_connections_give_way_across_workers(gateway, upstream):
    # Two workers, one idle connection and three busy ones at the cap: each new
    # client lands on either worker, half the time on the one without the idle
    # connection, and is let in all the same (the other worker closes its idle
    # connection for it). Over ten clients both cases come up (all ten on the
    # same side: p = 2^-10).
    g, aport = start(gateway, upstream, workers=2, max_connections="4", max_connections_per_ip="100",
                     header_timeout="30s", idle_timeout="60s")
    assert wait_until(lambda: active(aport) == 0)
    busy = [partial_head(g.port, "/busy%d" % i) for i in range(3)]
    idle = keepalive_conn(g.port, "/idle")
    assert wait_until(lambda: active(aport) == 4)
    for i in range(10):
        new = keepalive_conn(g.port, "/new%d" % i)  # raises if not served within 10 s
        assert closed_by_peer(idle, 5), "client %d got in, yet the idle connection is open" % i
        idle.close()
        idle = new
        assert active(aport) == 4
    assert [finish_head(s).status for s in busy] == [200] * 3
    idle.close()
    assert g.stop() == 0 and "Sanitizer" not in g.stderr()


def test_an_address_at_its_cap_does_not_keep_others_out(gateway, upstream):
    g, aport = start(gateway, upstream, workers=2, max_connections_per_ip="5", header_timeout="30s")
    assert wait_until(lambda: active(aport) == 0)
    held = [partial_head(g.port, source="127.0.0.2") for _ in range(5)]
    assert wait_until(lambda: active(aport) == 5)
    extra = socket.create_connection(("127.0.0.1", g.port), timeout=10, source_address=("127.0.0.2", 0))
    try:
        extra.sendall(b"GET /extra HTTP/1.1\r\nHost: a\r\n\r\n")
    except OSError:
        pass  # already reset
    assert read_until_close(extra) == b""  # closed at once
    for i in range(5):
        assert request(g.port, path="/other%d" % i).status == 200  # from 127.0.0.1
    for s in held:
        s.close()
    assert "/extra" not in [q.target for q in upstream.requests]


# ---- many slow clients at once ----


class Slowloris:
    """n connections dribbling, one byte each per round (a round every
    `period` seconds): n - posts heads that never end, `posts` POST bodies
    that never end. Runs in a thread; counts the connections the gateway
    closed."""

    def __init__(self, port, n, posts, period=0.5):
        self.socks = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i < posts:
                s.sendall(b"POST /slow-post HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
            else:
                s.sendall(b"GET /slow-head HTTP/1.1\r\nHost: a\r\n")
            s.setblocking(False)
            self.socks.append((s, i < posts))
        self.period = period
        self.cut = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        deadline = time.monotonic() + 120  # bounded whatever happens
        k = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            pad = b"X-Slow: waiting\r\n"
            for s, post in self.socks:
                if s.fileno() < 0:
                    continue
                try:
                    s.send(b"x" if post else pad[k % len(pad):k % len(pad) + 1])
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    self.cut += 1
            k += 1
            self.stop.wait(self.period)

    def close(self):
        self.stop.set()
        self.thread.join(10)
        for s, _ in self.socks:
            s.close()


def test_normal_clients_are_served_while_200_slowloris_connections_are_held(gateway, upstream):
    n = 200
    g, aport = start(gateway, upstream, workers=2, max_connections="1000", max_connections_per_ip="1000",
                     header_timeout="60s", body_timeout="60s", min_body_rate="1/5s")
    attack = Slowloris(g.port, n, posts=20)
    try:
        assert wait_until(lambda: (active(aport) or 0) >= n), active(aport)
        results = []

        def normal(keepalive, count):
            s = None
            for i in range(count):
                try:
                    if s is None:
                        s = connect(g.port, timeout=10)  # generous bound: a stuck request fails
                    if keepalive:
                        s.sendall(b"GET /normal HTTP/1.1\r\nHost: a\r\n\r\n")
                        results.append(status(s))
                        continue
                    else:
                        s.sendall(b"GET /normal HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                        r, _ = parse_response(read_until_close(s))
                        s.close()
                        s = None
                        results.append(r.status)
                except (OSError, ValueError, AssertionError, IndexError) as e:
                    results.append(repr(e))
                    s = None
            if s is not None:
                s.close()

        threads = [threading.Thread(target=normal, args=(i % 2 == 0, 25)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        assert results == [200] * 100, [r for r in results if r != 200][:5]
        # the slow connections were held all along, none cut by the normal load
        assert attack.cut == 0
        assert (active(aport) or 0) >= n
    finally:
        attack.close()
    assert wait_until(lambda: active(aport) == 0, timeout=15)


def test_the_slowloris_bench_tool_runs(tmp_path):
    """bench/slowloris end to end on a small scale (no figure is asserted)."""
    out = tmp_path / "slowloris.json"
    p = subprocess.run([os.path.join(ROOT, "bench", "slowloris"), "--connections", "30", "--posts", "3",
                        "--duration", "1", "--rate", "40", "--build", BUILD, "--json", str(out),
                        "--timeout", "120"], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "| median |" not in p.stdout and "| 1 | slowloris |" in p.stdout
    r = json.loads(out.read_text())["rounds"][0]
    for phase in ("baseline", "slowloris"):
        assert r[phase]["requests"] > 0 and r[phase]["ok"] == r[phase]["requests"]
    assert r["slowloris"]["gateway_connections_min"] >= 30
