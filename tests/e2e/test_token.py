"""`portcullis token`: a token for every algorithm, each one checked
independently of the gateway — header and claims decoded here, HMAC with
Python's hmac, RSA, RSA-PSS, ECDSA and Ed25519 with the openssl CLI — then
accepted by the gateway's own verifier; PEM, JWK and secret key files;
claim values; usage errors (exit 2) and keys that do not fit (exit 1)."""

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

TIMEOUT = 10
KEY_OF = {"RS256": "rsa", "RS384": "rsa", "RS512": "rsa", "PS256": "rsa", "PS384": "rsa", "PS512": "rsa",
          "ES256": "p256", "ES384": "p384", "ES512": "p521", "EdDSA": "ed"}
EC_SIZE = {"ES256": 32, "ES384": 48, "ES512": 66}
SECRET = b"s3cr3t-" * 10  # 70 bytes: long enough for HS512


def mint(*args):
    return subprocess.run([BIN, "token"] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def mint_ok(*args):
    r = mint(*args)
    assert r.returncode == 0, (args, r.stderr)
    assert r.stderr == ""
    assert r.stdout.endswith("\n") and r.stdout.count("\n") == 1
    return r.stdout[:-1]


def unb64(s):
    assert re.fullmatch(r"[A-Za-z0-9_-]*", s), s  # base64url, no padding
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def decode(tok):
    h, p, s = tok.split(".")
    return json.loads(unb64(h)), json.loads(unb64(p)), unb64(s)


def openssl(*args, data=None):
    return subprocess.run(["openssl"] + [str(a) for a in args], input=data, capture_output=True,
                          timeout=TIMEOUT)


def der_len(n):
    return bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else bytes([0x82, n >> 8, n & 0xFF])


def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + der_len(len(b)) + b


def ecdsa_der(raw):
    """JOSE r || s -> the DER SEQUENCE of two INTEGERs that openssl reads."""
    half = len(raw) // 2
    body = der_int(raw[:half]) + der_int(raw[half:])
    return b"\x30" + der_len(len(body)) + body


def verify(tok, alg, pub, tmp, secret=None):
    """Checks the signature of tok without the gateway; raises when bad."""
    signing, _, s = tok.rpartition(".")
    sig = unb64(s)
    data = os.path.join(str(tmp), "signing")
    with open(data, "wb") as f:
        f.write(signing.encode())
    if alg.startswith("HS"):
        want = hmac.new(secret, signing.encode(), getattr(hashlib, "sha" + alg[2:])).digest()
        assert hmac.compare_digest(sig, want), alg
        return
    sigfile = os.path.join(str(tmp), "sig")
    if alg.startswith("ES"):
        assert len(sig) == 2 * EC_SIZE[alg], (alg, len(sig))  # JOSE r || s, not DER
        sig = ecdsa_der(sig)
    with open(sigfile, "wb") as f:
        f.write(sig)
    if alg == "EdDSA":
        assert len(sig) == 64
        r = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", data, "-sigfile", sigfile)
    else:
        extra = []
        if alg.startswith("PS"):  # salt length -1: exactly the digest's length
            extra = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]
        r = openssl("dgst", "-sha" + alg[2:], "-verify", pub, "-signature", sigfile, *extra, data)
    assert r.returncode == 0, (alg, r.stdout, r.stderr)


def text_fields(args):
    """The hex fields of `openssl rsa|ec|pkey -text -noout` as bytes, by name."""
    text = openssl(*args, "-text", "-noout").stdout.decode()
    fields, name = {}, None
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s*$", line)
        if m:
            name = m.group(1)
            fields[name] = ""
        elif name and re.fullmatch(r"\s+[0-9a-f:]+", line):
            fields[name] += re.sub(r"[^0-9a-f]", "", line)
        else:
            name = None
    return {k: bytes.fromhex(v) for k, v in fields.items()}


