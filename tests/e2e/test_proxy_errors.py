"""Upstream failures, local replies, limits and timeouts."""

import json
import socket
import time

from conftest import base_config, connect, free_port, parse_response, parse_responses, read_until_close, request, send_raw


def local_reply(r, status, error):
    assert r.status == status, (r.status, r.body)
    body = r.json()
    assert body["error"] == error and body["status"] == status
    assert body["request_id"] == r.header("X-Request-Id")
    assert r.header("Content-Type") == "application/json"
    assert set(body) == {"error", "status", "request_id"}


def test_no_route_is_404(gateway, upstream):
    g = gateway(routes=[{"match": {"path_prefix": "/api/"}, "upstream": "app"}])
    local_reply(request(g.port, path="/other"), 404, "not_found")
    assert upstream.requests == []


def test_upstream_refused_is_502(gateway, upstream):
    port = free_port()
    g = gateway(config=base_config("127.0.0.1:%d" % free_port(), port), port=port)
    local_reply(request(g.port, path="/x"), 502, "bad_gateway")
    log = g.access_log(wait_for=1)[-1]
    assert log["status"] == 502 and log["upstream"] == "app"


def test_upstream_timeout_is_504(gateway, upstream):
    port = free_port()
    cfg = base_config(upstream.address, port)
    cfg["upstreams"]["app"]["response_timeout"] = "300ms"
    g = gateway(config=cfg, port=port)
    local_reply(request(g.port, path="/sleep/2000"), 504, "gateway_timeout")
    assert g.access_log(wait_for=1)[-1]["detail"] == "upstream response timeout"


def test_connect_timeout_is_504(gateway, upstream):
    # A loopback listener whose accept queue is full drops further SYNs, so
    # the gateway's connect never completes: a connect timeout, on loopback.
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fillers = []
    for _ in range(3):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(lst.getsockname())
        fillers.append(f)
    time.sleep(0.1)
    port = free_port()
    cfg = base_config("127.0.0.1:%d" % lst.getsockname()[1], port)
    cfg["upstreams"]["app"]["connect_timeout"] = "200ms"
    g = gateway(config=cfg, port=port)
    local_reply(request(g.port, path="/slow"), 504, "gateway_timeout")
    assert g.access_log(wait_for=1)[-1]["detail"] == "upstream connect timeout"
    for f in fillers:
        f.close()
    lst.close()


def test_second_server_used_when_first_refuses(gateway, upstream):
    port = free_port()
    cfg = base_config(upstream.address, port)
    cfg["upstreams"]["app"]["servers"] = ["127.0.0.1:%d" % free_port(), upstream.address]
    g = gateway(config=cfg, port=port)
    for i in range(4):
        assert request(g.port, path="/rr%d" % i).status == 200


def test_malformed_upstream_responses_are_502(gateway, upstream):
    g = gateway()
    for name in ("bad-status", "cl-te", "two-cl", "bad-header", "bare-lf", "http09", "switch", "nul"):
        r = request(g.port, path="/raw/" + name)
        local_reply(r, 502, "bad_gateway")


def test_interim_responses_skipped(gateway, upstream):
    g = gateway()
    r = request(g.port, path="/raw/interim")
    assert r.status == 200 and r.body == b"ok"


