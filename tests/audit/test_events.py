"""Audit events of a whole flow: which, in what order, with what fields; and how hooks are called."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from oauth_server import MemoryOAuthServerModel, OAuthServer
from oauth_server.audit import (
    EVENT_KINDS,
    AuditEvent,
    ClientDeleted,
    ClientRegistered,
    ClientUpdated,
    CodeIssued,
    ConsentApproved,
    ConsentDenied,
    GrantRevokedByUser,
    TokenIntrospected,
    TokenRevoked,
    TokensIssued,
    TokensRefreshed,
)
from oauth_server.audit.events import REF_LENGTH
from oauth_server.records import Grant
from oauth_server.tokens import digest
from tests.audit.conftest import Recorder
from tests.conftest import ISSUER, RESOURCE, build_app
from tests.fixtures.cimd.network import settings
from tests.helpers import REDIRECT, FrozenClock, exchange, get_code, open_consent, query, register, tokens_for

NOW = 1_800_000_000


def ref(credential: str) -> str:
    return digest(credential)[:REF_LENGTH]


async def whole_flow(http: httpx.AsyncClient, clock: FrozenClock) -> dict[str, Any]:
    """register → authorize → consent → token → refresh → introspect → revoke → introspect → manage.

    Returns every credential the flow saw, by name."""
    client = await register(http)
    rs = await register(http, token_endpoint_auth_method="client_secret_basic", client_name="Resource server")
    assert rs.client_secret is not None
    code = await get_code(http, client.client_id)
    clock.advance(1)
    first = await exchange(http, client.client_id, code)
    assert first.status_code == 200, first.text
    tokens = first.json()
    clock.advance(1)
    refreshed = (await http.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                 "refresh_token": tokens["refresh_token"]})).json()
    auth = (rs.client_id, rs.client_secret)
    active = await http.post("/introspect", data={"token": refreshed["access_token"]}, auth=auth)
    assert active.json()["active"] is True
    clock.advance(1)
    revoked = await http.post("/revoke", data={"token": refreshed["refresh_token"], "client_id": client.client_id})
    assert revoked.status_code == 200
    inactive = await http.post("/introspect", data={"token": refreshed["access_token"]}, auth=auth)
    assert inactive.json() == {"active": False}
    path = rs.body["registration_client_uri"].removeprefix(ISSUER)
    headers = {"Authorization": f"Bearer {rs.body['registration_access_token']}"}
    updated = await http.put(path, headers=headers, json={**rs.body, "client_name": "Renamed"})
    assert updated.status_code == 200, updated.text
    assert (await http.delete(path, headers=headers)).status_code == 204
    return {"client": client, "rs": rs, "code": code, "tokens": tokens, "refreshed": refreshed,
            "updated_secret": updated.json().get("client_secret")}


async def test_audit_whole_flow_events_in_order_with_their_fields(
    http: httpx.AsyncClient, clock: FrozenClock, recorder: Recorder
) -> None:
    """Every security-relevant step of a flow is one event, in order, with its client, subject,
    grant, time from the injected clock, and its own details (refs, never credentials)."""
    seen = await whole_flow(http, clock)
    client_id, rs_id = seen["client"].client_id, seen["rs"].client_id
    assert recorder.kinds == [
        "client_registered", "client_registered", "consent_approved", "code_issued", "tokens_issued",
        "tokens_refreshed", "token_introspected", "token_revoked", "token_introspected", "client_updated",
        "client_deleted",
    ]
    registered, rs_registered, approved, code_issued, issued, refreshed, looked, revoked, gone, updated, deleted = (
        recorder.events)
    assert isinstance(registered, ClientRegistered) and registered.client_id == client_id
    assert registered.time == NOW and registered.token_endpoint_auth_method == "none"
    assert registered.client_name == "Test client" and registered.redirect_uris == (REDIRECT,)
    assert registered.subject is None and registered.grant_id is None
    assert isinstance(rs_registered, ClientRegistered) and rs_registered.client_id == rs_id
    grant_id = approved.grant_id
    assert grant_id
    assert isinstance(approved, ConsentApproved)
    assert (approved.client_id, approved.subject, approved.scopes, approved.requested_scopes, approved.resource) == (
        client_id, "alice", ("mcp:tools",), ("mcp:tools",), RESOURCE)
    assert isinstance(code_issued, CodeIssued) and code_issued.code_ref == ref(seen["code"])
    assert code_issued.grant_id == grant_id and code_issued.expires_at == NOW + 60
    assert isinstance(issued, TokensIssued) and not isinstance(issued, TokensRefreshed)
    assert (issued.time, issued.client_id, issued.subject, issued.grant_id, issued.grant_type) == (
        NOW + 1, client_id, "alice", grant_id, "authorization_code")
    assert issued.access_token_ref == ref(seen["tokens"]["access_token"])
    assert issued.refresh_token_ref == ref(seen["tokens"]["refresh_token"])
    assert issued.scopes == ("mcp:tools",) and issued.resource == RESOURCE and issued.expires_at == NOW + 1 + 3600
    assert isinstance(refreshed, TokensRefreshed) and refreshed.grant_type == "refresh_token"
    assert refreshed.time == NOW + 2 and refreshed.grant_id == grant_id
    assert refreshed.access_token_ref == ref(seen["refreshed"]["access_token"])
    assert isinstance(looked, TokenIntrospected) and looked.client_id == rs_id and looked.active
    assert (looked.token_client_id, looked.subject, looked.grant_id, looked.token_type) == (
        client_id, "alice", grant_id, "access_token")
    assert isinstance(revoked, TokenRevoked) and revoked.token_type == "refresh_token"
    assert (revoked.time, revoked.client_id, revoked.grant_id) == (NOW + 3, client_id, grant_id)
    assert revoked.token_ref == ref(seen["refreshed"]["refresh_token"])
    assert isinstance(gone, TokenIntrospected) and not gone.active
    assert gone.subject is None and gone.grant_id is None and gone.token_client_id is None
    assert isinstance(updated, ClientUpdated) and updated.client_name == "Renamed" and updated.client_id == rs_id
    assert isinstance(deleted, ClientDeleted) and deleted.client_id == rs_id


async def test_audit_consent_denied(http: httpx.AsyncClient, recorder: Recorder) -> None:
    """RFC 6749 §4.1.2.1: a denial is an event with what was asked, and no grant."""
    client = await register(http)
    _, fields = await open_consent(http, client.client_id)
    response = await http.post("/consent", data={**fields, "decision": "deny"})
    assert query(response.headers["location"])["error"] == "access_denied"
    denied = recorder.events[-1]
    assert isinstance(denied, ConsentDenied) and denied.client_id == client.client_id
    assert denied.requested_scopes == ("mcp:tools",) and denied.grant_id is None


async def test_audit_json_line_per_event_on_the_audit_logger(
    model: MemoryOAuthServerModel, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The default hook: each event is one JSON object on ``oauth_server.audit`` (one line)."""
    caplog.set_level(logging.INFO, logger="oauth_server.audit")
    server = OAuthServer(model, settings(), clock=clock)  # on_event left at its default
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as http:
        client = await register(http)
        await tokens_for(http, client.client_id)
    records = [r for r in caplog.records if r.name == "oauth_server.audit"]
    lines = [json.loads(r.getMessage()) for r in records]
    assert all("\n" not in r.getMessage() for r in records)
    assert [line["event"] for line in lines] == ["client_registered", "consent_approved", "code_issued",
                                                 "tokens_issued"]
    assert lines[-1]["grant_type"] == "authorization_code" and lines[-1]["client_id"] == client.client_id
    assert lines[-1]["time"] == NOW and lines[-1]["scopes"] == ["mcp:tools"]
    assert records[-1].audit_event == lines[-1]  # type: ignore[attr-defined]


