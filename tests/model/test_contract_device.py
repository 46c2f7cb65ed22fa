"""The contract of the RFC 8628 device authorization verbs, on memory, SQLite and Postgres.

What the server relies on: a record comes back as saved, by its user code; a taken user code is
refused; a decision (approve or deny) happens once, only while pending and unexpired, and an
approval stores its grant with it; a poll is on time or adds 5 s to the interval (RFC 8628
§3.5), and of concurrent polls at most one is on time; consumption is single use, only for an
approved unexpired record, also under concurrency; ``purge_expired`` removes expired records and
frees their user codes; ``delete_client`` removes the client's records.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets

from oauth_server.model.base import SLOW_DOWN_SECONDS, OAuthServerModel
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.records import DEVICE_APPROVED, DEVICE_DENIED, DeviceAuthorization, Grant
from tests.model.test_contract import CONCURRENCY, NOW, PeakConnections, client, digest, warm_pool


def device(**changes: object) -> DeviceAuthorization:
    record = DeviceAuthorization(
        device_code_digest=digest(), user_code_digest=digest(), client_id="client-1",
        scopes=("mcp:tools", "mcp:prompts"), resource="http://localhost:8000/mcp", expires_at=NOW + 600,
        poll_interval=5,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def grant_for(record: DeviceAuthorization, subject: str = "alice", scopes: tuple[str, ...] = ("mcp:tools",)) -> Grant:
    return Grant(grant_id=secrets.token_urlsafe(16), client_id=record.client_id, subject=subject, scopes=scopes,
                 resource=record.resource, created_at=NOW, expires_at=NOW + 90 * 86400)


async def test_device_authorization_roundtrip(model: OAuthServerModel) -> None:
    record = device()
    assert await model.save_device_authorization(record) is True
    assert await model.get_device_authorization(record.user_code_digest) == record
    assert await model.get_device_authorization(digest()) is None
    assert await model.poll_device_authorization(digest(), NOW) is None
    assert await model.consume_device_authorization(digest(), NOW) is None


async def test_a_taken_user_code_is_refused(model: OAuthServerModel) -> None:
    first = device()
    assert await model.save_device_authorization(first)
    assert await model.save_device_authorization(device(user_code_digest=first.user_code_digest)) is False
    assert await model.get_device_authorization(first.user_code_digest) == first


async def test_approval_stores_the_grant_and_the_user(model: OAuthServerModel) -> None:
    record = device()
    await model.save_device_authorization(record)
    grant = grant_for(record)
    assert await model.approve_device_authorization(record.user_code_digest, NOW, grant)
    stored = await model.get_device_authorization(record.user_code_digest)
    assert stored is not None
    assert (stored.status, stored.subject, stored.scopes, stored.grant_id) == (
        DEVICE_APPROVED, "alice", ("mcp:tools",), grant.grant_id)
    assert [g.grant_id for g in await model.list_grants(subject="alice")] == [grant.grant_id]


async def test_a_decision_is_made_once(model: OAuthServerModel) -> None:
    """Approve after deny, deny after approve, a second approval: all refused, nothing stored."""
    denied, approved = device(), device()
    for record in (denied, approved):
        await model.save_device_authorization(record)
    assert await model.deny_device_authorization(denied.user_code_digest, NOW)
    late = grant_for(denied)
    assert not await model.approve_device_authorization(denied.user_code_digest, NOW, late)
    assert not await model.deny_device_authorization(denied.user_code_digest, NOW)
    assert await model.approve_device_authorization(approved.user_code_digest, NOW, grant_for(approved))
    assert not await model.deny_device_authorization(approved.user_code_digest, NOW)
    assert not await model.approve_device_authorization(approved.user_code_digest, NOW, grant_for(approved, "mallory"))
    stored = await model.get_device_authorization(denied.user_code_digest)
    assert stored is not None and stored.status == DEVICE_DENIED and stored.grant_id is None
    assert await model.list_grants(subject="mallory") == []
    assert await model.list_grants(subject=late.subject, client_id="nobody") == []
    assert len(await model.list_grants(subject="alice")) == 1


async def test_no_decision_once_expired(model: OAuthServerModel) -> None:
    record = device(expires_at=NOW + 10)
    await model.save_device_authorization(record)
    assert not await model.approve_device_authorization(record.user_code_digest, NOW + 10, grant_for(record))
    assert not await model.deny_device_authorization(record.user_code_digest, NOW + 10)
    assert not await model.approve_device_authorization(digest(), NOW, grant_for(record))
    assert await model.list_grants(subject="alice") == []


async def test_poll_on_time_or_slow_down(model: OAuthServerModel) -> None:
    """RFC 8628 §3.5: a poll sooner than the interval adds 5 s to it, for all later polls too."""
    record = device(poll_interval=5)
    await model.save_device_authorization(record)
    polled = await model.poll_device_authorization(record.device_code_digest, NOW)
    assert polled is not None and polled[1] is True and polled[0].last_polled_at == NOW
    polled = await model.poll_device_authorization(record.device_code_digest, NOW + 4)
    assert polled is not None and polled[1] is False
    assert polled[0].poll_interval == 5 + SLOW_DOWN_SECONDS and polled[0].last_polled_at == NOW + 4
    polled = await model.poll_device_authorization(record.device_code_digest, NOW + 4 + 9)
    assert polled is not None and polled[1] is False and polled[0].poll_interval == 15
    polled = await model.poll_device_authorization(record.device_code_digest, NOW + 13 + 15)
    assert polled is not None and polled[1] is True and polled[0].poll_interval == 15


async def test_consume_only_approved_unexpired_once(model: OAuthServerModel) -> None:
    pending, denied, approved, expired = device(), device(), device(), device(expires_at=NOW + 5)
    for record in (pending, denied, approved, expired):
        await model.save_device_authorization(record)
    await model.deny_device_authorization(denied.user_code_digest, NOW)
    await model.approve_device_authorization(approved.user_code_digest, NOW, grant_for(approved))
    await model.approve_device_authorization(expired.user_code_digest, NOW, grant_for(expired))
    assert await model.consume_device_authorization(pending.device_code_digest, NOW) is None
    assert await model.consume_device_authorization(denied.device_code_digest, NOW) is None
    assert await model.consume_device_authorization(expired.device_code_digest, NOW + 5) is None
    consumed = await model.consume_device_authorization(approved.device_code_digest, NOW + 1)
    assert consumed is not None and consumed.consumed_at == NOW + 1 and consumed.subject == "alice"
    assert await model.consume_device_authorization(approved.device_code_digest, NOW + 2) is None
    polled = await model.poll_device_authorization(approved.device_code_digest, NOW + 60)
    assert polled is not None and polled[0].consumed_at == NOW + 1  # kept: a replay is recognised


async def test_concurrent_consumes_exactly_one_wins(model: OAuthServerModel) -> None:
    """RFC 8628 §3.4 / RFC 6749 §10.5: of 20 simultaneous redemptions of one device code, one wins."""
    record = device()
    await model.save_device_authorization(record)
    await model.approve_device_authorization(record.user_code_digest, NOW, grant_for(record))
    await warm_pool(model, CONCURRENCY)
    peak = PeakConnections(model)
    results = await asyncio.gather(
        *(model.consume_device_authorization(record.device_code_digest, NOW + 1) for _ in range(CONCURRENCY)))
    assert len([result for result in results if result is not None]) == 1
    if isinstance(model, SQLAlchemyOAuthServerModel):
        assert peak.peak >= CONCURRENCY // 2, f"calls did not overlap (peak {peak.peak} connections)"


async def test_concurrent_decisions_exactly_one_wins(model: OAuthServerModel) -> None:
    """Twenty approvals (each with its own grant) and denials at once: one decision, one grant at most."""
    record = device()
    await model.save_device_authorization(record)
    await warm_pool(model, CONCURRENCY)
    grants = [grant_for(record, subject=f"user-{i}") for i in range(CONCURRENCY)]
    results = await asyncio.gather(*(
        model.approve_device_authorization(record.user_code_digest, NOW, grant) if i % 2
        else model.deny_device_authorization(record.user_code_digest, NOW)
        for i, grant in enumerate(grants)))
    assert results.count(True) == 1
    stored_grants = [g for grant in grants for g in await model.list_grants(subject=grant.subject)]
    stored = await model.get_device_authorization(record.user_code_digest)
    assert stored is not None
    if stored.status == DEVICE_APPROVED:
        assert [g.grant_id for g in stored_grants] == [stored.grant_id]
    else:
        assert stored_grants == []


async def test_concurrent_polls_at_most_one_on_time(model: OAuthServerModel) -> None:
    """RFC 8628 §3.5: the interval is enforced per device code, also against polls sent at once."""
    record = device(poll_interval=5)
    await model.save_device_authorization(record)
    await warm_pool(model, CONCURRENCY)
    results = await asyncio.gather(
        *(model.poll_device_authorization(record.device_code_digest, NOW) for _ in range(CONCURRENCY)))
    on_time = [polled for polled in results if polled is not None and polled[1]]
    assert len(on_time) == 1
    final = await model.poll_device_authorization(record.device_code_digest, NOW)
    assert final is not None and final[0].poll_interval == 5 + CONCURRENCY * SLOW_DOWN_SECONDS


async def test_purge_removes_expired_and_frees_the_user_code(model: OAuthServerModel) -> None:
    old, live = device(expires_at=NOW - 1), device(expires_at=NOW + 600)
    for record in (old, live):
        await model.save_device_authorization(record)
    assert await model.purge_expired(NOW) >= 1
    assert await model.get_device_authorization(old.user_code_digest) is None
    assert await model.get_device_authorization(live.user_code_digest) == live
    assert await model.save_device_authorization(device(user_code_digest=old.user_code_digest))


async def test_deleting_the_client_removes_its_device_authorizations(model: OAuthServerModel) -> None:
    owner = client()
    await model.save_client(owner)
    mine, other = device(client_id=owner.client_id), device(client_id="someone-else")
    for record in (mine, other):
        await model.save_device_authorization(record)
    assert await model.delete_client(owner.client_id, NOW)
    assert await model.get_device_authorization(mine.user_code_digest) is None
    assert await model.get_device_authorization(other.user_code_digest) == other
    assert await model.save_device_authorization(device(user_code_digest=mine.user_code_digest))
