"""POST /introspect (RFC 7662): who may ask, what they learn, and ``active: false`` for the rest."""

from __future__ import annotations

import httpx

from tests.conftest import ISSUER, RESOURCE
from tests.helpers import FrozenClock, register, tokens_for


async def introspect(http: httpx.AsyncClient, token: str, auth: tuple[str, str] | None = None,
                     **form: str) -> httpx.Response:
    if auth is None:
        return await http.post("/introspect", data={"token": token, **form})
    return await http.post("/introspect", data={"token": token, **form}, auth=auth)


async def test_confidential_client_introspects_another_clients_access_token(http: httpx.AsyncClient) -> None:
    """RFC 7662 §2.2: a resource server (confidential client) learns the token's facts."""
    user_client = await register(http)
    tokens = await tokens_for(http, user_client.client_id)
    rs = await register(http, token_endpoint_auth_method="client_secret_basic")
    assert rs.client_secret is not None
    response = await introspect(http, tokens["access_token"], (rs.client_id, rs.client_secret))
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True and body["client_id"] == user_client.client_id and body["sub"] == "alice"
    assert body["scope"] == "mcp:tools" and body["aud"] == RESOURCE and body["iss"] == ISSUER
    assert body["token_type"] == "Bearer" and isinstance(body["exp"], int)


async def test_public_client_sees_only_its_own_tokens(http: httpx.AsyncClient) -> None:
    """RFC 7662 §4: a public client's credentials prove nothing, so it learns only about its own tokens."""
    mine, other = await register(http), await register(http)
    my_tokens = await tokens_for(http, mine.client_id)
    other_tokens = await tokens_for(http, other.client_id)
    own = await introspect(http, my_tokens["access_token"], client_id=mine.client_id)
    assert own.json()["active"] is True
    foreign = await introspect(http, other_tokens["access_token"], client_id=mine.client_id)
    assert foreign.json() == {"active": False}


async def test_refresh_tokens_only_for_their_own_client(http: httpx.AsyncClient) -> None:
    """A refresh token is the client's own business: active for it, inactive for anyone else."""
    mine = await register(http)
    tokens = await tokens_for(http, mine.client_id)
    own = await introspect(http, tokens["refresh_token"], client_id=mine.client_id, token_type_hint="refresh_token")
    body = own.json()
    assert body["active"] is True and body["client_id"] == mine.client_id and "token_type" not in body
    rs = await register(http, token_endpoint_auth_method="client_secret_post")
    other = await http.post("/introspect", data={"token": tokens["refresh_token"], "client_id": rs.client_id,
                                                 "client_secret": rs.client_secret or ""})
    assert other.json() == {"active": False}


async def test_inactive_for_unknown_expired_revoked_and_rotated(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 7662 §2.2: anything not currently valid is just ``{"active": false}``."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    assert (await introspect(http, "x" * 43, client_id=client.client_id)).json() == {"active": False}
    refreshed = await http.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    rotated = await introspect(http, tokens["refresh_token"], client_id=client.client_id)
    assert rotated.json() == {"active": False}
    new = refreshed.json()
    await http.post("/revoke", data={"token": new["access_token"], "client_id": client.client_id})
    assert (await introspect(http, new["access_token"], client_id=client.client_id)).json() == {"active": False}
    later = await tokens_for(http, client.client_id)
    clock.advance(3600)
    assert (await introspect(http, later["access_token"], client_id=client.client_id)).json() == {"active": False}


async def test_introspection_requires_client_authentication(http: httpx.AsyncClient) -> None:
    """RFC 7662 §2.1: the endpoint MUST require authorization; a bad secret is 401 invalid_client."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    missing = await introspect(http, tokens["access_token"])
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_client"
    rs = await register(http, token_endpoint_auth_method="client_secret_basic")
    wrong = await introspect(http, tokens["access_token"], (rs.client_id, "wrong"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic")
    no_token = await http.post("/introspect", data={"client_id": client.client_id})
    assert no_token.status_code == 400 and no_token.json()["error"] == "invalid_request"
