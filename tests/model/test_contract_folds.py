"""Contract of the folds (``OAuthServerModel``'s module docstring): each does what two verbs do, in one
atomic step, on every model, keeping every rule of the verbs it folds under concurrency: single
use of a pending request (RFC 6749 §10.12: one decision per request), of a refresh token
(RFC 9700 §4.14.2, with the ``reuse_after`` window), and "revocation wins" (RFC 9700 §4.5)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from oauth_server import OAuthServerSettings, tokens
from oauth_server.grants import authorization_code
from oauth_server.model.base import OAuthServerModel
from oauth_server.model.memory import MemoryOAuthServerModel
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.records import Grant
from tests.model.test_contract import (
    CONCURRENCY,
    NOW,
    PeakConnections,
    access,
    code,
    grant,
    open_grant,
    pending,
    refresh,
    warm_pool,
)


async def last_used(model: OAuthServerModel, grant_id: str) -> int | None:
    [found] = [g for g in await model.list_grants(subject="alice", include_revoked=True) if g.grant_id == grant_id]
    return found.last_used_at


async def grant_of(model: OAuthServerModel, grant_id: str) -> Grant | None:
    found = [g for g in await model.list_grants(subject="alice", include_revoked=True) if g.grant_id == grant_id]
    return found[0] if found else None


# -- approve_pending_authorization ------------------------------------------------------------------
async def test_approval_takes_the_pending_request_and_stores_grant_and_code(model: OAuthServerModel) -> None:
    request = pending()
    await model.save_pending_authorization(request)
    first = code("g-approved")
    assert await model.approve_pending_authorization(request.request_digest, first, grant("g-approved"))
    assert await model.get_pending_authorization(request.request_digest) is None
    assert await model.get_authorization_code(first.code_digest) == first
    assert await grant_of(model, "g-approved") == grant("g-approved")


async def test_a_request_already_answered_stores_nothing(model: OAuthServerModel) -> None:
    request = pending()
    await model.save_pending_authorization(request)
    assert await model.consume_pending_authorization(request.request_digest) is not None
    late = code("g-late")
    assert not await model.approve_pending_authorization(request.request_digest, late, grant("g-late"))
    assert await model.get_authorization_code(late.code_digest) is None
    assert await grant_of(model, "g-late") is None


async def test_an_approval_with_a_code_of_another_grant_is_refused(model: OAuthServerModel) -> None:
    request = pending()
    await model.save_pending_authorization(request)
    with pytest.raises(ValueError):
        await model.approve_pending_authorization(request.request_digest, code("g-a"), grant("g-b"))
    assert await model.get_pending_authorization(request.request_digest) == request


async def test_concurrent_decisions_on_one_request_one_wins(model: OAuthServerModel,
                                                            second_process: OAuthServerModel) -> None:
    """20 approvals (two processes) and a denial race for one request: exactly one takes it, and
    only the winner's grant and code exist."""
    request = pending()
    await model.save_pending_authorization(request)
    records = [(code(f"g-{i}"), grant(f"g-{i}")) for i in range(CONCURRENCY)]
    await warm_pool(model, CONCURRENCY)
    peak = PeakConnections(model)
    approvals = [(model if i % 2 else second_process).approve_pending_authorization(request.request_digest, *pair)
                 for i, pair in enumerate(records)]
    *approved, denied = await asyncio.gather(*approvals, model.consume_pending_authorization(request.request_digest))
    winners = approved.count(True) + (denied is not None)
    assert winners == 1
    stored = [c for c, _ in records if await model.get_authorization_code(c.code_digest) is not None]
    grants = [g for _, g in records if await grant_of(model, g.grant_id) is not None]
    assert len(stored) == len(grants) == approved.count(True)
    if isinstance(model, SQLAlchemyOAuthServerModel):
        assert peak.peak >= CONCURRENCY // 4, f"calls did not overlap (peak {peak.peak} connections)"


