"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from oauth_server import keys
from oauth_server.client_assertion import ASSERTION_TYPE, ClientKeys
from oauth_server.fetch import Fetcher, FetchPolicy
from oauth_server.server import AuthorizationServer
from tests.conftest import ISSUER
from tests.helpers import REDIRECT, VERIFIER, FrozenClock, get_code, register

TOKEN_URL = f"{ISSUER}/token"
BAD_CODE = {"grant_type": "authorization_code", "code": "x", "code_verifier": "v" * 43}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """A client's key pair: the private key signs, the public JWK is registered."""

    def __init__(self, algorithm: str = "ES256") -> None:
        self.algorithm = algorithm
        self.key = keys.generate(algorithm)
        self.jwk = keys.public_jwk(self.key)

    def assertion(self, client_id: str, now: float, **overrides: Any) -> str:
        claims: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "iat": int(now),
                                  "exp": int(now) + 120, "jti": str(uuid.uuid4())}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers={"kid": self.jwk["kid"]})


def unsigned(header: dict[str, Any], claims: dict[str, Any], mac_key: bytes | None = None) -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = b"" if mac_key is None else hmac.new(mac_key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def auth(assertion: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}


async def register_pkjwt(http: httpx.AsyncClient, signer: Signer, **metadata: Any) -> str:
    fields: dict[str, Any] = {"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [signer.jwk]}}
    fields.update(metadata)
    registered = await register(http, **{k: v for k, v in fields.items() if v is not None})
    assert registered.client_secret is None
    return registered.client_id


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
async def test_private_key_jwt_inline_jwks_gets_tokens(
    http: httpx.AsyncClient, clock: FrozenClock, algorithm: str
) -> None:
    """RFC 7523 §2.2: a client registered with its public keys authenticates with a signed JWT."""
    signer = Signer(algorithm)
    client_id = await register_pkjwt(http, signer)
    code = await get_code(http, client_id)
    response = await http.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER,
        **auth(signer.assertion(client_id, clock.now))})
    assert response.status_code == 200, response.text
    refreshed = await http.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": response.json()["refresh_token"],
        **auth(signer.assertion(client_id, clock.now, aud=ISSUER))})
    assert refreshed.status_code == 200, refreshed.text


async def test_private_key_jwt_jwks_uri_fetched_through_guarded_fetcher(
    http: httpx.AsyncClient, server: AuthorizationServer, clock: FrozenClock
) -> None:
    """RFC 7591 §2 jwks_uri: fetched with the SSRF-guarded fetcher (checked public address, no
    other request) and cached for its Cache-Control lifetime."""
    signer = Signer("RS256")
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        assert host == "keys.example" and port == 443, host
        return ["93.184.216.34"]

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.host != "93.184.216.34" or request.headers["host"] != "keys.example" \
                or request.url.path != "/jwks.json":
            pytest.fail(f"unexpected request {request.url}")
        return httpx.Response(200, json={"keys": [signer.jwk]}, headers={"Cache-Control": "max-age=600"})

    fetcher = Fetcher(FetchPolicy(max_bytes=32 * 1024), resolver=resolver, transport=httpx.MockTransport(answer))
    server.client_keys = ClientKeys(fetcher)
    client_id = await register_pkjwt(http, signer, jwks=None, jwks_uri="https://keys.example/jwks.json")
    for _ in range(2):
        response = await http.post("/token", data={**BAD_CODE, **auth(signer.assertion(client_id, clock.now))})
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"  # authenticated
    assert len(asked) == 1  # the second assertion used the cached set


async def test_private_key_jwt_jwks_uri_to_loopback_refused(
    http: httpx.AsyncClient, server: AuthorizationServer, clock: FrozenClock
) -> None:
    """draft-ietf-oauth-client-id-metadata-document §8.6 / SSRF: a jwks_uri resolving to loopback is not fetched."""

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    def answer(request: httpx.Request) -> httpx.Response:
        pytest.fail("the fetcher must not connect")

    server.client_keys = ClientKeys(Fetcher(FetchPolicy(), resolver=resolver, transport=httpx.MockTransport(answer)))
    signer = Signer()
    client_id = await register_pkjwt(http, signer, jwks=None, jwks_uri="https://inside.example/jwks")
    response = await http.post("/token", data={**BAD_CODE, **auth(signer.assertion(client_id, clock.now))})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


