"""The filter chain's SUSPEND/resume path, driven by the test build's filter
(route keys test_suspend / test_respond exist only in build/portcullis-test)."""

import socket
import time

from conftest import TEST_BIN, base_config, connect, free_port, parse_response, parse_responses, read_until_close, request, send_raw


def cfg_with(upstream, port, **route):
    cfg = base_config(upstream.address, port)
    cfg["routes"] = [dict({"match": {"path_prefix": "/"}, "upstream": "app"}, **route)]
    return cfg


def test_suspend_then_continue(gateway, upstream):
    port = free_port()
    g = gateway(config=cfg_with(upstream, port, test_suspend="150ms"), port=port, binary=TEST_BIN)
    r = request(g.port, path="/s")
    assert r.status == 200 and r.json()["target"] == "/s"


def test_suspend_then_respond(gateway, upstream):
    port = free_port()
    g = gateway(config=cfg_with(upstream, port, test_suspend="50ms", test_respond=403), port=port,
                binary=TEST_BIN)
    r = request(g.port, path="/s")
    assert r.status == 403 and r.json()["error"] == "forbidden"
    assert upstream.requests == []


def test_respond_without_suspending(gateway, upstream):
    port = free_port()
    g = gateway(config=cfg_with(upstream, port, test_respond=503), port=port, binary=TEST_BIN)
    assert request(g.port, path="/s").status == 503


def test_pipelined_requests_wait_behind_a_suspended_one(gateway, upstream):
    port = free_port()
    g = gateway(config=cfg_with(upstream, port, test_suspend="30ms"), port=port, binary=TEST_BIN)
    raw = b"".join(b"GET /p%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(5))
    raw += b"GET /end HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    resps = parse_responses(send_raw(g.port, raw))
    assert [r.json()["target"] for r in resps] == ["/p%d" % i for i in range(5)] + ["/end"]


def test_client_gone_while_suspended(gateway, upstream):
    port = free_port()
    g = gateway(config=cfg_with(upstream, port, test_suspend="200ms"), port=port, binary=TEST_BIN)
    for _ in range(20):
        s = connect(g.port)
        s.sendall(b"GET /gone HTTP/1.1\r\nHost: a\r\n\r\n")
        s.close()
    time.sleep(0.5)
    # the gateway survived and still serves
    assert request(g.port, path="/alive").status == 200
    logs = g.access_log(wait_for=21)
    assert len(logs) == 21


def test_shutdown_while_suspended(gateway, upstream):
    port = free_port()
    g = gateway(config=cfg_with(upstream, port, test_suspend="300ms"), port=port, binary=TEST_BIN)
    s = connect(g.port)
    s.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.05)
    g.send_signal(15)
    r, _ = parse_response(read_until_close(s))
    assert r.status == 200
    assert r.header("Connection") == "close"
    assert g.proc.wait(10) == 0
