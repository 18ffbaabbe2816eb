"""Plugins end to end: the two shipped plugins (webhook_hmac, api_key), the
host functions through a probe plugin, loading errors at -t and at start,
reloads, and plugin counters on /metrics."""

import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
import time

from conftest import (BIN, BUILD, ROOT, base_config, connect, free_port, parse_response, read_until_close,
                      request, send_raw)

PLUGINS = os.path.join(BUILD, "plugins")
WEBHOOK = os.path.join(PLUGINS, "webhook_hmac.so")
API_KEY = os.path.join(PLUGINS, "api_key.so")
PROBE = os.path.join(PLUGINS, "test_probe.so")
BAD_ABI = os.path.join(PLUGINS, "test_bad_abi.so")
NO_DESCRIPTOR = os.path.join(PLUGINS, "test_no_descriptor.so")
SECRET = "It's a Secret to Everybody"


def sign(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def wait_until(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def plugin_config(upstream, port, plugins, routes, **extra):
    cfg = base_config(upstream.address, port, **extra)
    cfg["plugins"] = plugins
    cfg["routes"] = routes
    return cfg


def webhook_gateway(gateway, upstream, **extra):
    port = free_port()
    cfg = plugin_config(upstream, port,
                        [{"path": WEBHOOK, "config": {"secret": "${env:HOOK_SECRET}"}}],
                        [{"match": {"path_prefix": "/hooks/"}, "upstream": "app", "plugins": ["webhook_hmac"]},
                         {"match": {"path_prefix": "/"}, "upstream": "app"}], **extra)
    return gateway(config=cfg, port=port, env={"HOOK_SECRET": SECRET})


def keys_file(tmp_path, name="keys.txt", **keys):
    path = tmp_path / name
    lines = ["# name  sha256 of the key", ""]
    lines += ["%s %s" % (k, sha(v.encode())) for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def api_key_gateway(gateway, upstream, kf, **extra):
    port = free_port()
    cfg = plugin_config(upstream, port, [{"path": API_KEY, "config": {"keys_file": kf}}],
                        [{"name": "api", "match": {"path_prefix": "/"}, "upstream": "app", "plugins": ["api_key"]}],
                        **extra)
    return gateway(config=cfg, port=port), cfg


def check(tmp_path, cfg, name="check.yaml", env=None):
    p = tmp_path / name
    p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg, indent=1))
    r = subprocess.run([BIN, "-t", "-c", str(p)], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, **(env or {})))
    return r.returncode, r.stderr, str(p)


# ---- webhook_hmac ----


def test_webhook_good_signature_reaches_upstream_intact(gateway, upstream):
    g = webhook_gateway(gateway, upstream)
    body = json.dumps({"action": "opened", "number": 7}).encode()
    r = request(g.port, "POST", "/hooks/gh", headers=[("X-Hub-Signature-256", sign(body))], body=body)
    assert r.status == 200
    got = r.json()
    assert got["body_len"] == len(body) and got["body_sha256"] == sha(body)
    assert upstream.requests[0].header("X-Hub-Signature-256") == [sign(body)]


def test_webhook_empty_body(gateway, upstream):
    g = webhook_gateway(gateway, upstream)
    r = request(g.port, "GET", "/hooks/ping", headers=[("X-Hub-Signature-256", sign(b""))])
    assert r.status == 200