REFUSED: dict[str, Callable[[str, Signer, float], str]] = {
    "wrong_signature": lambda c, s, now: Signer().assertion(c, now),
    "alg_none": lambda c, s, now: unsigned({"alg": "none"}, {"iss": c, "sub": c, "aud": TOKEN_URL,
                                                             "exp": int(now) + 60, "jti": "n"}),
    "hs256_public_key_as_secret": lambda c, s, now: unsigned(
        {"alg": "HS256", "kid": s.jwk["kid"]},
        {"iss": c, "sub": c, "aud": TOKEN_URL, "exp": int(now) + 60, "jti": "h"},
        s.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)),
    "iss_differs_from_sub": lambda c, s, now: s.assertion(c, now, iss="someone-else"),
    "wrong_aud": lambda c, s, now: s.assertion(c, now, aud="https://other.example/token"),
    "exp_too_far_ahead": lambda c, s, now: s.assertion(c, now, exp=int(now) + 3600),
    "expired": lambda c, s, now: s.assertion(c, now, exp=int(now) - 120, iat=int(now) - 200),
    "missing_jti": lambda c, s, now: s.assertion(c, now, jti=None),
    "missing_exp": lambda c, s, now: s.assertion(c, now, exp=None),
    "iat_in_future": lambda c, s, now: s.assertion(c, now, iat=int(now) + 3600),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_private_key_jwt_invalid_assertion_refused(http: httpx.AsyncClient, clock: FrozenClock,
                                                         case: str) -> None:
    """RFC 7523 §3 items 1-8 and §3.2: each broken assertion is 401 invalid_client; asymmetric
    algorithms only (RFC 8725 §3.1-3.2: no ``none``, no HS/RS confusion)."""
    signer = Signer("RS256")
    client_id = await register_pkjwt(http, signer)
    assertion = REFUSED[case](client_id, signer, clock.now)
    response = await http.post("/token", data={**BAD_CODE, **auth(assertion), "client_id": client_id})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


async def test_private_key_jwt_replayed_jti_refused(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 7523 §3 item 7: the same assertion (jti) used twice: the second use is 401."""
    signer = Signer()
    client_id = await register_pkjwt(http, signer)
    assertion = signer.assertion(client_id, clock.now)
    first = await http.post("/token", data={**BAD_CODE, **auth(assertion)})
    assert first.status_code == 400 and first.json()["error"] == "invalid_grant"
    second = await http.post("/token", data={**BAD_CODE, **auth(assertion)})
    assert second.status_code == 401 and second.json()["error"] == "invalid_client"


async def test_private_key_jwt_assertion_for_another_client_refused(http: httpx.AsyncClient,
                                                                    clock: FrozenClock) -> None:
    """RFC 7523 §3 items 1-2: an assertion proves only the client whose key signed it."""
    alice, bob = Signer(), Signer()
    alice_id = await register_pkjwt(http, alice)
    bob_id = await register_pkjwt(http, bob)
    forged = alice.assertion(bob_id, clock.now)  # claims to be bob, signed with alice's key
    response = await http.post("/token", data={**BAD_CODE, **auth(forged)})
    assert response.status_code == 401
    mismatched = await http.post("/token", data={**BAD_CODE, **auth(alice.assertion(alice_id, clock.now)),
                                                 "client_id": bob_id})
    assert mismatched.status_code == 401


async def test_private_key_jwt_with_secret_is_two_methods(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """OAuth 2.1 §2.4: an assertion plus client_secret or Basic is more than one method: 400."""
    signer = Signer()
    client_id = await register_pkjwt(http, signer)
    with_secret = await http.post("/token", data={**BAD_CODE, **auth(signer.assertion(client_id, clock.now)),
                                                  "client_secret": "s"})
    assert with_secret.status_code == 400 and with_secret.json()["error"] == "invalid_request"
    basic = "Basic " + base64.b64encode(f"{client_id}:s".encode()).decode()
    with_basic = await http.post("/token", headers={"Authorization": basic},
                                 data={**BAD_CODE, **auth(signer.assertion(client_id, clock.now))})
    assert with_basic.status_code == 400 and with_basic.json()["error"] == "invalid_request"


async def test_private_key_jwt_aud_may_be_the_receiving_endpoint(http: httpx.AsyncClient,
                                                                 clock: FrozenClock) -> None:
    """RFC 7523 §3 item 3: the endpoint receiving the assertion is an acceptable audience (/revoke)."""
    signer = Signer()
    client_id = await register_pkjwt(http, signer)
    response = await http.post("/revoke", data={"token": "unknown", **auth(
        signer.assertion(client_id, clock.now, aud=f"{ISSUER}/revoke"))})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("metadata", [
    {"jwks": None},  # neither jwks nor jwks_uri
    {"jwks_uri": "https://keys.example/jwks"},  # both
    {"jwks": None, "jwks_uri": "http://keys.example/jwks"},  # not https
    {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},  # symmetric
    {"token_endpoint_auth_signing_alg": "HS256"},
    {"private": True},
])
async def test_private_key_jwt_registration_requires_public_asymmetric_keys(
    http: httpx.AsyncClient, metadata: dict[str, Any]
) -> None:
    """RFC 7591 §2: jwks XOR jwks_uri; public asymmetric keys only (a private key is refused)."""
    signer = Signer("RS256")
    payload: dict[str, Any] = {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt",
                               "jwks": {"keys": [signer.jwk]}}
    if metadata.pop("private", False):
        assert isinstance(signer.key, rsa.RSAPrivateKey)
        private = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signer.key))
        payload["jwks"] = {"keys": [private]}
    payload.update(metadata)
    response = await http.post("/register", json={k: v for k, v in payload.items() if v is not None})
    assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata", response.text


async def test_private_key_jwt_advertised_in_metadata(http: httpx.AsyncClient) -> None:
    """RFC 8414 §2: the method and its signing algorithms are listed, never a symmetric one."""
    doc = (await http.get("/.well-known/oauth-authorization-server")).json()
    for endpoint in ("token", "revocation", "introspection"):
        assert "private_key_jwt" in doc[f"{endpoint}_endpoint_auth_methods_supported"]
    algorithms = doc["token_endpoint_auth_signing_alg_values_supported"]
    assert "RS256" in algorithms and not any(a.startswith("HS") or a == "none" for a in algorithms)


async def test_private_key_jwt_mcp_sdk_assertion_accepted(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """The MCP Python SDK's ``SignedJWTParameters`` assertion (aud = issuer) authenticates."""
    sdk = pytest.importorskip("mcp.client.auth.extensions.client_credentials")
    import time

    clock.now = time.time()  # the SDK stamps iat/exp with the real clock
    signer = Signer("RS256")
    client_id = await register_pkjwt(http, signer)
    pem = keys.to_pem(signer.key).decode()
    provider = sdk.SignedJWTParameters(issuer=client_id, subject=client_id, signing_key=pem,
                                       signing_algorithm="RS256", lifetime_seconds=300).create_assertion_provider()
    code = await get_code(http, client_id)
    response = await http.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER,
        **auth(await provider(ISSUER))})
    assert response.status_code == 200, response.text


