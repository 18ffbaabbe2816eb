"""Allocation failures, end to end: the gateway built with ASan+UBSan and
with its own allocations wrapped (build/san/portcullis-oom, see
docs/internals/memory.md) is made to fail

  - every Nth allocation once it serves (PORTCULLIS_FAIL_ALLOC_EVERY), for
    several N, under a bounded mix of real requests: GET, POST with form,
    JSON and multipart bodies (so the WAF parses them), chunked bodies,
    keep-alive and pipelined requests, attacks, malformed requests, JWT,
    CORS and rate-limited routes, upstream errors, admin endpoints, and a
    reload in the middle;
  - one allocation at start-up (PORTCULLIS_FAIL_ALLOC_AT), at points spread
    over the whole start;
  - one allocation in a reload, spread over the loading and at its end,
    where each worker takes the new configuration.

What is asserted: every request gets an answer within a bounded time — its
normal answer, 500 or 503, or a closed connection; an attack never reaches
the upstream (the WAF fails closed); the gateway is alive after the mix and
exits 0 on SIGTERM with no sanitizer report (leaks included); a start that
fails exits 1 with a message; a reload that fails changes nothing, or
leaves a worker on the configuration it had, and the gateway serves on.
Failures did happen (the wrapper's count).
Timing is never asserted."""

import hashlib
import os
import re
import signal
import socket
import threading
import time

import pytest

from conftest import ROOT, Gateway, base_config, free_port
from jose_util import token

OOM_BIN = os.path.join(ROOT, os.environ.get("PORTCULLIS_OOM", "build/san/portcullis-oom"))
TOKEN = "oom-admin-token"
SECRET = b"k" * 32
FAILED = (500, 503)  # what an allocation failure may answer
CRASH_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "Segmentation fault", "Assertion")
READ_TIMEOUT = 8.0  # per exchange; the gateway's own timeouts below are shorter
REPORT = re.compile(r"alloc-fail: (\d+) of (\d+) allocations failed \((\d+) while serving\)")


def config(upstream, port, admin_port, redis=None):
    cfg = base_config(upstream.address, port)
    cfg["limits"] = {"header_timeout": "3s", "body_timeout": "3s", "idle_timeout": "3s"}
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port, "token": TOKEN}
    cfg["jwt"] = {"providers": {"main": {"secret": SECRET.decode(), "algorithms": ["HS256"],
                                         "forward_claims": {"sub": "X-User-Id"}, "revocation": True}}}
    if redis:  # rate limits and revocation through Redis
        cfg["redis"] = {"address": "127.0.0.1:%d" % redis.port, "timeout": "1s", "on_failure": "fail_closed"}
    cfg["cors"] = {"web": {"origins": ["https://app.example.com"], "methods": ["GET", "POST"],
                           "headers": ["Content-Type"]}}
    cfg["rate_limits"] = {"per_ip": {"key": "ip", "rate": "20/1s", "headers": True}}
    cfg["routes"] = [
        {"match": {"path_prefix": "/api/"}, "upstream": "app", "auth": {"jwt": "main"}},
        {"match": {"path_prefix": "/cors/"}, "upstream": "app", "cors": "web"},
        {"match": {"path_prefix": "/limited/"}, "upstream": "app", "rate_limits": ["per_ip"]},
        {"match": {"path_prefix": "/"}, "upstream": "app"},
    ]
    return cfg


# ---- the request mix ----


def req(method, target, headers=(), body=b"", close=True):
    h = [("Host", "oom.test")] + list(headers)
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in h):
        h.append(("Content-Length", str(len(body))))
    if close:
        h.append(("Connection", "close"))
    return ("%s %s HTTP/1.1\r\n" % (method, target)).encode() + \
        b"".join(("%s: %s\r\n" % kv).encode() for kv in h) + b"\r\n" + body


def chunked(body, size=7):
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


FORM = b"name=alice&city=paris&note=" + b"n" * 300
JSON = b'{"user":{"name":"bob","tags":["a","b",{"deep":[1,2.5,true,null]}]},"note":"' + b"j" * 300 + b'"}'
BOUNDARY = "oomboundary"
MULTIPART = ("--%s\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n"
             "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
             "Content-Type: text/plain\r\n\r\nfile contents\r\n--%s--\r\n" % ((BOUNDARY,) * 3)).encode()