def test_webhook_missing_or_malformed_signature(gateway, upstream):
    g = webhook_gateway(gateway, upstream)
    body = b'{"a":1}'
    r = request(g.port, "POST", "/hooks/gh", body=body)
    assert r.status == 401
    j = r.json()
    assert j["error"] == "missing_signature" and j["status"] == 401 and j["request_id"]
    for bad in ["sha1=" + hashlib.sha1(body).hexdigest(), sign(body)[:-2], sign(body) + "00",
                sign(body).replace("sha256=", "SHA256="), "sha256=" + "zz" * 32]:
        r = request(g.port, "POST", "/hooks/gh", headers=[("X-Hub-Signature-256", bad)], body=body)
        assert r.status == 401 and r.json()["error"] == "malformed_signature", bad
    # two signatures, even if one is right
    r = request(g.port, "POST", "/hooks/gh", body=body,
                headers=[("X-Hub-Signature-256", sign(body)), ("X-Hub-Signature-256", sign(b"x"))])
    assert r.status == 401
    assert upstream.requests == []
    # other routes are not affected
    assert request(g.port, "POST", "/other", body=body).status == 200
    log = g.access_log(wait_for=8)
    assert all(l["blocked_by"] is None for l in log)
    assert sorted(l.get("detail", "") for l in log if l["status"] == 401) == \
        ["plugin:webhook_hmac: malformed_signature"] * 6 + ["plugin:webhook_hmac: missing_signature"]


def test_webhook_wrong_signature_never_completes_upstream(gateway, upstream):
    g = webhook_gateway(gateway, upstream)
    body = b'{"a":1}'
    r = request(g.port, "POST", "/hooks/gh", headers=[("X-Hub-Signature-256", sign(b"other"))], body=body)
    assert r.status == 401 and r.json()["error"] == "bad_signature"
    assert r.header("Connection") == "close"
    # a body that arrives in pieces: the upstream gets the head and part of
    # the body, never the end of it
    big = os.urandom(3 << 20)
    s = connect(g.port)
    s.sendall(b"POST /hooks/big HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nX-Hub-Signature-256: %s\r\n\r\n"
              % (len(big), sign(b"not this").encode()))
    for i in range(0, len(big), 1 << 16):
        try:
            s.sendall(big[i:i + (1 << 16)])
        except OSError:
            break
    resp, _ = parse_response(read_until_close(s))
    s.close()
    assert resp.status == 401
    assert wait_until(lambda: len(upstream.requests) >= 1)
    time.sleep(0.2)  # let the upstream see the connection close
    assert not any(q.complete for q in upstream.requests)
    assert all(q.body_len < len(big) for q in upstream.requests)
    # the gateway still serves
    ok = b"fine"
    assert request(g.port, "POST", "/hooks/gh", headers=[("X-Hub-Signature-256", sign(ok))], body=ok).status == 200
    assert g.stop() == 0  # under SANITIZE=1 also the leak check


