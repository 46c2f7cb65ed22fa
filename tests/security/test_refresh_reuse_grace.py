"""``refresh_token_reuse_grace``: a just-rotated refresh token presented again (parallel calls, a
lost response) within the grace yields a fresh pair; after it, reuse revokes the grant as
RFC 9700 §4.14.2 asks. Frozen clock, both sides of the boundary."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest

from oauth_server import MemoryOAuthServerModel, OAuthServer
from tests.conftest import ISSUER, build_app
from tests.helpers import FrozenClock, register, tokens_for

GRACE = 10


@pytest.fixture
def server(model: MemoryOAuthServerModel, clock: FrozenClock, server: OAuthServer) -> OAuthServer:
    settings = dataclasses.replace(server.settings, refresh_token_reuse_grace=GRACE)
    return OAuthServer(model, settings, clock=clock)


@pytest.fixture
async def http(server: OAuthServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as client:
        yield client


async def refresh(http: httpx.AsyncClient, client_id: str, token: str) -> httpx.Response:
    return await http.post("/token", data={"grant_type": "refresh_token", "client_id": client_id,
                                           "refresh_token": token})


async def works(http: httpx.AsyncClient, access_token: str) -> bool:
    return (await http.post("/mcp", headers={"Authorization": f"Bearer {access_token}"})).status_code == 200


async def test_reuse_within_the_grace_yields_a_fresh_pair(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """Presented again GRACE-1 seconds after its rotation, the old token rotates once more."""
    client = await register(http)
    first = await tokens_for(http, client.client_id)
    rotated = await refresh(http, client.client_id, first["refresh_token"])
    assert rotated.status_code == 200
    clock.advance(GRACE - 1)
    again = await refresh(http, client.client_id, first["refresh_token"])
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] != rotated.json()["refresh_token"]
    for pair in (rotated.json(), again.json()):  # both pairs live: nobody was signed out
        assert await works(http, pair["access_token"])
        assert (await refresh(http, client.client_id, pair["refresh_token"])).status_code == 200


async def test_reuse_at_the_end_of_the_grace_revokes_the_grant(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 9700 §4.14.2: at ``now - rotated_at >= GRACE`` reuse is reuse: the grant dies."""
    client = await register(http)
    first = await tokens_for(http, client.client_id)
    rotated = (await refresh(http, client.client_id, first["refresh_token"])).json()
    clock.advance(GRACE)
    reused = await refresh(http, client.client_id, first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert not await works(http, rotated["access_token"])
    assert (await refresh(http, client.client_id, rotated["refresh_token"])).status_code == 400


async def test_the_grace_counts_from_the_first_rotation(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """A second rotation within the grace does not extend it: the window is fixed at the first."""
    client = await register(http)
    first = await tokens_for(http, client.client_id)
    assert (await refresh(http, client.client_id, first["refresh_token"])).status_code == 200
    clock.advance(GRACE - 2)
    assert (await refresh(http, client.client_id, first["refresh_token"])).status_code == 200
    clock.advance(2)
    assert (await refresh(http, client.client_id, first["refresh_token"])).status_code == 400


async def test_parallel_refreshes_within_the_grace_all_succeed(http: httpx.AsyncClient) -> None:
    """The complaint this setting answers: parallel tool calls refreshing at once keep the user signed in."""
    client = await register(http)
    first = await tokens_for(http, client.client_id)
    answers = await asyncio.gather(*(refresh(http, client.client_id, first["refresh_token"]) for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10


async def test_without_a_grace_reuse_still_revokes_at_once(model: MemoryOAuthServerModel, clock: FrozenClock,
                                                          server: OAuthServer) -> None:
    """The default (0) is strict single use, as before."""
    strict = OAuthServer(model, dataclasses.replace(server.settings, refresh_token_reuse_grace=0), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(strict)), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as http:
        client = await register(http)
        first = await tokens_for(http, client.client_id)
        rotated = (await refresh(http, client.client_id, first["refresh_token"])).json()
        assert (await refresh(http, client.client_id, first["refresh_token"])).status_code == 400
        assert not await works(http, rotated["access_token"])


def test_grace_is_bounded() -> None:
    from tests.web.test_jwt_access_tokens import jwt_settings

    with pytest.raises(ValueError, match="refresh_token_reuse_grace"):
        jwt_settings(refresh_token_reuse_grace=301)
