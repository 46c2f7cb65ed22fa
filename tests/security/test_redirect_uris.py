"""Redirect URI rules: OAuth 2.1 §2.3.1 and §4.1.1, RFC 6749 §3.1.2, RFC 8252 §7.3, RFC 9700 §4.1."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import authorize_params, register

REGISTERED = "https://app.example/cb"


@pytest.mark.parametrize("requested", [
    "https://APP.example/cb", "https://app.example:443/cb", "https://app.example/cb/", "https://app.example/cb?x",
    "https://app.example/x/../cb", "https://app.example%2Fcb", "https://app.example/cb%2F", "https://app.example/CB",
    "http://app.example/cb", "https://app.example/cb#", "https://app.example.evil/cb", " https://app.example/cb",
])
async def test_redirect_uri_exact_string_match(http: httpx.AsyncClient, requested: str) -> None:
    """RFC 9700 §4.1.3 / OAuth 2.1 §4.1.1: simple string comparison, no normalisation."""
    client = await register(http, redirect_uris=[REGISTERED])
    response = await http.get("/authorize", params=authorize_params(client.client_id, redirect_uri=requested))
    assert response.status_code == 400 and "location" not in response.headers


@pytest.mark.parametrize("requested,ok", [
    ("http://127.0.0.1:1/cb", True), ("http://127.0.0.1:65535/cb", True), ("http://127.0.0.1/cb", True),
    ("http://127.0.0.1:1/cb2", False), ("http://127.0.0.2:1/cb", False), ("http://localhost:1/cb", False),
    ("https://127.0.0.1:1/cb", False), ("http://127.0.0.1:1/cb?x=1", False),
])
async def test_redirect_uri_loopback_ip_port_may_vary_nothing_else(
    http: httpx.AsyncClient, requested: str, ok: bool
) -> None:
    """RFC 8252 §7.3: only the port of a loopback IP literal may differ."""
    client = await register(http, redirect_uris=["http://127.0.0.1:3000/cb"])
    response = await http.get("/authorize", params=authorize_params(client.client_id, redirect_uri=requested))
    assert (response.status_code == 303) is ok


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1\\@evil.example/cb", "http://localhost:x@evil.example/cb", "http://127.0.0.1:80@evil.example/",
    "https://app.example\\@evil.example/cb", "https://evil.example\\.app.example/cb", "http://[::1]@evil/cb",
    "https://app.example/cb\r\nX: y",
])
async def test_redirect_uri_parser_tricks_refused_at_register(http: httpx.AsyncClient, uri: str) -> None:
    """RFC 9700 §4.1.1: userinfo and parser differentials could send the code elsewhere."""
    response = await http.post("/register", json={"redirect_uris": [uri], "token_endpoint_auth_method": "none"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize("uri", ["http://127.0.0.1\\@evil.example/cb", "http://127.0.0.1:3000\\@evil.example/cb",
                                 "http://127.0.0.1:3000@evil.example/cb"])
async def test_redirect_uri_parser_tricks_refused_at_authorize(http: httpx.AsyncClient, uri: str) -> None:
    """RFC 9700 §4.1.1: the loopback port exception never matches a URI with userinfo or backslash."""
    client = await register(http, redirect_uris=["http://127.0.0.1:3000/cb"])
    response = await http.get("/authorize", params=authorize_params(client.client_id, redirect_uri=uri))
    assert response.status_code == 400 and "location" not in response.headers


async def test_redirect_uri_wildcards_are_literal(http: httpx.AsyncClient) -> None:
    """RFC 9700 §4.1.3: no pattern matching: a '*' in a path matches only a literal '*'."""
    client = await register(http, redirect_uris=["https://app.example/cb/*"])
    response = await http.get("/authorize", params=authorize_params(client.client_id,
                                                                    redirect_uri="https://app.example/cb/anything"))
    assert response.status_code == 400
    response = await http.get("/authorize", params=authorize_params(client.client_id,
                                                                    redirect_uri="https://app.example/cb/*"))
    assert response.status_code == 303


async def test_redirect_never_when_client_invalid_even_with_other_errors(http: httpx.AsyncClient) -> None:
    """RFC 6749 §4.1.2.1: with an invalid client_id or redirect_uri the AS MUST NOT redirect."""
    response = await http.get("/authorize", params={"client_id": "nope", "redirect_uri": "https://evil.example/cb",
                                                    "response_type": "token"})
    assert response.status_code == 400 and "location" not in response.headers


async def test_redirect_duplicate_parameters_refused(http: httpx.AsyncClient) -> None:
    """RFC 6749 §3.1: request parameters MUST NOT be included more than once."""
    client = await register(http)
    params = [*list(authorize_params(client.client_id).items()), ("redirect_uri", "http://127.0.0.1:1/callback")]
    response = await http.get("/authorize", params=params)
    assert response.status_code == 400 and "location" not in response.headers


async def test_redirect_after_post_uses_303(http: httpx.AsyncClient) -> None:
    """RFC 9700 §4.12: a 307 after POST would re-post the user's credentials to the client."""
    client = await register(http)
    response = await http.post("/authorize", data=authorize_params(client.client_id))
    assert response.status_code == 303