def test_webhook_large_chunked_body(gateway, upstream):
    g = webhook_gateway(gateway, upstream)
    body = os.urandom(2 << 20)
    chunks = b""
    for i in range(0, len(body), 100000):
        part = body[i:i + 100000]
        chunks += b"%x\r\n" % len(part) + part + b"\r\n"
    chunks += b"0\r\n\r\n"

    def post(sig):
        head = ("POST /hooks/chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                "X-Hub-Signature-256: %s\r\nConnection: close\r\n\r\n" % sig).encode()
        s = connect(g.port, timeout=10)
        try:
            s.sendall(head)
            for i in range(0, len(chunks), 1 << 16):
                s.sendall(chunks[i:i + (1 << 16)])
        except OSError:
            pass
        resp, _ = parse_response(read_until_close(s))
        s.close()
        return resp

    r = post(sign(body))
    assert r.status == 200
    assert r.json()["body_len"] == len(body) and r.json()["body_sha256"] == sha(body)
    upstream.reset()
    r = post(sign(body[:-1]))
    assert r.status == 401
    time.sleep(0.2)
    assert not any(q.complete for q in upstream.requests)
    assert g.stop() == 0


def test_webhook_counters_on_metrics(gateway, upstream):
    aport = free_port()
    g = webhook_gateway(gateway, upstream, admin={"address": "127.0.0.1:%d" % aport})
    g.wait_listening(aport)
    body = b"{}"
    request(g.port, "POST", "/hooks/a", headers=[("X-Hub-Signature-256", sign(body))], body=body)
    request(g.port, "POST", "/hooks/a", headers=[("X-Hub-Signature-256", sign(b"x"))], body=body)
    request(g.port, "POST", "/hooks/a", body=body)
    text = request(aport, path="/metrics").body.decode()
    assert "# TYPE portcullis_plugin_events_total counter" in text
    assert 'portcullis_plugin_events_total{plugin="webhook_hmac",event="verified"} 1' in text
    assert 'portcullis_plugin_events_total{plugin="webhook_hmac",event="bad_signature"} 1' in text
    assert 'portcullis_plugin_events_total{plugin="webhook_hmac",event="missing_signature"} 1' in text


# ---- api_key ----


def test_api_key_missing_unknown_known(gateway, upstream, tmp_path):
    kf = keys_file(tmp_path, alice="alice-key-1", bob="bob-key-2")
    g, _ = api_key_gateway(gateway, upstream, kf)
    r = request(g.port, path="/x")
    assert r.status == 401 and r.json()["error"] == "missing_api_key"
    r = request(g.port, path="/x", headers=[("X-Api-Key", "nobody")])
    assert r.status == 401 and r.json()["error"] == "invalid_api_key"
    r = request(g.port, path="/x", headers=[("X-Api-Key", "alice-key-1"), ("X-Api-Key", "bob-key-2")])
    assert r.status == 401
    assert upstream.requests == []
    r = request(g.port, path="/x", headers=[("X-Api-Key", "bob-key-2"), ("X-Api-Key-Name", "admin")])
    assert r.status == 200
    got = upstream.requests[0]
    assert got.header("X-Api-Key-Name") == ["bob"]
    assert got.header("X-Api-Key") == ["bob-key-2"]
    log = g.access_log(wait_for=4)  # workers write their own lines: any order
    assert sorted((l["status"], l["user"] or "") for l in log) == [(200, "bob"), (401, ""), (401, ""), (401, "")]
    assert all(l["route"] == "api" for l in log)


def test_api_key_hide_key_and_no_name(gateway, upstream, tmp_path):
    kf = keys_file(tmp_path, carol="c-key")
    port = free_port()
    cfg = plugin_config(upstream, port,
                        [{"path": API_KEY, "config": {"keys_file": kf, "header": "Authorization-Key",
                                                      "forward_name": "off", "hide_key": True}}],
                        [{"match": {"path_prefix": "/"}, "upstream": "app", "plugins": ["api_key"]}])
    g = gateway(config=cfg, port=port)
    assert request(g.port, path="/x", headers=[("X-Api-Key", "c-key")]).status == 401
    r = request(g.port, path="/x", headers=[("authorization-key", "c-key"), ("X-Api-Key-Name", "mallory")])
    assert r.status == 200
    got = upstream.requests[0]
    assert got.header("Authorization-Key") == []
    assert got.header("X-Api-Key-Name") == ["mallory"]  # forward_name off: not the plugin's business
    assert sorted(l["user"] or "" for l in g.access_log(wait_for=2)) == ["", "carol"]


def test_api_key_reload_picks_up_the_keys_file(gateway, upstream, tmp_path):
    kf = keys_file(tmp_path, alice="old-key")
    g, _ = api_key_gateway(gateway, upstream, kf)
    assert request(g.port, path="/x", headers=[("X-Api-Key", "old-key")]).status == 200
    keys_file(tmp_path, alice="new-key")
    g.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "configuration 2 in effect" in g.stderr())
    assert request(g.port, path="/x", headers=[("X-Api-Key", "old-key")]).status == 401
    assert request(g.port, path="/x", headers=[("X-Api-Key", "new-key")]).status == 200
    # a broken keys file fails the reload and changes nothing
    with open(kf, "a") as f:
        f.write("not a valid line\n")
    g.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "configuration 2 stays in effect" in g.stderr())
    assert "%s:4: expected NAME SHA256-HEX" % kf in g.stderr()
    assert request(g.port, path="/x", headers=[("X-Api-Key", "new-key")]).status == 200
    assert g.stop() == 0


