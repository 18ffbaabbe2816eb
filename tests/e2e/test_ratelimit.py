"""Rate limiting end to end: exact admission under concurrency (in process,
through Redis, and across two gateways sharing one Redis), burst, the
all-or-nothing rule across policies, every key kind, the 429 fields, Redis
hanging (SIGSTOP), killed and restarted (NOSCRIPT) under each on_failure
mode, readiness and metrics."""

import json
import signal
import threading
import time

import pytest

from conftest import base_config, free_port, poll, request
from jose_util import token

SECRET = "k" * 32


def config(upstream, port, policies, routes=None, redis=None, **extra):
    cfg = base_config(upstream.address, port, rate_limits=policies, **extra)
    cfg["routes"] = routes or [{"match": {"path_prefix": "/"}, "upstream": "app",
                                "rate_limits": list(policies)}]
    if redis is not None:
        cfg["redis"] = dict({"address": "127.0.0.1:%d" % redis.port, "timeout": "200ms"},
                            **getattr(redis, "extra", {}))
    return cfg


def start(gateway, upstream, policies, routes=None, redis=None, name="gw", **extra):
    port = free_port()
    admin = free_port()
    cfg = config(upstream, port, policies, routes, redis,
                 admin={"address": "127.0.0.1:%d" % admin, "token": "t0k"}, **extra)
    g = gateway(config=cfg, port=port, name=name) if name != "gw" else gateway(config=cfg, port=port)
    g.admin = admin
    if redis is not None:
        assert poll(lambda: request(admin, path="/readyz").status == 200), request(admin, path="/readyz").body
    return g


def statuses(port, n, path="/x", headers=None):
    """n requests at once (one thread each); their statuses."""
    out = [None] * n
    go = threading.Event()

    def one(i):
        go.wait()
        out[i] = request(port, path=path, headers=headers or []).status

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    go.set()
    for t in ts:
        t.join(timeout=30)
    return out


@pytest.mark.parametrize("store", ["local", "redis"])
def test_exactly_n_of_concurrent_requests(gateway, upstream, redis, store):
    g = start(gateway, upstream, {"ten": {"key": "ip", "rate": "10/1m"}},
              redis=redis if store == "redis" else None)
    got = statuses(g.port, 30)
    assert got.count(200) == 10 and got.count(429) == 20, got
    assert len(upstream.requests) == 10


