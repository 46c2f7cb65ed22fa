"""The MCP Python SDK client asks for ``offline_access`` when our metadata offers it (SEP-2207)
and gets its refresh token; without the offer it gets one as before. Real HTTP on loopback."""

from __future__ import annotations

import httpx
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings
from tests.flows.live import ConsentBrowser, MemoryTokenStorage, free_port, serve
from tests.flows.test_python_sdk_client import build_mcp_app, call_whoami


@pytest.mark.parametrize("scopes_supported,requested", [
    (("mcp:tools", "offline_access"), "mcp:tools offline_access"),
    (("mcp:tools",), "mcp:tools"),
])
async def test_sdk_client_gets_a_refresh_token_with_or_without_offline_access(
    scopes_supported: tuple[str, ...], requested: str
) -> None:
    """MCP 2026-07-28 (Refresh Tokens): the client takes its scope from the challenge or the
    resource's metadata (neither names offline_access) and adds offline_access only because the
    authorization server's metadata lists it; either way its grant refreshes."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = OAuthServer(MemoryOAuthServerModel(), OAuthServerSettings(
        issuer_url=base, resource_server_url=f"{base}/mcp", authorization_url=f"{base}/consent",
        scopes_supported=scopes_supported,
    ))
    storage = MemoryTokenStorage()
    browser = ConsentBrowser(headers={"x-test-user": "alice"})
    provider = OAuthClientProvider(
        server_url=f"{base}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="pytest SDK client", redirect_uris=[AnyUrl("http://127.0.0.1:3030/callback")],
            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage, redirect_handler=browser.redirect_handler, callback_handler=browser.callback_handler,
    )
    async with serve(build_mcp_app(server), port):
        async with httpx.AsyncClient(base_url=base) as http:
            resource = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
            assert resource["scopes_supported"] == ["mcp:tools"]
        text = await call_whoami(base, provider)
        assert text == f"alice via {storage.client_info.client_id if storage.client_info else ''} with {requested}"
        assert storage.tokens is not None and storage.tokens.refresh_token
        assert storage.tokens.scope == requested