def test_reload_with_requests_in_flight(gateway, upstream, tmp_path):
    """The old snapshot's plugin stays loaded until its last request ends."""
    kf = keys_file(tmp_path, alice="k1")
    g, cfg = api_key_gateway(gateway, upstream, kf)
    results = []

    def slow():
        results.append(request(g.port, path="/sleep/600", headers=[("X-Api-Key", "k1")]))

    threads = [threading.Thread(target=slow) for _ in range(4)]
    for t in threads:
        t.start()
    assert wait_until(lambda: len(upstream.requests) >= 4)
    # reload twice while they wait: the new configurations drop the plugin
    cfg["routes"][0]["plugins"] = []
    del cfg["plugins"]
    with open(g.conf_path, "w") as f:
        f.write(json.dumps(cfg))
    g.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "configuration 2 in effect" in g.stderr())
    g.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "configuration 3 in effect" in g.stderr())
    for t in threads:
        t.join(10)
    assert [r.status for r in results] == [200] * 4
    assert request(g.port, path="/x").status == 200  # no key needed any more
    log = g.access_log(wait_for=5)
    assert sorted(l["user"] or "" for l in log) == ["", "alice", "alice", "alice", "alice"]
    assert g.stop() == 0


# ---- the host functions, through the probe plugin ----


def probe_gateway(gateway, upstream, config=None, env=None, **route):
    port = free_port()
    cfg = plugin_config(upstream, port, [{"path": PROBE, "config": config or {}}],
                        [dict({"name": "probed", "match": {"path_prefix": "/"}, "upstream": "app",
                               "plugins": ["probe"]}, **route)],
                        trusted_proxies=["127.0.0.1/32"])
    return gateway(config=cfg, port=port, env=env)


def test_probe_reads_and_changes_the_request(gateway, upstream):
    g = probe_gateway(gateway, upstream, {"tags": ["a", "b", "c"], "env": "${env:PROBE_VALUE}"},
                      env={"PROBE_VALUE": "from-env"})
    r = request(g.port, "POST", "/p/%7Eq?x=1", body=b"12345",
                headers=[("X-Forwarded-For", "198.51.100.7"), ("X-Remove-Me", "1"), ("x-remove-me", "2"),
                         ("X-Dup", "one"), ("X-Dup", "two"), ("X-Request-Id", "req-123")])
    assert r.status == 200
    assert r.header("X-Probe-Status") == "200"
    assert r.header("X-Probe-Body-Bytes") == "5"
    assert r.header("X-Probe-Upstream-Server") == "test-upstream"
    assert r.header("X-Probe-Early") == "yes"
    assert r.header("Content-Type") is None  # the plugin removed the upstream's
    got = upstream.requests[0]
    h = lambda n: got.header(n)
    assert h("X-Probe-Method") == ["POST"]
    assert h("X-Probe-Path") == ["/p/~q"]
    assert h("X-Probe-Query") == ["x=1"]
    assert h("X-Probe-Route") == ["probed"]
    assert h("X-Probe-Client") == ["198.51.100.7"]
    assert h("X-Probe-Id") == ["req-123"]
    assert h("X-Probe-Jwt") == ["none"]
    assert h("X-Probe-Tags") == ["a,b,c"]
    assert h("X-Probe-Env") == ["from-env"]
    assert h("X-Probe-Dup2") == ["two"]
    assert h("X-Probe-Refusals") == ["ok"]
    assert h("X-Probe-Removed") == ["2"] and h("X-Remove-Me") == []
    assert h("X-Late") == [] and h("X-Injected") == []
    assert h("Content-Length") == ["5"]
    log = g.access_log(wait_for=1)
    assert log[0]["user"] == "probe-user"
    err = g.stderr()
    assert "[plugin:probe] probe initialised" in err
    assert wait_until(lambda: "[plugin:probe] probe done: 5 body bytes" in g.stderr())
    assert "request req-123" in g.stderr()
    assert "log phase accepted a change" not in g.stderr()
    assert g.stop() == 0


