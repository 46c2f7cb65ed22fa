"""The example's routes: only the MCP endpoint asks for a token; an unknown path is a 404.

RFC 6750 §3 / RFC 9728 §5.1: a 401 with ``WWW-Authenticate: Bearer resource_metadata=...``
tells a client which protected resource it reached and where to learn how to get a token. A
path that is no resource (``/favicon.ico``, a typo) must not claim to be one.
"""

from __future__ import annotations

import httpx
import pytest

from tests.example.conftest import StartExample

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}
MCP_HEADERS = {"accept": "application/json, text/event-stream"}


async def test_unknown_paths_are_404_without_a_bearer_challenge(start_example: StartExample) -> None:
    """RFC 9110 §15.5.5: a path with no resource is 404 Not Found, not a 401 challenge."""
    async with start_example() as base, httpx.AsyncClient(base_url=base) as http:
        for path in ("/favicon.ico", "/nope", "/.well-known/jwks.json", "/mcpx", "/mcp/tools", "/"):
            for method in ("GET", "POST"):
                response = await http.request(method, path)
                assert response.status_code == 404, (method, path, response.status_code)
                assert "www-authenticate" not in response.headers, (method, path)


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
async def test_mcp_without_a_token_is_401_with_the_bearer_challenge(start_example: StartExample, method: str) -> None:
    """RFC 9728 §5.1 / MCP authorization: every method of the streamable HTTP endpoint needs a
    token; the challenge names the protected resource metadata, which names /mcp itself."""
    async with start_example() as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.request(method, "/mcp", headers=MCP_HEADERS,
                                      json=INITIALIZE if method == "POST" else None)
        assert response.status_code == 401, "the endpoint is /mcp itself, with no redirect"
        challenge = response.headers["www-authenticate"]
        metadata_url = f"{base}/.well-known/oauth-protected-resource/mcp"
        assert challenge.startswith("Bearer ") and f'resource_metadata="{metadata_url}"' in challenge
        assert 'scope="mcp:tools"' in challenge
        metadata = await http.get(metadata_url)
    assert metadata.status_code == 200
    assert metadata.json()["resource"] == f"{base}/mcp"


async def test_mcp_with_a_trailing_slash_redirects_to_the_resource_url(start_example: StartExample) -> None:
    """RFC 9728 §3.3: the resource is {PUBLIC_URL}/mcp exactly; /mcp/ is another URL, which
    only redirects there (serving nothing, so needing no token)."""
    async with start_example() as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/mcp/", json=INITIALIZE, headers=MCP_HEADERS)
    assert response.status_code == 307
    assert response.headers["location"] == f"{base}/mcp"
    assert "www-authenticate" not in response.headers
