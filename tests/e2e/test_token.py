"""`portcullis token`: tokens of every algorithm, from PEM keys, JWK files and
secret files, checked by the gateway's verifier end to end and, for HMAC,
by Python's own; usage errors and keys that do not fit the algorithm."""

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import time

import pytest

from conftest import BIN, base_config, free_port, request
from jose_util import Key, b64u, jwks

ALGS = {"RS256": "rsa", "RS384": "rsa", "RS512": "rsa", "PS256": "rsa", "PS384": "rsa", "PS512": "rsa",
        "ES256": "p256", "ES384": "p384", "ES512": "p521", "EdDSA": "ed"}


def mint(*args):
    return subprocess.run([BIN, "token"] + list(args), capture_output=True, text=True, timeout=30)


def part(tok, i):
    s = tok.split(".")[i]
    assert "=" not in s
    return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tokkeys"))
    ks = {"rsa": Key(d, "rsa", "RSA", "r1"), "p256": Key(d, "p256", "P-256", "e1"),
          "p384": Key(d, "p384", "P-384", "e2"), "p521": Key(d, "p521", "P-521", "e3"),
          "ed": Key(d, "ed", "Ed25519", "d1")}
    ks["dir"] = d
    ks["jwks"] = os.path.join(d, "jwks.json")
    with open(ks["jwks"], "w") as f:
        json.dump(jwks(*(ks[n] for n in ("rsa", "p256", "p384", "p521", "ed"))), f)
    return ks


def test_every_algorithm_verifies_at_the_gateway(gateway, upstream, keys, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"x" * 64 + b"\n")
    port = free_port()
    cfg = base_config(upstream.address, port, jwt={"providers": {
        "pk": {"jwks_file": keys["jwks"], "issuer": "dev", "forward_claims": {"sub": "X-User-Id", "n": "X-N"}},
        "hs": {"secret": "x" * 64, "algorithms": ["HS256", "HS384", "HS512"], "forward_claims": {"sub": "X-User-Id"}}}})
    cfg["routes"] = [{"match": {"path_prefix": "/hs/"}, "upstream": "app", "auth": {"jwt": "hs"}},
                     {"match": {"path_prefix": "/"}, "upstream": "app", "auth": {"jwt": "pk"}}]
    g = gateway(config=cfg, port=port)
    for alg, name in ALGS.items():
        k = keys[name]
        r = mint("--key", k.priv, "--alg", alg, "--kid", k.kid, "--sub", "u-" + alg, "--claim", "iss=dev",
                 "--claim", "n=7")
        assert r.returncode == 0, (alg, r.stderr)
        tok = r.stdout.strip()
        assert part(tok, 0) == {"alg": alg, "typ": "JWT", "kid": k.kid}
        resp = request(g.port, path="/x", headers=[("Authorization", "Bearer " + tok)])
        assert resp.status == 200, (alg, resp.body)
        assert upstream.requests[-1].header("X-User-Id") == ["u-" + alg]
        assert upstream.requests[-1].header("X-N") == ["7"]
    for alg in ("HS256", "HS384", "HS512"):
        r = mint("--key", str(secret), "--alg", alg, "--sub", "h")
        assert r.returncode == 0, r.stderr
        tok = r.stdout.strip()
        signing, sig = tok.rsplit(".", 1)
        want = hmac.new(b"x" * 64, signing.encode(), getattr(hashlib, "sha" + alg[2:])).digest()
        assert sig == b64u(want)  # the final newline of the file is not part of the secret
        assert request(g.port, path="/hs/x", headers=[("Authorization", "Bearer " + tok)]).status == 200


