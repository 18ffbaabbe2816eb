"""The WAF filter end to end: a real gateway with a small rule file of the
test's own (the shipped rule set has its own tests in rules/tests/), a real
upstream that records what reached it, raw requests.

Covers: blocks in every place a payload travels (query, urlencoded,
JSON, multipart field and file name, text body, cookie, header), the body
held until complete and forwarded intact, malformed bodies, detect mode and
dry run (pass and log), per-route exclusions, the body inspection limit
(reject, pass, multipart files not counted), a ReDoS pattern counted as a
match, phase 1 refusing before the body is read, logs, metrics,
/admin/waf/rules, configuration errors and reloads."""
import json
import os
import signal
import socket
import subprocess
import time

from conftest import BIN, base_config, connect, free_port, parse_response, poll, request
from conftest import read_one_response as read_raw


def read_one_response(s):
    head, body = read_raw(s)
    return parse_response(head + b"\r\n\r\n" + body)[0]

RULES = r"""
SecDefaultAction "phase:1,log,pass"
SecDefaultAction "phase:2,log,pass"
SecRule REQUEST_HEADERS:User-Agent "@pm evilscanner" "id:1100,phase:1,block,msg:'scanner',setvar:'tx.anomaly_score=+5'"
SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS:X-Payload|FILES "@rx (?i)union\s+select" "id:1200,phase:2,block,t:none,t:urlDecodeUni,msg:'SQL injection in %{MATCHED_VAR_NAME}',logdata:'%{MATCHED_VAR}',setvar:'tx.anomaly_score=+5'"
SecRule REQUEST_BODY "@contains <!ENTITY" "id:1300,phase:2,block,msg:'XML entity',setvar:'tx.anomaly_score=+5'"
SecRule ARGS "@rx ^(a+)+$" "id:1400,phase:2,block,msg:'redos',setvar:'tx.anomaly_score=+5'"
SecRule ARGS:low "@contains meh" "id:1500,phase:2,block,msg:'low',setvar:'tx.anomaly_score=+2'"
SecRule TX:ANOMALY_SCORE "@ge %{tx.anomaly_threshold}" "id:1900,phase:1,deny,status:403,msg:'score %{tx.anomaly_score}'"
SecRule TX:ANOMALY_SCORE "@ge %{tx.anomaly_threshold}" "id:1901,phase:2,deny,status:403,msg:'score %{tx.anomaly_score}'"
"""

SQLI = "1%20UNION%20SELECT%20password%20FROM%20users"


def start(gateway, tmp_path, upstream, waf=None, routes=None, rules=RULES, **extra):
    path = os.path.join(str(tmp_path), "test.conf")
    with open(path, "w") as f:
        f.write(rules)
    port = free_port()
    cfg = base_config(upstream.address, port, **extra)
    cfg["waf"] = dict({"rules": [path]}, **(waf or {}))
    if routes:
        cfg["routes"] = routes
    return gateway(config=cfg, port=port)


def post(port, path, ctype, body, headers=()):
    if isinstance(body, str):
        body = body.encode()
    h = [("Content-Type", ctype)] if ctype else []
    return request(port, "POST", path, headers=h + list(headers), body=body)


def multipart(parts, boundary="b0undary"):
    out = b""
    for name, filename, value in parts:
        disp = 'form-data; name="%s"' % name + ('; filename="%s"' % filename if filename else "")
        out += b"--%s\r\nContent-Disposition: %s\r\n\r\n" % (boundary.encode(), disp.encode())
        out += value + b"\r\n"
    return "multipart/form-data; boundary=" + boundary, out + b"--%s--\r\n" % boundary.encode()


def wait_lines(path, n, timeout=5.0):
    def lines():
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    poll(lambda: len(lines()) >= n, timeout=timeout)
    return lines()


