"""Redirect URI rules: OAuth 2.1 §2.3.1 and §4.1.1, RFC 6749 §3.1.2, RFC 8252 §7.3, RFC 9700 §4.1."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import authorize_params, exchange, open_consent, query, register

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


@pytest.mark.parametrize("registered,requested,ok", [
    ("http://127.0.0.1:3000/cb", "http://127.0.0.1:1/cb", True),
    ("http://127.0.0.1:3000/cb", "http://127.0.0.1:65535/cb", True),
    ("http://127.0.0.1:3000/cb", "http://127.0.0.1/cb", True),
    ("http://[::1]:3000/cb", "http://[::1]:49152/cb", True),
    ("http://localhost:3334/oauth/callback", "http://localhost:3335/oauth/callback", True),
    ("http://localhost/callback", "http://localhost:54321/callback", True),
    ("http://localhost:3000/cb?x=1", "http://localhost:3001/cb?x=1", True),
    ("http://127.0.0.1:3000/cb", "http://127.0.0.1:1/cb2", False),
    ("http://127.0.0.1:3000/cb", "http://127.0.0.1:1/CB", False),
    ("http://127.0.0.1:3000/cb", "http://127.0.0.1:1/cb/", False),
    ("http://127.0.0.1:3000/cb", "http://127.0.0.2:1/cb", False),
    ("http://127.0.0.1:3000/cb", "https://127.0.0.1:1/cb", False),
    ("http://127.0.0.1:3000/cb", "http://127.0.0.1:1/cb?x=1", False),
    ("http://localhost:3000/cb?x=1", "http://localhost:3001/cb?x=2", False),
    ("http://localhost:3000/cb?x=1", "http://localhost:3001/cb", False),
    ("http://localhost/callback", "http://localhost:54321/callback/", False),
    ("http://localhost/callback", "http://localhost:54321/Callback", False),
])
async def test_redirect_uri_loopback_port_may_vary_nothing_else(
    http: httpx.AsyncClient, registered: str, requested: str, ok: bool
) -> None:
    """RFC 8252 §7.3: "MUST allow any port to be specified at the time of the request for
    loopback IP redirect URIs"; §8.3: localhost ones "function similarly". Only the port differs:
    scheme http, path and query exactly as registered, a registration without a port included."""
    client = await register(http, redirect_uris=[registered])
    response = await http.get("/authorize", params=authorize_params(client.client_id, redirect_uri=requested))
    assert (response.status_code == 303) is ok
    if not ok:
        assert "location" not in response.headers


@pytest.mark.parametrize("registered,requested", [
    ("http://localhost:3000/cb", "http://127.0.0.1:3000/cb"), ("http://localhost:3000/cb", "http://127.0.0.1:3001/cb"),
    ("http://127.0.0.1:3000/cb", "http://localhost:3001/cb"), ("http://127.0.0.1:3000/cb", "http://[::1]:3001/cb"),
    ("http://[::1]:3000/cb", "http://127.0.0.1:3001/cb"), ("http://localhost:3000/cb", "http://LOCALHOST:3001/cb"),
    ("http://localhost:3000/cb", "http://localhost.:3001/cb"), ("http://localhost:3000/cb", "http://sub.localhost:3001/cb"),
    ("http://localhost:3000/cb", "http://[0:0:0:0:0:0:0:1]:3001/cb"), ("http://127.0.0.1:3000/cb", "http://127.1:3001/cb"),
    ("http://LOCALHOST:3000/cb", "http://LOCALHOST:3001/cb"),
])
async def test_redirect_uri_loopback_host_spelled_as_registered(
    http: httpx.AsyncClient, registered: str, requested: str
) -> None:
    """RFC 8252 §8.3: loopback IP literals are RECOMMENDED over localhost, which may resolve
    elsewhere; a client listens where its registered spelling points, so the host must be the
    same string (a non-canonical spelling gets no port exception at all)."""
    client = await register(http, redirect_uris=[registered])
    response = await http.get("/authorize", params=authorize_params(client.client_id, redirect_uri=requested))
    assert response.status_code == 400 and "location" not in response.headers


@pytest.mark.parametrize("registered,requested", [
    ("https://localhost/cb", "https://localhost:1/cb"), ("https://localhost:8443/cb", "https://localhost:8444/cb"),
    ("https://127.0.0.1:8443/cb", "https://127.0.0.1:8444/cb"), ("http://localhost:3000/cb", "https://localhost:3000/cb"),
    ("https://localhost:3000/cb", "http://localhost:3000/cb"),
    ("https://app.example:8443/cb", "https://app.example:8444/cb"), ("https://app.example/cb", "https://app.example:1/cb"),
    ("com.example.app:/cb", "com.example.app:1/cb"),
])
async def test_redirect_uri_port_varies_only_for_http_loopback(
    http: httpx.AsyncClient, registered: str, requested: str
) -> None:
    """RFC 8252 §7.3 is about loopback http listeners; everywhere else the comparison is simple
    string comparison (RFC 9700 §4.1.3), https on localhost included."""
    client = await register(http, redirect_uris=[registered])
    response = await http.get("/authorize", params=authorize_params(client.client_id, redirect_uri=requested))
    assert response.status_code == 400 and "location" not in response.headers


@pytest.mark.parametrize("requested", [
    "http://localhost:3335@evil.example/oauth/callback", "http://localhost:3335\\@evil.example/oauth/callback",
    "http://evil.example@localhost:3335/oauth/callback", "http://localhost:3335/oauth/callback#@evil.example",
    "http://localhost:3335/oauth/callback/../../evil", "http://localhost:3335//evil.example/oauth/callback",
    "http://localhost:3335%2F@evil.example/oauth/callback", "http://localhost:/oauth/callback",
    "http://localhost:3335 /oauth/callback", "http://localhost:3335/oauth/callback\r\n",
])
async def test_redirect_uri_loopback_port_exception_admits_no_userinfo_trick(
    http: httpx.AsyncClient, requested: str
) -> None:
    """RFC 9700 §4.1.1/§4.1.3: the port exception must not open a way to another host or path."""
    client = await register(http, redirect_uris=["http://localhost:3334/oauth/callback"])
    response = await http.get("/authorize", params=authorize_params(client.client_id, redirect_uri=requested))
    assert response.status_code == 400 and "location" not in response.headers


@pytest.mark.parametrize("registered,requested", [
    ("http://localhost:3334/oauth/callback", "http://localhost:3335/oauth/callback"),  # mcp-remote's port hop
    ("http://localhost/callback", "http://localhost:54321/callback"),  # Claude Code's port-less registration
    ("http://127.0.0.1:3000/cb", "http://127.0.0.1:3001/cb"),
])
async def test_redirect_uri_loopback_port_variant_used_for_response_and_code(
    http: httpx.AsyncClient, registered: str, requested: str
) -> None:
    """RFC 8252 §7.3 with RFC 6749 §4.1.2 and §4.1.3: the response goes to the requested port
    (where the client listens), and the code is bound to the requested URI: the token request
    must send it "identical", not the registered one."""
    client = await register(http, redirect_uris=[registered])
    _, fields = await open_consent(http, client.client_id, redirect_uri=requested)
    response = await http.post("/consent", data={**fields, "decision": "approve"})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(requested + "?")
    code = query(location)["code"]
    wrong = await exchange(http, client.client_id, code, redirect_uri=registered)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    _, fields = await open_consent(http, client.client_id, redirect_uri=requested)
    code = query((await http.post("/consent", data={**fields, "decision": "approve"})).headers["location"])["code"]
    granted = await exchange(http, client.client_id, code, redirect_uri=requested)
    assert granted.status_code == 200 and granted.json()["access_token"]


async def test_redirect_uri_loopback_port_variant_errors_go_to_the_requested_port(http: httpx.AsyncClient) -> None:
    """RFC 6749 §4.1.2.1: once the redirect URI is trusted, errors go there, to the requested port."""
    client = await register(http, redirect_uris=["http://localhost:3334/oauth/callback"])
    response = await http.get("/authorize", params=authorize_params(
        client.client_id, redirect_uri="http://localhost:3335/oauth/callback", code_challenge_method="plain"))
    assert response.status_code == 303
    assert response.headers["location"].startswith("http://localhost:3335/oauth/callback?error=invalid_request")


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
