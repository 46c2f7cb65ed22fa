"""Client ID metadata documents end to end (draft-ietf-oauth-client-id-metadata-document-02).

Claude Code and claude.ai identify themselves by document URLs on ``claude.ai``; the documents
(reconstructions, see ``tests/fixtures/cimd/README.md``) are served by an injected resolver and
transport, so nothing leaves the process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oauth_server import MemoryOAuthServerModel, OAuthServer
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from tests.conftest import ISSUER, build_app
from tests.fixtures.cimd.network import CLAUDE_AI, CLAUDE_CODE, Network, fixture_document, server
from tests.helpers import VERIFIER, FrozenClock, authorize_params, form_fields, query

CODE_REDIRECT = "http://localhost:49731/callback"  # Claude Code's document lists it without a port


@pytest.fixture
def network() -> Network:
    net = Network()
    net.serve(CLAUDE_CODE, fixture_document("claude-code.json"), {"Cache-Control": "max-age=600"})
    net.serve(CLAUDE_AI, fixture_document("claude-ai.json"))
    return net


async def client_for(app_server: OAuthServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(app_server)), base_url=ISSUER,
                             headers={"x-test-user": "alice"})


@pytest.fixture
async def http(model: MemoryOAuthServerModel, clock: FrozenClock, network: Network) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(server(model, clock, network)) as client:
        yield client


async def flow(http: httpx.AsyncClient, client_id: str, redirect_uri: str) -> tuple[str, dict[str, Any]]:
    """/authorize, the consent page, approval, /token; returns the page's HTML and the tokens."""
    response = await http.get("/authorize", params=authorize_params(client_id, redirect_uri=redirect_uri))
    assert response.status_code == 303, response.text
    page = await http.get(response.headers["location"])
    assert page.status_code == 200, page.text
    decision = await http.post("/consent", data={**form_fields(page.text), "decision": "approve"})
    assert decision.status_code == 303, decision.text
    assert decision.headers["location"].startswith(redirect_uri)
    code = query(decision.headers["location"])["code"]
    token = await http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                            "redirect_uri": redirect_uri, "code_verifier": VERIFIER,
                                            "client_id": client_id})
    assert token.status_code == 200, token.text
    return page.text, dict(token.json())


