"""Audit events of the device grant (RFC 8628): the page's decisions are consents, a replayed
device code is a code replay (RFC 9700 §4.5), and the tokens are "tokens issued" with its grant type."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from oauth_server import MemoryOAuthServerModel, OAuthServer, audit
from tests.conftest import ISSUER, build_app
from tests.device_helpers import DEVICE_GRANT, decide, poll, register_device_client, started
from tests.helpers import FrozenClock
from tests.security.test_device_flow import device_settings


@pytest.fixture
def events() -> list[audit.AuditEvent]:
    return []


@pytest.fixture
async def http(model: MemoryOAuthServerModel, clock: FrozenClock,
               events: list[audit.AuditEvent]) -> AsyncIterator[httpx.AsyncClient]:
    server = OAuthServer(model, device_settings(), clock=clock, on_event=events.append)
    transport = httpx.ASGITransport(app=build_app(server))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER, headers={"x-test-user": "alice"}) as client:
        yield client


async def test_device_approval_tokens_and_replay_are_audited(http: httpx.AsyncClient,
                                                             events: list[audit.AuditEvent]) -> None:
    """RFC 8628 §3.3 approval → ``consent_approved``; §3.5 tokens → ``tokens_issued`` with the
    device grant type; the device code presented again → ``code_replay_detected`` (grant revoked)."""
    client_id, _ = await register_device_client(http)
    body = await started(http, client_id)
    assert (await decide(http, body["user_code"], "approve")).status_code == 200
    assert (await poll(http, client_id, body["device_code"])).status_code == 200
    assert (await poll(http, client_id, body["device_code"])).status_code == 400
    kinds = [event.kind for event in events if event.client_id == client_id]
    assert kinds[-3:] == ["consent_approved", "tokens_issued", "code_replay_detected"]
    approved, issued, replay = (event for event in events if event.kind in {
        "consent_approved", "tokens_issued", "code_replay_detected"})
    assert isinstance(approved, audit.ConsentApproved) and approved.subject == "alice"
    assert isinstance(issued, audit.TokensIssued) and issued.grant_type == DEVICE_GRANT
    assert isinstance(replay, audit.CodeReplayDetected) and replay.grant_id == approved.grant_id
    assert body["device_code"] not in repr(events) and body["user_code"] not in repr(events)


async def test_device_denial_is_audited(http: httpx.AsyncClient, events: list[audit.AuditEvent]) -> None:
    """RFC 8628 §3.3: the user's denial is a ``consent_denied`` of that client."""
    client_id, _ = await register_device_client(http)
    body = await started(http, client_id)
    assert (await decide(http, body["user_code"], "deny")).status_code == 200
    denied = [event for event in events if isinstance(event, audit.ConsentDenied)]
    assert len(denied) == 1 and denied[0].client_id == client_id
