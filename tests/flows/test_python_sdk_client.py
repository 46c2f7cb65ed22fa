"""The MCP Python SDK client against a real uvicorn server: discovery, DCR, PKCE, consent,
a tool call on a real MCP server behind ``BearerAuthMiddleware``, refresh after expiry, revoke."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import httpx2
from fastapi import FastAPI
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from oauth_server import BearerAuthMiddleware, MemoryOAuthServerModel, OAuthServer, OAuthServerSettings, mcp_auth_router
from tests.conftest import signed_in_user
from tests.flows.live import ConsentBrowser, MemoryTokenStorage, free_port, serve


def build_mcp_app(server: OAuthServer) -> FastAPI:
    mcp = MCPServer("test-server")

    @mcp.tool()
    def whoami() -> str:
        """Who is calling."""
        token = get_access_token()
        assert token is not None
        return f"{token.subject} via {token.client_id} with {' '.join(token.scopes)}"

    mcp_app = mcp.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(mcp_auth_router(server, get_user=signed_in_user))
    app.mount("/", BearerAuthMiddleware(mcp_app, server, ["mcp:tools"]))
    return app


def make_server(port: int, access_token_lifetime: int = 3600) -> OAuthServer:
    base = f"http://127.0.0.1:{port}"
    return OAuthServer(MemoryOAuthServerModel(), OAuthServerSettings(
        issuer_url=base, resource_server_url=f"{base}/mcp", authorization_url=f"{base}/consent",
        scopes_supported=("mcp:tools",), access_token_lifetime=access_token_lifetime,
    ))


def client_provider(base: str, storage: MemoryTokenStorage, browser: ConsentBrowser) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=f"{base}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="pytest SDK client", redirect_uris=[AnyUrl("http://127.0.0.1:3030/callback")],
            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
            token_endpoint_auth_method="none", scope="mcp:tools",
        ),
        storage=storage, redirect_handler=browser.redirect_handler, callback_handler=browser.callback_handler,
    )


async def call_whoami(base: str, auth: OAuthClientProvider) -> str:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        assert [t.name for t in tools.tools] == ["whoami"]
        result = await session.call_tool("whoami", {})
        return str(result.content[0].text)  # type: ignore[union-attr]


async def test_sdk_client_full_flow_refresh_and_revoke() -> None:
    port = free_port()
    # The SDK client refreshes when its own (real) clock says the token expired, so this test
    # uses real time with a short access token rather than a frozen clock. The server counts
    # whole seconds, so a token lives between LIFETIME - 1 and LIFETIME s: 3 leaves a refreshed
    # token at least 2 s for the rest of the call (1 could expire it mid-call, and the client
    # would then rightly go back to the browser).
    server = make_server(port, access_token_lifetime=3)
    storage = MemoryTokenStorage()
    browser = ConsentBrowser(headers={"x-test-user": "alice"})
    async with serve(build_mcp_app(server), port) as base:
        provider = client_provider(base, storage, browser)
        text = await call_whoami(base, provider)
        assert text.startswith("alice via ") and text.endswith("mcp:tools")
        assert browser.visits == 1 and storage.tokens is not None and storage.tokens.refresh_token
        first = storage.tokens

        # The access token expires on the server; the client must refresh, not ask the user again.
        await asyncio.sleep(3.2)
        text = await call_whoami(base, provider)
        assert text.startswith("alice via ")
        assert browser.visits == 1, "a refresh must not open the browser again"
        assert storage.tokens.access_token != first.access_token
        assert storage.tokens.refresh_token != first.refresh_token

        # Revoking the refresh token kills the grant: the access token stops working at once.
        assert storage.client_info is not None
        async with httpx.AsyncClient(base_url=base) as http:
            revoked = await http.post("/revoke", data={
                "token": storage.tokens.refresh_token, "client_id": storage.client_info.client_id})
            assert revoked.status_code == 200
            call = await http.post("/mcp", headers={"Authorization": f"Bearer {storage.tokens.access_token}"},
                                   json={})
            assert call.status_code == 401
            assert call.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
