"""JWT access tokens (RFC 9068): format, JWKS, local verification, revocation, rotation."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings, keys
from oauth_server.records import AccessToken
from tests.conftest import ISSUER, RESOURCE, SCOPES, build_app
from tests.helpers import FrozenClock, register, tokens_for

SECRET = "a key encryption secret of at least thirty-two bytes"


def jwt_settings(**changes: Any) -> OAuthServerSettings:
    settings = OAuthServerSettings(
        issuer_url=ISSUER, resource_server_url=RESOURCE, authorization_url=f"{ISSUER}/consent",
        scopes_supported=SCOPES, default_scopes=("mcp:tools",), access_token_format="jwt",
        key_encryption_secret=SECRET, signing_key_propagation=300, signing_key_cache_ttl=0,
    )
    return dataclasses.replace(settings, **changes)


class CountingModel(MemoryOAuthServerModel):
    """Counts access-token reads, to prove a forged JWT never reaches the model."""

    reads = 0

    async def get_access_token(self, token_digest: str) -> AccessToken | None:
        self.reads += 1
        return await super().get_access_token(token_digest)


@pytest.fixture
def model() -> CountingModel:
    return CountingModel()


@pytest.fixture
def server(model: CountingModel, clock: FrozenClock) -> OAuthServer:
    return OAuthServer(model, jwt_settings(), clock=clock)


@pytest.fixture
async def http(server: OAuthServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(server))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER, headers={"x-test-user": "alice"}) as client:
        yield client


async def jwks_of(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwk-set+json"
    assert response.headers["cache-control"] == "public, max-age=300"
    return dict(response.json())


def verify_with_jwks(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """What a resource server elsewhere does: the key by kid, the algorithm from the key."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    key = jwt.PyJWK(jwk)
    return dict(jwt.decode(token, key, algorithms=[jwk["alg"]], audience=RESOURCE, issuer=ISSUER,
                           options={"verify_exp": False, "verify_iat": False}))  # the test's clock is frozen


async def bearer(http: httpx.AsyncClient, token: str) -> int:
    return (await http.post("/mcp", headers={"Authorization": f"Bearer {token}"})).status_code


def test_settings_need_keys_or_a_secret_for_jwt() -> None:
    with pytest.raises(ValueError, match="signing_keys or a key_encryption_secret"):
        jwt_settings(key_encryption_secret=None)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        jwt_settings(key_encryption_secret="short")


