"""GET|POST /authorize: OAuth 2.1 §4.1.1, RFC 7636, RFC 8252 §7.3, RFC 8707, RFC 9207."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import CHALLENGE, REDIRECT, authorize_params, query, register


async def test_valid_request_goes_to_the_consent_page_with_a_browser_cookie(http: httpx.AsyncClient) -> None:
    client = await register(http)
    response = await http.get("/authorize", params=authorize_params(client.client_id))
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("http://localhost:8000/consent?request_id=")
    assert len(query(location)["request_id"]) >= 43
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()


async def test_post_authorize_works_and_answers_303(http: httpx.AsyncClient) -> None:
    client = await register(http)
    response = await http.post("/authorize", data=authorize_params(client.client_id))
    assert response.status_code == 303


@pytest.mark.parametrize("overrides,error", [
    ({"code_challenge": None}, "invalid_request"),                         # PKCE required
    ({"code_challenge_method": None}, "invalid_request"),                  # missing method = plain
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": "short"}, "invalid_request"),                      # RFC 7636 §4.2 length
    ({"code_challenge": "!" * 43}, "invalid_request"),                     # charset
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": None}, "unsupported_response_type"),
    ({"scope": "mcp:unknown"}, "invalid_scope"),
    ({"resource": "https://other.example/mcp"}, "invalid_target"),         # RFC 8707 §2
    ({"resource": "http://localhost:8000/mcp#frag"}, "invalid_target"),
    ({"resource": "mcp"}, "invalid_target"),
])
async def test_errors_after_the_redirect_uri_is_trusted_go_back_with_state_and_iss(
    http: httpx.AsyncClient, overrides: dict[str, str | None], error: str
) -> None:
    client = await register(http)
    response = await http.get("/authorize", params=authorize_params(client.client_id, **overrides))
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    params = query(location)
    assert params["error"] == error
    assert params["state"] == "xyz"
    assert params["iss"] == "http://localhost:8000"  # RFC 9207 §2: iss on error responses too


@pytest.mark.parametrize("overrides", [
    {"client_id": "unknown"},
    {"client_id": None},
    {"redirect_uri": "http://127.0.0.1:33418/other"},
    {"redirect_uri": "http://localhost:33418/callback"},
    {"redirect_uri": "http://127.0.0.1:33418/callback/"},
    {"redirect_uri": "http://127.0.0.1:33418/callback?x=1"},
    # Invalid redirect plus another error: still never redirected (RFC 9700 §4.11).
    {"redirect_uri": "https://evil.example/cb", "code_challenge": None},
])
async def test_untrusted_client_or_redirect_is_never_redirected(
    http: httpx.AsyncClient, overrides: dict[str, str | None]
) -> None:
    client = await register(http)
    params = {**authorize_params(client.client_id), **overrides}
    response = await http.get("/authorize", params={k: v for k, v in params.items() if v is not None})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"


async def test_loopback_ip_port_may_vary(http: httpx.AsyncClient) -> None:
    """RFC 8252 §7.3: a native app's loopback IP redirect can use any port."""
    client = await register(http)
    response = await http.get("/authorize", params=authorize_params(
        client.client_id, redirect_uri="http://127.0.0.1:51234/callback"))
    assert response.status_code == 303 and "request_id=" in response.headers["location"]


async def test_localhost_name_port_may_vary_but_not_its_spelling(http: httpx.AsyncClient) -> None:
    """RFC 8252 §7.3, §8.3: the loopback port rule covers localhost; the host stays as registered."""
    client = await register(http, redirect_uris=["http://localhost:3000/cb"])
    ok = await http.get("/authorize", params=authorize_params(client.client_id, redirect_uri="http://localhost:3001/cb"))
    assert ok.status_code == 303
    bad = await http.get("/authorize", params=authorize_params(client.client_id, redirect_uri="http://127.0.0.1:3001/cb"))
    assert bad.status_code == 400


async def test_redirect_uri_may_be_omitted_when_only_one_is_registered(http: httpx.AsyncClient) -> None:
    client = await register(http)
    response = await http.get("/authorize", params=authorize_params(client.client_id, redirect_uri=None))
    assert response.status_code == 303 and "request_id=" in response.headers["location"]
    two = await register(http, redirect_uris=[REDIRECT, "http://127.0.0.1:1/x"])
    response = await http.get("/authorize", params=authorize_params(two.client_id, redirect_uri=None))
    assert response.status_code == 400


async def test_repeated_parameters_are_refused(http: httpx.AsyncClient) -> None:
    client = await register(http)
    params = [*list(authorize_params(client.client_id).items()), ("code_challenge", CHALLENGE)]
    response = await http.get("/authorize", params=params)
    assert query(response.headers["location"])["error"] == "invalid_request"
    params = [*list(authorize_params(client.client_id).items()), ("client_id", client.client_id)]
    response = await http.get("/authorize", params=params)
    assert response.status_code == 400 and "location" not in response.headers
