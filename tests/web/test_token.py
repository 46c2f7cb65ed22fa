"""POST /token: code redemption (RFC 6749 §4.1.3, RFC 7636 §4.6), refresh (OAuth 2.1 §4.3),
client authentication (RFC 6749 §2.3.1), no-store (RFC 6749 §5.1)."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.helpers import FrozenClock, exchange, get_code, register, tokens_for


async def bearer_status(http: httpx.AsyncClient, access_token: str) -> int:
    return (await http.post("/mcp", headers={"Authorization": f"Bearer {access_token}"})).status_code


async def refresh(http: httpx.AsyncClient, client_id: str, token: str, **extra: str) -> httpx.Response:
    return await http.post("/token", data={"grant_type": "refresh_token", "client_id": client_id,
                                           "refresh_token": token, **extra})


async def test_code_exchange_success_is_not_cached(http: httpx.AsyncClient) -> None:
    client = await register(http)
    response = await exchange(http, client.client_id, await get_code(http, client.client_id))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["refresh_token"]


async def test_replayed_code_fails_and_revokes_the_tokens_it_issued(http: httpx.AsyncClient) -> None:
    """RFC 6749 §4.1.2 / RFC 9700 §4.5: single use; a second use revokes tokens issued from it."""
    client = await register(http)
    code = await get_code(http, client.client_id)
    first = (await exchange(http, client.client_id, code)).json()
    assert await bearer_status(http, first["access_token"]) == 200
    replay = await exchange(http, client.client_id, code)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert replay.headers["cache-control"] == "no-store"
    assert await bearer_status(http, first["access_token"]) == 401
    assert (await refresh(http, client.client_id, first["refresh_token"])).status_code == 400


@pytest.mark.parametrize("extra,error", [
    ({"code_verifier": "w" * 43}, "invalid_grant"),                       # PKCE mismatch
    ({"redirect_uri": "http://127.0.0.1:33418/other"}, "invalid_grant"),  # redirect binding
    ({"resource": "https://other.example/mcp"}, "invalid_target"),        # RFC 8707
])
async def test_failed_checks_burn_the_code(http: httpx.AsyncClient, extra: dict[str, str], error: str) -> None:
    client = await register(http)
    code = await get_code(http, client.client_id)
    response = await exchange(http, client.client_id, code, **extra)
    assert response.status_code == 400 and response.json()["error"] == error
    retry = await exchange(http, client.client_id, code)
    assert retry.status_code == 400 and retry.json()["error"] == "invalid_grant"


async def test_missing_verifier_is_invalid_request(http: httpx.AsyncClient) -> None:
    client = await register(http)
    code = await get_code(http, client.client_id)
    response = await exchange(http, client.client_id, code, code_verifier=None)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_code_of_another_client_is_refused(http: httpx.AsyncClient) -> None:
    owner, thief = await register(http), await register(http)
    code = await get_code(http, owner.client_id)
    response = await exchange(http, thief.client_id, code)
    assert response.json()["error"] == "invalid_grant"


async def test_code_expires(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    client = await register(http)
    code = await get_code(http, client.client_id)
    clock.advance(61)
    assert (await exchange(http, client.client_id, code)).json()["error"] == "invalid_grant"


async def test_matching_resource_at_token_is_accepted(http: httpx.AsyncClient) -> None:
    client = await register(http)
    code = await get_code(http, client.client_id, resource="http://localhost:8000/mcp")
    response = await exchange(http, client.client_id, code, resource="http://localhost:8000/mcp")
    assert response.status_code == 200


async def test_refresh_rotates_and_reuse_revokes_the_grant(http: httpx.AsyncClient) -> None:
    """OAuth 2.1 §4.3.1 rotation; RFC 9700 §4.14.2: reuse revokes the whole family."""
    client = await register(http)
    first = await tokens_for(http, client.client_id)
    second = (await refresh(http, client.client_id, first["refresh_token"])).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert await bearer_status(http, second["access_token"]) == 200
    reuse = await refresh(http, client.client_id, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert await bearer_status(http, second["access_token"]) == 401
    assert (await refresh(http, client.client_id, second["refresh_token"])).status_code == 400


async def test_refresh_scope_only_narrows(http: httpx.AsyncClient) -> None:
    """RFC 6749 §6: no scope beyond the original grant; omitted scope means the original."""
    client = await register(http)
    first = await tokens_for(http, client.client_id, scope="mcp:tools mcp:prompts")
    narrowed = await refresh(http, client.client_id, first["refresh_token"], scope="mcp:tools")
    assert narrowed.json()["scope"] == "mcp:tools"
    wider = await refresh(http, client.client_id, narrowed.json()["refresh_token"], scope="mcp:tools mcp:admin")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    again = await refresh(http, client.client_id, narrowed.json()["refresh_token"])
    assert again.status_code == 200 and again.json()["scope"] == "mcp:tools mcp:prompts"


async def test_refresh_bound_to_client_and_resource(http: httpx.AsyncClient) -> None:
    client, other = await register(http), await register(http)
    first = await tokens_for(http, client.client_id)
    assert (await refresh(http, other.client_id, first["refresh_token"])).json()["error"] == "invalid_grant"
    wrong = await refresh(http, client.client_id, first["refresh_token"], resource="https://other.example/mcp")
    assert wrong.json()["error"] == "invalid_target"
    assert (await refresh(http, client.client_id, first["refresh_token"])).status_code == 200


async def test_refresh_idle_and_absolute_expiry(http: httpx.AsyncClient, clock: FrozenClock, server: object) -> None:
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    clock.advance(1_209_600 + 1)  # idle lifetime passed
    assert (await refresh(http, client.client_id, tokens["refresh_token"])).json()["error"] == "invalid_grant"
    tokens = await tokens_for(http, client.client_id)
    for _ in range(8):  # active use keeps it alive, but not past the absolute lifetime (90 days)
        clock.advance(1_000_000)
        response = await refresh(http, client.client_id, tokens["refresh_token"])
        if response.status_code != 200:
            break
        tokens = response.json()
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_unknown_and_missing_grant_type(http: httpx.AsyncClient) -> None:
    client = await register(http)
    response = await http.post("/token", data={"grant_type": "password", "client_id": client.client_id})
    assert response.json()["error"] == "unsupported_grant_type"
    response = await http.post("/token", data={"client_id": client.client_id})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def test_confidential_client_authentication(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    basic_client = await register(http, token_endpoint_auth_method="client_secret_basic")
    post_client = await register(http, token_endpoint_auth_method="client_secret_post")
    assert basic_client.client_secret and post_client.client_secret
    code = await get_code(http, basic_client.client_id)
    response = await http.post("/token", headers=basic(basic_client.client_id, basic_client.client_secret), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:33418/callback",
        "code_verifier": "v" * 43 + "-._~0123456789"})
    assert response.status_code == 200, response.text
    code = await get_code(http, post_client.client_id)
    response = await exchange(http, post_client.client_id, code, client_secret=post_client.client_secret)
    assert response.status_code == 200

    # The registered method is enforced: a basic client posting its secret in the body is refused.
    code = await get_code(http, basic_client.client_id)
    response = await exchange(http, basic_client.client_id, code, client_secret=basic_client.client_secret)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    # Without any secret.
    response = await exchange(http, basic_client.client_id, code)
    assert response.status_code == 401
    # Wrong secret over Basic: 401 with WWW-Authenticate: Basic.
    response = await http.post("/token", headers=basic(basic_client.client_id, "wrong"),
                               data={"grant_type": "authorization_code", "code": code})
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Basic")
    # A public client sending a secret.
    public = await register(http)
    response = await exchange(http, public.client_id, "x", client_secret="anything")
    assert response.status_code == 401
    # Expired secret.
    clock.advance(7_776_000 + 1)
    code_response = await http.post("/token", headers=basic(basic_client.client_id, basic_client.client_secret),
                                    data={"grant_type": "authorization_code", "code": "x", "code_verifier": "v" * 43})
    assert code_response.status_code == 401 and "expired" in code_response.json()["error_description"]


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic ",
                                    "Basic " + base64.b64encode(b"\xff\xfe:x").decode()])
async def test_malformed_basic_header_is_401_not_500(http: httpx.AsyncClient, header: str) -> None:
    response = await http.post("/token", headers={"Authorization": header},
                               data={"grant_type": "authorization_code", "code": "x"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


async def test_json_body_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/token", json={"grant_type": "authorization_code"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
