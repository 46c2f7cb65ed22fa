"""Round trips to Postgres per HTTP request of a whole flow and a refresh, counted on the wire.

Every statement asyncpg sends is one round trip (none is pipelined). The counts are pinned so
that a change that adds one shows here; bench/README.md lists them (issue 17 asks for them
before and after any folding).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from oauth_server import OAuthServer, OAuthServerSettings, tokens
from oauth_server.grants import authorization_code
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from tests.conftest import ISSUER, RESOURCE, SCOPES, build_app
from tests.helpers import REDIRECT, VERIFIER, authorize_params, form_fields, query, register
from tests.model.test_contract import NOW, pending


class Wire:
    """Every query the model's pooled asyncpg connections send, in order."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def take(self) -> list[str]:
        taken, self.queries = self.queries, []
        return [" ".join(q.split()[:3]).upper() for q in taken]


@pytest.fixture
async def counted(postgres_model: SQLAlchemyOAuthServerModel) -> AsyncIterator[tuple[httpx.AsyncClient, Wire]]:
    wire = Wire()

    def log_queries(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(lambda q: wire.queries.append(q.query))

    event.listen(postgres_model.engine.sync_engine.pool, "connect", log_queries)
    await postgres_model.engine.dispose()  # new connections, each with the logger
    # Steady state: the change-notice feed is up, so client records are cached (client_cache).
    feed = postgres_model._feed
    assert feed is not None
    feed.ensure_listening()
    for _ in range(200):
        if feed.live:
            break
        await asyncio.sleep(0.01)
    assert feed.live
    server = OAuthServer(postgres_model, OAuthServerSettings(
        issuer_url=ISSUER, resource_server_url=RESOURCE, authorization_url=f"{ISSUER}/consent",
        scopes_supported=SCOPES, default_scopes=("mcp:tools",)))
    transport = httpx.ASGITransport(app=build_app(server))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER, headers={"x-test-user": "alice"}) as http:
        yield http, wire


async def settled(wire: Wire) -> list[str]:
    await asyncio.sleep(0.05)  # asyncpg calls query loggers with loop.call_soon
    return wire.take()


async def test_round_trips_of_a_whole_flow_and_a_refresh(counted: tuple[httpx.AsyncClient, Wire]) -> None:
    http, wire = counted
    client_id = (await register(http)).client_id
    trips = {"register": await settled(wire)}
    response = await http.get("/authorize", params=authorize_params(client_id, resource=RESOURCE))
    assert response.status_code == 303
    trips["authorize"] = await settled(wire)
    page = await http.get(response.headers["location"])
    assert page.status_code == 200
    trips["consent page"] = await settled(wire)
    approved = await http.post("/consent", data={**form_fields(page.text), "decision": "approve"})
    assert approved.status_code == 303
    trips["consent approval"] = await settled(wire)
    tokens = await http.post("/token", data={
        "grant_type": "authorization_code", "code": query(approved.headers["location"])["code"],
        "redirect_uri": REDIRECT, "code_verifier": VERIFIER, "client_id": client_id, "resource": RESOURCE})
    assert tokens.status_code == 200, tokens.text
    trips["token"] = await settled(wire)
    refreshed = await http.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"], "client_id": client_id,
        "resource": RESOURCE})
    assert refreshed.status_code == 200, refreshed.text
    trips["refresh"] = await settled(wire)
    counts = {step: len(queries) for step, queries in trips.items()}
    # register: INSERT client. authorize: SELECT client (then cached), INSERT pending (already
    # bound to the browser). consent page: SELECT pending. approval: SELECT pending (the form's
    # browser check), DELETE pending RETURNING, INSERT grant + code (one CTE). token: UPDATE code
    # RETURNING, then one CTE: UPDATE the grant's last_used_at (the live check and its lock) and
    # INSERT the pair. refresh: SELECT refresh token, then one CTE: rotate, issue, record the use.
    # Before save_tokens_recording_use / rotate_refresh_token_recording_use: token 3, refresh 3
    # (record_grant_use was a statement of its own).
    assert counts == {"register": 1, "authorize": 2, "consent page": 1, "consent approval": 2, "token": 2,
                      "refresh": 2}
    assert sum(counts[step] for step in ("authorize", "consent page", "consent approval", "token")) == 7


async def test_the_approval_takes_the_request_and_stores_the_code_in_one_round_trip(
        counted: tuple[httpx.AsyncClient, Wire], postgres_model: SQLAlchemyOAuthServerModel) -> None:
    """``approve_pending_authorization``: the approval's DELETE pending and INSERT grant + code in
    one CTE, where ``consume_pending_authorization`` then ``save_authorization_code`` take two.
    (The server's ``approve`` calls ``authorization_code.approve_pending`` to use it.)"""
    _, wire = counted
    settings = OAuthServerSettings(issuer_url=ISSUER, resource_server_url=RESOURCE,
                                   authorization_url=f"{ISSUER}/consent")
    trips = {}
    for name, fold in (("two verbs", False), ("fold", True)):
        request = pending()
        await postgres_model.save_pending_authorization(request)
        await settled(wire)
        if fold:
            code = await authorization_code.approve_pending(postgres_model, settings, request, "alice",
                                                            request.scopes, NOW)
        else:
            assert await postgres_model.consume_pending_authorization(request.request_digest) is not None
            code, record, grant = authorization_code.new_code(settings, request, "alice", request.scopes, NOW)
            await postgres_model.save_authorization_code(record, grant)
        assert code is not None and await postgres_model.get_authorization_code(tokens.digest(code)) is not None
        trips[name] = (await settled(wire))[:-1]  # less the check's SELECT
    assert {name: len(queries) for name, queries in trips.items()} == {"two verbs": 2, "fold": 1}