def test_truncated_upstream_body_closes_client(gateway, upstream):
    g = gateway()
    data = send_raw(g.port, b"GET /raw/truncated HTTP/1.1\r\nHost: a\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b"only-a-bit"  # the client sees a short body and a closed connection
    assert b"Content-Length: 100" in head


def test_invalid_chunked_from_upstream_closes_client(gateway, upstream):
    g = gateway()
    data = send_raw(g.port, b"GET /raw/bad-chunk HTTP/1.1\r\nHost: a\r\n\r\n")
    # a 502 when the error is seen before the head went out, else a cut connection
    assert data.startswith(b"HTTP/1.1 502") or data.startswith(b"HTTP/1.1 200")
    assert b"hello" not in data


def test_close_delimited_upstream_rechunked(gateway, upstream):
    g = gateway()
    r = request(g.port, path="/raw/close-delimited")
    assert r.status == 200 and r.body == b"until-close"
    assert r.header("Transfer-Encoding") == "chunked"


def test_idempotent_request_retried_once(gateway, upstream):
    g = gateway()
    # /close: the upstream reads the request and closes without answering
    local_reply(request(g.port, path="/close"), 502, "bad_gateway")
    reqs = upstream.wait_requests(2)
    assert [r.target for r in reqs] == ["/close", "/close"], "GET retried exactly once"
    assert reqs[0].conn_id != reqs[1].conn_id, "retry used a fresh connection"
    upstream.reset()
    local_reply(request(g.port, method="POST", path="/close", body=b"x"), 502, "bad_gateway")
    time.sleep(0.2)
    assert len(upstream.requests) == 1, "POST is never retried"


def test_stale_pooled_connection_is_retried(gateway, upstream):
    g = gateway(workers=1)
    assert request(g.port, path="/warm").status == 200
    # kill the upstream's side of the pooled connection behind the gateway's back
    for c in list(upstream.conns):
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    time.sleep(0.05)
    assert request(g.port, path="/after").status == 200


def test_content_length_over_limit_is_413_before_body(gateway, upstream):
    g = gateway(limits={"max_body": "1KiB"})
    s = connect(g.port)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n")
    r, _ = parse_response(read_until_close(s))
    local_reply(r, 413, "content_too_large")
    assert upstream.requests == []
    r = request(g.port, method="POST", path="/x", body=b"a" * 1024)
    assert r.status == 200


def test_expect_100_continue(gateway, upstream):
    g = gateway(limits={"max_body": "1KiB"})
    s = connect(g.port)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
    first = s.recv(100)
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(b"hello")
    r, _ = parse_response(read_until_close(s))
    assert r.status == 200 and r.json()["body_len"] == 5
    req = upstream.wait_requests(1)[0]
    assert not req.header("Expect")
    # too big: 413 at once, no 100
    s = connect(g.port)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
    data = read_until_close(s)
    assert data.startswith(b"HTTP/1.1 413")
    # an unknown expectation: 417
    r = request(g.port, method="POST", path="/x", headers=[("Expect", "teapot")], body=b"x")
    local_reply(r, 417, "expectation_failed")


def test_chunked_body_over_limit_is_413_midstream(gateway, upstream):
    g = gateway(limits={"max_body": "10KiB"})
    s = connect(g.port)
    s.sendall(b"POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(20):
        try:
            s.sendall(b"400\r\n" + b"z" * 1024 + b"\r\n")
        except OSError:
            break
        time.sleep(0.01)
    r, _ = parse_response(read_until_close(s))
    local_reply(r, 413, "content_too_large")
    time.sleep(0.2)
    assert all(not r.complete for r in upstream.requests), "the upstream never sees a completed request"


def test_uri_and_header_limits(gateway, upstream):
    g = gateway(limits={"max_uri": "100", "max_header_bytes": "300", "max_headers": "5"})
    ok = request(g.port, path="/" + "a" * 99)
    assert ok.status == 200
    local_reply(request(g.port, path="/" + "a" * 100), 414, "uri_too_long")
    local_reply(request(g.port, path="/", headers=[("X-Big", "v" * 400)]), 431, "header_fields_too_large")
    local_reply(request(g.port, path="/", headers=[("X-%d" % i, "v") for i in range(6)]), 431,
                "header_fields_too_large")
    assert [r.target for r in upstream.requests] == ["/" + "a" * 99]


def test_header_timeout_is_408(gateway, upstream):
    g = gateway(limits={"header_timeout": "300ms"})
    s = connect(g.port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
    # A field every 50 ms for 600 ms, then the end of the head: were the
    # deadline reset by each byte, this head would complete and get a 200.
    for _ in range(12):
        time.sleep(0.05)
        try:
            s.sendall(b"X: y\r\n")
        except OSError:
            break
    try:
        s.sendall(b"\r\n")
    except OSError:
        pass
    r, _ = parse_response(read_until_close(s))
    local_reply(r, 408, "request_timeout")
    assert upstream.requests == []


def test_silent_connection_closed_after_header_timeout(gateway, upstream):
    g = gateway(limits={"header_timeout": "200ms"})
    s = connect(g.port, timeout=5)
    assert s.recv(10) == b""  # closed by the gateway (a timeout here would raise)


def test_body_timeout_is_408(gateway, upstream):
    g = gateway(limits={"body_timeout": "300ms"})
    s = connect(g.port)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    r, _ = parse_response(read_until_close(s))
    local_reply(r, 408, "request_timeout")


def test_idle_keepalive_closed(gateway, upstream):
    g = gateway(limits={"idle_timeout": "200ms"})
    s = connect(g.port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    data = read_until_close(s)
    assert data.startswith(b"HTTP/1.1 200")


def test_local_reply_keeps_connection_when_body_was_read(gateway, upstream):
    g = gateway(routes=[{"match": {"path_prefix": "/api/"}, "upstream": "app"}])
    raw = b"POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    resps = parse_responses(send_raw(g.port, raw))
    assert [r.status for r in resps] == [404, 200]


def test_access_log_fields(gateway, upstream):
    g = gateway()
    request(g.port, path="/logged?q=secret", headers=[("X-Request-Id", "rid-1")])
    request(g.port, path="/a/%2e%2e/b")
    logs = g.access_log(wait_for=2)
    ok = [l for l in logs if l["request_id"] == "rid-1"][0]
    for k in ("ts", "request_id", "client_ip", "method", "path", "status", "bytes_in", "bytes_out",
              "duration_ms", "upstream", "upstream_ms", "route", "user", "blocked_by", "rules"):
        assert k in ok
    assert ok["path"] == "/logged" and ok["status"] == 200 and ok["client_ip"] == "127.0.0.1"
    assert ok["route"] == "routes[0]" and ok["upstream"] == "app" and ok["blocked_by"] is None
    bad = [l for l in logs if l["status"] == 400][0]
    assert bad["blocked_by"] == "malformed"


def test_trusted_proxy_xff_sets_client_ip(gateway, upstream):
    g = gateway(trusted_proxies=["127.0.0.0/8"])
    request(g.port, path="/t", headers=[("X-Forwarded-For", "203.0.113.9, 10.1.1.1")])
    request(g.port, path="/t2", headers=[("X-Forwarded-For", "203.0.113.9, 127.0.0.5")])
    logs = g.access_log(wait_for=2)
    by_path = {l["path"]: l["client_ip"] for l in logs}  # workers flush in their own order
    assert by_path["/t"] == "10.1.1.1"
    assert by_path["/t2"] == "203.0.113.9"


def test_untrusted_peer_xff_ignored(gateway, upstream):
    g = gateway(trusted_proxies=["10.0.0.0/8"])
    request(g.port, path="/t", headers=[("X-Forwarded-For", "203.0.113.9")])
    assert g.access_log(wait_for=1)[0]["client_ip"] == "127.0.0.1"


def test_slow_body_cut_by_min_body_rate(gateway, upstream):
    g = gateway(limits={"min_body_rate": "100/300ms", "body_timeout": "10s"})
    s = connect(g.port)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n")
    # 10 bytes every 100 ms: never silent (body_timeout never fires), but 33 B/s
    for _ in range(30):
        try:
            s.sendall(b"x" * 10)
        except OSError:
            break
        time.sleep(0.1)
    r, _ = parse_response(read_until_close(s))
    local_reply(r, 408, "request_timeout")


def test_fast_enough_body_passes_min_body_rate(gateway, upstream):
    g = gateway(limits={"min_body_rate": "100/300ms"})
    s = connect(g.port)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")
    for _ in range(5):
        s.sendall(b"x" * 200)
        time.sleep(0.1)
    r, _ = parse_response(read_until_close(s))
    assert r.status == 200 and r.json()["body_len"] == 1000


def test_max_connections_per_ip(gateway, upstream):
    g = gateway(limits={"max_connections_per_ip": "3"})
    time.sleep(0.3)  # let the fixture's readiness probe connection be closed and uncounted
    held = [connect(g.port) for _ in range(3)]
    for s in held:  # an answer proves the connection was accepted and counted
        s.sendall(b"GET /held HTTP/1.1\r\nHost: a\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    extra = connect(g.port)
    extra.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_until_close(extra) == b""  # refused: closed at once
    held[0].close()
    time.sleep(0.2)
    assert request(g.port, path="/again").status == 200


def test_max_connections_pauses_accept(gateway, upstream):
    g = gateway(workers=1, limits={"max_connections": "2", "max_connections_per_ip": "2"})
    a, b = connect(g.port), connect(g.port)
    time.sleep(0.1)
    c = connect(g.port)  # completes in the kernel backlog but is not served yet
    c.sendall(b"GET /late HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    c.settimeout(0.3)
    try:
        got = c.recv(100)
    except socket.timeout:
        got = None
    assert got is None, "served past max_connections"
    a.close()
    c.settimeout(5)
    r, _ = parse_response(read_until_close(c))
    assert r.status == 200
    b.close()