def test_claim_values_and_ttl(tmp_path):
    secret = tmp_path / "s"
    secret.write_bytes(b"y" * 32)
    before = int(time.time())
    r = mint("--key", str(secret), "--alg", "HS256", "--ttl", "90s", "--sub", "s1", "--claim", "n=7",
             "--claim", "b=true", "--claim", 'arr=["a","b"]', "--claim", "text=hello world",
             "--claim", 'q="quoted"', "--claim", "scope=orders:read orders:write")
    assert r.returncode == 0, r.stderr
    c = part(r.stdout.strip(), 1)
    assert c["exp"] - c["iat"] == 90 and before <= c["iat"] <= int(time.time())
    assert c["sub"] == "s1" and c["n"] == 7 and c["b"] is True and c["arr"] == ["a", "b"]
    assert c["text"] == "hello world" and c["q"] == "quoted" and c["scope"] == "orders:read orders:write"
    r = mint("--key", str(secret), "--alg", "HS256", "--claim", "exp=1000")
    assert part(r.stdout.strip(), 1)["exp"] == 1000  # an expired token, for tests


def test_jwk_key_files(keys, tmp_path):
    # an oct JWK for HS256, its kid used by default
    oct_path = tmp_path / "oct.json"
    oct_path.write_text(json.dumps({"kty": "oct", "kid": "o1", "k": b64u(b"z" * 32)}))
    r = mint("--key", str(oct_path), "--alg", "HS256")
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    assert part(tok, 0)["kid"] == "o1"
    signing, sig = tok.rsplit(".", 1)
    assert sig == b64u(hmac.new(b"z" * 32, signing.encode(), hashlib.sha256).digest())
    # a private EC JWK: d from the PEM
    k = keys["p256"]
    text = subprocess.run(["openssl", "ec", "-in", k.priv, "-text", "-noout"], capture_output=True,
                          text=True, timeout=30).stdout
    priv = re.search(r"priv:\s*((?:[0-9a-f]{2}:?\s*)+)pub:", text).group(1)
    d = bytes.fromhex(re.sub(r"[^0-9a-f]", "", priv)).rjust(32, b"\0")[-32:]
    jwk_path = tmp_path / "ec.json"
    jwk_path.write_text(json.dumps(dict(k.jwk, d=b64u(d))))
    r = mint("--key", str(jwk_path), "--alg", "ES256", "--sub", "j")
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    assert part(tok, 0)["kid"] == k.kid
    # verified by openssl with the public key: r||s to DER
    signing, sig = tok.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    assert len(raw) == 64

    def der_int(b):
        b = b.lstrip(b"\0") or b"\0"
        if b[0] & 0x80:
            b = b"\0" + b
        return b"\x02" + bytes([len(b)]) + b

    body = der_int(raw[:32]) + der_int(raw[32:])
    (tmp_path / "sig.der").write_bytes(b"\x30" + bytes([len(body)]) + body)
    v = subprocess.run(["openssl", "dgst", "-sha256", "-verify", k.pub, "-signature", str(tmp_path / "sig.der")],
                       input=signing.encode(), capture_output=True, timeout=30)
    assert v.returncode == 0, v.stdout + v.stderr


def test_errors(keys, tmp_path):
    short = tmp_path / "short"
    short.write_bytes(b"tooshort")
    cases = [
        ([], 2), (["--alg", "HS256"], 2), (["--key", str(short)], 2),
        (["--key", str(short), "--alg", "none"], 2), (["--key", str(short), "--alg", "HS256", "--ttl", "soon"], 2),
        (["--key", str(short), "--alg", "HS256", "--bogus", "x"], 2),
        (["--key", str(short), "--alg", "HS256"], 1),                  # secret too short
        (["--key", keys["p256"].priv, "--alg", "RS256"], 1),           # wrong key type
        (["--key", keys["p256"].priv, "--alg", "ES384"], 1),           # wrong curve
        (["--key", keys["rsa"].pub, "--alg", "RS256"], 1),             # a public key
        (["--key", str(tmp_path / "missing"), "--alg", "RS256"], 1),
    ]
    for args, rc in cases:
        r = mint(*args)
        assert r.returncode == rc, (args, r.returncode, r.stderr)
        assert r.stdout == ""
        assert r.stderr.startswith("portcullis token: ") or r.stderr.startswith("usage:"), r.stderr
        assert "tooshort" not in r.stderr  # never a secret in a message