async def test_private_key_jwt_registered_signing_alg_enforced(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """OpenID Connect Registration §2 token_endpoint_auth_signing_alg: other algorithms are refused."""
    signer = Signer("RS256")
    signer.jwk = {k: v for k, v in signer.jwk.items() if k != "alg"}  # RFC 7517 §4.4: alg would pin RS256
    client_id = await register_pkjwt(http, signer, token_endpoint_auth_signing_alg="PS256")
    response = await http.post("/token", data={**BAD_CODE, **auth(signer.assertion(client_id, clock.now))})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    signer.algorithm = "PS256"  # same RSA key, the registered algorithm
    response = await http.post("/token", data={**BAD_CODE, **auth(signer.assertion(client_id, clock.now))})
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_private_key_jwt_unknown_kid_refetches_at_most_once_a_minute(
    http: httpx.AsyncClient, server: AuthorizationServer, clock: FrozenClock
) -> None:
    """A rotated key (unknown kid) refetches the jwks_uri at once, but made-up kids cannot make
    this server fetch more than once a minute per client."""
    old, new = Signer(), Signer()
    published = [old.jwk]
    asked: list[str] = []
    monotonic = FrozenClock(1000)

    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json={"keys": published}, headers={"Cache-Control": "max-age=3600"})

    fetcher = Fetcher(FetchPolicy(max_bytes=32 * 1024), resolver=resolver, transport=httpx.MockTransport(answer))
    server.client_keys = ClientKeys(fetcher, clock=monotonic)
    client_id = await register_pkjwt(http, old, jwks=None, jwks_uri="https://keys.example/jwks.json")

    async def attempt(signer: Signer) -> int:
        response = await http.post("/token", data={**BAD_CODE, **auth(signer.assertion(client_id, clock.now))})
        return response.status_code

    assert await attempt(old) == 400 and len(asked) == 1
    published = [old.jwk, new.jwk]  # the client rotates; within the minute we do not look again
    assert await attempt(new) == 401 and await attempt(new) == 401 and len(asked) == 1
    monotonic.advance(61)
    assert await attempt(new) == 400 and len(asked) == 2
    assert await attempt(old) == 400 and len(asked) == 2  # known kids come from the cache


async def test_private_key_jwt_jti_remembered_while_the_assertion_is_accepted(
    http: httpx.AsyncClient, server: AuthorizationServer, clock: FrozenClock
) -> None:
    """RFC 7523 §3 item 7: an assertion is accepted until ``exp`` plus the leeway, so its ``jti``
    is kept that long: a purge just after ``exp`` must not open a replay window."""
    signer = Signer()
    client_id = await register_pkjwt(http, signer)
    assertion = signer.assertion(client_id, clock.now, exp=int(clock.now) + 10)
    first = await http.post("/token", data={**BAD_CODE, **auth(assertion)})
    assert first.status_code == 400 and first.json()["error"] == "invalid_grant"  # authenticated
    clock.advance(20)  # past exp, within the leeway
    await server.purge_expired()
    replay = await http.post("/token", data={**BAD_CODE, **auth(assertion)})
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
