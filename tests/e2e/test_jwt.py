"""JWT authentication end to end: every algorithm, every attack of the issue,
scopes and claims, forwarded claim headers, JWKS files and URLs (rotation by
refresh and by unknown kid, an unreachable server, HTTPS), revocation through
the admin API, dry-run. Keys come from the openssl CLI, tokens from
jose_util (a second, independent implementation)."""

import http.server
import json
import os
import signal
import ssl
import subprocess
import threading
import time

import pytest

from conftest import BUILD, Redis, base_config, free_port, poll, request
from jose_util import Key, b64u, jwks, token, unsigned

ISS = "https://issuer.test/"
SECRET = b"s" * 32
ASYM = {"RS256": "rsa", "RS384": "rsa", "RS512": "rsa", "PS256": "rsa", "PS384": "rsa", "PS512": "rsa",
        "ES256": "p256", "ES384": "p384", "ES512": "p521", "EdDSA": "ed"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("keys"))
    ks = {"rsa": Key(d, "rsa", "RSA", "rsa1"), "p256": Key(d, "p256", "P-256", "ec256"),
          "p384": Key(d, "p384", "P-384", "ec384"), "p521": Key(d, "p521", "P-521", "ec521"),
          "ed": Key(d, "ed", "Ed25519", "ed1"), "rsa2": Key(d, "rsa2", "RSA", "rsa2"),
          "evil": Key(d, "evil", "RSA", "rsa1"), "evil_ec": Key(d, "evil_ec", "P-256", "ec256")}
    path = os.path.join(d, "jwks.json")
    with open(path, "w") as f:
        json.dump(jwks(ks["rsa"], ks["p256"], ks["p384"], ks["p521"], ks["ed"]), f)
    ks["jwks_file"] = path
    return ks


