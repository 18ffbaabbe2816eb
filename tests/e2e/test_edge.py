"""Edge policies: IP rules on the real client address, CORS, per-route size
limits, security headers and dry-run mode."""

import json
import os
import subprocess
import time

from conftest import BIN, base_config, connect, free_port, parse_response, read_until_close, request
from test_tls import https_request, pki, tls_config  # noqa: F401 (pki is a fixture)

SEC_DEFAULTS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def start(gateway, cfg, **kw):
    port = int(cfg["listeners"][0]["address"].rsplit(":", 1)[1])
    return gateway(cfg, port=port, **kw)


def config(upstream, **extra):
    return base_config(upstream.address, free_port(), **extra)


def wait_lines(path, n, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        lines = []
        if os.path.exists(path):
            with open(path, "rb") as f:
                lines = [json.loads(l) for l in f.read().splitlines() if l.strip()]
        if len(lines) >= n or time.time() > deadline:
            return lines
        time.sleep(0.05)


def check(tmp_path, cfg):
    path = os.path.join(str(tmp_path), "check.yaml")
    with open(path, "w") as f:
        json.dump(cfg, f)
    p = subprocess.run([BIN, "-t", "-c", path], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr + p.stdout


# ---- IP rules ----


def test_ip_deny_and_allow(gateway, upstream):
    cfg = config(upstream, ip_rules={"deny": ["127.0.0.0/8"]})
    g = start(gateway, cfg)
    r = request(g.port, path="/x")
    assert r.status == 403 and r.json()["error"] == "forbidden"
    # even where no route matches: the rules come first
    cfg2 = config(upstream, ip_rules={"allow": ["10.0.0.0/8", "2001:db8::/32"]})
    cfg2["routes"] = [{"match": {"path_prefix": "/api/"}, "upstream": "app"}]
    g2 = start(gateway, cfg2)
    assert request(g2.port, path="/nothing-here").status == 403
    assert upstream.requests == []
    log = g.access_log(wait_for=1)
    assert log[0]["blocked_by"] == "ip"


def test_route_ip_rules_apply_to_their_route_only(gateway, upstream):
    cfg = config(upstream)
    cfg["routes"] = [{"name": "admin", "match": {"path_prefix": "/admin/"}, "upstream": "app",
                      "ip_rules": {"allow": ["192.0.2.0/24"]}},
                     {"match": {"path_prefix": "/"}, "upstream": "app"}]
    g = start(gateway, cfg)
    assert request(g.port, path="/admin/x").status == 403
    assert request(g.port, path="/public").status == 200
    assert [r.target for r in upstream.requests] == ["/public"]


def test_forwarded_for_is_believed_only_from_trusted_proxies(gateway, upstream):
    # untrusted peer: a spoofed X-Forwarded-For changes nothing
    g = start(gateway, config(upstream, ip_rules={"allow": ["203.0.113.0/24"]}))
    assert request(g.port, path="/x", headers=[("X-Forwarded-For", "203.0.113.9")]).status == 403
    g2 = start(gateway, config(upstream, ip_rules={"deny": ["203.0.113.0/24"]}))
    assert request(g2.port, path="/x", headers=[("X-Forwarded-For", "203.0.113.9")]).status == 200
    # trusted peer: the right-most address that is not a trusted proxy counts
    g3 = start(gateway, config(upstream, ip_rules={"deny": ["203.0.113.0/24"]},
                               trusted_proxies=["127.0.0.1/32", "10.0.0.0/8"]))
    r = request(g3.port, path="/y", headers=[("X-Forwarded-For", "203.0.113.9, 10.1.2.3")])
    assert r.status == 403
    r = request(g3.port, path="/z", headers=[("X-Forwarded-For", "203.0.113.9, 198.51.100.7")])
    assert r.status == 200  # 198.51.100.7 is the client; what it claims before is not believed
    # an empty entry stops the walk like any entry that is not an address,
    # a leading one too: 10.1.2.3 is the client, 203.0.113.9 is not read
    r = request(g3.port, path="/e", headers=[("X-Forwarded-For", "203.0.113.9"),
                                             ("X-Forwarded-For", ", 10.1.2.3")])
    assert r.status == 200
    r = request(g3.port, path="/f", headers=[("X-Forwarded-For", "203.0.113.9"),
                                             ("X-Forwarded-For", "10.1.2.3")])
    assert r.status == 403


# ---- CORS ----

WEB = {"origins": ["https://app.example.com", "https://*.example.com"], "methods": ["GET", "POST", "PUT"],
       "headers": ["Authorization", "Content-Type"], "expose": ["X-Request-Id"], "credentials": True,
       "max_age": "5m"}


def cors_gateway(gateway, upstream, policy=WEB, **kw):
    cfg = config(upstream, cors={"web": policy})
    cfg["routes"][0]["cors"] = "web"
    return start(gateway, cfg, **kw)


def preflight(port, origin, method="PUT", headers=None):
    h = [("Origin", origin), ("Access-Control-Request-Method", method)]
    if headers:
        h.append(("Access-Control-Request-Headers", headers))
    return request(port, method="OPTIONS", path="/api/x", headers=h)


def test_cors_preflight_is_answered_by_the_gateway(gateway, upstream):
    g = cors_gateway(gateway, upstream)
    r = preflight(g.port, "https://app.example.com", headers="authorization, content-type")
    assert r.status == 204
    assert r.header("access-control-allow-origin") == "https://app.example.com"
    assert r.header("access-control-allow-credentials") == "true"
    assert r.header("access-control-allow-methods") == "GET, POST, PUT"
    assert r.header("access-control-allow-headers") == "authorization, content-type"
    assert r.header("access-control-max-age") == "300"
    assert "Origin" in ", ".join(r.headers_named("vary"))
    # refused: origin, method, header
    for o, m, h in [("https://evil.example.net", "PUT", None), ("https://app.example.com", "DELETE", None),
                    ("https://app.example.com", "PUT", "x-secret")]:
        r = preflight(g.port, o, m, h)
        assert r.status == 403 and r.header("access-control-allow-origin") is None
    assert upstream.requests == []  # no preflight ever reached the upstream
    log = g.access_log(wait_for=4)
    # (two workers buffer their lines: the order is not the requests')
    assert sorted(l["blocked_by"] or "" for l in log) == ["", "cors", "cors", "cors"]


def test_cors_wildcard_refuses_look_alikes(gateway, upstream):
    g = cors_gateway(gateway, upstream)
    for ok in ["https://a.example.com", "https://a.b.example.com"]:
        assert preflight(g.port, ok).status == 204, ok
    for bad in ["https://example.com", "https://evil-example.com", "https://example.com.evil.net",
                "http://a.example.com", "https://a.example.com:8443", "null"]:
        assert preflight(g.port, bad).status == 403, bad
    assert upstream.requests == []


def test_cors_on_actual_requests(gateway, upstream):
    g = cors_gateway(gateway, upstream)
    r = request(g.port, path="/api/x", headers=[("Origin", "https://app.example.com")])
    assert r.status == 200
    assert r.header("access-control-allow-origin") == "https://app.example.com"
    assert r.header("access-control-expose-headers") == "X-Request-Id"
    assert "Origin" in ", ".join(r.headers_named("vary"))
    r = request(g.port, path="/api/y", headers=[("Origin", "https://evil.example.net")])
    assert r.status == 200  # forwarded; the browser withholds it
    assert not [k for k, _ in r.headers if k.lower().startswith("access-control-")]
    assert "Origin" in ", ".join(r.headers_named("vary"))
    assert len(upstream.requests) == 2


def test_cors_any_origin_without_credentials(gateway, upstream):
    g = cors_gateway(gateway, upstream, {"origins": ["*"]})
    r = request(g.port, path="/api/x", headers=[("Origin", "https://whoever.test")])
    assert r.header("access-control-allow-origin") == "*"
    assert "Origin" not in ", ".join(r.headers_named("vary"))  # the answer does not depend on it


def test_cors_config_errors(tmp_path, upstream):
    cfg = config(upstream, cors={"web": {"origins": ["*"], "credentials": True}})
    cfg["routes"][0]["cors"] = "web"
    rc, out = check(tmp_path, cfg)
    assert rc == 1 and "credentials" in out
    cfg = config(upstream, cors={"web": {"origins": ["https://a.test/path", "ftp//x"]}})
    cfg["routes"][0]["cors"] = "wbe"
    rc, out = check(tmp_path, cfg)
    assert rc == 1 and "is not an origin" in out and "unknown CORS policy 'wbe' (did you mean 'web'?)" in out


def test_cors_stage_override(gateway, upstream):
    cfg = config(upstream, cors={"web": WEB},
                 stages={"dev": {"cors": {"web": {"origins": ["*"], "credentials": False}}}})
    cfg["routes"][0]["cors"] = "web"
    g = start(gateway, cfg, stage="dev")
    r = preflight(g.port, "http://localhost:3000")
    assert r.status == 204 and r.header("access-control-allow-origin") == "*"


# ---- size limits per route ----


def test_route_limits(gateway, upstream):
    cfg = config(upstream)
    cfg["waf"] = {"mode": "off"}  # the limits alone (the WAF refuses a 40 KB header too)
    cfg["routes"] = [
        {"name": "tight", "match": {"path_prefix": "/tight/"}, "upstream": "app",
         "limits": {"max_uri": 128, "max_headers": 5, "max_body": "1KiB"}},
        {"name": "roomy", "match": {"path_prefix": "/roomy/"}, "upstream": "app",
         "limits": {"max_header_bytes": "64KiB"}},
        {"match": {"path_prefix": "/"}, "upstream": "app"}]
    g = start(gateway, cfg)
    long = "a" * 200
    assert request(g.port, path="/tight/" + long).status == 414
    assert request(g.port, path="/other/" + long).status == 200
    assert request(g.port, path="/tight/x", headers=[("X-%d" % i, "v") for i in range(6)]).status == 431
    big = [("X-Big", "v" * 40000)]  # over the default 32KiB
    assert request(g.port, path="/roomy/x", headers=big).status == 200
    assert request(g.port, path="/other/x", headers=big).status == 431
    # Content-Length over the route's max_body: 413 before any body byte is sent
    s = connect(g.port)
    s.sendall(b"POST /tight/up HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
    r, _ = parse_response(read_until_close(s))
    assert r.status == 413
    assert request(g.port, method="POST", path="/tight/ok", body=b"x" * 1000).status == 200
    assert [r.target for r in upstream.requests] == ["/other/" + long, "/roomy/x", "/tight/ok"]


def test_chunked_upload_over_the_route_limit(gateway, upstream):
    cfg = config(upstream)
    cfg["routes"][0]["limits"] = {"max_body": "10MiB"}
    g = start(gateway, cfg)
    s = connect(g.port, timeout=20)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b"u" * 0x10000 + b"\r\n"
    sent = 0
    try:
        for _ in range(176):  # 11 MiB
            s.sendall(chunk)
            sent += 0x10000
    except OSError:
        pass
    r, _ = parse_response(read_until_close(s))
    assert r.status == 413
    time.sleep(0.2)
    assert upstream.requests and all(not q.complete for q in upstream.requests)
    assert all(q.body_len <= 10 * 1024 * 1024 for q in upstream.requests)
    # under the limit: intact
    body = b"v" * (3 * 1024 * 1024)
    r = request(g.port, method="POST", path="/fits", body=body)
    assert r.status == 200 and r.json()["body_len"] == len(body)


# ---- security headers ----


def test_security_headers_everywhere(gateway, upstream):
    g = start(gateway, config(upstream))
    for r in [request(g.port, path="/raw/hop"), request(g.port, path="/missing", host=None),
              request(g.port, path="/" + "a" * 9000),
              request(g.port, method="POST", path="/x", headers=[("Content-Length", "1"),
                                                                 ("Transfer-Encoding", "chunked")])]:
        for k, v in SEC_DEFAULTS.items():
            assert r.headers_named(k) == [v], (r.status, k)
        assert r.header("strict-transport-security") is None  # plain HTTP


def test_upstream_server_headers_are_removed_and_replaced(gateway, upstream):
    g = start(gateway, config(upstream))
    r = request(g.port, path="/raw/sec")
    assert r.status == 200
    assert r.header("server") is None and r.header("x-powered-by") is None
    assert r.headers_named("x-frame-options") == ["DENY"]  # the gateway's, once
    assert r.header("x-kept") == "yes"


def test_route_security_header_overrides(gateway, upstream):
    cfg = config(upstream)
    cfg["routes"] = [{"match": {"host": "page.test"}, "upstream": "app",
                      "security_headers": {"frame_options": "SAMEORIGIN", "content_security_policy": "off",
                                           "remove": []}},
                     {"match": {"path_prefix": "/"}, "upstream": "app"}]
    g = start(gateway, cfg)
    r = request(g.port, path="/raw/sec", host="page.test")
    assert r.header("x-frame-options") == "SAMEORIGIN"
    assert r.header("content-security-policy") is None
    assert r.header("server") == "legacy/1.0"  # this route removes nothing
    assert r.header("x-content-type-options") == "nosniff"  # inherited
    r = request(g.port, path="/raw/sec")
    assert r.header("x-frame-options") == "DENY" and r.header("content-security-policy")
    assert r.header("server") is None


def test_hsts_on_tls_listeners(gateway, upstream, pki):  # noqa: F811
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki), port=port)
    head, _ = https_request(port, "/h")
    assert "strict-transport-security: max-age=31536000; includesubdomains" in head.lower()


# ---- dry run ----


def test_dry_run_lets_through_what_enforce_blocks(gateway, upstream, tmp_path):
    sec = str(tmp_path / "sec.log")
    aport = free_port()
    route = {"match": {"path_prefix": "/"}, "upstream": "app", "ip_rules": {"deny": ["127.0.0.0/8"]},
             "cors": "web", "limits": {"max_uri": 128}}
    cfg = config(upstream, cors={"web": WEB}, logging={"security": {"path": sec}},
                 admin={"address": "127.0.0.1:%d" % aport})
    cfg["routes"] = [dict(route, dry_run=True)]
    g = start(gateway, cfg)
    g.wait_listening(aport)
    assert request(g.port, path="/a").status == 200
    assert preflight(g.port, "https://evil.example.net").status == 200  # forwarded, not refused
    assert request(g.port, path="/" + "b" * 200).status == 200
    assert len(upstream.requests) == 3
    lines = wait_lines(sec, 3)
    assert len(lines) == 3 and all(l["dry_run"] for l in lines)
    assert [l["reason"] for l in lines] == ["ip", "ip", "ip"]
    assert all(l["would_status"] == 403 and l["status"] == 200 for l in lines)
    assert any("cors" in json.dumps(l) or "origin" in " ".join(l["messages"]) for l in lines)
    assert any("max_uri" in " ".join(l["messages"]) for l in lines)
    m = request(aport, path="/metrics").body.decode()
    assert 'portcullis_dry_run_total{reason="ip"} 3' in m
    assert 'portcullis_blocked_total{reason="ip"} 0' in m
    # the same route enforcing
    cfg["routes"] = [route]
    cfg["listeners"] = [{"address": "127.0.0.1:%d" % free_port()}]
    del cfg["admin"]
    g2 = start(gateway, cfg)
    assert request(g2.port, path="/a").status == 403
