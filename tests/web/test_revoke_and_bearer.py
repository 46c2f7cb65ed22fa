"""RFC 7009 revocation and the RFC 6750 / RFC 9728 bearer check on the MCP endpoint."""

from __future__ import annotations

import httpx

from oauth_server import OAuthServer, OAuthServerSettings
from tests.conftest import ISSUER, build_app
from tests.helpers import register, tokens_for


async def status(http: httpx.AsyncClient, token: str) -> int:
    return (await http.post("/mcp", headers={"Authorization": f"Bearer {token}"})).status_code


async def test_unknown_token_revocation_is_200(http: httpx.AsyncClient) -> None:
    client = await register(http)
    response = await http.post("/revoke", data={"token": "nope", "client_id": client.client_id})
    assert response.status_code == 200


async def test_revoking_access_or_refresh_token_kills_the_grant(http: httpx.AsyncClient) -> None:
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    await http.post("/revoke", data={"token": tokens["access_token"], "client_id": client.client_id})
    assert await status(http, tokens["access_token"]) == 401
    refreshed = await http.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                 "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400


async def test_a_client_cannot_revoke_another_clients_token(http: httpx.AsyncClient) -> None:
    owner, other = await register(http), await register(http)
    tokens = await tokens_for(http, owner.client_id)
    response = await http.post("/revoke", data={"token": tokens["access_token"], "client_id": other.client_id})
    assert response.status_code == 200  # public caller: silent
    assert await status(http, tokens["access_token"]) == 200
    confidential = await register(http, token_endpoint_auth_method="client_secret_post")
    response = await http.post("/revoke", data={"token": tokens["access_token"], "client_id": confidential.client_id,
                                                "client_secret": confidential.client_secret or ""})
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"
    assert await status(http, tokens["access_token"]) == 200


async def test_revoke_requires_client_authentication(http: httpx.AsyncClient) -> None:
    response = await http.post("/revoke", data={"token": "x"})
    assert response.status_code == 401


async def test_no_token_gets_401_with_resource_metadata_and_scope(http: httpx.AsyncClient) -> None:
    """MCP authorization §Protected Resource Metadata Discovery, RFC 9728 §5.1."""
    response = await http.post("/mcp")
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'resource_metadata="http://localhost:8000/.well-known/oauth-protected-resource/mcp"' in challenge
    assert 'scope="mcp:tools"' in challenge
    assert "error=" not in challenge


async def test_bad_token_gets_invalid_token(http: httpx.AsyncClient) -> None:
    response = await http.post("/mcp", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_insufficient_scope_is_403(http: httpx.AsyncClient) -> None:
    client = await register(http)
    tokens = await tokens_for(http, client.client_id, scope="mcp:prompts")
    response = await http.post("/mcp", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="mcp:tools"' in response.headers["www-authenticate"]


async def test_token_for_another_resource_is_refused(http: httpx.AsyncClient, server: OAuthServer) -> None:
    """RFC 8707 / MCP: a token is accepted only by the resource it was issued for."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    other = OAuthServer(server.model, OAuthServerSettings(
        issuer_url=ISSUER, resource_server_url="http://localhost:8000/other",
        authorization_url=f"{ISSUER}/consent", scopes_supported=("mcp:tools",),
    ), clock=server.clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(other)), base_url=ISSUER) as other_http:
        assert await status(other_http, tokens["access_token"]) == 401
    assert await status(http, tokens["access_token"]) == 200


async def test_token_in_query_string_is_refused(http: httpx.AsyncClient) -> None:
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    response = await http.post("/mcp", params={"access_token": tokens["access_token"]})
    assert response.status_code == 401


async def test_expired_access_token_is_refused(http: httpx.AsyncClient, clock: object) -> None:
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    clock.advance(3601)  # type: ignore[attr-defined]
    assert await status(http, tokens["access_token"]) == 401
