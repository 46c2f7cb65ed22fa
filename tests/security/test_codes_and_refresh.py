"""Authorization codes (RFC 6749 §4.1.2, §10.5, §10.10; RFC 9700 §4.5) and refresh tokens
(OAuth 2.1 §4.3, RFC 9700 §4.14)."""

from __future__ import annotations

import asyncio

import httpx

from oauth_server import MemoryOAuthServerModel
from tests.helpers import FrozenClock, exchange, get_code, query, register, tokens_for


async def test_code_single_use_replay_revokes_grant(http: httpx.AsyncClient) -> None:
    """RFC 6749 §4.1.2: a reused code is refused and tokens issued from it SHOULD be revoked."""
    client = await register(http)
    code = await get_code(http, client.client_id)
    tokens = (await exchange(http, client.client_id, code)).json()
    assert (await exchange(http, client.client_id, code)).status_code == 400
    call = await http.post("/mcp", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert call.status_code == 401


async def test_code_atomic_under_concurrent_redemption(http: httpx.AsyncClient) -> None:
    """RFC 6749 §10.5: of 20 simultaneous redemptions of one code exactly one succeeds."""
    client = await register(http)
    code = await get_code(http, client.client_id)
    responses = await asyncio.gather(*(exchange(http, client.client_id, code) for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] + [400] * 19


async def test_code_expires(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """OAuth 2.1 §4.1.2: short-lived codes (60 s here, frozen clock)."""
    client = await register(http)
    code = await get_code(http, client.client_id)
    clock.advance(60)
    assert (await exchange(http, client.client_id, code)).json()["error"] == "invalid_grant"


async def test_code_bound_to_client_redirect_uri_and_resource(http: httpx.AsyncClient) -> None:
    """RFC 6749 §4.1.3 and RFC 8707 §2.2: each binding checked; any failure burns the code."""
    client, other = await register(http), await register(http)
    for presenter, extra in ((other.client_id, {}), (client.client_id, {"redirect_uri": "http://127.0.0.1:33418/x"}),
                             (client.client_id, {"resource": "http://localhost:8000/other"})):
        code = await get_code(http, client.client_id)
        failed = await exchange(http, presenter, code, **extra)
        assert failed.status_code == 400
        assert (await exchange(http, client.client_id, code)).status_code == 400


async def test_code_entropy_at_least_128_bits(http: httpx.AsyncClient, model: MemoryOAuthServerModel) -> None:
    """RFC 6749 §10.10: codes are unguessable; ours are 256-bit urlsafe strings, all distinct."""
    client = await register(http)
    codes = {await get_code(http, client.client_id) for _ in range(20)}
    assert len(codes) == 20 and all(len(c) >= 43 for c in codes)


async def test_refresh_rotation_for_public_clients(http: httpx.AsyncClient) -> None:
    """OAuth 2.1 §4.3.1: public clients get a new refresh token on every use."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    new = (await http.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                           "refresh_token": tokens["refresh_token"]})).json()
    assert new["refresh_token"] != tokens["refresh_token"]


async def test_refresh_reuse_revokes_family_and_access_tokens(http: httpx.AsyncClient) -> None:
    """RFC 9700 §4.14.2: an old refresh token presented again invalidates the whole family."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    data = {"grant_type": "refresh_token", "client_id": client.client_id}
    new = (await http.post("/token", data={**data, "refresh_token": tokens["refresh_token"]})).json()
    assert (await http.post("/token", data={**data, "refresh_token": tokens["refresh_token"]})).status_code == 400
    assert (await http.post("/mcp", headers={"Authorization": f"Bearer {new['access_token']}"})).status_code == 401
    assert (await http.post("/token", data={**data, "refresh_token": new["refresh_token"]})).status_code == 400


async def test_refresh_concurrent_use_one_success(http: httpx.AsyncClient) -> None:
    """RFC 9700 §4.14.2: 20 simultaneous refreshes of one token: exactly one succeeds."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    data = {"grant_type": "refresh_token", "client_id": client.client_id, "refresh_token": tokens["refresh_token"]}
    responses = await asyncio.gather(*(http.post("/token", data=data) for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] + [400] * 19


async def test_refresh_scope_narrows_only_and_omitted_keeps_original(http: httpx.AsyncClient) -> None:
    """RFC 6749 §6: scope MUST NOT exceed the original; omitted means the original grant."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id, scope="mcp:tools mcp:prompts")
    data = {"grant_type": "refresh_token", "client_id": client.client_id}
    narrow = (await http.post("/token", data={**data, "refresh_token": tokens["refresh_token"],
                                              "scope": "mcp:prompts"})).json()
    assert narrow["scope"] == "mcp:prompts"
    wide = await http.post("/token", data={**data, "refresh_token": narrow["refresh_token"], "scope": "mcp:admin"})
    assert wide.json()["error"] == "invalid_scope"
    back = (await http.post("/token", data={**data, "refresh_token": narrow["refresh_token"]})).json()
    assert back["scope"] == "mcp:tools mcp:prompts"


async def test_refresh_bound_to_client_and_resource(http: httpx.AsyncClient) -> None:
    """OAuth 2.1 §4.3.1 / RFC 8707 §2.2."""
    client, other = await register(http), await register(http)
    tokens = await tokens_for(http, client.client_id)
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert (await http.post("/token", data={**data, "client_id": other.client_id})).status_code == 400
    wrong = await http.post("/token", data={**data, "client_id": client.client_id, "resource": "https://x.example/"})
    assert wrong.json()["error"] == "invalid_target"


async def test_refresh_idle_and_absolute_expiry(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 9700 §4.14.2: refresh tokens expire when unused, and grants end however active."""
    client = await register(http)
    data = {"grant_type": "refresh_token", "client_id": client.client_id}
    tokens = await tokens_for(http, client.client_id)
    clock.advance(1_209_601)
    assert (await http.post("/token", data={**data, "refresh_token": tokens["refresh_token"]})).status_code == 400
    tokens = await tokens_for(http, client.client_id)
    statuses = []
    for _ in range(10):
        clock.advance(900_000)
        response = await http.post("/token", data={**data, "refresh_token": tokens["refresh_token"]})
        statuses.append(response.status_code)
        if response.status_code != 200:
            break
        tokens = response.json()
    assert statuses[:8] == [200] * 8 and statuses[-1] == 400  # 90-day absolute limit


async def test_deny_answer_has_iss_and_state(http: httpx.AsyncClient) -> None:
    """RFC 9207 §2: iss on every authorization response, errors included."""
    from tests.helpers import open_consent

    client = await register(http)
    _, fields = await open_consent(http, client.client_id)
    params = query((await http.post("/consent", data={**fields, "decision": "deny"})).headers["location"])
    assert params == {"error": "access_denied", "error_description": "the user denied the request", "state": "xyz",
                      "iss": "http://localhost:8000"}