async def test_audit_async_hook_and_off(model: MemoryOAuthServerModel, clock: FrozenClock) -> None:
    """``on_event`` may be a coroutine function; ``on_event=None`` sends nothing anywhere."""
    seen: list[AuditEvent] = []

    async def hook(event: AuditEvent) -> None:
        seen.append(event)

    for on_event in (hook, None):
        server = OAuthServer(model, settings(), clock=clock, on_event=on_event)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER) as http:
            await register(http)
    assert [e.kind for e in seen] == ["client_registered"]


def test_audit_event_kinds_are_unique_and_serialisable() -> None:
    """Every kind has its own name, and ``as_dict`` gives JSON-ready values."""
    assert len(EVENT_KINDS) == 15
    event = TokensRefreshed(time=1, client_id="c", subject="s", grant_id="g", grant_type="refresh_token",
                            scopes=("a", "b"), resource=RESOURCE, access_token_ref="x", refresh_token_ref=None,
                            expires_at=2)
    assert json.loads(json.dumps(event.as_dict())) == {
        "event": "tokens_refreshed", "time": 1, "client_id": "c", "subject": "s", "grant_id": "g",
        "grant_type": "refresh_token", "scopes": ["a", "b"], "resource": RESOURCE, "access_token_ref": "x",
        "refresh_token_ref": None, "expires_at": 2}


@pytest.fixture
async def failing(model: MemoryOAuthServerModel, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    def broken(event: AuditEvent) -> None:
        raise RuntimeError("the audit sink is down")

    server = OAuthServer(model, settings(), clock=clock, on_event=broken)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as http:
        yield http


async def test_audit_failing_hook_never_fails_a_request(
    failing: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """SECURITY.md: a failing sink is logged and the request succeeds (register, consent, token,
    refresh, revoke all answer as without a hook)."""
    client = await register(failing)
    tokens = await tokens_for(failing, client.client_id)
    refreshed = await failing.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                   "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    revoked = await failing.post("/revoke", data={"token": refreshed.json()["access_token"],
                                                  "client_id": client.client_id})
    assert revoked.status_code == 200
    failures = [r for r in caplog.records if "audit hook failed" in r.getMessage()]
    assert len(failures) == 6 and all(r.exc_info for r in failures)


def test_audit_retention_must_be_positive() -> None:
    """``audit_retention`` is seconds; 0 or less would purge every stored event at once."""
    with pytest.raises(ValueError, match="audit_retention"):
        settings(audit_retention=0)
    assert settings().audit_retention == 90 * 86_400


async def test_a_user_revoking_their_own_grant_is_audited(clock: FrozenClock) -> None:
    """Connected apps: the owner's revocation is a ``grant_revoked_by_user``; another user's
    attempt changes nothing and emits nothing (no event would tell the grant exists)."""
    seen: list[AuditEvent] = []
    model = MemoryOAuthServerModel()
    server = OAuthServer(model, settings(), clock=clock, on_event=seen.append)
    now = int(clock())
    await model.save_grant(Grant(grant_id="g1", client_id="c1", subject="alice", scopes=("mcp:tools",),
                                 resource=RESOURCE, created_at=now, expires_at=now + 3600))
    assert not await server.revoke_user_grant("mallory", "g1")
    assert seen == []
    assert await server.revoke_user_grant("alice", "g1")
    assert seen == [GrantRevokedByUser(time=now, subject="alice", grant_id="g1")]
