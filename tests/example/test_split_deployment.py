"""The split deployment, as the README runs it: the example as authorization server (JWT access
tokens, managed keys, SQLite) in one process and the example as resource server (``AUTH_ISSUER``)
in another, each under uvicorn on its own port.

The MCP Python SDK client knows only the resource server's URL. RFC 9728 / MCP authorization:
the 401 names the protected resource metadata, which names the issuer; RFC 8414 metadata gives
the endpoints; the client registers (RFC 7591), signs in and consents, and gets a JWT whose
``aud`` is the resource server (RFC 8707). The resource server checks it against the issuer's
JWKS alone (RFC 9068 §4). A token meant for another resource is refused there (RFC 8707 §2,
RFC 9068 §4: the ``aud`` must name this resource).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from tests.example.split import (
    SECRET,
    SignInBrowser,
    claims,
    example_processes,
    example_tokens,
    kid,
    mcp_status,
)
from tests.flows.live import MemoryTokenStorage, free_port

#: Seconds. The server counts whole seconds, so a token lives at least LIFETIME - 1: 3 leaves a
#: refreshed token 2 s for the rest of the call.
LIFETIME = 3


@dataclass(frozen=True)
class Deployment:
    issuer: str
    resource_server: str
    resource_server_database: Path

    @property
    def mcp(self) -> str:
        return f"{self.resource_server}/mcp"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Both processes, started the way the README's "Split deployment" says, on loopback ports."""
    tmp = tmp_path_factory.mktemp("split")
    as_port, rs_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{as_port}"
    rs_database = tmp / "resource-server.db"
    authorization_server = {
        "PORT": str(as_port), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'issuer.db'}",
        "ACCESS_TOKEN_FORMAT": "jwt", "KEY_ENCRYPTION_SECRET": SECRET,
        "RESOURCE_URLS": f"http://127.0.0.1:{rs_port}/mcp", "ACCESS_TOKEN_LIFETIME": str(LIFETIME),
    }
    resource_server = {
        "PORT": str(rs_port), "AUTH_ISSUER": issuer, "AUTH_ALLOW_LOOPBACK": "on",
        # Set only to prove the resource server never opens a database.
        "DATABASE_URL": f"sqlite+aiosqlite:///{rs_database}",
    }
    with example_processes(tmp, authorization_server, resource_server) as (issuer_process, rs_process):
        yield Deployment(issuer_process.base, rs_process.base, rs_database)


def sdk_client(mcp_url: str, storage: MemoryTokenStorage, browser: SignInBrowser) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="pytest SDK client", redirect_uris=[AnyUrl("http://127.0.0.1:3030/callback")],
            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
            token_endpoint_auth_method="none", scope="mcp:tools",
        ),
        storage=storage, redirect_handler=browser.redirect_handler, callback_handler=browser.callback_handler,
    )


async def call_whoami(mcp_url: str, auth: OAuthClientProvider) -> dict[str, Any]:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as http,
        streamable_http_client(mcp_url, http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("whoami", {})
        assert not result.is_error and result.structured_content is not None, result
        return dict(result.structured_content)


async def test_sdk_client_finds_the_issuer_through_the_resource_server_and_refreshes(deployment: Deployment) -> None:
    """Discovery from the resource server's 401, registration and consent at the issuer, a tool
    call on the resource server, then a refresh at the issuer after expiry and a second call."""
    storage = MemoryTokenStorage()
    browser = SignInBrowser("demo", "demo")
    provider = sdk_client(deployment.mcp, storage, browser)

    whoami = await call_whoami(deployment.mcp, provider)
    assert whoami["user"] == "demo" and whoami["scopes"] == ["mcp:tools"]
    assert browser.visits == 1
    assert browser.authorization_urls[0].startswith(f"{deployment.issuer}/authorize?")
    assert storage.client_info is not None and whoami["client_id"] == storage.client_info.client_id
    assert storage.tokens is not None and storage.tokens.refresh_token
    first = storage.tokens
    token = claims(first.access_token)
    assert (token["iss"], token["aud"], token["sub"]) == (deployment.issuer, deployment.mcp, "demo")

    # The access token expires; the client refreshes at the issuer instead of asking the user again.
    await asyncio.sleep(LIFETIME + 0.2)
    again = await call_whoami(deployment.mcp, provider)
    assert again == whoami
    assert browser.visits == 1, "a refresh must not open the browser again"
    assert storage.tokens.access_token != first.access_token
    assert storage.tokens.refresh_token != first.refresh_token
    assert claims(storage.tokens.access_token)["aud"] == deployment.mcp


async def test_a_token_for_another_resource_is_refused_for_its_audience(deployment: Deployment) -> None:
    """RFC 8707 §2 / RFC 9068 §4: a token of the same issuer, validly signed, but for the issuer's
    own /mcp, is refused by the resource server (and the other way round)."""
    async with httpx.AsyncClient(base_url=deployment.issuer) as http:
        own = (await example_tokens(http, f"{deployment.issuer}/mcp"))["access_token"]
        theirs = (await example_tokens(http, deployment.mcp))["access_token"]
        assert claims(own)["aud"] == f"{deployment.issuer}/mcp" and claims(theirs)["aud"] == deployment.mcp
        assert claims(own)["iss"] == claims(theirs)["iss"] == deployment.issuer
        assert kid(own) == kid(theirs), "same key: only the audience differs"

        assert (await mcp_status(http, f"{deployment.issuer}/mcp", own)).status_code == 200
        refused = await mcp_status(http, deployment.mcp, own)
        assert refused.status_code == 401
        challenge = refused.headers["www-authenticate"]
        assert challenge.startswith('Bearer error="invalid_token"')
        assert f'resource_metadata="{deployment.resource_server}/.well-known/oauth-protected-resource/mcp"' in challenge

        assert (await mcp_status(http, deployment.mcp, theirs)).status_code == 200
        assert (await mcp_status(http, f"{deployment.issuer}/mcp", theirs)).status_code == 401


async def test_the_resource_server_serves_only_the_mcp_server(deployment: Deployment) -> None:
    """No authorization server routes, no database, no consent page; RFC 9728 §2: its metadata
    names the issuer as its only authorization server."""
    async with httpx.AsyncClient(base_url=deployment.resource_server) as http:
        metadata = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
        assert metadata["resource"] == deployment.mcp
        assert metadata["authorization_servers"] == [deployment.issuer]
        for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration",
                     "/.well-known/jwks.json", "/authorize", "/consent", "/token", "/register", "/revoke",
                     "/introspect"):
            for method in ("GET", "POST"):
                response = await http.request(method, path)
                assert response.status_code == 404, (method, path, response.status_code)
    assert not deployment.resource_server_database.exists()