async def test_jwt_access_token_has_the_rfc9068_header_and_claims(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 9068 §2.1 header ``typ: at+jwt`` and ``kid``; §2.2 claims; verifiable with our JWKS alone."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    token = tokens["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256" and header["kid"]
    claims = verify_with_jwks(token, await jwks_of(http))
    assert claims["iss"] == ISSUER and claims["aud"] == RESOURCE and claims["sub"] == "alice"
    assert claims["client_id"] == client.client_id and claims["scope"] == "mcp:tools"
    assert claims["iat"] == int(clock.now) and claims["exp"] == int(clock.now) + 3600 and claims["jti"]
    assert tokens["refresh_token"].count(".") == 0  # refresh tokens stay opaque
    assert await bearer(http, token) == 200


async def test_metadata_announces_jwks_uri_and_introspection(http: httpx.AsyncClient) -> None:
    """RFC 8414 §2: ``jwks_uri``; RFC 7662 via RFC 8414: ``introspection_endpoint``."""
    doc = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert doc["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert doc["introspection_endpoint"] == f"{ISSUER}/introspect"
    preflight = await http.options("/.well-known/jwks.json")
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"


async def test_private_keys_are_stored_encrypted(http: httpx.AsyncClient, model: CountingModel) -> None:
    """design.md: private keys are never stored in clear (AES-256-GCM under the app's secret)."""
    client = await register(http)
    await tokens_for(http, client.client_id)
    (stored,) = await model.list_signing_keys()
    assert stored.private_key.startswith("v1.") and "PRIVATE KEY" not in stored.private_key
    cipher = keys.KeyCipher(SECRET)
    assert b"PRIVATE KEY" in cipher.decrypt(stored.private_key, stored.kid)
    with pytest.raises(keys.SigningKeyError):
        keys.KeyCipher("another secret that is long enough, 32+").decrypt(stored.private_key, stored.kid)
    with pytest.raises(keys.SigningKeyError):  # the kid is associated data: a row moved elsewhere fails
        cipher.decrypt(stored.private_key, "another-kid")


def _forge(token: str, **header: Any) -> str:
    head, body, _ = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    decoded.update(header)
    new_head = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    return f"{new_head}.{body}."


async def test_forged_jwts_are_refused_without_a_model_read(http: httpx.AsyncClient, model: CountingModel) -> None:
    """RFC 9068 §4 / RFC 8725 §3.1: the signature is checked with the key ``kid`` names and only
    its algorithm; ``alg: none``, another key and tampered claims are refused before any lookup."""
    client = await register(http)
    token = (await tokens_for(http, client.client_id))["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    other = ec.generate_private_key(ec.SECP256R1())
    forgeries = [
        _forge(token, alg="none"),
        jwt.encode(claims, other, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"}),
        jwt.encode({**claims, "scope": "mcp:admin"}, other, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"}),
        token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        _forge(token, typ="JWT"),
    ]
    model.reads = 0
    for forged in forgeries:
        assert await bearer(http, forged) == 401
    assert model.reads == 0


async def test_revoked_jwt_is_refused(http: httpx.AsyncClient) -> None:
    """RFC 7009 §2: revocation works for JWTs as for opaque tokens (the model holds their digest)."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    assert await bearer(http, tokens["access_token"]) == 200
    revoked = await http.post("/revoke", data={"token": tokens["access_token"], "client_id": client.client_id})
    assert revoked.status_code == 200
    assert await bearer(http, tokens["access_token"]) == 401


async def test_jwt_for_another_issuer_or_audience_is_refused(server: OAuthServer, http: httpx.AsyncClient) -> None:
    """RFC 9068 §4: ``iss`` must be ours and ``aud`` one of our resources, checked on the signed claims."""
    client = await register(http)
    token = (await tokens_for(http, client.client_id))["access_token"]
    assert server.signing is not None
    key = await server.signing.signer()
    claims = jwt.decode(token, options={"verify_signature": False})
    for changed in ({"aud": "https://elsewhere.example/mcp"}, {"iss": "https://evil.example"}):
        forged = jwt.encode({**claims, **changed}, key.private_key, algorithm=key.algorithm,
                            headers={"kid": key.kid, "typ": "at+jwt"})
        assert await bearer(http, forged) == 401


async def test_expired_jwt_is_refused(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    client = await register(http)
    token = (await tokens_for(http, client.client_id))["access_token"]
    clock.advance(3600)
    assert await bearer(http, token) == 401


async def test_rotation_publishes_first_switches_later_and_keeps_old_keys_until_their_tokens_expire(
    server: OAuthServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """Key rotation: the next key is in the JWKS before it signs anything; tokens signed before
    keep working until they expire; the old key leaves the JWKS after that."""
    client = await register(http)
    before = (await tokens_for(http, client.client_id))["access_token"]
    old_kid = jwt.get_unverified_header(before)["kid"]
    new_kid = await server.rotate_signing_keys()
    assert new_kid != old_kid
    assert [k["kid"] for k in (await jwks_of(http))["keys"]] == [old_kid, new_kid]
    during = (await tokens_for(http, client.client_id))["access_token"]
    assert jwt.get_unverified_header(during)["kid"] == old_kid  # not yet: propagation
    clock.advance(300)
    after = (await tokens_for(http, client.client_id))["access_token"]
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert [k["kid"] for k in (await jwks_of(http))["keys"]] == [new_kid, old_kid]
    for token in (before, during, after):
        assert await bearer(http, token) == 200
    clock.advance(3600)  # the old key's last token (signed just before the switch) has expired
    assert [k["kid"] for k in (await jwks_of(http))["keys"]] == [new_kid]
    assert await bearer(http, after) == 401  # expired as well


async def test_two_processes_share_managed_keys(model: CountingModel, clock: FrozenClock) -> None:
    """Managed keys live in the model: what one server signs, another on the same model verifies,
    including after a rotation made by the other."""
    first, second = (OAuthServer(model, jwt_settings(), clock=clock) for _ in range(2))
    transport_a = httpx.ASGITransport(app=build_app(first))
    transport_b = httpx.ASGITransport(app=build_app(second))
    async with httpx.AsyncClient(transport=transport_a, base_url=ISSUER, headers={"x-test-user": "a"}) as a, \
            httpx.AsyncClient(transport=transport_b, base_url=ISSUER, headers={"x-test-user": "a"}) as b:
        client = await register(a)
        token = (await tokens_for(a, client.client_id))["access_token"]
        assert await bearer(b, token) == 200
        await second.rotate_signing_keys()
        clock.advance(300)
        rotated = (await tokens_for(a, client.client_id))["access_token"]
        assert jwt.get_unverified_header(rotated)["kid"] == (await jwks_of(b))["keys"][0]["kid"]
        assert await bearer(b, rotated) == 200
        assert len(await model.list_signing_keys()) == 2


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
async def test_app_provided_keys_sign_and_are_published(algorithm: str, clock: FrozenClock) -> None:
    """The app's own key (PEM or JWK) signs; nothing is stored; rotation is a configuration change."""
    private = keys.generate(algorithm)
    pem = keys.to_pem(private).decode()
    model = MemoryOAuthServerModel()
    server = OAuthServer(model, jwt_settings(key_encryption_secret=None, signing_keys=(pem,)), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as http:
        client = await register(http)
        token = (await tokens_for(http, client.client_id))["access_token"]
        assert jwt.get_unverified_header(token)["alg"] == algorithm
        jwks = await jwks_of(http)
        assert jwks["keys"] == [keys.public_jwk(private)]
        verify_with_jwks(token, jwks)
        assert await bearer(http, token) == 200
    assert await model.list_signing_keys() == []
    with pytest.raises(RuntimeError, match="configuration"):
        await server.rotate_signing_keys()


def test_keys_refuse_weak_or_public_material() -> None:
    """RFC 7518 §3.3: RSA keys of at least 2048 bits; a public JWK is no signing key."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(keys.SigningKeyError, match="2048"):
        keys.load_private_key(keys.to_pem(weak))
    public = keys.public_jwk(keys.generate("ES256"))
    with pytest.raises(keys.SigningKeyError):
        keys.load_private_key(public)
    with pytest.raises(keys.SigningKeyError):
        keys.load_private_key("not a key")
    with pytest.raises(keys.SigningKeyError):
        keys.load_private_key(keys.to_pem(ec.generate_private_key(ec.SECP384R1())))


def test_kid_is_the_rfc7638_thumbprint() -> None:
    """RFC 7638 §3.1's example key has the thumbprint NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs."""
    example = {
        "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
             "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQ"
             "MicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr"
             "3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    }
    assert keys.thumbprint(example) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
