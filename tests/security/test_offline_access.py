"""``offline_access`` (MCP 2026-07-28 "Refresh Tokens", OpenID Connect Core §11)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection

import httpx
import pytest
from fastapi import Depends, FastAPI

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings, mcp_auth_router, require_bearer_auth
from tests.conftest import ISSUER, RESOURCE, signed_in_user
from tests.helpers import FrozenClock, register, tokens_for

OFFERED = ("mcp:tools", "mcp:admin", "offline_access")


def settings(scopes: tuple[str, ...] = OFFERED) -> OAuthServerSettings:
    return OAuthServerSettings(issuer_url=ISSUER, resource_server_url=RESOURCE, authorization_url=f"{ISSUER}/consent",
                               scopes_supported=scopes)


def app_for(server: OAuthServer, user_may_grant: Collection[str] | None = None) -> FastAPI:
    app = FastAPI()
    app.include_router(mcp_auth_router(server, get_user=signed_in_user,
                                       user_scopes=(lambda _subject: user_may_grant)))
    guard = require_bearer_auth(server, ["mcp:tools"])

    @app.post("/mcp", dependencies=[Depends(guard)])
    async def mcp_endpoint() -> dict[str, str]:
        return {}

    return app


@pytest.fixture
async def offered() -> AsyncIterator[httpx.AsyncClient]:
    server = OAuthServer(MemoryOAuthServerModel(), settings(), clock=FrozenClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_for(server)), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as http:
        yield http


async def refresh(http: httpx.AsyncClient, client_id: str, token: str, scope: str | None = None) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id, "scope": scope}
    return await http.post("/token", data={k: v for k, v in data.items() if v is not None})


async def test_offline_access_offered_refresh_token_only_when_requested_and_granted(
    offered: httpx.AsyncClient,
) -> None:
    """MCP 2026-07-28: clients "MAY add offline_access to the scope parameter [...] when the
    Authorization Server metadata contains it in scopes_supported" and "MUST NOT assume refresh
    tokens will be issued; the AS retains discretion"; OIDC Core §11: the scope "requests that
    an OAuth 2.0 Refresh Token be issued". Offered, it is what a refresh token is asked with."""
    metadata = (await offered.get("/.well-known/oauth-authorization-server")).json()
    assert "offline_access" in metadata["scopes_supported"]
    client = await register(offered)
    without = await tokens_for(offered, client.client_id, scope="mcp:tools")
    assert "refresh_token" not in without and without["scope"] == "mcp:tools"
    with_it = await tokens_for(offered, client.client_id, scope="mcp:tools offline_access")
    assert with_it["refresh_token"] and with_it["scope"] == "mcp:tools offline_access"

    # The grant keeps it: a refresh that narrows the access token's scope still rotates.
    narrowed = await refresh(offered, client.client_id, with_it["refresh_token"], scope="mcp:tools")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "mcp:tools" and narrowed.json()["refresh_token"]
    again = await refresh(offered, client.client_id, narrowed.json()["refresh_token"])
    assert again.status_code == 200 and again.json()["scope"] == "mcp:tools offline_access"


async def test_offline_access_withheld_by_the_user_means_no_refresh_token() -> None:
    """OIDC Core §11: offline access is the user's to grant; withheld (``user_scopes``), the
    access token is issued and no refresh token."""
    server = OAuthServer(MemoryOAuthServerModel(), settings(), clock=FrozenClock())
    app = app_for(server, user_may_grant=("mcp:tools",))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as http:
        client = await register(http)
        body = await tokens_for(http, client.client_id, scope="mcp:tools offline_access")
        assert body["scope"] == "mcp:tools" and "refresh_token" not in body


async def test_offline_access_needs_the_refresh_token_grant(offered: httpx.AsyncClient) -> None:
    """OAuth 2.1 §4.3: no refresh token for a client not registered for the refresh_token
    grant, whatever scope it asks for."""
    client = await register(offered, grant_types=["authorization_code"])
    body = await tokens_for(offered, client.client_id, scope="mcp:tools offline_access")
    assert "refresh_token" not in body


async def test_offline_access_never_named_by_the_protected_resource(offered: httpx.AsyncClient) -> None:
    """MCP 2026-07-28: protected resources "SHOULD NOT include offline_access in
    WWW-Authenticate scope or Protected Resource Metadata scopes_supported, as refresh tokens
    are not a resource requirement"; the authorization server's metadata does list it."""
    resource = (await offered.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert resource["scopes_supported"] == ["mcp:tools", "mcp:admin"]
    challenge = await offered.post("/mcp")
    assert challenge.status_code == 401 and "offline_access" not in challenge.headers["www-authenticate"]
    client = await register(offered)
    body = await tokens_for(offered, client.client_id, scope="mcp:admin offline_access")
    forbidden = await offered.post("/mcp", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert forbidden.status_code == 403 and "offline_access" not in forbidden.headers["www-authenticate"]


async def test_offline_access_not_offered_refresh_tokens_as_before(http: httpx.AsyncClient) -> None:
    """Without ``offline_access`` in ``scopes_supported`` nobody can ask for it (RFC 6749 §3.3
    invalid_scope), and every client registered for the refresh_token grant gets refresh tokens."""
    client = await register(http)
    assert (await tokens_for(http, client.client_id))["refresh_token"]
    refused = await http.get("/authorize", params={
        "response_type": "code", "client_id": client.client_id, "redirect_uri": "http://127.0.0.1:33418/callback",
        "code_challenge": "x" * 43, "code_challenge_method": "S256", "scope": "mcp:tools offline_access"})
    assert refused.status_code == 303 and "error=invalid_scope" in refused.headers["location"]
