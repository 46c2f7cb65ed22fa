"""Audit events of the attacks in ``tests/security/``: each detection is an event, none carries a
credential, and a broken sink changes no security decision.

RFC 9700 §4.5 (code replay), §4.14.2 (refresh token reuse), draft-ietf-oauth-client-id-metadata-
document §8.6 (SSRF refusals), RFC 6585 §4 (rate limits); RFC 6749 §10.3 and RFC 9700 §4:
credentials are kept out of logs and audit records (digest prefixes at most).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from oauth_server import MemoryOAuthServerModel, OAuthServer, mcp_auth_router
from oauth_server.audit import (
    AuditEvent,
    CIMDFetchRefused,
    CodeReplayDetected,
    RateLimitHit,
    RefreshReuseDetected,
    log_event,
)
from oauth_server.audit.events import REF_LENGTH
from oauth_server.tokens import digest
from oauth_server.web.limits import RateLimits
from tests.audit.conftest import Recorder
from tests.conftest import ISSUER, build_app, signed_in_user
from tests.fixtures.cimd.network import PUBLIC, Network, settings
from tests.helpers import FrozenClock, authorize_params, exchange, get_code, register, tokens_for


def refresh(client_id: str, token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": token}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def http(model: MemoryOAuthServerModel, clock: FrozenClock, recorder: Recorder
               ) -> AsyncIterator[httpx.AsyncClient]:
    server = OAuthServer(model, settings(), clock=clock, on_event=recorder)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as client:
        yield client


async def test_audit_code_replay_is_an_event_naming_the_revoked_grant(
    http: httpx.AsyncClient, recorder: Recorder
) -> None:
    """RFC 9700 §4.5: a replayed code revokes its grant, and the audit trail says which, and who sent it."""
    client, attacker = await register(http), await register(http)
    code = await get_code(http, client.client_id)
    assert (await exchange(http, client.client_id, code)).status_code == 200
    grant_id = recorder.events[-1].grant_id
    assert (await exchange(http, attacker.client_id, code)).json()["error"] == "invalid_grant"
    replay = recorder.events[-1]
    assert isinstance(replay, CodeReplayDetected) and replay.severity == "warning"
    assert (replay.client_id, replay.subject, replay.grant_id, replay.presented_by) == (
        client.client_id, "alice", grant_id, attacker.client_id)
    assert replay.code_ref == digest(code)[:REF_LENGTH]


async def test_audit_refresh_reuse_is_an_event_naming_the_revoked_grant(
    http: httpx.AsyncClient, recorder: Recorder, clock: FrozenClock
) -> None:
    """RFC 9700 §4.14.2: reuse of a rotated refresh token revokes the grant; the event names the
    grant, the token (by ref) and when it was rotated."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    grant_id = recorder.events[-1].grant_id
    rotated_at = int(clock())
    assert (await http.post("/token", data=refresh(client.client_id, tokens["refresh_token"]))).status_code == 200
    clock.advance(5)
    reused = await http.post("/token", data=refresh(client.client_id, tokens["refresh_token"]))
    assert reused.json()["error"] == "invalid_grant"
    reuse = recorder.events[-1]
    assert isinstance(reuse, RefreshReuseDetected)
    assert (reuse.time, reuse.client_id, reuse.subject, reuse.grant_id, reuse.rotated_at) == (
        rotated_at + 5, client.client_id, "alice", grant_id, rotated_at)
    assert reuse.refresh_token_ref == digest(tokens["refresh_token"])[:REF_LENGTH]


