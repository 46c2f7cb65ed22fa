"""Client ID metadata documents: SSRF and document rules, one test per rule, answered at /authorize.

draft-ietf-oauth-client-id-metadata-document-02: §3 (the URL), §4.1 (the document), §5 (no
redirects), §8.6 (no special-use addresses, RFC 6890), §8.7 (size). The resolver and transport
are injected (``tests/fixtures/cimd/network.py``): the transport FAILS THE TEST if asked to
connect to anything but the public test address, so every refusal of an address happens first.
Each case is an error page (400, never a redirect, never a 500) and no client is stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from oauth_server import MemoryOAuthServerModel
from oauth_server.cimd import fetch_policy, url_problem
from tests.conftest import ISSUER, build_app
from tests.fixtures.cimd.network import CLAUDE_CODE, PUBLIC, Network, chunks, fixture_document, server, settings
from tests.helpers import FrozenClock, authorize_params

REDIRECT = "http://localhost:49731/callback"
DOC_URL = "https://client.example/oauth/metadata"


def document(url: str = DOC_URL, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**fixture_document("claude-code.json"), "client_id": url}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def network() -> Network:
    return Network(hosts={"client.example": [PUBLIC], "claude.ai": [PUBLIC], "intranet.example": ["10.0.0.7"]})


@pytest.fixture
async def http(model: MemoryOAuthServerModel, clock: FrozenClock, network: Network) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(server(model, clock, network))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as client:
        yield client


async def refused(http: httpx.AsyncClient, model: MemoryOAuthServerModel, client_id: str) -> str:
    """/authorize with ``client_id``: an error page, no redirect, no stored client. Returns the page."""
    response = await http.get("/authorize", params=authorize_params(client_id, redirect_uri=REDIRECT))
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert "invalid_client" in response.text
    assert await model.get_client(client_id) is None
    return response.text


@pytest.mark.parametrize("client_id", [
    "https://127.0.0.1/oauth/metadata", "https://169.254.169.254/latest/meta-data", "https://[::1]/oauth/metadata",
    "https://[::ffff:10.0.0.1]/oauth/metadata", "https://intranet.example/oauth/metadata",
])
async def test_cimd_refuses_special_use_addresses(http: httpx.AsyncClient, model: MemoryOAuthServerModel,
                                                  network: Network, client_id: str) -> None:
    """§8.6: loopback, link-local (cloud metadata), IPv4-mapped private and names resolving to
    private addresses are refused before any connection."""
    await refused(http, model, client_id)
    assert network.fetched == []


async def test_cimd_redirect_is_refused_not_followed(http: httpx.AsyncClient, model: MemoryOAuthServerModel,
                                                     network: Network) -> None:
    """§5: the server "MUST NOT automatically follow HTTP redirects"; a 3xx is a failure."""
    network.routes[DOC_URL] = lambda request: httpx.Response(302, headers={"Location": "http://10.0.0.1/x"})
    page = await refused(http, model, DOC_URL)
    assert "redirect" in page
    assert network.fetched == [DOC_URL]


async def test_cimd_large_document_refused_while_streaming(http: httpx.AsyncClient, model: MemoryOAuthServerModel,
                                                           network: Network) -> None:
    """§8.7: a 10 MB body is cut off after the 5 KB cap, not read to the end."""
    read = [0]
    network.routes[DOC_URL] = lambda request: httpx.Response(
        200, headers={"Content-Type": "application/json"}, content=chunks(10 * 1024 * 1024, 1024, read))
    page = await refused(http, model, DOC_URL)
    assert "larger than" in page
    assert 5120 < read[0] <= 8192


async def test_cimd_slow_document_times_out(model: MemoryOAuthServerModel, clock: FrozenClock,
                                             network: Network) -> None:
    """A server dripping its document is cut off by the fetch deadline (5 s; 0.2 s here)."""
    async def drip() -> AsyncIterator[bytes]:
        yield b'{"client_id": '
        await asyncio.sleep(10)
        yield b'""}'

    network.routes[DOC_URL] = lambda request: httpx.Response(
        200, headers={"Content-Type": "application/json"}, content=drip())
    fast = dataclasses.replace(fetch_policy(settings()), timeout=0.2)
    app = build_app(server(model, clock, network, fetch=fast))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        page = await refused(http, model, DOC_URL)
    assert "within" in page


@pytest.mark.parametrize("body", [
    document(client_id=DOC_URL + "/"),
    document(client_id="https://client.example/oauth/Metadata"),
    document(client_secret="s3cret"),
    document(client_secret_expires_at=0),
    document(token_endpoint_auth_method="client_secret_basic"),
    document(token_endpoint_auth_method="private_key_jwt"),
    document(client_name=None),
    document(redirect_uris=None),
    document(redirect_uris=["http://evil.example/cb"]),
    document(grant_types=["authorization_code", "client_credentials"]),
    document(response_types=["token"]),
    ["not", "an", "object"],
], ids=["trailing-slash", "case", "client_secret", "client_secret_expires_at", "secret-method",
        "private_key_jwt-without-keys", "no-client_name", "no-redirect_uris", "http-redirect", "grant-type",
        "response-type", "not-an-object"])
async def test_cimd_document_rules(http: httpx.AsyncClient, model: MemoryOAuthServerModel, network: Network,
                                   body: Any) -> None:
    """§4.1: client_id equal to the URL by simple string comparison, no shared secret, the
    registration rules of RFC 7591 (redirect URIs, grant and response types); MCP: a client_name."""
    network.serve(DOC_URL, body)
    await refused(http, model, DOC_URL)


async def test_cimd_non_json_refused(http: httpx.AsyncClient, model: MemoryOAuthServerModel, network: Network) -> None:
    """The document is JSON (§4): another content type is refused."""
    network.routes[DOC_URL] = lambda request: httpx.Response(200, text="<html>hi</html>",
                                                             headers={"Content-Type": "text/html"})
    await refused(http, model, DOC_URL)


@pytest.mark.parametrize("client_id", [
    "https://client.example", "https://client.example/", "https://client.example/a/../metadata",
    "https://client.example/a/%2e%2e/metadata", "https://user:pw@client.example/metadata",
    "https://client.example/metadata#frag", "http://client.example/metadata",
])
async def test_cimd_client_id_url_form(http: httpx.AsyncClient, model: MemoryOAuthServerModel, network: Network,
                                       client_id: str) -> None:
    """§3: https, a path, no dot segments, no userinfo, no fragment; refused without a fetch."""
    assert url_problem(client_id) is not None
    await refused(http, model, client_id)
    assert network.fetched == [] and network.asked == []


def test_cimd_client_id_url_may_have_query_and_port() -> None:
    """§3: a query string and a port are allowed."""
    assert url_problem("https://client.example:8443/metadata?v=2") is None


async def test_cimd_failure_is_cached(http: httpx.AsyncClient, model: MemoryOAuthServerModel, network: Network,
                                      clock: FrozenClock) -> None:
    """A failing URL is remembered for a minute: a second /authorize makes no fetch, so a bad
    URL cannot make the server fetch in a loop; after the minute it is tried again."""
    network.serve(DOC_URL, document(client_name=None))
    await refused(http, model, DOC_URL)
    await refused(http, model, "https://intranet.example/oauth/metadata")
    clock.advance(59)
    await refused(http, model, DOC_URL)
    await refused(http, model, "https://intranet.example/oauth/metadata")
    assert network.fetched == [DOC_URL] and network.asked.count("intranet.example") == 1
    clock.advance(2)
    network.serve(DOC_URL, document())
    response = await http.get("/authorize", params=authorize_params(DOC_URL, redirect_uri=REDIRECT))
    assert response.status_code == 303
    assert network.fetched == [DOC_URL, DOC_URL]


async def test_cimd_rate_limit_per_host(model: MemoryOAuthServerModel, clock: FrozenClock, network: Network) -> None:
    """§8.6: fetches per host are limited, so nobody can aim the server at a third party."""
    app = build_app(server(model, clock, network, cimd_fetches_per_host_per_minute=3))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        for n in range(4):
            await refused(http, model, f"https://client.example/doc{n}")
        assert len(network.fetched) == 3


async def test_cimd_unresolvable_host(http: httpx.AsyncClient, model: MemoryOAuthServerModel) -> None:
    await refused(http, model, "https://nowhere.example/oauth/metadata")


async def test_cimd_loopback_needs_development_switch(model: MemoryOAuthServerModel, clock: FrozenClock,
                                                      network: Network) -> None:
    """Loopback documents are refused unless ``cimd_allow_loopback`` (development) is on."""
    assert url_problem("http://127.0.0.1:8000/doc") is not None
    assert url_problem("http://127.0.0.1:8000/doc", allow_loopback_http=True) is None
    assert fetch_policy(settings(cimd_allow_loopback=True)).allow_loopback
    assert not fetch_policy(settings()).allow_loopback and not fetch_policy(settings()).allow_http


async def test_cimd_real_document_is_accepted(http: httpx.AsyncClient, network: Network) -> None:
    """The control case: the same server accepts a valid document on a public address."""
    network.serve(CLAUDE_CODE, fixture_document("claude-code.json"))
    response = await http.get("/authorize", params=authorize_params(CLAUDE_CODE, redirect_uri=REDIRECT))
    assert response.status_code == 303


async def test_cimd_document_never_gets_client_credentials(model: MemoryOAuthServerModel, clock: FrozenClock,
                                                           network: Network) -> None:
    """A metadata document's author is a stranger like any registrant: even with
    ``dcr_client_credentials`` on, a document asking for the machine grant is refused."""
    network.serve(DOC_URL, document(grant_types=["authorization_code", "client_credentials"]))
    app = build_app(server(model, clock, network, dcr_client_credentials=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        await refused(http, model, DOC_URL)
