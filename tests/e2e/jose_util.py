"""Keys and tokens for the JWT tests, made with the openssl CLI and Python's
standard library only — independent of the gateway's own code (and of
`portcullis token`), so the tests check it against a second implementation."""

import base64
import hashlib
import hmac
import json
import os
import subprocess


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def run(*args, data=None):
    return subprocess.run(args, input=data, check=True, capture_output=True, timeout=30).stdout


class Key:
    """A private key on disk, its public PEM and its public JWK."""

    def __init__(self, d, name, kind, kid):
        self.kind, self.kid = kind, kid
        self.priv = os.path.join(d, name + ".pem")
        self.pub = os.path.join(d, name + ".pub.pem")
        if kind == "RSA":
            run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.priv)
        elif kind == "Ed25519":
            run("openssl", "genpkey", "-algorithm", "ED25519", "-out", self.priv)
        else:
            run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + kind, "-out", self.priv)
        run("openssl", "pkey", "-in", self.priv, "-pubout", "-out", self.pub)
        self.jwk = self._jwk()

    def _jwk(self):
        der = run("openssl", "pkey", "-pubin", "-in", self.pub, "-outform", "DER")
        if self.kind == "RSA":
            mod = run("openssl", "rsa", "-pubin", "-in", self.pub, "-noout", "-modulus").decode()
            n = bytes.fromhex(mod.strip().split("=", 1)[1])
            return {"kty": "RSA", "kid": self.kid, "n": b64u(n), "e": "AQAB"}
        if self.kind == "Ed25519":
            return {"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": b64u(der[-32:])}
        size = {"P-256": 32, "P-384": 48, "P-521": 66}[self.kind]
        point = der[-(2 * size + 1):]
        assert point[0] == 4
        return {"kty": "EC", "crv": self.kind, "kid": self.kid, "x": b64u(point[1:1 + size]),
                "y": b64u(point[1 + size:])}

    def sign(self, alg, data):
        digest = "-sha" + alg[2:] if alg[:2] in ("RS", "PS", "ES") else None
        if alg.startswith("RS"):
            return run("openssl", "dgst", digest, "-sign", self.priv, data=data)
        if alg.startswith("PS"):
            return run("openssl", "dgst", digest, "-sign", self.priv, "-sigopt", "rsa_padding_mode:pss",
                       "-sigopt", "rsa_pss_saltlen:digest", data=data)
        if alg == "EdDSA":
            with open(self.priv + ".in", "wb") as f:
                f.write(data)
            return run("openssl", "pkeyutl", "-sign", "-inkey", self.priv, "-rawin", "-in", self.priv + ".in")
        der = run("openssl", "dgst", digest, "-sign", self.priv, data=data)
        size = {"ES256": 32, "ES384": 48, "ES512": 66}[alg]
        r, s = der_ints(der)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def der_ints(der):
    """The two INTEGERs of a DER ECDSA signature."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = []
    for _ in range(2):
        assert der[i] == 2
        n = der[i + 1]
        out.append(int.from_bytes(der[i + 2:i + 2 + n], "big"))
        i += 2 + n
    return out


def jwks(*keys):
    return {"keys": [k.jwk for k in keys]}


def token(alg, key, claims, header=None, kid=True, raw_payload=None):
    """A compact JWS. key: a Key, or bytes (an HMAC secret)."""
    h = {"alg": alg, "typ": "JWT"}
    if kid and isinstance(key, Key):
        h["kid"] = key.kid
    h.update(header or {})
    payload = raw_payload if raw_payload is not None else json.dumps(claims).encode()
    signing = (b64u(json.dumps(h).encode()) + "." + b64u(payload)).encode()
    if isinstance(key, (bytes, bytearray)):
        sig = hmac.new(key, signing, getattr(hashlib, "sha" + alg[2:])).digest()
    else:
        sig = key.sign(alg, signing)
    return signing.decode() + "." + b64u(sig)


def unsigned(claims, alg="none"):
    return b64u(json.dumps({"alg": alg}).encode()) + "." + b64u(json.dumps(claims).encode()) + "."