def test_blocks_wherever_the_payload_travels(gateway, tmp_path, upstream):
    g = start(gateway, tmp_path, upstream)
    ctype, mp_field = multipart([("q", None, b"1 union select 2"), ("f", "a.txt", b"plain")])
    _, mp_file = multipart([("f", "x union select y.png", b"content")])
    cases = [
        ("query", lambda: request(g.port, path="/search?q=" + SQLI)),
        ("urlencoded", lambda: post(g.port, "/f", "application/x-www-form-urlencoded", "a=1&q=" + SQLI)),
        ("json", lambda: post(g.port, "/j", "application/json", '{"a":{"b":[1,"1 union select 2"]}}')),
        ("json+suffix", lambda: post(g.port, "/j", "application/vnd.api+json", '["union select"]')),
        ("multipart field", lambda: post(g.port, "/m", ctype, mp_field)),
        ("multipart file name", lambda: post(g.port, "/m", ctype, mp_file)),
        ("xml body", lambda: post(g.port, "/x", "application/xml", '<!DOCTYPE a [<!ENTITY x SYSTEM "f">]>')),
        ("cookie", lambda: request(g.port, path="/c", headers=[("Cookie", "a=1; s=x union  select 1")])),
        ("header", lambda: request(g.port, path="/h", headers=[("X-Payload", "union select")])),
        ("user agent (phase 1)", lambda: request(g.port, path="/u", headers=[("User-Agent", "EvilScanner/1")])),
    ]
    for name, send in cases:
        r = send()
        assert r.status == 403, name
        assert r.json()["error"] == "forbidden"
    assert upstream.requests == []
    # the same requests without the payload pass, bodies intact
    ok = post(g.port, "/j", "application/json", '{"a":{"b":[1,"select a union of sets"]}}')
    assert ok.status == 200 and ok.json()["body_len"] == 40
    assert request(g.port, path="/search?q=union%20of%20selected%20works").status == 200