ATTACK_FORM = b"id=1' UNION SELECT password FROM users--&x=<script>alert(1)</script>"
ATTACK_JSON = b'{"q":"<script>alert(document.cookie)</script>","id":"1 UNION SELECT 1,2--"}'
ATTACK_QUERY = "/search?q=%3Cscript%3Ealert(1)%3C/script%3E&id=1%27%20UNION%20SELECT%201--"
ATTACK_BODIES = (ATTACK_FORM, ATTACK_JSON)
FORM_CT = ("Content-Type", "application/x-www-form-urlencoded")
JSON_CT = ("Content-Type", "application/json")


def mix():
    """(name, raw bytes, requests in them, statuses a normal answer may
    have). The upstream must never see the attacks (ATTACK_*)."""
    good = token("HS256", SECRET, {"sub": "oom-user", "exp": int(time.time()) + 3600})
    bad = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    origin = ("Origin", "https://app.example.com")
    return [
        ("get", req("GET", "/plain?a=1&b=two"), 1, {200}),
        ("get-big", req("GET", "/bytes/40000"), 1, {200}),
        ("get-chunked-response", req("GET", "/bytes/9000?mode=chunked"), 1, {200}),
        ("get-close-delimited", req("GET", "/bytes/3000?mode=close"), 1, {200}),
        ("get-cookies", req("GET", "/c", [("Cookie", "a=1; b=two; session=xyz"),
                                           ("User-Agent", "oom-test/1.0"), ("Accept", "*/*")]), 1, {200}),
        ("post-form", req("POST", "/form", [FORM_CT], FORM), 1, {200}),
        ("post-json", req("POST", "/json", [JSON_CT], JSON), 1, {200}),
        ("post-multipart", req("POST", "/upload", [("Content-Type", "multipart/form-data; boundary=" + BOUNDARY)],
                               MULTIPART), 1, {200}),
        ("post-chunked-form", req("POST", "/form", [FORM_CT, ("Transfer-Encoding", "chunked")], chunked(FORM)),
         1, {200}),
        ("post-chunked-raw", req("POST", "/raw", [("Content-Type", "application/octet-stream"),
                                                   ("Transfer-Encoding", "chunked")], chunked(b"r" * 5000, 999)),
         1, {200}),
        ("keep-alive", req("GET", "/ka/1", close=False) + req("POST", "/ka/2", [JSON_CT], JSON, close=False) +
         req("GET", "/ka/3"), 3, {200}),
        ("attack-query", req("GET", ATTACK_QUERY), 1, {403}),
        ("attack-form", req("POST", "/login", [FORM_CT], ATTACK_FORM), 1, {403}),
        ("attack-json", req("POST", "/api-like", [JSON_CT], ATTACK_JSON), 1, {403}),
        ("attack-chunked", req("POST", "/login", [FORM_CT, ("Transfer-Encoding", "chunked")],
                               chunked(ATTACK_FORM)), 1, {403}),
        ("attack-after-keep-alive", req("GET", "/ka/ok", close=False) + req("GET", ATTACK_QUERY), 2,
         {200, 403}),
        ("malformed-cl-te", req("POST", "/x", [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
                                b"0\r\n\r\n"), 1, {400}),
        ("malformed-chunk", req("POST", "/x", [("Transfer-Encoding", "chunked")], b"zz\r\nhello\r\n0\r\n\r\n"),
         1, {400}),
        ("malformed-line", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 1, {400}),
        ("malformed-header", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 1, {400}),
        ("too-many-headers", req("GET", "/h", [("X-H%d" % i, "v") for i in range(120)]), 1, {431}),
        ("jwt-good", req("GET", "/api/me", [("Authorization", "Bearer " + good)]), 1, {200}),
        ("jwt-bad", req("GET", "/api/me", [("Authorization", "Bearer " + bad)]), 1, {401}),
        ("jwt-missing", req("GET", "/api/me"), 1, {401}),
        ("cors-preflight", req("OPTIONS", "/cors/x", [origin, ("Access-Control-Request-Method", "POST")]), 1,
         {200, 204}),
        ("cors-get", req("GET", "/cors/x", [origin]), 1, {200}),
        ("cors-refused", req("OPTIONS", "/cors/x", [("Origin", "https://evil.example"),
                                                     ("Access-Control-Request-Method", "POST")]), 1, {403}),
        ("rate-limited", req("GET", "/limited/x"), 1, {200, 429}),
        ("upstream-error", req("GET", "/status/503"), 1, {503}),
        ("upstream-closes", req("GET", "/close"), 1, {502}),
        ("upstream-bad-response", req("GET", "/raw/two-cl"), 1, {502}),
    ]


def admin_mix():
    auth = ("Authorization", "Bearer " + TOKEN)
    return [
        ("healthz", req("GET", "/healthz"), 1, {200}),
        ("readyz", req("GET", "/readyz"), 1, {200, 503}),
        ("metrics", req("GET", "/metrics"), 1, {200}),
        ("status", req("GET", "/admin/status", [auth]), 1, {200}),
        ("waf-rules", req("GET", "/admin/waf/rules", [auth]), 1, {200}),
        ("revoke", req("POST", "/admin/revoke", [auth, JSON_CT],
                       b'{"jti":"oom-%d","exp":%d}' % (time.time_ns() % 1000000, time.time() + 600)),
         1, {200, 201, 204}),
        ("admin-unauthorized", req("GET", "/admin/status"), 1, {401}),
    ]


def exchange(port, raw):
    """Sends raw on a new connection and reads until the gateway closes it:
    (bytes read, 'closed' | 'reset' | 'timeout')."""
    data = b""
    deadline = time.monotonic() + READ_TIMEOUT
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT)
    except OSError as e:
        return b"", "refused: %s" % e
    with s:
        try:
            s.sendall(raw)
        except OSError:
            pass  # closed under us: what was answered is still to be read
        while time.monotonic() < deadline:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                d = s.recv(65536)
            except socket.timeout:
                return data, "timeout"
            except OSError:
                return data, "reset"
            if not d:
                return data, "closed"
            data += d
    return data, "timeout"