def claims(**over):
    now = int(time.time())
    c = {"iss": ISS, "aud": "api", "sub": "alice", "exp": now + 300, "iat": now, "scope": "orders:read"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def provider(**over):
    p = {"issuer": ISS, "audiences": ["api"], "forward_claims": {"sub": "X-User-Id", "scope": "X-Scope"}}
    p.update(over)
    return p


def start(gateway, upstream, providers, routes=None, **extra):
    port = free_port()
    cfg = base_config(upstream.address, port, jwt={"providers": providers}, **extra)
    cfg["routes"] = routes or [
        {"match": {"path_prefix": "/api/"}, "upstream": "app", "auth": {"jwt": "main"}},
        {"match": {"path_prefix": "/"}, "upstream": "app"},
    ]
    return gateway(config=cfg, port=port)


def get(g, tok=None, path="/api/x", headers=None):
    h = list((headers or {}).items())
    if tok is not None:
        h.append(("Authorization", "Bearer " + tok))
    return request(g.port, path=path, headers=h)


def one(req, name):
    """The value of a header the upstream received once, or None."""
    v = req.header(name)
    assert len(v) <= 1, (name, v)
    return v[0] if v else None


def assert_401(r, why=None):
    assert r.status == 401, (r.status, r.body)
    www = r.header("WWW-Authenticate")
    assert www.startswith('Bearer realm="portcullis", error="invalid_token"'), www
    assert r.json()["error"] == "invalid_token"
    if why:
        assert why in www, www


def test_every_algorithm_is_accepted(gateway, upstream, keys):
    g = start(gateway, upstream, {
        "main": provider(jwks_file=keys["jwks_file"]),
        "hs": provider(secret=SECRET.decode() * 2, algorithms=["HS256", "HS384", "HS512"]),
    }, routes=[
        {"match": {"path_prefix": "/api/"}, "upstream": "app", "auth": {"jwt": "main"}},
        {"match": {"path_prefix": "/hs/"}, "upstream": "app", "auth": {"jwt": "hs"}},
    ])
    for alg, name in ASYM.items():
        r = get(g, token(alg, keys[name], claims(sub="u-" + alg)))
        assert r.status == 200, (alg, r.status, r.body)
        assert one(upstream.requests[-1], "X-User-Id") == "u-" + alg
    for alg in ("HS256", "HS384", "HS512"):
        r = get(g, token(alg, SECRET * 2, claims(sub="h-" + alg)), path="/hs/x")
        assert r.status == 200, (alg, r.body)
        assert one(upstream.requests[-1], "X-User-Id") == "h-" + alg
    log = [l for l in g.access_log(wait_for=13) if l["status"] == 200]
    assert sorted(l["user"] for l in log) == sorted(["u-" + a for a in ASYM] + ["h-HS256", "h-HS384", "h-HS512"])


def test_attacks_are_refused(gateway, upstream, keys):
    g = start(gateway, upstream, {"main": provider(jwks_file=keys["jwks_file"],
                                                   algorithms=["RS256", "ES256", "HS256"])})
    rsa, ec = keys["rsa"], keys["p256"]
    with open(rsa.pub, "rb") as f:
        rsa_pub_pem = f.read()
    good = token("RS256", rsa, claims())
    head, payload, sig = good.split(".")
    evil_jwk = keys["evil"].jwk
    cases = {
        "alg none": unsigned(claims()),
        "alg NoNe": unsigned(claims(), alg="NoNe"),
        "alg none with a signature": unsigned(claims()) + sig,
        "HS256 signed with the RSA public key": token("HS256", rsa_pub_pem, claims(), header={"kid": "rsa1"}),
        "HS256 signed with the EC public key": token("HS256", open(ec.pub, "rb").read(), claims(),
                                                     header={"kid": "ec256"}),
        "empty signature": head + "." + payload + ".",
        "wrong key": token("RS256", keys["evil"], claims()),
        "unknown kid": token("RS256", keys["rsa2"], claims()),
        "expired": token("RS256", rsa, claims(exp=int(time.time()) - 120)),
        "not yet valid": token("RS256", rsa, claims(nbf=int(time.time()) + 300)),
        "issued in the future": token("RS256", rsa, claims(iat=int(time.time()) + 300)),
        "no exp": token("RS256", rsa, claims(exp=None)),
        "wrong issuer": token("RS256", rsa, claims(iss="https://evil.test/")),
        "wrong audience": token("RS256", rsa, claims(aud=["other", "x"])),
        "crit header": token("RS256", rsa, claims(), header={"crit": ["exp"], "exp": 1}),
        "oversized": token("RS256", rsa, claims(pad="x" * 17000)),
        "padding in base64": head + "=." + payload + "." + sig,
        "bad base64 character": head + "." + payload[:-2] + "*" + payload[-1:] + "." + sig,
        "payload altered": head + "." + b64u(json.dumps(claims(sub="root")).encode()) + "." + sig,
        "duplicate claims": token("RS256", rsa, None, raw_payload=(
            '{"iss":"%s","aud":"api","exp":%d,"sub":"alice","sub":"root"}' % (ISS, time.time() + 300)).encode()),
        "duplicate header names": None,  # built below
        "ECDSA r=s=0": ".".join(token("ES256", ec, claims()).split(".")[:2]) + "." + b64u(b"\0" * 64),
        "ECDSA r=s=n": None,
        "embedded jwk": token("RS256", keys["evil"], claims(), header={"jwk": evil_jwk}, kid=False),
        "jku to the attacker": token("RS256", keys["evil"], claims(), header={"jku": "http://127.0.0.1:1/k"}),
        "x5u to the attacker": token("RS256", keys["evil"], claims(), header={"x5u": "http://127.0.0.1:1/c"}),
        "ES256 with the attacker's curve point": token("ES256", keys["evil_ec"], claims()),
        "two dots missing": head + "." + payload,
        "four parts": good + ".x",
    }
    dup_head = b64u(b'{"alg":"HS256","alg":"RS256","kid":"rsa1"}')
    cases["duplicate header names"] = dup_head + "." + payload + "." + sig
    n256 = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
    cases["ECDSA r=s=n"] = ".".join(token("ES256", ec, claims()).split(".")[:2]) + "." + \
        b64u(n256.to_bytes(32, "big") * 2)
    upstream.reset()
    for name, tok in cases.items():
        r = get(g, tok)
        assert r.status == 401, (name, r.status, r.body)
        assert_401(r)
    assert upstream.requests == []
    for h in ([], [("Authorization", "Basic YTpi")], [("Authorization", "Bearer ")],
              [("Authorization", "Bearer " + good)] * 2):
        assert_401(request(g.port, path="/api/x", headers=h))
    assert_401(get(g), "missing bearer token")
    assert get(g, good).status == 200


def test_scopes_groups_and_claims(gateway, upstream, keys):
    routes = [
        {"match": {"path_prefix": "/read/"}, "upstream": "app",
         "auth": {"jwt": "main", "require": {"scope": "orders:read orders:list"}}},
        {"match": {"path_prefix": "/admin/"}, "upstream": "app",
         "auth": {"jwt": "main", "require": {"groups": ["admins", "ops"]}}},
        {"match": {"path_prefix": "/tenant/"}, "upstream": "app",
         "auth": {"jwt": "main", "require": {"claims": {"tenant": "acme", "email_verified": "true"}}}},
    ]
    g = start(gateway, upstream, {"main": provider(jwks_file=keys["jwks_file"])}, routes=routes)
    k = keys["p256"]

    def st(path, **c):
        return get(g, token("ES256", k, claims(**c)), path=path)

    assert st("/read/x", scope="orders:list orders:read").status == 200
    assert st("/read/x", scope=None, scp=["orders:read", "orders:list"]).status == 200
    r = st("/read/x", scope="orders:read")
    assert r.status == 403 and r.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in r.header("WWW-Authenticate")
    assert st("/read/x", scope="orders:readx orders:list").status == 403
    assert st("/admin/x", groups=["users", "ops"]).status == 200
    assert st("/admin/x", **{"cognito:groups": ["admins"]}).status == 200
    assert st("/admin/x", groups=["users"]).status == 403
    assert st("/admin/x").status == 403
    assert st("/tenant/x", tenant="acme", email_verified=True).status == 200
    assert st("/tenant/x", tenant=["x", "acme"], email_verified=True).status == 200
    assert st("/tenant/x", tenant="acme2", email_verified=True).status == 403
    assert st("/tenant/x", tenant="acme").status == 403


def test_claim_headers_are_forwarded_and_spoofs_removed(gateway, upstream, keys):
    g = start(gateway, upstream, {
        "main": provider(jwks_file=keys["jwks_file"],
                         forward_claims={"sub": "X-User-Id", "roles": "X-Roles", "n": "X-N", "obj": "X-Obj"}),
        "strip": provider(jwks_file=keys["jwks_file"], strip_token=True),
    }, routes=[
        {"match": {"path_prefix": "/api/"}, "upstream": "app", "auth": {"jwt": "main"}},
        {"match": {"path_prefix": "/strip/"}, "upstream": "app", "auth": {"jwt": "strip"}},
        {"match": {"path_prefix": "/"}, "upstream": "app", "auth": "none"},
    ])
    spoof = {"X-User-Id": "mallory", "x-roles": "admin", "X-Scope": "all"}
    tok = token("RS256", keys["rsa"], claims(roles=["a", "b"], n=7, obj={"x": 1}))
    assert get(g, path="/open", headers=spoof).status == 200
    seen = upstream.requests[-1]
    assert one(seen, "X-User-Id") is None and one(seen, "X-Roles") is None and one(seen, "X-Scope") is None
    assert get(g, tok, headers=spoof).status == 200
    seen = upstream.requests[-1]
    assert one(seen, "X-User-Id") == "alice" and one(seen, "X-Roles") == "a,b" and one(seen, "X-N") == "7"
    assert one(seen, "X-Obj") is None
    assert one(seen, "Authorization") == "Bearer " + tok  # unchanged
    assert get(g, tok, path="/strip/x").status == 200
    assert one(upstream.requests[-1], "Authorization") is None


def test_cached_token_still_expires_and_metrics_count(gateway, upstream, keys):
    g = start(gateway, upstream, {"main": provider(jwks_file=keys["jwks_file"], leeway="0s")},
              admin={"address": "127.0.0.1:%d" % free_port()})
    tok = token("ES256", keys["p256"], claims(exp=int(time.time()) + 2))
    for _ in range(5):
        assert get(g, tok).status == 200
    time.sleep(3.1)
    assert_401(get(g, tok), "token expired")
    assert_401(get(g, "x.y.z"))


class JwksServer:
    """Serves a JWKS that the test can change, stop and restart; counts fetches."""

    def __init__(self, doc, tls=None):
        self.doc, self.fetches, self.tls = doc, 0, tls
        self.port = free_port()
        self.httpd = None

    def start(self):
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.fetches += 1
                body = json.dumps(outer.doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, scheme="http"):
        return "%s://127.0.0.1:%d/jwks.json" % (scheme, self.port)


def test_jwks_url_rotation_by_refresh(gateway, upstream, keys):
    srv = JwksServer(jwks(keys["rsa"])).start()
    try:
        g = start(gateway, upstream, {"main": provider(jwks_url=srv.url(), jwks_refresh="1s")})
        a = token("RS256", keys["rsa"], claims())
        assert poll(lambda: get(g, a).status == 200)
        srv.doc = jwks(keys["p256"])  # rotate: rsa1 gone, ec256 in
        b = token("ES256", keys["p256"], claims())
        assert poll(lambda: get(g, b).status == 200)
        assert_401(get(g, a), "unknown key id")  # a cached verification does not outlive its key
    finally:
        srv.stop()


def test_jwks_url_unknown_kid_refetch_once_a_minute(gateway, upstream, keys):
    srv = JwksServer(jwks(keys["rsa"])).start()
    try:
        g = start(gateway, upstream, {"main": provider(jwks_url=srv.url(), jwks_refresh="10m")})
        assert poll(lambda: get(g, token("RS256", keys["rsa"], claims())).status == 200)
        assert srv.fetches == 1
        srv.doc = jwks(keys["rsa"], keys["p256"])
        b = token("ES256", keys["p256"], claims())
        assert poll(lambda: get(g, b).status == 200, timeout=5)
        assert srv.fetches == 2
        srv.doc = jwks(keys["rsa"], keys["p256"], keys["p384"])
        c = token("ES384", keys["p384"], claims())
        for _ in range(10):
            assert get(g, c).status == 401
            time.sleep(0.1)
        assert srv.fetches == 2  # at most one unknown-kid refetch a minute
    finally:
        srv.stop()


def test_jwks_unreachable_then_up_then_down(gateway, upstream, keys):
    srv = JwksServer(jwks(keys["rsa"]))
    port = free_port()
    admin = free_port()
    cfg = base_config(upstream.address, port, jwt={"providers": {"main": provider(jwks_url=srv.url(), jwks_refresh="1s")}},
                      admin={"address": "127.0.0.1:%d" % admin, "token": "t0k"})
    cfg["routes"] = [{"match": {"path_prefix": "/"}, "upstream": "app", "auth": {"jwt": "main"}}]
    g = gateway(config=cfg, port=port)
    tok = token("RS256", keys["rsa"], claims())
    r = get(g, tok)
    assert r.status == 503 and r.json()["error"] == "jwks_unavailable"
    assert upstream.requests == []
    srv.start()
    try:
        assert poll(lambda: get(g, tok).status == 200, timeout=20)
    finally:
        srv.stop()
    time.sleep(2.5)  # refreshes fail now: the last good keys stay
    assert get(g, tok).status == 200
    st = request(admin, path="/admin/status", headers=[("Authorization", "Bearer t0k")]).json()
    assert st["jwks"][0]["keys"] == 1 and st["jwks"][0]["failures"] >= 1
    assert "JWKS fetch from" in g.stderr()


def test_jwks_over_https(gateway, upstream, keys, tmp_path):
    crt, key = str(tmp_path / "s.crt"), str(tmp_path / "s.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=jwks.test",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    srv = JwksServer(jwks(keys["ed"]), tls=(crt, key)).start()
    try:
        g = start(gateway, upstream, {
            "main": provider(jwks_url=srv.url("https"), jwks_ca=crt),
            "untrusted": provider(jwks_url=srv.url("https")),  # the system CAs do not know it
        }, routes=[
            {"match": {"path_prefix": "/api/"}, "upstream": "app", "auth": {"jwt": "main"}},
            {"match": {"path_prefix": "/u/"}, "upstream": "app", "auth": {"jwt": "untrusted"}},
        ])
        tok = token("EdDSA", keys["ed"], claims())
        assert poll(lambda: get(g, tok).status == 200)
        assert get(g, tok, path="/u/x").status == 503
    finally:
        srv.stop()


def test_revocation_through_the_admin_api(gateway, upstream, keys):
    admin = free_port()
    g = start(gateway, upstream, {"main": provider(jwks_file=keys["jwks_file"], revocation=True)},
              admin={"address": "127.0.0.1:%d" % admin, "token": "t0k"})
    exp = int(time.time()) + 300
    t1 = token("ES256", keys["p256"], claims(jti="id-1", exp=exp))
    t2 = token("ES256", keys["p256"], claims(jti="id-2", exp=exp))
    assert get(g, t1).status == 200 and get(g, t2).status == 200  # both cached now
    auth = [("Authorization", "Bearer t0k"), ("Content-Type", "application/json")]
    body = json.dumps({"jti": "id-1", "exp": exp}).encode()
    assert request(admin, "POST", "/admin/revoke", headers=[("Content-Type", "application/json")], body=body).status == 401
    r = request(admin, "POST", "/admin/revoke", headers=auth, body=body)
    assert r.status == 200 and r.json()["status"] == "revoked"
    r = get(g, t1)
    assert r.status == 403 and r.json()["error"] == "token_revoked"
    assert get(g, t2).status == 200
    for bad in (b"", b"{", b'{"jti":"x"}', b'{"jti":1,"exp":5}', b'{"jti":"","exp":5}',
                json.dumps({"jti": "x" * 300, "exp": exp}).encode()):
        assert request(admin, "POST", "/admin/revoke", headers=auth, body=bad).status == 400, bad
    r = request(admin, "POST", "/admin/revoke", headers=auth, body=b'{"jti":"old","exp":1000}')
    assert r.status == 200 and r.json()["status"] == "ignored"
    assert request(admin, "GET", "/admin/revoke", headers=auth).status == 405
    sec = request(admin, path="/admin/status", headers=auth).json()
    assert sec["revoked_tokens"] == 1


def test_dry_run_lets_requests_through_and_logs(gateway, upstream, keys):
    g = start(gateway, upstream, {"main": provider(jwks_file=keys["jwks_file"])}, routes=[
        {"match": {"path_prefix": "/"}, "upstream": "app", "auth": {"jwt": "main"}, "dry_run": True}],
        logging={"security": {"path": "stderr"}})
    r = get(g)
    assert r.status == 200 and r.header("WWW-Authenticate") is None  # no challenge on a pass
    assert get(g, "garbage").status == 200
    assert poll(lambda: g.stderr().count('"dry_run":true') == 2, timeout=3)


def test_plugins_read_the_verified_claims(gateway, upstream, keys):
    probe = os.path.join(BUILD, "plugins", "test_probe.so")
    g = start(gateway, upstream, {"main": provider(jwks_file=keys["jwks_file"])}, routes=[
        {"match": {"path_prefix": "/"}, "upstream": "app", "auth": {"jwt": "main"}, "plugins": ["probe"]}],
        plugins=[{"path": probe, "config": {}}])
    assert get(g, token("ES256", keys["p256"], claims(sub="carol"))).status == 200
    assert one(upstream.requests[-1], "X-Probe-Jwt") == "carol"


def test_revocation_shared_through_redis(gateway, upstream, keys, tmp_path):
    redis = Redis(tmp_path)
    try:
        gws = []
        for i in range(2):
            port, admin = free_port(), free_port()
            cfg = base_config(upstream.address, port,
                              jwt={"providers": {"main": provider(jwks_file=keys["jwks_file"], revocation=True)}},
                              redis={"address": "127.0.0.1:%d" % redis.port, "timeout": "200ms"},
                              admin={"address": "127.0.0.1:%d" % admin, "token": "t0k"})
            cfg["routes"] = [{"match": {"path_prefix": "/"}, "upstream": "app", "auth": {"jwt": "main"}}]
            g = gateway(config=cfg, port=port)
            g.admin = admin
            g.cfg = cfg
            gws.append(g)
        a, b = gws
        auth = [("Authorization", "Bearer t0k")]
        for g in gws:
            assert poll(lambda: request(g.admin, path="/readyz").status == 200)
        exp = int(time.time()) + 300
        tok = token("ES256", keys["p256"], claims(jti="shared-1", exp=exp))
        assert get(a, tok).status == 200 and get(b, tok).status == 200
        r = request(a.admin, "POST", "/admin/revoke", headers=auth, body=json.dumps({"jti": "shared-1", "exp": exp}).encode())
        assert r.status == 200, r.body
        assert get(a, tok).status == 403
        assert poll(lambda: get(b, tok).status == 403, timeout=5)  # through the channel
        assert 290 <= redis.cmd("TTL", "portcullis:revoked:shared-1") <= 300  # expires with the token
        # an instance that starts later loads the list from the keys
        port = free_port()
        cfg = dict(a.cfg, listeners=[{"name": "http", "address": "127.0.0.1:%d" % port}], admin=None)
        cfg.pop("admin")
        c = gateway(config=cfg, port=port, name="late")
        assert poll(lambda: get(c, tok).status == 403, timeout=5)
        # Redis hangs: the admin request waits at most redis.timeout
        redis.proc.send_signal(signal.SIGSTOP)
        try:
            r = request(a.admin, "POST", "/admin/revoke", headers=auth,
                        body=json.dumps({"jti": "hang-3", "exp": exp}).encode())
            assert r.status == 503 and r.json()["error"] == "redis_unavailable"
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        t3 = token("ES256", keys["p256"], claims(jti="hang-3", exp=exp))
        assert poll(lambda: get(b, t3).status == 403, timeout=5)  # published once Redis woke up
        # Redis gone: revoking still works on this instance, and says it is not shared
        redis.stop()
        t2 = token("ES256", keys["p256"], claims(jti="local-2", exp=exp))
        r = request(a.admin, "POST", "/admin/revoke", headers=auth, body=json.dumps({"jti": "local-2", "exp": exp}).encode())
        assert r.status == 503 and r.json()["error"] == "redis_unavailable"
        assert get(a, t2).status == 403 and get(b, t2).status == 200
        assert poll(lambda: request(a.admin, path="/readyz").status == 503)
        assert "redis not connected" in request(a.admin, path="/readyz").body.decode()
        assert get(b, tok).status == 403  # what was learnt stays
    finally:
        if redis.proc.poll() is None:
            redis.stop()


def test_sighup_rereads_the_jwks_file(gateway, upstream, keys, tmp_path):
    path = str(tmp_path / "rotating.jwks.json")
    with open(path, "w") as f:
        json.dump(jwks(keys["rsa"]), f)
    admin = free_port()
    g = start(gateway, upstream, {"main": provider(jwks_file=path)},
              admin={"address": "127.0.0.1:%d" % admin})
    a, b = token("RS256", keys["rsa"], claims()), token("ES256", keys["p256"], claims())
    assert get(g, a).status == 200 and get(g, b).status == 401
    with open(path, "w") as f:
        json.dump(jwks(keys["p256"]), f)
    g.send_signal(signal.SIGHUP)
    assert poll(lambda: "configuration 2 in effect" in g.stderr())
    assert get(g, b).status == 200
    assert_401(get(g, a), "unknown key id")  # the cache does not outlive a reload
    # a file that no longer parses: the reload is refused and the keys stay
    with open(path, "w") as f:
        f.write('{"keys": [')
    g.send_signal(signal.SIGHUP)
    assert poll(lambda: "configuration 2 stays in effect" in g.stderr())
    assert "not JSON" in g.stderr()
    assert get(g, b).status == 200
    # every refusal is counted as a JWT block
    m = request(admin, path="/metrics").body.decode()
    assert 'portcullis_blocked_total{reason="jwt"} 2' in m, [l for l in m.splitlines() if "blocked" in l]