def test_two_gateways_share_one_redis(gateway, upstream, redis):
    a = start(gateway, upstream, {"ten": {"key": "ip", "rate": "10/1m"}}, redis=redis)
    b = start(gateway, upstream, {"ten": {"key": "ip", "rate": "10/1m"}}, redis=redis, name="second")
    res = {}
    ts = [threading.Thread(target=lambda g=g: res.__setitem__(g.port, statuses(g.port, 15))) for g in (a, b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    allst = res[a.port] + res[b.port]
    assert allst.count(200) == 10 and allst.count(429) == 20, res
    # one command per request: EVALSHA (each connection loaded the script once)
    stats = {line.split(":")[0]: int(line.split("calls=")[1].split(",")[0])
             for line in redis.cmd("INFO", "commandstats").splitlines() if line.startswith("cmdstat_")}
    assert stats.get("cmdstat_evalsha") == 30 and "cmdstat_eval" not in stats, stats


@pytest.mark.parametrize("store", ["local", "redis"])
def test_burst_then_the_rate(gateway, upstream, redis, store):
    g = start(gateway, upstream, {"b": {"key": "ip", "rate": "2/1s", "burst": 3}},
              redis=redis if store == "redis" else None)
    got = [request(g.port, path="/x").status for _ in range(6)]
    assert got == [200] * 5 + [429], got
    assert poll(lambda: request(g.port, path="/x").status == 200, timeout=3)  # one per 0.5 s


@pytest.mark.parametrize("store", ["local", "redis"])
def test_a_refused_policy_consumes_nothing(gateway, upstream, redis, store):
    pol = {"per_ip": {"key": "ip", "rate": "3/1m"}, "per_key": {"key": "header:X-K", "rate": "1/1m"}}
    g = start(gateway, upstream, pol, redis=redis if store == "redis" else None)

    def st(k):
        return request(g.port, path="/x", headers=[("X-K", k)]).status

    assert st("1") == 200          # per_ip 1/3, per_key[1] 1/1
    assert st("1") == 429          # per_key refuses: per_ip must not be charged
    assert st("1") == 429
    assert st("2") == 200          # per_ip 2/3
    assert st("3") == 200          # per_ip 3/3: only possible if the refusals took nothing
    assert st("4") == 429          # per_ip exhausted


def test_key_kinds(gateway, upstream):
    pol = {"ip": {"key": "ip", "rate": "1/1m"}, "user": {"key": "claim:sub", "rate": "1/1m"},
           "hdr": {"key": "header:X-Api-Key", "rate": "1/1m"}, "route": {"key": "route", "rate": "2/1m"},
           "combo": {"key": "ip+route", "rate": "1/1m"}}
    routes = [
        {"name": "ip", "match": {"path_prefix": "/ip"}, "upstream": "app", "rate_limits": ["ip"]},
        {"name": "user", "match": {"path_prefix": "/user"}, "upstream": "app", "rate_limits": ["user"],
         "auth": {"jwt": "main"}},
        {"name": "anon", "match": {"path_prefix": "/anon"}, "upstream": "app", "rate_limits": ["user"]},
        {"name": "hdr", "match": {"path_prefix": "/hdr"}, "upstream": "app", "rate_limits": ["hdr"]},
        {"name": "r1", "match": {"path_prefix": "/r1"}, "upstream": "app", "rate_limits": ["route"]},
        {"name": "r2", "match": {"path_prefix": "/r2"}, "upstream": "app", "rate_limits": ["route", "combo"]},
    ]
    g = start(gateway, upstream, pol, routes, trusted_proxies=["127.0.0.1/32"],
              jwt={"providers": {"main": {"secret": SECRET, "algorithms": ["HS256"]}}})

    def st(path, h=()):
        return request(g.port, path=path, headers=list(h)).status

    # ip: the client behind a trusted proxy, from X-Forwarded-For
    assert st("/ip", [("X-Forwarded-For", "198.51.100.1")]) == 200
    assert st("/ip", [("X-Forwarded-For", "198.51.100.1")]) == 429
    assert st("/ip", [("X-Forwarded-For", "198.51.100.2")]) == 200
    # claim:sub: each user its own budget
    now = int(time.time())
    tok = lambda sub: ("Authorization", "Bearer " + token("HS256", SECRET.encode(), {"sub": sub, "exp": now + 60}))
    assert st("/user", [tok("alice")]) == 200
    assert st("/user", [tok("alice")]) == 429
    assert st("/user", [tok("bob")]) == 200
    # no token on a claim key: the client address stands for it
    assert st("/anon", [("X-Forwarded-For", "198.51.100.9")]) == 200
    assert st("/anon", [("X-Forwarded-For", "198.51.100.9")]) == 429
    assert st("/anon", [("X-Forwarded-For", "198.51.100.10")]) == 200
    # header
    assert st("/hdr", [("X-Api-Key", "a")]) == 200
    assert st("/hdr", [("X-Api-Key", "a")]) == 429
    assert st("/hdr", [("X-Api-Key", "b")]) == 200
    # route: shared by every client of the route, separate per route
    assert st("/r1", [("X-Forwarded-For", "203.0.113.1")]) == 200
    assert st("/r1", [("X-Forwarded-For", "203.0.113.2")]) == 200
    assert st("/r1", [("X-Forwarded-For", "203.0.113.3")]) == 429
    assert st("/r2", [("X-Forwarded-For", "203.0.113.1")]) == 200
    # ip+route: the same client twice on r2 is refused by combo
    assert st("/r2", [("X-Forwarded-For", "203.0.113.1")]) == 429
    assert st("/r2", [("X-Forwarded-For", "203.0.113.4")]) == 200


def test_429_and_ratelimit_fields(gateway, upstream):
    pol = {"quiet": {"key": "ip", "rate": "2/1m"}, "loud": {"key": "ip", "rate": "100/1m", "headers": True}}
    routes = [{"match": {"path_prefix": "/q"}, "upstream": "app", "rate_limits": ["quiet"]},
              {"match": {"path_prefix": "/l"}, "upstream": "app", "rate_limits": ["loud"]}]
    g = start(gateway, upstream, pol, routes)
    r = request(g.port, path="/q")
    assert r.status == 200 and r.header("RateLimit") is None
    request(g.port, path="/q")
    r = request(g.port, path="/q")
    assert r.status == 429
    assert r.json()["error"] == "too_many_requests"
    assert 1 <= int(r.header("Retry-After")) <= 30
    assert r.header("RateLimit-Policy") == '"quiet";q=2;w=60'
    assert r.header("RateLimit").startswith('"quiet";r=0;t=')
    r = request(g.port, path="/l")
    assert r.status == 200
    assert r.header("RateLimit-Policy") == '"loud";q=100;w=60'
    assert r.header("RateLimit").startswith('"loud";r=99;t=')
    log = g.access_log(wait_for=4)
    assert [l["blocked_by"] for l in log].count("ratelimit") == 1
    m = request(g.admin, path="/metrics").body.decode()
    assert 'portcullis_blocked_total{reason="ratelimit"} 1' in m


def test_health_check_paths_are_never_limited(gateway, upstream):
    g = start(gateway, upstream, {"one": {"key": "ip", "rate": "1/1m"}})
    cfg = json.load(open(g.conf_path))
    cfg["upstreams"]["app"]["health_check"] = {"path": "/healthz-up", "interval": "1h"}
    with open(g.conf_path, "w") as f:
        json.dump(cfg, f)
    g.send_signal(signal.SIGHUP)
    assert poll(lambda: "configuration 2 in effect" in g.stderr())
    assert [request(g.port, path="/healthz-up").status for _ in range(5)] == [200] * 5
    assert request(g.port, path="/x").status == 200
    assert request(g.port, path="/x").status == 429


def test_dry_run_only_logs(gateway, upstream):
    pol = {"one": {"key": "ip", "rate": "1/1m"}}
    g = start(gateway, upstream, pol, [{"match": {"path_prefix": "/"}, "upstream": "app",
                                        "rate_limits": ["one"], "dry_run": True}],
              logging={"security": {"path": "stderr"}})
    got = [request(g.port, path="/x") for _ in range(3)]
    assert [r.status for r in got] == [200] * 3
    assert all(r.header("Retry-After") is None and r.header("RateLimit") is None for r in got)
    assert poll(lambda: g.stderr().count('"would_status":429') == 2, timeout=3)


def timed(port, path="/x"):
    t0 = time.time()
    st = request(port, path=path).status
    return st, time.time() - t0


@pytest.mark.parametrize("mode,expect", [("fail_open", 200), ("fail_closed", 503), ("local", None)])
def test_redis_hangs_dies_and_comes_back(gateway, upstream, redis, tmp_path, mode, expect):
    redis.extra = {"on_failure": mode}
    g = start(gateway, upstream, {"two": {"key": "ip", "rate": "2/1m"}}, redis=redis)
    assert request(g.port, path="/x").status == 200  # through Redis: 1 of 2
    margin = 2.0  # the timeout is 200 ms; no request may wait much longer
    for how in ("stop", "kill"):
        if how == "stop":
            redis.proc.send_signal(signal.SIGSTOP)
        else:
            redis.proc.send_signal(signal.SIGCONT)
            redis.stop()
        got = []
        for _ in range(4):
            st, took = timed(g.port)
            assert took < 0.2 + margin, (how, took)
            got.append(st)
        if expect is None:  # local: the in-process limiter, 2 a minute, spent in the first outage
            assert got == ([200, 200, 429, 429] if how == "stop" else [429] * 4), (how, got)
        else:
            assert got == [expect] * 4, (how, got)
        assert poll(lambda: request(g.admin, path="/readyz").status == 503)
        if how == "stop":
            redis.proc.send_signal(signal.SIGCONT)
            assert poll(lambda: request(g.admin, path="/readyz").status == 200)
            # back through Redis, whose count holds the first request (and
            # maybe the one that timed out while it was stopped: Redis still
            # ran it when it woke up)
            got = [request(g.port, path="/x").status for _ in range(3)]
            assert got.count(200) <= 1 and got[-1] == 429, got
    # a new, empty Redis on the same port: reconnection, and NOSCRIPT handled
    redis.restart(tmp_path)
    assert poll(lambda: request(g.admin, path="/readyz").status == 200, timeout=15)
    got = [request(g.port, path="/x").status for _ in range(3)]
    assert got == [200, 200, 429], got
    # scripts flushed under a live connection: NOSCRIPT, then EVAL
    assert redis.cmd("SCRIPT", "FLUSH") == "OK"
    assert request(g.port, path="/x").status == 429
    assert "cmdstat_eval:" in redis.cmd("INFO", "commandstats")
    m = request(g.admin, path="/metrics").body.decode()
    errs = [l for l in m.splitlines() if l.startswith("portcullis_redis_errors_total ")]
    assert errs and int(errs[0].split()[1]) >= 2, errs