async def test_audit_concurrent_refresh_reuse_is_reported(http: httpx.AsyncClient, recorder: Recorder) -> None:
    """RFC 9700 §4.14.2: of 20 simultaneous refreshes one wins; the others are reuse, reported."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    responses = await asyncio.gather(*(http.post("/token", data=refresh(client.client_id, tokens["refresh_token"]))
                                       for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] + [400] * 19
    assert any(isinstance(e, RefreshReuseDetected) for e in recorder.events)


async def test_audit_cimd_refusal_is_an_event(model: MemoryOAuthServerModel, clock: FrozenClock,
                                              recorder: Recorder) -> None:
    """CIMD §8.6: a metadata document URL resolving to a private address is refused before any
    connection, and the refusal is an event with the URL and the reason."""
    network = Network(hosts={"intranet.example": ["10.0.0.7"], "client.example": [PUBLIC]})
    configured = settings()
    server = OAuthServer(model, configured, clock=clock, on_event=recorder, cimd_fetcher=network.fetcher(configured))
    url = "https://intranet.example/oauth/metadata"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER) as http:
        response = await http.get("/authorize", params=authorize_params(url))
        assert response.status_code == 400
        await http.get("/authorize", params=authorize_params(url))  # the cached refusal: no second event
    assert [type(e) for e in recorder.events] == [CIMDFetchRefused]
    refused = recorder.events[0]
    assert isinstance(refused, CIMDFetchRefused) and refused.client_id == url and refused.time == int(clock())
    assert "could not be fetched" in refused.reason and network.fetched == []


async def test_audit_rate_limit_hit_is_an_event(model: MemoryOAuthServerModel, clock: FrozenClock,
                                                recorder: Recorder) -> None:
    """RFC 6585 §4: a 429 is an event naming the limit and the key it counted (IP or client_id)."""
    server = OAuthServer(model, settings(), clock=clock, on_event=recorder)
    app = FastAPI()
    limits = RateLimits(limits={"register": "1/minute", "token_client": "1/minute"})
    app.include_router(mcp_auth_router(server, get_user=signed_in_user, rate_limits=limits))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        client = await register(http)
        assert (await http.post("/register", json={"redirect_uris": ["http://127.0.0.1/cb"]})).status_code == 429
        for _ in range(2):
            await http.post("/token", data=refresh(client.client_id, "unknown"))
    hits = [e for e in recorder.events if isinstance(e, RateLimitHit)]
    assert [(h.limit, h.key, h.client_id) for h in hits] == [
        ("register", "127.0.0.1", None), ("token_client", client.client_id, client.client_id)]
    assert all(h.retry_after >= 1 and h.time == int(clock()) for h in hits)


async def test_audit_events_never_carry_a_raw_credential(
    model: MemoryOAuthServerModel, clock: FrozenClock, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 6749 §10.3 / RFC 9700 §4: a whole flow with its attacks (register, consent, token,
    refresh, reuse, replay, revoke, introspect, client update and delete): no client secret,
    registration token, code, access or refresh token appears in any event, nor in the JSON lines."""
    caplog.set_level(logging.INFO, logger="oauth_server.audit")
    seen: list[AuditEvent] = []

    async def both(event: AuditEvent) -> None:  # the recorder and the default JSON lines
        recorder(event)
        log_event(event)
        seen.append(event)

    server = OAuthServer(model, settings(), clock=clock, on_event=both)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as http:
        credentials = await flow_with_attacks(http)
    kinds = set(recorder.kinds)
    assert {"client_registered", "tokens_issued", "tokens_refreshed", "refresh_reuse_detected",
            "code_replay_detected", "token_revoked", "token_introspected", "client_updated",
            "client_deleted"} <= kinds
    dumped = "\n".join([repr(e) for e in seen] + [json.dumps(e.as_dict()) for e in seen])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert len(credentials) >= 10
    for credential in credentials:
        assert credential not in dumped and credential not in logged, credential


async def flow_with_attacks(http: httpx.AsyncClient) -> list[str]:
    """Every credential the flow handled."""
    client = await register(http)
    rs = await register(http, token_endpoint_auth_method="client_secret_basic")
    assert rs.client_secret is not None
    code = await get_code(http, client.client_id)
    tokens = (await exchange(http, client.client_id, code)).json()
    await exchange(http, client.client_id, code)  # replay
    second = await tokens_for(http, client.client_id)
    new = (await http.post("/token", data=refresh(client.client_id, second["refresh_token"]))).json()
    await http.post("/token", data=refresh(client.client_id, second["refresh_token"]))  # reuse
    third = await tokens_for(http, client.client_id)
    auth = (rs.client_id, rs.client_secret)
    for token in (third["access_token"], third["refresh_token"]):
        await http.post("/introspect", data={"token": token}, auth=auth)
    await http.post("/revoke", data={"token": third["access_token"], "client_id": client.client_id})
    path = rs.body["registration_client_uri"].removeprefix(ISSUER)
    headers = {"Authorization": f"Bearer {rs.body['registration_access_token']}"}
    updated = (await http.put(path, headers=headers, json={**rs.body, "client_name": "Renamed"})).json()
    await http.delete(path, headers=headers)
    found: list[Any] = [rs.client_secret, rs.body["registration_access_token"],
                        client.body["registration_access_token"], code, updated.get("client_secret"),
                        *tokens.values(), *second.values(), *new.values(), *third.values()]
    return [c for c in found if isinstance(c, str) and len(c) >= 32]


async def test_audit_broken_sink_changes_no_security_decision(
    model: MemoryOAuthServerModel, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    """SECURITY.md: with a sink that always raises, reuse still revokes the grant and answers
    ``invalid_grant`` (never a 500), and the failure is logged."""
    async def broken(event: AuditEvent) -> None:
        raise ConnectionError("audit database down")

    server = OAuthServer(model, settings(), clock=clock, on_event=broken)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as http:
        client = await register(http)
        tokens = await tokens_for(http, client.client_id)
        new = (await http.post("/token", data=refresh(client.client_id, tokens["refresh_token"]))).json()
        reused = await http.post("/token", data=refresh(client.client_id, tokens["refresh_token"]))
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        call = await http.post("/mcp", headers={"Authorization": f"Bearer {new['access_token']}"})
        assert call.status_code == 401
    assert any("refresh_reuse_detected" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