def test_held_body_reaches_the_upstream_whole(gateway, tmp_path, upstream):
    """A body the WAF parses is read in full before the upstream sees a
    byte; it is then sent with its length, whatever framing the client used."""
    g = start(gateway, tmp_path, upstream)
    body = json.dumps({"items": ["x" * 1000] * 50}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 700]), body[i:i + 700]) for i in range(0, len(body), 700))
    s = connect(g.port)
    s.sendall(b"POST /chunked HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n")
    r = read_one_response(s)
    s.close()
    assert r.status == 200
    seen = r.json()
    assert seen["body_len"] == len(body)
    assert [v for k, v in seen["headers"] if k.lower() == "content-length"] == [str(len(body))]
    assert not [v for k, v in seen["headers"] if k.lower() == "transfer-encoding"]
    # Expect: 100-continue is answered by the gateway, which then reads the body
    s = connect(g.port)
    s.sendall(b"POST /expect HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
              b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(body)
    r = read_one_response(s)
    assert r.status == 200 and r.json()["body_len"] == len(body)
    # an attack split across chunks is seen whole
    s.sendall(b"POST /split HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n5\r\nq=1 u\r\n9\r\nnion sele\r\n3\r\nct \r\n0\r\n\r\n")
    assert read_one_response(s).status == 403
    s.close()
    assert len(upstream.requests) == 2


def test_uninspected_types_stream(gateway, tmp_path, upstream):
    """Bodies of types the WAF does not parse are not held or inspected."""
    g = start(gateway, tmp_path, upstream, waf={"body_inspect_limit": "1KiB"})
    body = b"union select " * 10000
    r = post(g.port, "/blob", "application/octet-stream", body)
    assert r.status == 200 and r.json()["body_len"] == len(body)
    r = post(g.port, "/img", "image/png", body)
    assert r.status == 200


def test_malformed_bodies_are_refused(gateway, tmp_path, upstream):
    g = start(gateway, tmp_path, upstream)
    for ctype, body in [("application/json", '{"a":'), ("application/json", '{"a":1,"a":2}'),
                        ("application/json", "[" * 40 + "]" * 40),
                        ("multipart/form-data; boundary=zz", "no parts at all"),
                        ("multipart/form-data", "--x\r\n")]:
        r = post(g.port, "/p", ctype, body)
        assert r.status == 400, (ctype, body)
        assert r.json()["error"] == "invalid_body"
    assert upstream.requests == []
    # an empty JSON body is no document to parse: nothing to refuse
    assert post(g.port, "/p", "application/json", "").status == 200


def test_detect_mode_and_dry_run_pass_and_log(gateway, tmp_path, upstream):
    sec = os.path.join(str(tmp_path), "security.log")
    routes = [{"match": {"path_prefix": "/detect/"}, "upstream": "app", "waf": {"mode": "detect"}},
              {"match": {"path_prefix": "/dry/"}, "upstream": "app", "dry_run": True},
              {"match": {"path_prefix": "/"}, "upstream": "app"}]
    g = start(gateway, tmp_path, upstream, routes=routes, logging={"security": {"path": sec}})
    assert request(g.port, path="/detect/a?q=" + SQLI).status == 200
    assert post(g.port, "/dry/b", "application/json", '{"q":"union select 1"}').status == 200
    assert post(g.port, "/detect/c", "application/json", '{"a":').status == 200  # flagged only
    assert request(g.port, path="/block?q=" + SQLI).status == 403
    assert len(upstream.requests) == 3
    lines = wait_lines(sec, 4)
    by_path = {l["path"]: l for l in lines}
    d = by_path["/detect/a"]
    assert d["dry_run"] is True and d["would_status"] == 403 and d["status"] == 200
    assert d["reason"] == "waf" and d["rules"] == [1200, 1901]
    assert d["matched"] == ["ARGS:q"] and d["excerpt"] == "1 UNION SELECT password FROM users"
    assert "SQL injection in ARGS:q" in d["messages"]
    assert by_path["/dry/b"]["matched"] == ["ARGS:json.q"]
    assert by_path["/detect/c"]["would_status"] == 400
    b = by_path["/block"]
    assert b["dry_run"] is False and b["status"] == 403 and b["rules"] == [1200, 1901]
    access = {l["path"]: l for l in g.access_log(wait_for=4)}
    assert access["/detect/a"]["rules"] == [1200, 1901] and access["/detect/a"]["blocked_by"] is None
    assert access["/block"]["blocked_by"] == "waf"


def test_security_log_escapes_and_cuts_excerpts(gateway, tmp_path, upstream):
    sec = os.path.join(str(tmp_path), "security.log")
    g = start(gateway, tmp_path, upstream, logging={"security": {"path": sec}})
    payload = 'union select "\x01\\' + "z" * 500
    assert post(g.port, "/e", "application/json", json.dumps({"q": payload})).status == 403
    line = wait_lines(sec, 1)[0]
    assert line["excerpt"].startswith('union select "\x01\\')  # escaped in the file, intact here
    assert len(line["excerpt"]) <= 128


def test_exclusions_per_route(gateway, tmp_path, upstream):
    routes = [{"match": {"path_prefix": "/norule/"}, "upstream": "app", "waf": {"exclude_rules": ["1200"]}},
              {"match": {"path_prefix": "/range/"}, "upstream": "app", "waf": {"exclude_rules": ["1100-1299"]}},
              {"match": {"path_prefix": "/target/"}, "upstream": "app",
               "waf": {"exclude_targets": ["1200:ARGS:q", "REQUEST_COOKIES:/^sess/"]}},
              {"match": {"path_prefix": "/off/"}, "upstream": "app", "waf": {"mode": "off"}},
              {"match": {"path_prefix": "/"}, "upstream": "app"}]
    g = start(gateway, tmp_path, upstream, routes=routes)
    assert request(g.port, path="/norule/a?q=" + SQLI).status == 200
    assert request(g.port, path="/range/a?q=" + SQLI, headers=[("User-Agent", "evilscanner")]).status == 200
    assert request(g.port, path="/target/a?q=" + SQLI).status == 200
    assert request(g.port, path="/target/a?other=" + SQLI).status == 403  # other arguments still
    assert request(g.port, path="/target/a", headers=[("Cookie", "session=union select")]).status == 200
    assert request(g.port, path="/target/a", headers=[("Cookie", "x=union select")]).status == 403
    assert request(g.port, path="/off/a?q=" + SQLI).status == 200
    assert request(g.port, path="/a?q=" + SQLI).status == 403


def test_scores_add_up_to_the_threshold(gateway, tmp_path, upstream):
    g = start(gateway, tmp_path, upstream, waf={"anomaly_threshold": 4})
    assert request(g.port, path="/a?low=meh").status == 200  # 2 < 4
    # a rule scores once per phase, however many of its targets match
    assert request(g.port, path="/a?low=meh&low=meh").status == 200
    assert request(g.port, path="/a?low=meh&q=" + SQLI).status == 403  # 2 + 5
    g2 = start(gateway, tmp_path, upstream, waf={"anomaly_threshold": 6})
    assert request(g2.port, path="/a?q=" + SQLI).status == 200  # 5 < 6
    assert request(g2.port, path="/a?q=" + SQLI + "&low=meh").status == 403


def test_redos_pattern_counts_as_a_match(gateway, tmp_path, upstream):
    """^(a+)+$ against a long run of a's and a final b backtracks without
    end; the match limit stops it and the limit counts as a match."""
    g = start(gateway, tmp_path, upstream)
    r = post(g.port, "/r", "application/x-www-form-urlencoded", "v=" + "a" * 5000 + "b")
    assert r.status == 403
    assert post(g.port, "/r", "application/x-www-form-urlencoded", "v=" + "b" * 5000).status == 200
    assert request(g.port, path="/healthy").status == 200  # the worker is free


def test_body_over_the_inspection_limit(gateway, tmp_path, upstream):
    routes = [{"match": {"path_prefix": "/"}, "upstream": "app", "limits": {"max_body": "4MiB"}}]
    g = start(gateway, tmp_path, upstream, waf={"body_inspect_limit": "2KiB"}, routes=routes)
    big = json.dumps({"q": "x" * 3000})
    r = post(g.port, "/big", "application/json", big)
    assert r.status == 413 and r.json()["error"] == "content_too_large"
    s = connect(g.port)
    chunk = big.encode()[:1500]
    s.sendall(b"POST /bigc HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n" % (len(chunk), chunk, len(chunk), chunk))
    assert read_one_response(s).status == 413
    s.close()
    # multipart file contents do not count: a 1 MiB upload passes, its fields are inspected
    ctype, body = multipart([("name", None, b"holiday"), ("f", "big.bin", b"\x00\xff" * (1 << 19))])
    r = post(g.port, "/up", ctype, body)
    assert r.status == 200 and r.json()["body_len"] == len(body)
    ctype, body = multipart([("name", None, b"union select 1"), ("f", "big.bin", b"\x00" * (1 << 20))])
    assert post(g.port, "/up", ctype, body).status == 403
    assert len(upstream.requests) == 1

    # on_body_over_limit: pass — forwarded whole, uninspected, but the query still is
    g2 = start(gateway, tmp_path, upstream, waf={"body_inspect_limit": "2KiB", "on_body_over_limit": "pass"},
               routes=routes)
    evil = json.dumps({"q": "union select " + "x" * 3000})
    r = post(g2.port, "/p", "application/json", evil)
    assert r.status == 200 and r.json()["body_len"] == len(evil)
    s = connect(g2.port)
    data = evil.encode()
    s.sendall(b"POST /pc HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" +
              b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 1000]), data[i:i + 1000]) for i in range(0, len(data), 1000)) +
              b"0\r\n\r\n")
    r = read_one_response(s)
    s.close()
    assert r.status == 200 and r.json()["body_len"] == len(data)
    assert post(g2.port, "/p?q=" + SQLI, "application/json", evil).status == 403