def test_probe_responds_in_each_phase(gateway, upstream):
    cases = [("headers", 429, None, "too_many_requests"), ("body", 403, "nope", "nope"),
             ("response", 503, None, "service_unavailable"), ("headers", 401, "who_are_you", "who_are_you")]
    for at, status, error, name in cases:
        upstream.reset()
        conf = {"respond_at": at, "status": str(status)}
        if error:
            conf["error"] = error
        g = probe_gateway(gateway, upstream, conf)
        r = request(g.port, "POST", "/r", body=b"x" * 10)
        assert r.status == status, at
        assert r.json() == {"error": name, "status": status, "request_id": r.header("X-Request-Id")}
        assert r.header("X-Probe-Early") == "yes"  # added headers go with local replies too
        if at == "headers":
            assert upstream.requests == []
        if at == "body":
            time.sleep(0.1)
            assert not any(q.complete for q in upstream.requests)
        assert g.stop() == 0


def test_probe_odd_return_codes_are_errors(gateway, upstream):
    for rc in ("2", "3", "1", "77"):  # suspend (not offered), error, respond without reply, unknown
        g = probe_gateway(gateway, upstream, {"rc": rc})
        r = request(g.port, path="/x")
        assert r.status == 500, rc
        assert upstream.requests == []
        assert g.stop() == 0
        if rc != "3":
            assert "[plugin:probe] returned" in g.stderr()


def test_plugins_run_after_builtin_controls(gateway, upstream):
    # a preflight the CORS policy answers never reaches the plugin
    port = free_port()
    cfg = plugin_config(upstream, port, [{"path": PROBE, "config": {"respond_at": "headers", "status": "403"}}],
                        [{"match": {"path_prefix": "/"}, "upstream": "app", "plugins": ["probe"], "cors": "web"}],
                        cors={"web": {"origins": ["https://app.example.com"]}})
    g = gateway(config=cfg, port=port)
    r = request(g.port, "OPTIONS", "/x", headers=[("Origin", "https://app.example.com"),
                                                   ("Access-Control-Request-Method", "POST")])
    assert r.status == 204
    assert request(g.port, path="/x").status == 403


# ---- loading errors ----


def test_bad_abi_refused_at_check_and_start(gateway, upstream, tmp_path):
    port = free_port()
    cfg = plugin_config(upstream, port, [{"path": BAD_ABI}], [{"match": {"path_prefix": "/"}, "upstream": "app"}])
    rc, err, path = check(tmp_path, cfg)
    assert rc == 1
    assert "%s:" % path in err
    assert "plugins[0].path: plugin ABI version 999, this gateway speaks 1" in err
    g = gateway(config=cfg, port=port, start=False)
    g.start(wait=False)
    assert g.proc.wait(10) == 1
    assert "plugin ABI version 999, this gateway speaks 1" in g.stderr()


def test_load_errors_name_file_and_line(tmp_path, upstream):
    kf = tmp_path / "keys.txt"
    kf.write_text("alice %s\nbob zz\n" % sha(b"k"))
    (tmp_path / "notaplugin.so").write_bytes(b"not an ELF file")
    text = """listeners:
  - address: 127.0.0.1:%d
upstreams:
  app: { servers: [%s] }
plugins:
  - path: %s
    config:
      header: X-Sig
  - path: %s
    config: { keys_file: %s }
  - path: %s
  - path: %s
  - path: %s
    config: [1, 2]
  - path: %s
routes:
  - match: { path_prefix: / }
    upstream: app
    plugins: [webhok_hmac, api_key]
""" % (free_port(), upstream.address, WEBHOOK, API_KEY, kf, tmp_path / "missing.so", tmp_path / "notaplugin.so",
       PROBE, NO_DESCRIPTOR)
    rc, err, path = check(tmp_path, text)
    assert rc == 1
    lines = [l for l in err.strip().splitlines() if "[plugin:probe]" not in l]
    assert lines[0].startswith("%s:8: plugins[0].config: init failed: secret is required" % path)
    assert lines[1] == "%s:10: plugins[1].config: init failed: %s:2: expected NAME SHA256-HEX (a name of " \
                       "[A-Za-z0-9_.@:-] and the 64 hex digits of the key's SHA-256)" % (path, kf)
    assert lines[2].startswith("%s:11: plugins[2].path: cannot open: " % path) and "missing.so" in lines[2]
    assert lines[3].startswith("%s:12: plugins[3].path: cannot open: " % path)
    assert lines[4] == "%s:14: plugins[4].config: expected a mapping of the plugin's settings" % path
    assert lines[5] == "%s:15: plugins[5].path: no plugin descriptor: the file does not export " \
                       "'portcullis_plugin'" % path
    assert lines[-1] == "portcullis: %s: 6 errors" % path