# -- save_tokens_recording_use -----------------------------------------------------------------------
async def test_stored_tokens_record_the_use(model: OAuthServerModel) -> None:
    await open_grant(model, "g-1")
    pair = access("g-1"), refresh("g-1")
    assert await model.save_tokens_recording_use(*pair, NOW + 5)
    assert await model.get_access_token(pair[0].token_digest) == pair[0]
    assert await model.get_refresh_token(pair[1].token_digest) == pair[1]
    assert await last_used(model, "g-1") == NOW + 5
    assert await model.save_tokens_recording_use(access("g-1"), None, NOW + 3)
    assert await last_used(model, "g-1") == NOW + 5  # never moved back


async def test_tokens_of_a_revoked_grant_are_not_stored_nor_recorded(model: OAuthServerModel) -> None:
    await open_grant(model, "g-1")
    await model.revoke_grant("g-1", NOW)
    pair = access("g-1"), refresh("g-1")
    assert not await model.save_tokens_recording_use(*pair, NOW + 5)
    assert await model.get_access_token(pair[0].token_digest) is None
    assert await model.get_refresh_token(pair[1].token_digest) is None
    assert await last_used(model, "g-1") is None
    assert not await model.save_tokens_recording_use(access("g-unknown"), None, NOW)


async def test_revocation_wins_over_concurrent_recorded_issuance(model: OAuthServerModel,
                                                                second_process: OAuthServerModel) -> None:
    """RFC 9700 §4.5: issuances racing a revocation from another process leave no token behind."""
    await open_grant(model, "g-1")
    pairs = [(access("g-1"), refresh("g-1")) for _ in range(CONCURRENCY)]
    await warm_pool(model, CONCURRENCY)
    issued = [model.save_tokens_recording_use(*pair, NOW + 1) for pair in pairs]
    half = CONCURRENCY // 2
    await asyncio.gather(*issued[:half], second_process.revoke_grant("g-1", NOW + 1), *issued[half:])
    for a, r in pairs:
        assert await model.get_access_token(a.token_digest) is None
        assert await model.get_refresh_token(r.token_digest) is None


# -- rotate_refresh_token_recording_use --------------------------------------------------------------
async def test_a_rotation_records_the_use_and_a_refused_one_does_not(model: OAuthServerModel) -> None:
    await open_grant(model, "g-1")
    old = refresh("g-1")
    assert await model.save_tokens(access("g-1"), old)
    assert await model.rotate_refresh_token_recording_use(old.token_digest, NOW + 5, access("g-1"), refresh("g-1"))
    assert await last_used(model, "g-1") == NOW + 5
    rotated = await model.get_refresh_token(old.token_digest)
    assert rotated is not None and rotated.rotated_at == NOW + 5
    late = access("g-1"), refresh("g-1")
    assert not await model.rotate_refresh_token_recording_use(old.token_digest, NOW + 9, *late)
    assert await last_used(model, "g-1") == NOW + 5
    assert await model.get_refresh_token(late[1].token_digest) is None
    # Within the window it rotates again; rotated_at keeps its first value.
    again = access("g-1"), refresh("g-1")
    assert await model.rotate_refresh_token_recording_use(old.token_digest, NOW + 9, *again, reuse_after=NOW + 5)
    assert await model.get_refresh_token(again[1].token_digest) == again[1]
    assert await last_used(model, "g-1") == NOW + 9
    assert dataclasses.replace(rotated) == await model.get_refresh_token(old.token_digest)