def test_phase_one_refuses_before_the_body(gateway, tmp_path, upstream):
    """A scanner's request is refused on its head: the gateway does not wait
    for a body that never comes."""
    g = start(gateway, tmp_path, upstream)
    s = connect(g.port, timeout=5)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nUser-Agent: evilscanner\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100000\r\n\r\n")
    r = read_one_response(s)
    s.close()
    assert r.status == 403 and upstream.requests == []


def test_metrics_and_admin_rules(gateway, tmp_path, upstream):
    aport = free_port()
    g = start(gateway, tmp_path, upstream, admin={"address": "127.0.0.1:%d" % aport, "token": "t0k"})
    g.wait_listening(aport)
    for _ in range(3):
        assert request(g.port, path="/a?q=" + SQLI).status == 403
    for i in range(64):  # enough for a timed sample (one request in 32)
        assert request(g.port, path="/ok?i=%d" % i).status == 200
    m = request(aport, path="/metrics").body.decode()
    assert 'portcullis_waf_rule_hits_total{rule="1200"} 3' in m
    assert 'portcullis_waf_rule_hits_total{rule="1100"} 0' in m
    assert 'portcullis_blocked_total{reason="waf"} 3' in m
    assert request(aport, path="/admin/waf/rules").status == 401
    r = request(aport, path="/admin/waf/rules", headers=[("Authorization", "Bearer t0k")])
    assert r.status == 200
    doc = r.json()
    rules = {x["id"]: x for x in doc["rules"]}
    assert doc["loaded"] is True and doc["sample_every"] == 32
    assert rules[1200]["hits"] == 3 and rules[1200]["msg"] == "SQL injection in %{MATCHED_VAR_NAME}"
    assert rules[1200]["file"].endswith("test.conf") and rules[1200]["line"] == 5
    assert sum(x["timed_evaluations"] for x in doc["rules"]) > 0
    assert all(x["time_us"] >= 0 and x["avg_ns"] >= 0 for x in doc["rules"])


