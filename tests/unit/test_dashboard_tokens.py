"""ID tokens for the deployed dashboard: signed by a test key, checked against its JWKS."""

from __future__ import annotations

import json

import pytest

from fanout.testing.dashboard import CLIENT_ID, ISSUER, TestIssuer
from fanout.ui.tokens import TokenError, Verifier, b64url, b64url_decode


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


def verifier(issuer: TestIssuer) -> Verifier:
    return Verifier(ISSUER, CLIENT_ID, f"{ISSUER}/.well-known/jwks.json", fetch=issuer.fetch)


def test_a_token_of_the_pool_for_this_client_is_accepted(issuer: TestIssuer) -> None:
    claims = verifier(issuer).verify(issuer.token(["viewers"]))
    assert claims["cognito:groups"] == ["viewers"] and claims["email"] == "ana@example.com"


@pytest.mark.parametrize(("why", "make"), [
    ("expired", lambda i: i.token(["operators"], expires_in=-120)),
    ("another client (audience)", lambda i: i.token(["operators"], aud="someone-else")),
    ("another issuer", lambda i: i.token(["operators"], iss="https://evil.example.com")),
    ("not an ID token", lambda i: i.token(["operators"], token_use="access")),
    ("issued in the future", lambda i: i.token(["operators"], iat=4_000_000_000)),
    ("a key the issuer does not publish",
     lambda i: i.token(["operators"], header={"alg": "RS256", "kid": "other"})),
])
def test_a_token_that_fails_a_claim_is_refused(issuer: TestIssuer, why: str, make: object) -> None:
    with pytest.raises(TokenError, match=why.split(" (")[0]):
        verifier(issuer).verify(make(issuer))  # type: ignore[operator]


def test_a_forged_signature_is_refused(issuer: TestIssuer) -> None:
    # Given a token signed by another key under the pool's key id
    forger = TestIssuer(kid=issuer.kid)
    with pytest.raises(TokenError, match="bad signature"):
        verifier(issuer).verify(forger.token(["operators"]))
    # And a real token whose payload was changed to add a group
    head, body, sig = issuer.token(["viewers"]).split(".")
    claims = json.loads(b64url_decode(body))
    claims["cognito:groups"] = ["operators"]
    changed = f"{head}.{b64url(json.dumps(claims).encode())}.{sig}"
    with pytest.raises(TokenError, match="bad signature"):
        verifier(issuer).verify(changed)
    # And one with the last bit of its signature flipped
    raw = bytearray(b64url_decode(sig))
    raw[-1] ^= 1
    with pytest.raises(TokenError, match="bad signature"):
        verifier(issuer).verify(f"{head}.{body}.{b64url(bytes(raw))}")


@pytest.mark.parametrize("alg", ["none", "HS256", "RS512"])
def test_only_rs256_is_accepted(issuer: TestIssuer, alg: str) -> None:
    # An HS256 token "signed" with the public key as secret is the classic confusion
    head = b64url(json.dumps({"alg": alg, "kid": issuer.kid}).encode())
    _, body, sig = issuer.token(["operators"]).split(".")
    with pytest.raises(TokenError, match="not accepted"):
        verifier(issuer).verify(f"{head}.{body}.{sig if alg != 'none' else ''}")


def test_the_jwks_is_fetched_once_and_again_for_a_new_key(issuer: TestIssuer) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return issuer.jwks()

    now = [1000.0]
    check = Verifier(ISSUER, CLIENT_ID, f"{ISSUER}/.well-known/jwks.json", fetch=fetch,
                     monotonic=lambda: now[0])
    for _ in range(3):
        check.verify(issuer.token(["viewers"]))
    assert len(fetched) == 1
    # An unknown key id: fetched again, but at most once a minute (rotation, not a flood)
    rotated = issuer.token(["viewers"], header={"alg": "RS256", "kid": "rotated"})
    now[0] += 61
    for _ in range(3):
        with pytest.raises(TokenError):
            check.verify(rotated)
    assert len(fetched) == 2
