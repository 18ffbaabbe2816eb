"""TLS termination: protocols, SNI, ALPN, resumption, mTLS, certificate reload,
and what a TLS port does with plain HTTP or silence. Keys and certificates are
made by the openssl command line for each test session."""

import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BIN, Gateway, base_config, free_port, poll, read_one_response


def sh(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, **kw)


def make_cert(d, name, cn, sans=None, key="ec", ca=None, days=365):
    """A key and certificate in directory d: self-signed, or signed by ca."""
    keyf, crtf = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    if key == "ec":
        sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyf)
    else:
        sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyf)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:%s\n" % ("TRUE" if name.startswith("ca") else "FALSE"))
        if sans:
            f.write("subjectAltName=" + ",".join("DNS:" + s for s in sans) + "\n")
    csr = os.path.join(d, name + ".csr")
    sh("openssl", "req", "-new", "-key", keyf, "-out", csr, "-subj", "/CN=%s/O=Portcullis Tests" % cn)
    if ca:
        r = sh("openssl", "x509", "-req", "-in", csr, "-CA", ca + ".crt", "-CAkey", ca + ".key",
               "-CAcreateserial", "-days", str(days), "-out", crtf, "-extfile", ext)
    else:
        r = sh("openssl", "x509", "-req", "-in", csr, "-signkey", keyf, "-days", str(days), "-out", crtf,
               "-extfile", ext)
    assert r.returncode == 0, r.stderr
    return crtf, keyf


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    p = {"dir": d}
    p["ec"] = make_cert(d, "ec", "a.test", ["a.test", "*.w.test"])
    p["rsa"] = make_cert(d, "rsa", "b.test", ["b.test"], key="rsa")
    p["rsa_a"] = make_cert(d, "rsa_a", "a.test", ["a.test", "*.w.test"], key="rsa")
    p["new"] = make_cert(d, "new", "a.test renewed", ["a.test"])
    make_cert(d, "ca", "Test Client CA")
    p["ca"] = os.path.join(d, "ca.crt")
    p["client"] = make_cert(d, "client", "alice", ca=os.path.join(d, "ca"))
    p["stranger"] = make_cert(d, "stranger", "mallory")
    return p


def tls_config(upstream, port, pki, **tls):
    cfg = base_config(upstream.address, port)
    certs = tls.pop("certs", [pki["ec"], pki["rsa"]])
    cfg["listeners"][0]["tls"] = dict({"certificates": [{"cert": c, "key": k} for c, k in certs]}, **tls)
    return cfg


def s_client(port, *args, data=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"):
    r = subprocess.run(["openssl", "s_client", "-ign_eof", "-connect", "127.0.0.1:%d" % port] + list(args),
                       input=data, capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode("latin-1") + r.stderr.decode("latin-1")


def subject_of(out):
    for line in out.splitlines():
        if line.startswith("subject="):
            return line
    return None


def https_request(port, path="/", sni="a.test", cert=None, headers=(), ctx=None, body=b""):
    if ctx is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(*cert)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=sni)
    hdrs = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers)
    if body:
        hdrs += b"Content-Length: %d\r\n" % len(body)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n%s\r\n" % (path.encode(), hdrs) + body)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        # TLS 1.3: the client's handshake ends before the server has checked
        # its certificate, so a refusal can arrive while the request is sent
        s.close()
        return "", b""
    data = b""
    while True:
        try:
            d = s.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            break
        if not d:
            break
        data += d
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def test_protocols(gateway, upstream, pki):
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki), port=port)
    rc, out = s_client(port, "-tls1_3", "-servername", "a.test")
    assert rc == 0 and "TLSv1.3" in out
    rc, out = s_client(port, "-tls1_2", "-servername", "a.test")
    assert rc == 0 and "TLSv1.2" in out
    for old in ("-tls1_1", "-tls1"):
        rc, out = s_client(port, old, "-cipher", "DEFAULT:@SECLEVEL=0", "-servername", "a.test")
        assert rc != 0 and "Cipher is (NONE)" in out, old
    # no CBC, no RSA key exchange in TLS 1.2
    for weak in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"):
        rc, out = s_client(port, "-tls1_2", "-cipher", weak, "-servername", "b.test")
        assert rc != 0, weak


