"""The MCP Python SDK client's own CIMD support against a real uvicorn server, over real HTTP.

``OAuthClientProvider(client_metadata_url=...)`` uses the URL as its ``client_id`` (no
registration) when our metadata says ``client_id_metadata_document_supported`` and the URL is
https with a path. The document is served over https on 127.0.0.1 under a throwaway CA, which our
server trusts through ``cimd_ca_bundle``; loopback is reachable only because
``cimd_allow_loopback`` (the development switch) is on. Nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings
from tests.fetch.certs import ThrowawayCA
from tests.fetch.loopback import LoopbackServer, Received, response
from tests.flows.live import ConsentBrowser, MemoryTokenStorage, free_port, serve
from tests.flows.test_python_sdk_client import build_mcp_app, call_whoami

CALLBACK = "http://127.0.0.1:3030/callback"


async def test_sdk_client_with_client_id_metadata_document(tmp_path: Path) -> None:
    ca = ThrowawayCA.create(tmp_path)
    served: list[str] = []

    async def document(received: Received, writer: asyncio.StreamWriter) -> None:
        served.append(received.target)
        url = f"https://localhost:{documents.port}/oauth/client.json"
        body = json.dumps({
            "client_id": url, "client_name": "pytest SDK CIMD client", "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }).encode()
        writer.write(response(200, body, extra={"Cache-Control": "max-age=300"}))
        await writer.drain()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with LoopbackServer(document, ca.server_context("localhost")) as documents:
        client_id = f"https://localhost:{documents.port}/oauth/client.json"
        model = MemoryOAuthServerModel()
        server = OAuthServer(model, OAuthServerSettings(
            issuer_url=base, resource_server_url=f"{base}/mcp", authorization_url=f"{base}/consent",
            scopes_supported=("mcp:tools",), cimd_allow_loopback=True, cimd_ca_bundle=ca.pem_path,
        ))
        storage = MemoryTokenStorage()
        browser = ConsentBrowser(headers={"x-test-user": "alice"})
        async with serve(build_mcp_app(server), port):
            async with httpx.AsyncClient(base_url=base) as http:
                metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
            assert metadata["client_id_metadata_document_supported"] is True
            provider = OAuthClientProvider(
                server_url=f"{base}/mcp",
                client_metadata=OAuthClientMetadata(
                    client_name="pytest SDK CIMD client", redirect_uris=[AnyUrl(CALLBACK)],
                    grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                    token_endpoint_auth_method="none", scope="mcp:tools",
                ),
                storage=storage, redirect_handler=browser.redirect_handler, callback_handler=browser.callback_handler,
                client_metadata_url=client_id,
            )
            try:
                text = await call_whoami(base, provider)
            finally:
                assert server.client_documents is not None
                await server.client_documents.aclose()
        assert text == f"alice via {client_id} with mcp:tools"
        assert storage.client_info is not None and storage.client_info.client_id == client_id
        assert served == ["/oauth/client.json"]  # fetched once, cached for /token and the consent page
        assert await model.get_client(client_id) is not None
        assert browser.visits == 1