def responses(data):
    """The statuses of the complete responses at the start of data, and
    whether a response was cut short after them."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return out, True
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", lines[0] + b" ")
        assert m, "not an HTTP response: %r" % data[:200]
        fields = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            fields[k.strip().lower()] = v.strip()
        if fields.get(b"transfer-encoding") == b"chunked":
            while True:
                line, sep, rest = rest.partition(b"\r\n")
                if not sep:
                    return out, True
                size = int(line.split(b";")[0], 16)
                if len(rest) < size + 2:
                    return out, True
                rest = rest[size + 2:]
                if size == 0:
                    break
        elif b"content-length" in fields:
            n = int(fields[b"content-length"])
            if len(rest) < n:
                return out, True
            rest = rest[n:]
        else:
            rest = b""  # delimited by the close
        out.append(int(m.group(1)))
        data = rest
    return out, False


class Tally:
    def __init__(self):
        self.normal = self.failed = 0
        self.dropped = []  # names of the exchanges cut short
        self.problems = []

    def add(self, name, nreq, ok, data, end):
        try:
            statuses, cut = responses(data)
        except (AssertionError, ValueError) as e:
            self.problems.append("%s: unreadable answer (%s): %r" % (name, e, data[:300]))
            return
        if end not in ("closed", "reset"):
            self.problems.append("%s: %s after %r" % (name, end, data[:300]))
        if len(statuses) > nreq:
            self.problems.append("%s: %d responses to %d requests" % (name, len(statuses), nreq))
        for st in statuses:
            if st in ok:
                self.normal += 1
            elif st in FAILED:
                self.failed += 1
            else:
                self.problems.append("%s: status %d (expected %s or %s)" % (name, st, sorted(ok), FAILED))
        if cut or len(statuses) < nreq:
            self.dropped.append(name)


def run_mix(port, admin_port, tally, rounds, clients=2):
    """Each of `clients` threads sends the mix `rounds` times (in its own
    order), so that both workers and overlapping requests see failures."""
    def client(k):
        for _ in range(rounds):
            items = [(port, name, raw, nreq, ok) for name, raw, nreq, ok in mix()]
            items += [(admin_port, "admin " + name, raw, nreq, ok) for name, raw, nreq, ok in admin_mix()]
            for p, name, raw, nreq, ok in items[::1 if k % 2 == 0 else -1]:
                result = exchange(p, raw)
                with lock:
                    tally.add(name, nreq, ok, *result)

    lock = threading.Lock()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(rounds * 60 * READ_TIMEOUT)  # bounded: every exchange is
    assert not any(t.is_alive() for t in threads), "a client is stuck"


def attacks_seen(upstream):
    """Requests the upstream received that carry one of the mix's attacks."""
    bad_sums = {hashlib.sha256(b).hexdigest() for b in ATTACK_BODIES}
    with upstream.lock:
        reqs = list(upstream.requests)
    return [r.target for r in reqs
            if "script" in r.target.lower() or "union" in r.target.lower() or r.body_sha256.hexdigest() in bad_sums]