def test_tls12_prefers_server_cipher_order(gateway, upstream, pki):
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki), port=port)
    rc, out = s_client(port, "-tls1_2", "-servername", "b.test", "-cipher",
                       "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256")
    assert rc == 0 and "ECDHE-RSA-AES128-GCM-SHA256" in out


def test_sni_picks_certificate(gateway, upstream, pki):
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki), port=port)
    assert "CN = a.test" in subject_of(s_client(port, "-servername", "a.test")[1])
    assert "CN = b.test" in subject_of(s_client(port, "-servername", "b.test")[1])
    assert "CN = a.test" in subject_of(s_client(port, "-servername", "x.w.test")[1])  # wildcard
    assert "CN = a.test" in subject_of(s_client(port, "-servername", "A.TEST")[1])
    # unknown names and no SNI: the first certificate
    assert "CN = a.test" in subject_of(s_client(port, "-servername", "other.test")[1])
    assert "CN = a.test" in subject_of(s_client(port, "-noservername")[1])
    # a wildcard covers one label only
    assert "CN = a.test" in subject_of(s_client(port, "-servername", "x.y.w.test")[1])


def test_ecdsa_and_rsa_on_one_name(gateway, upstream, pki):
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki, certs=[pki["ec"], pki["rsa_a"]]), port=port)
    rc, out = s_client(port, "-tls1_2", "-servername", "a.test", "-sigalgs", "ECDSA+SHA256")
    assert rc == 0 and "ECDHE-ECDSA" in out
    rc, out = s_client(port, "-tls1_2", "-servername", "a.test", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256")
    assert rc == 0 and "ECDHE-RSA" in out


def test_alpn(gateway, upstream, pki):
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki), port=port)
    rc, out = s_client(port, "-alpn", "h2,http/1.1", "-servername", "a.test")
    assert rc == 0 and "ALPN protocol: http/1.1" in out
    rc, out = s_client(port, "-alpn", "h2", "-servername", "a.test")
    assert rc != 0 and "no application protocol" in out


def test_session_resumption(gateway, upstream, pki, tmp_path):
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki), port=port)
    req = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
    for proto in ("-tls1_2", "-tls1_3"):
        sess = str(tmp_path / ("s" + proto))
        rc, out = s_client(port, proto, "-servername", "a.test", "-sess_out", sess, data=req)
        assert rc == 0 and "New," in out
        rc, out = s_client(port, proto, "-servername", "a.test", "-sess_in", sess, data=req)
        assert rc == 0 and "Reused," in out, proto


def test_forwarded_proto_and_keepalive_over_tls(gateway, upstream, pki):
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki), port=port)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="a.test")
    for i in range(3):
        s.sendall(b"GET /k%d HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Proto: http\r\n\r\n" % i)
        head, body = read_one_response(s)
        hdrs = {k.lower(): v for k, v in json.loads(body)["headers"]}
        assert hdrs["x-forwarded-proto"] == "https"
    s.close()


def test_large_bodies_over_tls(gateway, upstream, pki):
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki), port=port)
    head, body = https_request(port, "/bytes/3000000")
    assert " 200 " in head.split("\r\n")[0] and len(body) == 3000000
    data = os.urandom(2 * 1024 * 1024)
    head, body = https_request(port, "/up", body=data)
    assert json.loads(body)["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_mtls(gateway, upstream, pki):
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki, client_ca=pki["ca"]), port=port)
    # no certificate, or one from elsewhere: the handshake fails
    head, _ = https_request(port, "/m")
    assert head == ""
    head, _ = https_request(port, "/m", cert=pki["stranger"])
    assert head == ""
    assert upstream.requests == []
    # a trusted one: its subject goes upstream, and a forged one never does
    head, body = https_request(port, "/m", cert=pki["client"],
                               headers=[("X-Client-Cert-Subject", "CN=admin")])
    hdrs = [(k.lower(), v) for k, v in json.loads(body)["headers"]]
    subjects = [v for k, v in hdrs if k == "x-client-cert-subject"]
    assert subjects == ["O=Portcullis Tests,CN=alice"]


