"""``SQLAuditSink`` on SQLite and Postgres: events stored as the hook received them, purged after
``audit_retention``, and a sink whose database fails never fails a request."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from oauth_server import OAuthServer
from oauth_server.audit import AuditEvent, ClientRegistered, SQLAuditSink, TokensIssued
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from tests.conftest import ISSUER, build_app
from tests.fixtures.cimd.network import settings
from tests.helpers import FrozenClock, register, tokens_for

DAY = 86_400


class Both:
    """The SQL sink, and a copy of what it was given."""

    def __init__(self, sink: SQLAuditSink) -> None:
        self.sink = sink
        self.given: list[AuditEvent] = []

    async def __call__(self, event: AuditEvent) -> None:
        self.given.append(event)
        await self.sink(event)

    async def purge(self, before: int, batch: int = 1000) -> int:
        return await self.sink.purge(before, batch)


async def test_sql_sink_stores_every_event_of_a_flow(sql_model: SQLAlchemyOAuthServerModel) -> None:
    """Each event is one row: kind, the common columns, and the kind's fields, as ``as_dict`` gave them."""
    hook = Both(SQLAuditSink(sql_model))
    server = OAuthServer(sql_model, settings(), clock=FrozenClock(), on_event=hook)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as http:
        client = await register(http)
        tokens = await tokens_for(http, client.client_id)
        refreshed = await http.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                    "refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200
    stored = await hook.sink.events()
    ids = [row.pop("id") for row in stored]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert stored == [event.as_dict() for event in hook.given]
    assert [row["event"] for row in stored] == ["client_registered", "consent_approved", "code_issued",
                                               "tokens_issued", "tokens_refreshed"]
    grant_id = hook.given[-1].grant_id
    assert grant_id is not None
    by_grant = await hook.sink.events(grant_id=grant_id, kind="tokens_refreshed")
    assert len(by_grant) == 1 and by_grant[0]["grant_type"] == "refresh_token"
    assert [r["event"] for r in await hook.sink.events(subject="alice", limit=2)] == ["consent_approved", "code_issued"]


async def test_sql_sink_retention_purge(sql_model: SQLAlchemyOAuthServerModel) -> None:
    """``purge_expired`` deletes stored events older than ``audit_retention`` (and only those), in batches."""
    sink = SQLAuditSink(sql_model)
    clock = FrozenClock()
    server = OAuthServer(sql_model, settings(audit_retention=30 * DAY), clock=clock, on_event=sink)
    start = int(clock())
    template = ClientRegistered(time=start, client_id="c", client_name=None, token_endpoint_auth_method="none",
                                grant_types=(), redirect_uris=())
    for age_days in (40, 35, 31, 29, 1):
        for n in range(3):
            await sink(dataclasses.replace(template, time=start - age_days * DAY, client_id=f"c{age_days}-{n}"))
    assert await server.purge_expired(batch=2) == 9
    left = await sink.events()
    assert sorted({row["client_id"].split("-")[0] for row in left}) == ["c1", "c29"]
    assert await server.purge_expired() == 0


async def test_sql_sink_failure_never_fails_a_token_request(
    tmp_path: Path, sql_model: SQLAlchemyOAuthServerModel, caplog: pytest.LogCaptureFixture
) -> None:
    """SECURITY.md: the sink's database refuses every write (no such table); tokens are issued
    anyway, and each failure is logged."""
    broken = SQLAuditSink(f"sqlite+aiosqlite:///{tmp_path / 'no-tables.db'}")
    server = OAuthServer(sql_model, settings(), clock=FrozenClock(), on_event=broken)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER,
                                     headers={"x-test-user": "alice"}) as http:
            client = await register(http)
            tokens = await tokens_for(http, client.client_id)
            assert tokens["access_token"]
    finally:
        await broken.aclose()
    failures = [r for r in caplog.records if "audit hook failed" in r.getMessage()]
    assert len(failures) == 4 and all(r.exc_info for r in failures)


def test_sql_sink_event_classes_are_typed() -> None:
    """A hook can narrow on the class; mypy checks the fields (this module is type-checked)."""
    event: AuditEvent = TokensIssued(time=1, grant_type="authorization_code", scopes=(), resource="r",
                                     access_token_ref="a", refresh_token_ref=None, expires_at=2)
    match event:
        case TokensIssued(grant_type=grant_type):
            assert grant_type == "authorization_code"
        case _:
            raise AssertionError("not matched")