def report(stderr):
    m = REPORT.search(stderr)
    assert m, "no report from the allocation wrapper:\n" + stderr[-3000:]
    return tuple(int(x) for x in m.groups())


def no_crash(stderr):
    marks = [m for m in CRASH_MARKS if m in stderr]
    assert not marks, "sanitizer or crash report (%s):\n%s" % (marks, stderr[-6000:])


def wait_line(g, pattern, after, timeout=15.0):
    """Waits for a stderr line matching pattern past offset `after`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, g.stderr()[after:]):
            return True
        if g.proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


@pytest.fixture
def oom_bin():
    assert os.access(OOM_BIN, os.X_OK), "%s is missing: make %s" % (OOM_BIN, os.path.relpath(OOM_BIN, ROOT))
    return OOM_BIN


@pytest.mark.parametrize("every,with_redis", [(7, False), (13, True), (50, False), (101, True)])
def test_every_nth_allocation_fails(tmp_path, request, upstream, oom_bin, every, with_redis):
    port, admin_port = free_port(), free_port()
    redis = request.getfixturevalue("redis") if with_redis else None
    g = Gateway(tmp_path, config(upstream, port, admin_port, redis), port, binary=oom_bin,
                env={"PORTCULLIS_FAIL_ALLOC_EVERY": str(every)})
    try:
        g.start()
        g.wait_listening(admin_port)
        assert wait_line(g, r"portcullis started", 0)
        tally = Tally()
        run_mix(port, admin_port, tally, rounds=2)
        assert g.proc.poll() is None, "the gateway died:\n" + g.stderr()[-6000:]
        # a reload under failures either takes effect or changes nothing
        mark = len(g.stderr())
        g.send_signal(signal.SIGHUP)
        assert wait_line(g, r"\[reload\]", mark), "no reload outcome logged:\n" + g.stderr()[-3000:]
        run_mix(port, admin_port, tally, rounds=1)
        assert g.proc.poll() is None, "the gateway died:\n" + g.stderr()[-6000:]
        assert not tally.problems, "\n".join(tally.problems[:40])
        assert not attacks_seen(upstream)
        # still serving: some request of a short bounded loop gets an answer
        answered = False
        for _ in range(50):
            data, _ = exchange(admin_port, req("GET", "/healthz"))
            if data.startswith(b"HTTP/1.1 "):
                answered = True
                break
        assert answered, "no answer from the admin listener"
        assert g.stop() == 0, g.stderr()[-6000:]
    finally:
        if g.proc and g.proc.poll() is None:
            g.proc.kill()
            g.proc.wait()
        for f in ("out", "err"):
            if hasattr(g, f):
                getattr(g, f).close()
    err = g.stderr()
    no_crash(err)
    failed, _calls, served = report(err)
    assert failed > 0 and served >= every
    print("every %d: %d of %d allocations failed while serving; answers: %d normal, %d failed, %d cut short (%s)"
          % (every, failed, served, tally.normal, tally.failed, len(tally.dropped), " ".join(tally.dropped)))


def start_once(tmp_path, upstream, oom_bin, env, name, reload=False, probe=True):
    """Starts the gateway with env; returns (exit status, stderr): SIGTERM
    once it serves (with reload, after a SIGHUP has had its outcome, and
    with probe a request its answer), or its own status if it gave up
    starting."""
    port, admin_port = free_port(), free_port()
    g = Gateway(tmp_path, config(upstream, port, admin_port), port, binary=oom_bin, env=env, name=name)
    try:
        g.start(wait=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and g.proc.poll() is None:
            if "portcullis started" in g.stderr():
                break
            time.sleep(0.05)
        if g.proc.poll() is None:
            assert "portcullis started" in g.stderr(), "neither started nor exited:\n" + g.stderr()[-3000:]
            if reload:
                mark = len(g.stderr())
                g.send_signal(signal.SIGHUP)
                assert wait_line(g, r"\[reload\] (configuration \d+ in effect|failed)", mark), g.stderr()[-3000:]
            if reload and probe:
                data, end = exchange(port, req("GET", "/after-reload"))
                statuses, _ = responses(data)
                assert end != "timeout" and set(statuses) <= {200} | set(FAILED), (statuses, end)
            rc = g.stop()
        else:
            rc = g.proc.returncode
    finally:
        if g.proc and g.proc.poll() is None:
            g.proc.kill()
            g.proc.wait()
        for f in ("out", "err"):
            if hasattr(g, f):
                getattr(g, f).close()
    return rc, g.stderr()


def test_one_allocation_fails_at_start(tmp_path, upstream, oom_bin):
    # how many allocations a start makes (none fails: the Kth is past it)
    rc, err = start_once(tmp_path, upstream, oom_bin, {"PORTCULLIS_FAIL_ALLOC_AT": str(1 << 60)}, "count")
    assert rc == 0, err[-3000:]
    no_crash(err)
    _, calls, served = report(err)
    at_start = calls - served
    assert at_start > 100
    points = sorted({1, 2, 3} | {at_start * i // 9 for i in range(1, 9)} | {at_start - 1})
    outcomes = []
    for k in points:
        rc, err = start_once(tmp_path, upstream, oom_bin, {"PORTCULLIS_FAIL_ALLOC_AT": str(k)}, "at%d" % k)
        no_crash(err)
        failed, _, _ = report(err)
        assert failed == 1, err[-3000:]
        if rc != 0:
            assert rc == 1, "allocation %d: exit status %s\n%s" % (k, rc, err[-3000:])
            assert "portcullis started" not in err
            assert re.search(r"out of memory|cannot", err), "allocation %d: no message\n%s" % (k, err[-3000:])
        outcomes.append((k, rc))
    print("start-up: %d allocations; failing one at %s" % (at_start, outcomes))


def test_one_allocation_fails_in_a_reload(tmp_path, upstream, oom_bin):
    """A reload that runs short of memory at any point (loading, binding,
    each worker taking the new configuration) changes nothing or takes
    effect, and the gateway serves on."""
    rc, err = start_once(tmp_path, upstream, oom_bin, {"PORTCULLIS_FAIL_ALLOC_AT": str(1 << 60)}, "count",
                         reload=True, probe=False)
    assert rc == 0, err[-3000:]
    _, calls, served = report(err)
    at_start = calls - served  # served: the reload's (the drain's are few)
    assert served > 100
    # spread over the loading, and more at the end, where each worker takes
    # the new configuration
    points = sorted({served * i // 4 for i in range(1, 4)} | {served - d for d in (12, 8, 5, 3, 2, 1)})
    outcomes = []
    for x in points:
        rc, err = start_once(tmp_path, upstream, oom_bin, {"PORTCULLIS_FAIL_ALLOC_AT": str(at_start + x)},
                             "reload%d" % x, reload=True)
        no_crash(err)
        assert rc == 0, "allocation %d of the reload: exit status %s\n%s" % (x, rc, err[-3000:])
        outcomes.append((x, re.findall(r"error \[(?:reload|worker)\] ([^\n:]*: [^\n:]*)", err)[:1]))
    print("reload: about %d allocations; failing one at %s" % (served, outcomes))
