"""``OAuthServer`` is a real ``OAuthAuthorizationServerProvider`` and ``TokenVerifier``: handed to the
MCP SDK's own ``MCPServer(auth_server_provider=...)``, the SDK's routes and bearer middleware run a
whole flow with the SDK client, through our consent page."""

from __future__ import annotations

import httpx2
from fastapi import FastAPI
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.provider import AccessToken, OAuthAuthorizationServerProvider, TokenVerifier
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings, consent_router
from oauth_server.integrations.mcp_sdk import LoadedAuthorizationCode, LoadedRefreshToken
from tests.conftest import signed_in_user
from tests.flows.live import ConsentBrowser, MemoryTokenStorage, free_port, serve
from tests.flows.test_python_sdk_client import client_provider


def test_oauth_server_satisfies_the_sdk_protocols() -> None:
    server = OAuthServer(MemoryOAuthServerModel(), OAuthServerSettings(
        issuer_url="http://localhost:1", resource_server_url="http://localhost:1/mcp",
        authorization_url="http://localhost:1/consent",
    ))
    provider: OAuthAuthorizationServerProvider[LoadedAuthorizationCode, LoadedRefreshToken, AccessToken] = server
    verifier: TokenVerifier = server
    assert provider is server and verifier is server


async def test_sdk_mcpserver_with_our_provider() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = OAuthServer(MemoryOAuthServerModel(), OAuthServerSettings(
        issuer_url=base, resource_server_url=f"{base}/mcp", authorization_url=f"{base}/consent",
        scopes_supported=("mcp:tools",),
    ))
    mcp = MCPServer(
        "sdk-provider-test",
        auth_server_provider=server,
        # Strings, not AnyHttpUrl(...): AuthSettings keeps a path-less issuer without a trailing
        # slash only when given a string, and RFC 9207 compares `iss` exactly.
        auth=AuthSettings.model_validate(dict(
            issuer_url=base, resource_server_url=f"{base}/mcp",
            client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=["mcp:tools"]),
            revocation_options=RevocationOptions(enabled=True), required_scopes=["mcp:tools"],
            validate_token_resource=True,
        )),
    )

    @mcp.tool()
    def ping() -> str:
        return "pong"

    sdk_app = mcp.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    app = FastAPI(lifespan=lambda _: mcp.session_manager.run())
    app.include_router(consent_router(server, get_user=signed_in_user))
    app.mount("/", sdk_app)

    storage = MemoryTokenStorage()
    browser = ConsentBrowser(headers={"x-test-user": "bob"})
    async with (
        serve(app, port),
        httpx2.AsyncClient(auth=client_provider(base, storage, browser), timeout=30) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("ping", {})
        assert result.content[0].text == "pong"  # type: ignore[union-attr]
    assert storage.tokens is not None and storage.tokens.refresh_token
    assert browser.visits == 1