async def test_concurrent_recorded_rotations_rotate_once(model: OAuthServerModel,
                                                         second_process: OAuthServerModel) -> None:
    """RFC 9700 §4.14.2: of 20 simultaneous refreshes of one token (two processes), one rotates."""
    await open_grant(model, "g-1")
    old = refresh("g-1")
    await model.save_tokens(access("g-1"), old)
    pairs = [(access("g-1"), refresh("g-1")) for _ in range(CONCURRENCY)]
    await warm_pool(model, CONCURRENCY)
    peak = PeakConnections(model)
    results = await asyncio.gather(*((model if i % 2 else second_process).rotate_refresh_token_recording_use(
        old.token_digest, NOW + 1, *pair) for i, pair in enumerate(pairs)))
    assert results.count(True) == 1
    winner = pairs[results.index(True)]
    assert [p[1] for p in pairs if await model.get_refresh_token(p[1].token_digest) is not None] == [winner[1]]
    assert [p[0] for p in pairs if await model.get_access_token(p[0].token_digest) is not None] == [winner[0]]
    assert await last_used(model, "g-1") == NOW + 1
    if isinstance(model, SQLAlchemyOAuthServerModel):
        assert peak.peak >= CONCURRENCY // 4, f"calls did not overlap (peak {peak.peak} connections)"


async def test_concurrent_rotations_within_the_window_all_rotate(model: OAuthServerModel) -> None:
    """The grace window (``reuse_after``): concurrent rotations of one token each store their pair,
    none deadlocks on the grant row they all record their use in."""
    await open_grant(model, "g-1")
    old = refresh("g-1")
    await model.save_tokens(access("g-1"), old)
    pairs = [(access("g-1"), refresh("g-1")) for _ in range(CONCURRENCY)]
    await warm_pool(model, CONCURRENCY)
    results = await asyncio.gather(*(model.rotate_refresh_token_recording_use(
        old.token_digest, NOW + 1, *pair, reuse_after=NOW) for pair in pairs))
    assert results.count(True) == CONCURRENCY
    assert all([await model.get_refresh_token(p[1].token_digest) is not None for p in pairs])


async def test_revocation_wins_over_concurrent_recorded_rotations(model: OAuthServerModel,
                                                                  second_process: OAuthServerModel) -> None:
    """RFC 9700 §4.14.2: rotations racing a revocation from another process leave no token behind."""
    await open_grant(model, "g-1")
    old = refresh("g-1")
    await model.save_tokens(access("g-1"), old)
    pairs = [(access("g-1"), refresh("g-1")) for _ in range(CONCURRENCY)]
    await warm_pool(model, CONCURRENCY)
    rotations = [model.rotate_refresh_token_recording_use(old.token_digest, NOW + 1, *pair, reuse_after=NOW)
                 for pair in pairs]
    half = CONCURRENCY // 2
    await asyncio.gather(*rotations[:half], second_process.revoke_grant("g-1", NOW + 1), *rotations[half:])
    assert await model.get_refresh_token(old.token_digest) is None
    for a, r in pairs:
        assert await model.get_access_token(a.token_digest) is None
        assert await model.get_refresh_token(r.token_digest) is None


# -- the callers: the folds where a model offers them, the two verbs where it does not -------------
class WithoutFolds(MemoryOAuthServerModel):
    """A user's model written before the folds: the base class's defaults raise NotImplementedError."""

    approve_pending_authorization = OAuthServerModel.approve_pending_authorization
    save_tokens_recording_use = OAuthServerModel.save_tokens_recording_use
    rotate_refresh_token_recording_use = OAuthServerModel.rotate_refresh_token_recording_use


@pytest.mark.parametrize("kind", [MemoryOAuthServerModel, WithoutFolds])
async def test_an_approval_issues_one_code_per_request_with_or_without_the_fold(
        kind: type[MemoryOAuthServerModel]) -> None:
    model = kind()
    request = pending()
    await model.save_pending_authorization(request)
    settings = OAuthServerSettings(issuer_url="https://auth.example", resource_server_url="https://auth.example/mcp",
                                   authorization_url="https://auth.example/consent")
    first = await authorization_code.approve_pending(model, settings, request, "alice", ("mcp:tools",), NOW)
    assert first is not None
    stored = await model.get_authorization_code(tokens.digest(first))
    assert stored is not None and stored.subject == "alice" and stored.code_challenge == request.code_challenge
    assert await model.get_pending_authorization(request.request_digest) is None
    assert await authorization_code.approve_pending(model, settings, request, "alice", ("mcp:tools",), NOW) is None
    assert len(model.codes) == len(model.grants) == 1