def private_jwk(key):
    """A private JWK made from a PEM key with the openssl CLI."""
    jwk = dict(key.jwk)
    if key.kind == "RSA":
        f = text_fields(["rsa", "-in", key.priv])
        names = {"d": "privateExponent", "p": "prime1", "q": "prime2", "dp": "exponent1", "dq": "exponent2",
                 "qi": "coefficient"}
        for m, field in names.items():
            jwk[m] = b64u(f[field].lstrip(b"\0"))
    elif key.kind == "Ed25519":
        der = openssl("pkey", "-in", key.priv, "-outform", "DER").stdout
        jwk["d"] = b64u(der[-32:])  # PKCS#8 ends with the 32-byte seed
    else:
        size = {"P-256": 32, "P-384": 48, "P-521": 66}[key.kind]
        jwk["d"] = b64u(text_fields(["ec", "-in", key.priv])["priv"].lstrip(b"\0").rjust(size, b"\0"))
    return jwk


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tokkeys"))
    ks = {"rsa": Key(d, "rsa", "RSA", "r1"), "p256": Key(d, "p256", "P-256", "e1"),
          "p384": Key(d, "p384", "P-384", "e2"), "p521": Key(d, "p521", "P-521", "e3"),
          "ed": Key(d, "ed", "Ed25519", "d1")}
    ks["secret"] = os.path.join(d, "secret")
    with open(ks["secret"], "wb") as f:
        f.write(SECRET + b"\n")
    ks["jwks"] = os.path.join(d, "jwks.json")
    with open(ks["jwks"], "w") as f:
        json.dump(jwks(*(ks[n] for n in ("rsa", "p256", "p384", "p521", "ed"))), f)
    return ks


ALL_ALGS = ["HS256", "HS384", "HS512"] + list(KEY_OF)


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_every_algorithm_verifies_independently(keys, tmp_path, alg):
    hs = alg.startswith("HS")
    key = None if hs else keys[KEY_OF[alg]]
    keyfile = keys["secret"] if hs else key.priv
    # ES512: r or s is shorter than 66 bytes in three tokens of four, so a few
    # tokens go through the left padding of r || s
    for i in range(8 if alg == "ES512" else 1):
        before = int(time.time())
        tok = mint_ok("--key", keyfile, "--alg", alg, "--kid", "k-" + alg, "--sub", "u-" + alg,
                      "--claim", "n=%d" % i, "--claim", "role=admin", "--ttl", "15m")
        header, claims, _ = decode(tok)
        assert header == {"alg": alg, "typ": "JWT", "kid": "k-" + alg}
        assert before <= claims["iat"] <= int(time.time())
        assert claims == {"iat": claims["iat"], "exp": claims["iat"] + 900, "sub": "u-" + alg, "n": i,
                          "role": "admin"}
        verify(tok, alg, None if hs else key.pub, tmp_path, secret=SECRET)
    # a signature over other bytes does not verify: the checks above can fail
    h, p, s = tok.split(".")
    forged = h + "." + b64u(json.dumps({"sub": "someone-else"}).encode()) + "." + s
    with pytest.raises(AssertionError):
        verify(forged, alg, None if hs else key.pub, tmp_path, secret=SECRET)


def test_no_kid_unless_asked(keys):
    for alg, keyfile in (("HS256", keys["secret"]), ("RS256", keys["rsa"].priv), ("PS256", keys["rsa"].priv),
                         ("ES256", keys["p256"].priv), ("EdDSA", keys["ed"].priv)):
        header, claims, _ = decode(mint_ok("--key", keyfile, "--alg", alg))
        assert header == {"alg": alg, "typ": "JWT"}
        assert set(claims) == {"iat", "exp"} and claims["exp"] - claims["iat"] == 3600  # default --ttl 1h


