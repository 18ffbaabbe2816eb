"""The command line, stage overrides, ${env:}/${file:} interpolation and signals."""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, base_config, connect, free_port, parse_response, poll, read_until_close, request


def run(*args, env=None):
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, env=env, timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_version():
    rc, out, _ = run("-V")
    assert rc == 0
    assert out.startswith("portcullis ")
    assert "libevent" in out and "OpenSSL" in out and "libyaml" in out


def test_usage_errors():
    assert run()[0] == 2
    assert run("-c")[0] == 2
    assert run("--bogus")[0] == 2


def test_check_reports_every_error(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("listeners:\n  - adress: 1.2.3.4:80\nupstreams: {}\nroutes: []\nwokers: 2\n")
    rc, _, err = run("-t", "-c", str(p))
    assert rc == 1
    lines = err.strip().splitlines()
    assert "%s:2: listeners[0].adress: unknown key (did you mean 'address'?)" % p in lines
    assert "%s:5: wokers: unknown key (did you mean 'workers'?)" % p in lines
    assert "%s:3: upstreams: must not be empty" % p in lines
    assert "%s:4: routes: must not be empty" % p in lines
    assert lines[-1] == "portcullis: %s: 5 errors" % p


def test_check_valid(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text(json.dumps(base_config("127.0.0.1:9", 8080)))
    rc, _, err = run("-t", "-c", str(p))
    assert rc == 0 and "configuration is valid" in err


def test_invalid_config_does_not_start(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("listeners: []\n")
    rc, _, err = run("-c", str(p))
    assert rc == 1 and "listeners: must not be empty" in err


def test_stage_overrides(gateway, upstream, tmp_path):
    port = free_port()
    cfg = base_config("127.0.0.1:%d" % free_port(), port)  # the base points nowhere
    cfg["limits"] = {"max_body": "1MiB"}
    cfg["stages"] = {
        "staging": {"upstreams": {"app": {"servers": [upstream.address]}}, "limits": {"max_body": "10"}},
        "prod": {"upstreams": {"app": {"servers": [upstream.address]}}},
    }
    g = gateway(config=cfg, port=port, stage="staging")
    assert request(g.port, path="/s").status == 200  # upstream from the stage
    assert request(g.port, method="POST", path="/s", body=b"x" * 11).status == 413  # limit from the stage
    g.stop()
    g = gateway(config=cfg, port=port, stage="prod")
    assert request(g.port, method="POST", path="/s", body=b"x" * 11).status == 200  # base limit kept
    g.stop()
    g = gateway(config=cfg, port=port)
    assert request(g.port, path="/s").status == 502  # no stage: the base


def test_stage_from_file_key(gateway, upstream):
    port = free_port()
    cfg = base_config("127.0.0.1:%d" % free_port(), port)
    cfg["stage"] = "dev"
    cfg["stages"] = {"dev": {"upstreams": {"app": {"servers": [upstream.address]}}}}
    g = gateway(config=cfg, port=port)
    assert request(g.port, path="/s").status == 200


def test_env_and_file_interpolation(gateway, upstream, tmp_path):
    port = free_port()
    secret = tmp_path / "upstream.txt"
    secret.write_text(upstream.address + "\n")
    cfg = base_config("${file:%s}" % secret, port)
    cfg["listeners"][0]["address"] = "127.0.0.1:${env:PC_E2E_PORT}"
    g = gateway(config=cfg, port=port, env={"PC_E2E_PORT": str(port)})
    assert request(g.port, path="/i").status == 200


def test_sigterm_lets_inflight_request_finish(gateway, upstream):
    g = gateway()
    s = connect(g.port)
    s.sendall(b"GET /sleep/600 HTTP/1.1\r\nHost: a\r\n\r\n")
    idle = connect(g.port)  # an idle keep-alive connection is closed at once
    time.sleep(0.1)
    g.send_signal(signal.SIGTERM)
    assert read_until_close(idle) == b""
    r, _ = parse_response(read_until_close(s))
    assert r.status == 200 and r.header("Connection") == "close"
    assert g.proc.wait(10) == 0
    # no new connections once draining
    try:
        connect(g.port, timeout=0.5).close()
        refused = False
    except OSError:
        refused = True
    assert refused


def test_sigint_same_as_sigterm(gateway, upstream):
    g = gateway()
    s = connect(g.port)
    s.sendall(b"GET /sleep/300 HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.05)
    g.send_signal(signal.SIGINT)
    r, _ = parse_response(read_until_close(s))
    assert r.status == 200
    assert g.proc.wait(10) == 0


def test_shutdown_timeout_cuts_long_requests(gateway, upstream):
    port = free_port()
    cfg = base_config(upstream.address, port, shutdown_timeout="300ms")
    g = gateway(config=cfg, port=port)
    s = connect(g.port)
    s.sendall(b"GET /sleep/2500 HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.05)
    g.send_signal(signal.SIGTERM)
    assert g.proc.wait(10) == 0  # well before the upstream's 2.5 s answer
    assert read_until_close(s) == b""


def test_second_signal_forces_exit(gateway, upstream):
    g = gateway()
    s = connect(g.port)
    s.sendall(b"GET /sleep/2500 HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.05)
    g.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    g.send_signal(signal.SIGTERM)
    assert g.proc.wait(10) == 0


def test_sigusr1_reopens_log(gateway, upstream, tmp_path):
    port = free_port()
    log = tmp_path / "access.log"
    cfg = base_config(upstream.address, port, logging={"access": {"path": str(log)}})
    g = gateway(config=cfg, port=port)
    request(g.port, path="/one")
    time.sleep(0.3)
    os.rename(log, tmp_path / "access.log.1")
    g.send_signal(signal.SIGUSR1)
    time.sleep(0.2)
    request(g.port, path="/two")
    time.sleep(0.3)
    assert "/one" in (tmp_path / "access.log.1").read_text()
    assert "/two" in log.read_text()


def test_sighup_does_not_kill(gateway, upstream):
    g = gateway()
    g.send_signal(signal.SIGHUP)
    time.sleep(0.1)
    assert request(g.port, path="/h").status == 200


def test_sighup_reloads_routes_and_keeps_old_config_on_errors(gateway, upstream, tmp_path):
    from upstream import Upstream
    other = Upstream()
    try:
        port = free_port()
        cfg = base_config(upstream.address, port)
        g = gateway(config=cfg, port=port)
        assert request(g.port, path="/r1").status == 200
        assert len(upstream.requests) == 1
        # a broken configuration: nothing changes, every error is logged
        with open(g.conf_path, "w") as f:
            f.write("listeners: [{address: '127.0.0.1:%d'}]\nupstreams: {}\nroutes: []\nbogus: 1\n" % port)
        # (a reload's time grows with the rule set it compiles: wait for its outcome)
        g.send_signal(signal.SIGHUP)
        assert poll(lambda: "configuration 1 stays in effect" in g.stderr())
        assert request(g.port, path="/r2").status == 200 and len(upstream.requests) == 2
        err = g.stderr()
        assert "bogus: unknown key" in err and "upstreams: must not be empty" in err
        assert "configuration 1 stays in effect" in err
        # a valid one: new requests go to the new upstream
        cfg["upstreams"]["app"]["servers"] = [other.address]
        with open(g.conf_path, "w") as f:
            json.dump(cfg, f)
        g.send_signal(signal.SIGHUP)
        assert poll(lambda: "configuration 2 in effect" in g.stderr())
        assert request(g.port, path="/r3").status == 200
        assert [r.target for r in other.wait_requests(1)] == ["/r3"]
        assert "configuration 2 in effect" in g.stderr()
        # a listener on an address that is taken: the reload fails, nothing changes
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        cfg["listeners"].append({"name": "taken", "address": "127.0.0.1:%d" % busy.getsockname()[1]})
        with open(g.conf_path, "w") as f:
            json.dump(cfg, f)
        g.send_signal(signal.SIGHUP)
        assert poll(lambda: "configuration 2 stays in effect" in g.stderr())
        busy.close()
        assert "listener taken: cannot listen" in g.stderr()
        assert "configuration 2 stays in effect" in g.stderr()
        assert request(g.port, path="/r4").status == 200
        # moving the listener: the new address serves, the old one is closed
        new_port = free_port()
        cfg["listeners"] = [{"address": "127.0.0.1:%d" % new_port}]
        with open(g.conf_path, "w") as f:
            json.dump(cfg, f)
        g.send_signal(signal.SIGHUP)
        assert poll(lambda: "configuration 3 in effect" in g.stderr())
        assert request(new_port, path="/r5").status == 200
        with pytest.raises(OSError):
            request(g.port, path="/r6")
    finally:
        other.stop()