def test_mtls_subject_can_be_kept_back(gateway, upstream, pki):
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki, client_ca=pki["ca"], forward_client_cert=False),
                port=port)
    head, body = https_request(port, "/m", cert=pki["client"])
    assert not [v for k, v in json.loads(body)["headers"] if k.lower() == "x-client-cert-subject"]


def test_client_cert_header_stripped_on_plain_listeners(gateway, upstream):
    from conftest import request
    g = gateway()
    r = request(g.port, path="/p", headers=[("X-Client-Cert-Subject", "CN=admin")])
    assert not [v for k, v in r.json()["headers"] if k.lower() == "x-client-cert-subject"]


def test_sighup_changes_certificates_for_new_handshakes(gateway, upstream, pki, tmp_path):
    port = free_port()
    cert, key = str(tmp_path / "live.crt"), str(tmp_path / "live.key")
    for src, dst in zip(pki["ec"], (cert, key)):
        with open(src, "rb") as f, open(dst, "wb") as o:
            o.write(f.read())
    g = gateway(config=tls_config(upstream, port, pki, certs=[(cert, key)]), port=port)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    old = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="a.test")
    old.sendall(b"GET /before HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert old.recv(65536).startswith(b"HTTP/1.1 200")
    # a broken key: the reload fails and changes nothing
    with open(key, "w") as f:
        f.write("not a key\n")
    g.send_signal(signal.SIGHUP)
    assert poll(lambda: "private key" in g.stderr())  # (a reload also compiles the WAF rules)
    assert "CN = a.test" in subject_of(s_client(port, "-servername", "a.test")[1])
    assert "reload" in g.stderr()
    # the renewed pair: new handshakes get it
    for src, dst in zip(pki["new"], (cert, key)):
        with open(src, "rb") as f, open(dst, "wb") as o:
            o.write(f.read())
    g.send_signal(signal.SIGHUP)
    assert poll(lambda: "CN = a.test renewed" in subject_of(s_client(port, "-servername", "a.test")[1]))
    # the connection made before both reloads still works
    old.sendall(b"GET /after HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    assert old.recv(65536).startswith(b"HTTP/1.1 200")
    old.close()


def test_plain_http_to_tls_port(gateway, upstream, pki):
    port = free_port()
    g = gateway(config=tls_config(upstream, port, pki), port=port)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    try:
        got = s.recv(100)
    except ConnectionResetError:
        got = b""
    s.close()
    assert not got.startswith(b"HTTP/1.1 200")
    # the worker is fine
    head, _ = https_request(port, "/still")
    assert " 200 " in head.split("\r\n")[0]
    assert g.proc.poll() is None


def test_silent_client_cut_after_header_timeout(gateway, upstream, pki):
    port = free_port()
    cfg = tls_config(upstream, port, pki)
    cfg["limits"] = {"header_timeout": "300ms"}
    g = gateway(config=cfg, port=port)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert s.recv(10) == b""  # closed by the gateway; a timeout here would raise
    s.close()


def test_check_reports_key_mismatch_and_expiry(upstream, pki, tmp_path):
    short = make_cert(str(tmp_path), "short", "soon.test", ["soon.test"], days=5)
    cfg = tls_config(upstream, 8443, pki, certs=[pki["ec"], short, (pki["rsa"][0], pki["ec"][1])])
    p = tmp_path / "c.yaml"
    p.write_text(json.dumps(cfg, indent=1))
    r = sh(BIN, "-t", "-c", str(p))
    assert r.returncode == 1
    assert "listeners[0].tls.certificates[1].cert: certificate '%s' expires in 4 days" % short[0] in r.stderr \
        or "expires in 5 days" in r.stderr
    assert "listeners[0].tls.certificates[2].key: key '%s' does not match certificate '%s'" % (
        pki["ec"][1], pki["rsa"][0]) in r.stderr
    lines = [l for l in r.stderr.splitlines() if "does not match" in l]
    assert lines[0].startswith("%s:" % p) and ":%d:" % 0 not in lines[0]