async def test_claude_code_whole_flow(http: httpx.AsyncClient, network: Network) -> None:
    """§4: the URL is the client_id at /authorize and /token; the consent page names its host."""
    page, tokens = await flow(http, CLAUDE_CODE, CODE_REDIRECT)
    assert 'identified by <strong>claude.ai</strong>' in page and "Claude Code" in page
    assert "your own computer" in page  # every redirect URI is on localhost: the warning stays
    mcp = await http.post("/mcp", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert mcp.status_code == 200 and mcp.json()["subject"] == "alice"
    refreshed = await http.post("/token", data={"grant_type": "refresh_token", "client_id": CLAUDE_CODE,
                                                "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert network.fetched == [CLAUDE_CODE]


async def test_claude_ai_web_client(http: httpx.AsyncClient, model: MemoryOAuthServerModel) -> None:
    page, _ = await flow(http, CLAUDE_AI, "https://claude.ai/api/mcp/auth_callback")
    assert "claude.ai" in page and "your own computer" not in page
    stored = await model.get_client(CLAUDE_AI)
    assert stored is not None and stored.application_type == "web" and stored.client_secret_digest is None


async def test_cached_document_is_reused_until_it_expires(
        http: httpx.AsyncClient, network: Network, clock: FrozenClock, model: MemoryOAuthServerModel) -> None:
    """§4.2: the document is cached for its max-age (600 s here), then fetched again."""
    await flow(http, CLAUDE_CODE, CODE_REDIRECT)
    stored = await model.get_client(CLAUDE_CODE)
    assert stored is not None and stored.metadata_document_expires_at == int(clock()) + 600
    clock.advance(599)
    await flow(http, CLAUDE_CODE, CODE_REDIRECT)
    assert network.fetched == [CLAUDE_CODE]
    clock.advance(2)
    await flow(http, CLAUDE_CODE, CODE_REDIRECT)
    assert network.fetched == [CLAUDE_CODE, CLAUDE_CODE]


async def test_lifetime_floor_and_default(http: httpx.AsyncClient, network: Network, clock: FrozenClock,
                                          model: MemoryOAuthServerModel) -> None:
    """``no-store`` is held for the floor (60 s), no caching headers for the default hour."""
    network.serve(CLAUDE_CODE, fixture_document("claude-code.json"), {"Cache-Control": "no-store"})
    await flow(http, CLAUDE_CODE, CODE_REDIRECT)
    await flow(http, CLAUDE_AI, "https://claude.ai/api/mcp/auth_callback")
    code, web = await model.get_client(CLAUDE_CODE), await model.get_client(CLAUDE_AI)
    assert code is not None and code.metadata_document_expires_at == int(clock()) + 60
    assert web is not None and web.metadata_document_expires_at == int(clock()) + 3600


async def test_concurrent_resolutions_share_one_fetch(model: MemoryOAuthServerModel, clock: FrozenClock,
                                                      network: Network) -> None:
    import asyncio

    app_server = server(model, clock, network)
    assert app_server.client_documents is not None
    results = await asyncio.gather(*(app_server.client_documents.resolve(CLAUDE_CODE) for _ in range(5)))
    assert {r.client_id for r in results} == {CLAUDE_CODE}
    assert network.fetched == [CLAUDE_CODE]


@pytest.mark.parametrize("options", [
    {"cimd_allowed_hosts": ("mcp.example.com",)},
    {"cimd_denied_hosts": ("claude.ai",)},
    {"cimd_policy": lambda url: not url.startswith("https://claude.ai/")},
])
async def test_host_policy_refuses_before_fetching(model: MemoryOAuthServerModel, clock: FrozenClock,
                                                   network: Network, options: dict[str, Any]) -> None:
    """The operator's allow-list, deny-list and hook decide before any fetch or resolution."""
    async with await client_for(server(model, clock, network, **options)) as http:
        response = await http.get("/authorize", params=authorize_params(CLAUDE_CODE, redirect_uri=CODE_REDIRECT))
    assert response.status_code == 400 and "location" not in response.headers
    assert "does not accept" in response.text
    assert network.fetched == [] and network.asked == []
    assert await model.get_client(CLAUDE_CODE) is None


async def test_allow_list_admits_listed_host(model: MemoryOAuthServerModel, clock: FrozenClock,
                                             network: Network) -> None:
    async with await client_for(server(model, clock, network, cimd_allowed_hosts=("claude.ai",))) as http:
        await flow(http, CLAUDE_CODE, CODE_REDIRECT)


async def test_disabled_means_unknown_client(model: MemoryOAuthServerModel, clock: FrozenClock,
                                             network: Network) -> None:
    """With documents off, a URL client_id is an unknown client, even one cached earlier."""
    async with await client_for(server(model, clock, network)) as http:
        await flow(http, CLAUDE_CODE, CODE_REDIRECT)
    async with await client_for(server(model, clock, network, client_id_metadata_documents=False)) as http:
        metadata = await http.get("/.well-known/oauth-authorization-server")
        assert metadata.json()["client_id_metadata_document_supported"] is False
        response = await http.get("/authorize", params=authorize_params(CLAUDE_CODE, redirect_uri=CODE_REDIRECT))
        assert response.status_code == 400 and "unknown client" in response.text
        token = await http.post("/token", data={"grant_type": "refresh_token", "client_id": CLAUDE_CODE,
                                                "refresh_token": "x"})
        assert token.status_code == 401 and token.json()["error"] == "invalid_client"
    assert network.fetched == [CLAUDE_CODE]


async def test_metadata_advertises_support(http: httpx.AsyncClient) -> None:
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["client_id_metadata_document_supported"] is True


async def test_token_with_unusable_document_is_invalid_client(http: httpx.AsyncClient, network: Network) -> None:
    """At /token a document that cannot be used is ``invalid_client`` (RFC 6749 §5.2)."""
    url = "https://claude.ai/oauth/missing"
    response = await http.post("/token", data={"grant_type": "authorization_code", "client_id": url,
                                               "code": "x", "code_verifier": VERIFIER})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert network.fetched == [url]


async def test_private_key_jwt_document_keeps_its_keys(model: MemoryOAuthServerModel, clock: FrozenClock,
                                                       network: Network) -> None:
    """§4.1: a document may use private_key_jwt with its own ``jwks`` (no secret is ever issued)."""
    url = "https://claude.ai/oauth/confidential"
    jwk = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
           "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "1"}
    network.serve(url, {**fixture_document("claude-ai.json"), "client_id": url,
                        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]},
                        "token_endpoint_auth_signing_alg": "ES256"})
    app_server = server(model, clock, network)
    assert app_server.client_documents is not None
    client = await app_server.client_documents.resolve(url)
    assert client.token_endpoint_auth_method == "private_key_jwt" and client.client_secret_digest is None
    assert client.jwks is not None and '"kid":"1"' in client.jwks
    assert client.token_endpoint_auth_signing_alg == "ES256"


async def test_whole_flow_and_cache_on_sqlite(tmp_path: Path, clock: FrozenClock, network: Network) -> None:
    """The cached document lives in the SQL model too (``upsert_client``): refetched after expiry."""
    sql = SQLAlchemyOAuthServerModel(f"sqlite+aiosqlite:///{tmp_path / 'oauth.db'}")
    await sql.create_all()
    try:
        async with await client_for(server(sql, clock, network)) as http:
            await flow(http, CLAUDE_CODE, CODE_REDIRECT)
            await flow(http, CLAUDE_CODE, CODE_REDIRECT)
            assert network.fetched == [CLAUDE_CODE]
            clock.advance(601)
            await flow(http, CLAUDE_CODE, CODE_REDIRECT)
            assert network.fetched == [CLAUDE_CODE, CLAUDE_CODE]
        stored = await sql.get_client(CLAUDE_CODE)
        assert stored is not None and stored.metadata_document_expires_at == int(clock()) + 600
    finally:
        await sql.close()