def test_unknown_and_duplicate_names(tmp_path, upstream):
    cfg = plugin_config(upstream, free_port(),
                        [{"path": WEBHOOK, "config": {"secret": "s"}}, {"path": PROBE}],
                        [{"match": {"path_prefix": "/a/"}, "upstream": "app", "plugins": ["webhok_hmac"]},
                         {"match": {"path_prefix": "/b/"}, "upstream": "app", "plugins": ["probe", "probe"]},
                         {"match": {"path_prefix": "/"}, "upstream": "app", "plugins": ["something_else"]}])
    rc, err, path = check(tmp_path, cfg)
    assert rc == 1
    assert "routes[0].plugins[0]: unknown plugin 'webhok_hmac' (did you mean 'webhook_hmac'?)" in err
    assert "routes[1].plugins[1]: plugin 'probe' is listed twice" in err
    assert "routes[2].plugins[0]: unknown plugin 'something_else'\n" in err
    cfg["plugins"].append({"path": PROBE})
    cfg["routes"] = [{"match": {"path_prefix": "/"}, "upstream": "app"}]
    rc, err, path = check(tmp_path, cfg)
    assert rc == 1 and "plugins[2].path: duplicate plugin name 'probe' (plugins[1] has it)" in err
    del cfg["plugins"]
    cfg["routes"][0]["plugins"] = ["probe"]
    rc, err, path = check(tmp_path, cfg)
    assert rc == 1 and "unknown plugin 'probe' (there is no top-level plugins list)" in err


def test_valid_plugin_config_checks(tmp_path, upstream):
    kf = keys_file(tmp_path, alice="a")
    cfg = plugin_config(upstream, free_port(),
                        [{"path": WEBHOOK, "config": {"secret": "${env:S}"}},
                         {"path": API_KEY, "config": {"keys_file": kf}}],
                        [{"match": {"path_prefix": "/h/"}, "upstream": "app", "plugins": ["webhook_hmac"]},
                         {"match": {"path_prefix": "/"}, "upstream": "app", "plugins": ["api_key", "webhook_hmac"]}])
    rc, err, _ = check(tmp_path, cfg, env={"S": "x"})
    assert rc == 0, err
    rc, err, path = check(tmp_path, cfg)
    assert rc == 1 and "plugins[0].config.secret: environment variable S is not set" in err


# ---- the walkthrough in docs/plugins.md ----


def test_docs_example_plugin_builds_and_works(gateway, upstream, tmp_path):
    with open(os.path.join(ROOT, "docs", "plugins.md")) as f:
        doc = f.read()
    start = doc.index("/* tenant.c */")
    src = doc[start:doc.index("```", start)]
    (tmp_path / "tenant.c").write_text(src)
    so = str(tmp_path / "tenant.so")
    include = os.path.join(ROOT, "gateway", "include")
    subprocess.run(["cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", "-I", include,
                    "-o", so, str(tmp_path / "tenant.c")], check=True, timeout=60)
    port = free_port()
    cfg = plugin_config(upstream, port, [{"path": so, "config": {"forward": "X-Tenant-Id"}}],
                        [{"match": {"path_prefix": "/"}, "upstream": "app", "plugins": ["tenant"]}])
    g = gateway(config=cfg, port=port)
    r = request(g.port, path="/x")
    assert r.status == 403 and r.json()["error"] == "tenant_required"
    r = request(g.port, path="/x", headers=[("X-Tenant", "acme"), ("X-Tenant-Id", "evil")])
    assert r.status == 200
    assert upstream.requests[0].header("X-Tenant-Id") == ["acme"]
    assert sorted(l["user"] or "" for l in g.access_log(wait_for=2)) == ["", "acme"]
