"""Verifying an OpenID Connect ID token (RS256) against its issuer's JWKS.

What is checked, in this order (docs/decisions/0019): the header's ``alg`` is ``RS256`` and
its ``kid`` a key of the issuer's JWKS; the RSASSA-PKCS1-v1_5 SHA-256 signature, by RFC 8017
§8.2.2's encode-and-compare (the expected encoded message is built and compared as whole
bytes, so there is no padding parser to fool); then ``iss``, ``aud`` (or ``client_id``),
``token_use`` when present, ``exp`` and ``iat``. Nothing here is imported beyond the
standard library: the dashboard's Lambda pays nothing for it at a cold start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: DER prefix of a DigestInfo holding a SHA-256 digest (RFC 8017 §9.2, note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
#: Smallest RSA modulus accepted, in bits.
MIN_KEY_BITS = 2048
#: Clock skew allowed between the issuer and this function, in seconds.
LEEWAY = 60
#: Least time between two fetches of the JWKS for an unknown ``kid`` (key rotation).
REFETCH_SECONDS = 60.0


class TokenError(ValueError):
    """The token is not one this app accepts; the message says why (never the token)."""


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise TokenError("not base64url") from None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def rsa_pkcs1_sha256_ok(n: int, e: int, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is an RSASSA-PKCS1-v1_5 SHA-256 signature of ``message``."""
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    if k < len(t) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, expected)


def _https_get(url: str) -> bytes:
    from urllib.request import urlopen

    if not url.startswith("https://"):
        raise TokenError("the JWKS address must be https://")
    with urlopen(url, timeout=5) as response:
        body: bytes = response.read(1_000_000)
        return body


@dataclass
class Verifier:
    """ID tokens of one issuer for one client (audience)."""

    issuer: str
    audience: str
    jwks_url: str
    #: Fetches the JWKS document (tests give a local one).
    fetch: Callable[[str], bytes] = _https_get
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    _keys: dict[str, tuple[int, int]] = field(default_factory=dict)
    _fetched_at: float = -1e9
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self, kid: str) -> tuple[int, int]:
        with self._lock:
            if kid not in self._keys and self.monotonic() - self._fetched_at > REFETCH_SECONDS:
                self._fetched_at = self.monotonic()
                self._keys = jwks_keys(self.fetch(self.jwks_url))
            found = self._keys.get(kid)
        if found is None:
            raise TokenError("signed by a key the issuer does not publish")
        return found

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, once every check has passed; else :class:`TokenError`."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("not a signed JWT")
        header = _json_object(b64url_decode(parts[0]), "header")
        if header.get("alg") != "RS256":
            raise TokenError(f"algorithm {header.get('alg')!r} is not accepted (RS256 only)")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenError("no key id (kid)")
        n, e = self.key(kid)
        signed = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
        if not rsa_pkcs1_sha256_ok(n, e, signed, b64url_decode(parts[2])):
            raise TokenError("bad signature")
        claims = _json_object(b64url_decode(parts[1]), "payload")
        self.check_claims(claims)
        return claims

    def check_claims(self, claims: dict[str, Any]) -> None:
        if claims.get("iss") != self.issuer:
            raise TokenError("issued by another issuer")
        audience = claims.get("aud", claims.get("client_id"))
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise TokenError("issued for another client (audience)")
        if claims.get("token_use", "id") != "id":
            raise TokenError("not an ID token")
        now = self.clock()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise TokenError("no expiry (exp)")
        if now > exp + LEEWAY:
            raise TokenError("expired")
        iat = claims.get("iat")
        if isinstance(iat, int | float) and iat > now + LEEWAY:
            raise TokenError("issued in the future")


def jwks_keys(document: bytes) -> dict[str, tuple[int, int]]:
    """The RSA signing keys of a JWKS document: kid -> (n, e)."""
    try:
        loaded = json.loads(document)
    except ValueError:
        raise TokenError("the JWKS is not JSON") from None
    keys: dict[str, tuple[int, int]] = {}
    for jwk in loaded.get("keys", []) if isinstance(loaded, dict) else []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or \
                jwk.get("use", "sig") != "sig" or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("alg", "RS256") != "RS256":
            continue
        n = int.from_bytes(b64url_decode(str(jwk.get("n", ""))), "big")
        e = int.from_bytes(b64url_decode(str(jwk.get("e", ""))), "big")
        if n.bit_length() >= MIN_KEY_BITS and e > 1:
            keys[jwk["kid"]] = (n, e)
    return keys


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        loaded = json.loads(raw)
    except ValueError:
        raise TokenError(f"the {what} is not JSON") from None
    if not isinstance(loaded, dict):
        raise TokenError(f"the {what} is not an object")
    return loaded