def test_reload_reads_rule_changes(gateway, tmp_path, upstream):
    g = start(gateway, tmp_path, upstream)
    assert request(g.port, path="/a?q=" + SQLI).status == 403
    path = os.path.join(str(tmp_path), "test.conf")
    with open(path, "w") as f:
        f.write(RULES.replace("union", "onion"))
    g.send_signal(signal.SIGHUP)
    assert poll(lambda: request(g.port, path="/a?q=" + SQLI).status == 200)
    assert request(g.port, path="/a?q=1%20onion%20select%202").status == 403
    # a broken rule file is refused and the running rules stay
    with open(path, "w") as f:
        f.write(RULES + 'SecRule ARGS "@nosuchop x" "id:9,phase:2,pass"\n')
    g.send_signal(signal.SIGHUP)
    assert poll(lambda: "nosuchop" in g.stderr())
    assert request(g.port, path="/a?q=1%20onion%20select%202").status == 403


def check(tmp_path, cfg):
    path = os.path.join(str(tmp_path), "check.yaml")
    with open(path, "w") as f:
        f.write(json.dumps(cfg))
    p = subprocess.run([BIN, "-t", "-c", path], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def test_configuration_errors(tmp_path, upstream):
    rules = os.path.join(str(tmp_path), "r.conf")
    with open(rules, "w") as f:
        f.write(RULES + 'SecRule ARGS "@rx (" "id:2000,phase:2,block"\n')
    cfg = base_config(upstream.address, 1)
    cfg["waf"] = {"rules": [rules]}
    rc, out = check(tmp_path, cfg)
    assert rc != 0 and "r.conf:11: " in out and "2000" not in out.split("r.conf:11: ")[0]
    cfg["waf"] = {"rules": [os.path.join(str(tmp_path), "nothing-*.conf")]}
    rc, out = check(tmp_path, cfg)
    assert rc != 0 and "waf.rules[0]: no rule file matches" in out
    with open(rules, "w") as f:
        f.write(RULES)
    cfg["waf"] = {"rules": [rules], "mode": "sometimes"}
    rc, out = check(tmp_path, cfg)
    assert rc != 0 and "waf.mode" in out
    cfg["waf"] = {"rules": [rules]}
    cfg["routes"][0]["waf"] = {"exclude_rules": ["12x", "3000-2000"], "exclude_targets": ["ARGS:", "NOPE:x", "1x:ARGS"]}
    rc, out = check(tmp_path, cfg)
    assert rc != 0
    for msg in ["waf.exclude_rules[0]: expected a rule id or a range", "waf.exclude_rules[1]: expected",
                "waf.exclude_targets[0]: variable 'ARGS:': empty selector",
                "waf.exclude_targets[1]: unsupported variable 'NOPE'",
                "waf.exclude_targets[2]: expected [RULE_ID[-RULE_ID]:]TARGET"]:
        assert msg in out, msg
    cfg["routes"][0]["waf"] = {"exclude_rules": ["4242"]}
    rc, out = check(tmp_path, cfg)
    assert rc == 0 and "no rule of the rule set has id 4242" in out
    # rules of the response phases load, and are said not to run
    with open(rules, "a") as f:
        f.write('SecRule ARGS "@rx x" "id:3000,phase:4,pass"\nSecAction "id:3001,phase:5,pass"\n')
    rc, out = check(tmp_path, cfg)
    assert rc == 0 and ("r.conf:%d: 2 rules of phases 3-5 (rule 3000 here is the first) load but are "
                        "not evaluated" % (RULES.count("\n") + 1)) in out
    # mode off everywhere: no rule file is read
    cfg["waf"] = {"rules": [os.path.join(str(tmp_path), "absent.conf")], "mode": "off"}
    cfg["routes"][0].pop("waf")
    assert check(tmp_path, cfg)[0] == 0
    # ... unless a route turns it on
    cfg["routes"][0]["waf"] = {"mode": "block"}
    assert check(tmp_path, cfg)[0] != 0


def test_query_arguments_past_the_limit_are_refused(gateway, tmp_path, upstream):
    """Arguments past the 1,024th would go uninspected: the request is
    refused (flagged in detect mode) instead."""
    routes = [{"match": {"path_prefix": "/detect/"}, "upstream": "app", "waf": {"mode": "detect"}},
              {"match": {"path_prefix": "/"}, "upstream": "app"}]
    g = start(gateway, tmp_path, upstream, routes=routes,
              limits={"max_uri": "64KiB"})
    q = "&".join("a%d=1" % i for i in range(1100)) + "&z=" + SQLI
    r = request(g.port, path="/x?" + q)
    assert r.status == 400 and r.json()["error"] == "invalid_query"
    assert upstream.requests == []
    q = "&".join("a%d=1" % i for i in range(1100))
    assert request(g.port, path="/detect/x?" + q).status == 200
    assert request(g.port, path="/x?" + "&".join("a%d=1" % i for i in range(1000))).status == 200


def test_cookies_past_the_limit_are_refused(gateway, tmp_path, upstream):
    """Cookies past the 1,024th of a Cookie header would go uninspected
    (and the shipped rules leave the raw Cookie header to REQUEST_COOKIES):
    the request is refused instead."""
    g = start(gateway, tmp_path, upstream, limits={"max_header_bytes": "64KiB"})
    many = "; ".join("c%d=1" % i for i in range(1100)) + "; z=" + SQLI
    r = request(g.port, headers=[("Cookie", many)])
    assert r.status == 400 and r.json()["error"] == "invalid_cookie"
    assert upstream.requests == []
    few = "; ".join("c%d=1" % i for i in range(1000))
    assert request(g.port, headers=[("Cookie", few)]).status == 200