def test_every_algorithm_accepted_by_the_gateway(gateway, upstream, keys):
    port = free_port()
    cfg = base_config(upstream.address, port, jwt={"providers": {
        "pk": {"jwks_file": keys["jwks"], "issuer": "dev", "forward_claims": {"sub": "X-User-Id", "n": "X-N"}},
        "hs": {"secret": SECRET.decode(), "algorithms": ["HS256", "HS384", "HS512"],
               "forward_claims": {"sub": "X-User-Id"}}}})
    cfg["routes"] = [{"match": {"path_prefix": "/hs/"}, "upstream": "app", "auth": {"jwt": "hs"}},
                     {"match": {"path_prefix": "/"}, "upstream": "app", "auth": {"jwt": "pk"}}]
    g = gateway(config=cfg, port=port)
    for alg in ALL_ALGS:
        hs = alg.startswith("HS")
        args = ["--key", keys["secret"]] if hs else ["--key", keys[KEY_OF[alg]].priv, "--kid", keys[KEY_OF[alg]].kid]
        tok = mint_ok(*args, "--alg", alg, "--sub", "u-" + alg, "--claim", "iss=dev", "--claim", "n=7")
        resp = request(g.port, path="/hs/x" if hs else "/x", headers=[("Authorization", "Bearer " + tok)])
        assert resp.status == 200, (alg, resp.body)
        assert upstream.requests[-1].header("X-User-Id") == ["u-" + alg]
    expired = mint_ok("--key", keys["secret"], "--alg", "HS256", "--claim", "exp=1000")
    assert request(g.port, path="/hs/x", headers=[("Authorization", "Bearer " + expired)]).status == 401


def test_claim_values(keys):
    before = int(time.time())
    tok = mint_ok("--key", keys["secret"], "--alg", "HS256", "--sub", "s1",
                  "--claim", "n=7", "--claim", "neg=-3", "--claim", "f=1.5", "--claim", "t=true", "--claim", "no=false",
                  "--claim", "nil=null", "--claim", 'q="7"', "--claim", 'arr=["a",2]', "--claim", 'obj={"k":[1]}',
                  "--claim", "text=hello world", "--claim", "scope=orders:read orders:write", "--claim", "zip=007",
                  "--claim", "empty=", "--claim", "eq=a=b", "--claim", "dup=1", "--claim", "dup=2",
                  "--claim", "uni=h\u00e9", "--claim=eqform=x")
    _, c, _ = decode(tok)
    assert before <= c["iat"] and c["exp"] - c["iat"] == 3600
    want = {"sub": "s1", "n": 7, "neg": -3, "f": 1.5, "t": True, "no": False, "nil": None, "q": "7",
            "arr": ["a", 2], "obj": {"k": [1]}, "text": "hello world", "scope": "orders:read orders:write",
            "zip": "007", "empty": "", "eq": "a=b", "dup": 2, "uni": "h\u00e9", "eqform": "x"}
    for k, v in want.items():
        assert c[k] == v and type(c[k]) is type(v), (k, c[k])
    assert set(c) == set(want) | {"iat", "exp"}
    # --claim overrides iat, exp and sub: an expired token, for tests
    _, c, _ = decode(mint_ok("--key", keys["secret"], "--alg", "HS256", "--sub", "a", "--claim", "exp=1000",
                             "--claim", "iat=900", "--claim", "sub=b"))
    assert (c["exp"], c["iat"], c["sub"]) == (1000, 900, "b")


@pytest.mark.parametrize("ttl,seconds", [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800),
                                         ("1500ms", 1)])
def test_ttl(keys, ttl, seconds):
    _, c, _ = decode(mint_ok("--key", keys["secret"], "--alg", "HS256", "--ttl", ttl))
    assert c["exp"] - c["iat"] == seconds


