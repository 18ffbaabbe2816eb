"""Every case of tests/corpus/http/ sent to a running gateway: the status
must be the expected one, and a refused request must never reach the
upstream (not even partly: the upstream records every head it sees)."""

import glob
import os
import sys

import pytest

from conftest import ROOT, connect, parse_response

sys.path.insert(0, os.path.join(ROOT, "tests", "corpus", "http"))
from decode import load_case  # noqa: E402

CASES = sorted(glob.glob(os.path.join(ROOT, "tests", "corpus", "http", "*.txt")))


@pytest.fixture(scope="module")
def corpus_gateway(tmp_path_factory):
    from conftest import Gateway, base_config, free_port
    from upstream import Upstream

    up = Upstream()
    port = free_port()
    # the corpus is about HTTP framing and parsing: the WAF (on by default,
    # with its own tests) would only add its verdicts to some of the cases
    cfg = base_config(up.address, port, waf={"mode": "off"})
    g = Gateway(tmp_path_factory.mktemp("corpus"), cfg, port).start()
    yield g, up
    g.stop()
    up.stop()


def test_corpus_is_large_enough():
    assert len(CASES) >= 100


def exchange(port, data, responses, head=False, timeout=3.0):
    """Sends data and reads until `responses` complete responses arrived, the
    gateway closed, or timeout. Returns the parsed responses."""
    s = connect(port, timeout)
    got, buf = [], b""
    try:
        s.sendall(data)
    except OSError:
        pass
    try:
        while len(got) < responses:
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            buf += d
            while len(got) < responses:
                try:
                    r, rest = parse_response(buf, head_request=head and not got)
                except (ValueError, IndexError, AssertionError):
                    break
                if r.header("content-length") is not None and len(r.body) < int(r.header("content-length")):
                    break
                got.append(r)
                buf = rest
            if not d:
                break
    finally:
        s.close()
    return got


@pytest.mark.parametrize("path", CASES, ids=[os.path.basename(c)[:-4] for c in CASES])
def test_case(corpus_gateway, path):
    g, up = corpus_gateway
    case = load_case(path)
    up.reset()
    want = 2 if case.get("expect_next") is not None else 1
    got = exchange(g.port, case["data"], want, head=case["data"].startswith(b"HEAD "))
    assert got, "no response to: %s" % case["description"]
    assert got[0].status == case["expect"], "%s: got %d %r" % (case["description"], got[0].status, got[0].body[:200])
    if want == 2:
        assert len(got) == 2 and got[1].status == case["expect_next"], case["description"]
    reqs = up.wait_requests(1, timeout=0.5 if case["forwarded"] else 0.1)
    if case["forwarded"]:
        assert reqs, "a valid request was not forwarded"
        if want == 2 and case["expect_next"] >= 400:
            assert len(reqs) == 1, "the refused second request reached the upstream"
    else:
        assert reqs == [], "a refused request reached the upstream: %r" % reqs[0].raw_head