def test_secret_files(tmp_path):
    cases = [(b"a" * 32, b"a" * 32), (b"a" * 32 + b"\n", b"a" * 32), (b"a" * 32 + b"\r\n", b"a" * 32),
             (b"a" * 32 + b"\n\n", b"a" * 32 + b"\n"), (b" \x00\xff" * 11 + b"\t", b" \x00\xff" * 11 + b"\t")]
    for i, (content, secret) in enumerate(cases):
        path = tmp_path / ("secret%d" % i)
        path.write_bytes(content)
        verify(mint_ok("--key", path, "--alg", "HS256"), "HS256", None, tmp_path, secret=secret)


def test_traditional_pem_forms(keys, tmp_path):
    rsa = tmp_path / "rsa-trad.pem"
    assert openssl("rsa", "-in", keys["rsa"].priv, "-traditional", "-out", rsa).returncode == 0
    assert rsa.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    ec = tmp_path / "ec-trad.pem"
    assert openssl("ec", "-in", keys["p384"].priv, "-out", ec).returncode == 0
    assert ec.read_text().startswith("-----BEGIN EC PRIVATE KEY-----")
    for alg, path, key in (("RS256", rsa, keys["rsa"]), ("PS512", rsa, keys["rsa"]), ("ES384", ec, keys["p384"])):
        verify(mint_ok("--key", path, "--alg", alg), alg, key.pub, tmp_path)


def test_jwk_key_files(keys, tmp_path):
    # an oct JWK for HS256: k decoded, its kid used unless --kid is given
    oct_path = tmp_path / "oct.json"
    oct_path.write_text(json.dumps({"kty": "oct", "kid": "o1", "k": b64u(b"z" * 32)}))
    tok = mint_ok("--key", oct_path, "--alg", "HS256")
    assert decode(tok)[0] == {"alg": "HS256", "typ": "JWT", "kid": "o1"}
    verify(tok, "HS256", None, tmp_path, secret=b"z" * 32)
    assert decode(mint_ok("--key", oct_path, "--alg", "HS256", "--kid", "other"))[0]["kid"] == "other"
    # private JWKs of every key type, made from the PEM keys
    for alg, name in (("ES256", "p256"), ("ES384", "p384"), ("ES512", "p521"), ("RS256", "rsa"), ("PS384", "rsa"),
                      ("EdDSA", "ed")):
        key = keys[name]
        path = tmp_path / (name + ".jwk")
        path.write_text("\n  " + json.dumps(private_jwk(key), indent=1))  # leading space: still a JWK
        tok = mint_ok("--key", path, "--alg", alg, "--sub", "j")
        assert decode(tok)[0] == {"alg": alg, "typ": "JWT", "kid": key.kid}
        verify(tok, alg, key.pub, tmp_path)


def test_bad_jwk_files(keys, tmp_path):
    ec = private_jwk(keys["p256"])
    ed = private_jwk(keys["ed"])
    other = private_jwk(keys["p384"])
    cases = [
        ("HS256", "{not json"),                                     # '{': a JWK, not a secret
        ("HS256", json.dumps(ec)),                                  # an EC JWK for HMAC
        ("HS256", json.dumps({"kty": "oct", "k": "***"})),         # k not base64url
        ("HS256", json.dumps({"kty": "oct"})),
        ("HS256", json.dumps({"kty": "oct", "k": b64u(b"z" * 16)})),  # too short for HS256
        ("RS256", json.dumps({"kty": "oct", "k": b64u(b"z" * 32)})),
        ("RS256", json.dumps(ec)),                                  # wrong key type
        ("ES384", json.dumps(ec)),                                  # wrong curve
        ("ES256", json.dumps(dict(ec, alg="ES384"))),               # the JWK's own alg differs
        ("ES256", json.dumps(dict(ec, d=other["d"][:43]))),         # d not the private half of x, y
        ("ES256", json.dumps({k: v for k, v in ec.items() if k != "d"})),  # a public JWK
        ("ES256", json.dumps(dict(ec, crv="P-192"))),
        ("EdDSA", json.dumps(dict(ed, x=b64u(b"\x01" * 32)))),      # x not the public half of d
        ("EdDSA", json.dumps(["a JSON array"])),
        ("EdDSA", json.dumps({"kty": "XYZ"})),
        ("RS256", json.dumps({k: v for k, v in private_jwk(keys["rsa"]).items() if k != "qi"})),
        ("RS256", json.dumps(dict(private_jwk(keys["rsa"]), e="Aw"))),  # e = 3: not the pair of d
    ]
    for alg, text in cases:
        path = tmp_path / "bad.jwk"
        path.write_text(text)
        r = mint("--key", path, "--alg", alg)
        assert (r.returncode, r.stdout) == (1, ""), (alg, text, r.stderr)
        assert r.stderr.startswith("portcullis token: ") and r.stderr.count("\n") == 1, r.stderr
        assert ec["d"] not in r.stderr and ed["d"] not in r.stderr and "not json" not in r.stderr


def test_usage_errors(keys):
    s = keys["secret"]
    cases = [[], ["--alg", "HS256"], ["--key", s], ["--key", s, "--alg", "none"], ["--key", s, "--alg", "hs256"],
             ["--key", s, "--alg", "ES256K"], ["--key", s, "--alg", "HS256", "--ttl", "soon"],
             ["--key", s, "--alg", "HS256", "--ttl", "60"], ["--key", s, "--alg", "HS256", "--ttl", "0s"],
             ["--key", s, "--alg", "HS256", "--bogus", "x"], ["--key", s, "--alg", "HS256", "extra"],
             ["--key", s, "--alg", "HS256", "--claim", "novalue"], ["--key", s, "--alg", "HS256", "--claim", "=v"],
             ["--key", s, "--alg", "HS256", "--sub"], ["--key", s, "--alg"]]
    for args in cases:
        r = mint(*args)
        assert (r.returncode, r.stdout) == (2, ""), (args, r.returncode, r.stderr)
        assert r.stderr.startswith("portcullis token: ") and "usage: portcullis token" in r.stderr, r.stderr
    r = mint("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: portcullis token")


def test_key_errors(keys, tmp_path):
    short = tmp_path / "short"
    short.write_bytes(b"tooshort-secret-31-bytes-long!!")  # 31 bytes
    exactly = tmp_path / "exact"
    exactly.write_bytes(b"e" * 48)
    encrypted = tmp_path / "enc.pem"
    assert openssl("pkey", "-in", keys["p256"].priv, "-aes256", "-passout", "pass:pw",
                   "-out", encrypted).returncode == 0
    small_rsa = tmp_path / "rsa1024.pem"
    assert openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
                   "-out", small_rsa).returncode == 0
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    cases = [
        ("HS256", short),                   # shorter than the hash
        ("HS512", exactly),                 # 48 bytes: enough for HS384 only
        ("RS256", keys["p256"].priv),       # wrong key type
        ("PS256", keys["ed"].priv),
        ("EdDSA", keys["rsa"].priv),
        ("EdDSA", keys["p256"].priv),
        ("ES256", keys["rsa"].priv),
        ("ES384", keys["p256"].priv),       # wrong curve
        ("ES512", keys["p384"].priv),
        ("RS256", keys["rsa"].pub),         # a public key
        ("ES256", encrypted),               # refused, not a passphrase prompt
        ("RS256", small_rsa),               # under 2048 bits
        ("RS256", short),                   # not a key at all
        ("HS256", empty),
        ("RS256", tmp_path / "missing"),
        ("HS256", tmp_path),                # a directory
    ]
    for alg, path in cases:
        r = mint("--key", path, "--alg", alg)
        assert (r.returncode, r.stdout) == (1, ""), (alg, path, r.returncode, r.stderr)
        assert r.stderr.startswith("portcullis token: ") and r.stderr.count("\n") == 1, r.stderr
        assert "tooshort" not in r.stderr and "eeee" not in r.stderr  # never a secret in a message
    assert mint("--key", exactly, "--alg", "HS384").returncode == 0
