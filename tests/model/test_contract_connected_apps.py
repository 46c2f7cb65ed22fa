"""The contract of a user's connected apps, run on memory, SQLite and Postgres.

``revoke_subject_grant`` ends a grant only for its own subject, in one atomic step (another
subject's grant and an unknown id look alike: False, nothing changed), and wins over concurrent
issuance as ``revoke_grant`` does (RFC 9700 §4.5, §4.14.2). ``record_grant_use`` keeps the time
tokens were last issued in a grant: monotonic, and never on a revoked grant.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from oauth_server.model.base import OAuthServerModel
from oauth_server.model.memory import MemoryOAuthServerModel
from tests.model.test_contract import CONCURRENCY, NOW, access, grant, open_grant, refresh
from tests.model.test_revocation_races import JITTER, after, left_over

ROUNDS = 60


async def _grant_with_tokens(model: OAuthServerModel, grant_id: str, subject: str) -> tuple[str, str, str]:
    """A grant of ``subject`` with its first code, an access token and a refresh token; their digests."""
    first = await open_grant(model, grant_id, subject=subject)
    token, renewal = access(grant_id, subject=subject), refresh(grant_id, subject=subject)
    assert await model.save_tokens(token, renewal)
    return first.code_digest, token.token_digest, renewal.token_digest


async def test_a_subject_revokes_its_own_grant_and_every_credential_of_it(model: OAuthServerModel) -> None:
    code_digest, access_digest, refresh_digest = await _grant_with_tokens(model, "g-alice", "alice")
    assert await model.revoke_subject_grant("g-alice", "alice", NOW) is True
    assert await model.get_authorization_code(code_digest) is None
    assert await model.get_access_token(access_digest) is None
    assert await model.get_refresh_token(refresh_digest) is None
    [revoked] = await model.list_grants(subject="alice", include_revoked=True)
    assert revoked.revoked_at == NOW
    assert await model.save_tokens(access("g-alice", subject="alice"), None) is False


async def test_another_subjects_grant_is_refused_like_an_unknown_one(model: OAuthServerModel) -> None:
    """Bob naming Alice's grant id changes nothing, and gets the answer an unknown id gets."""
    code_digest, access_digest, refresh_digest = await _grant_with_tokens(model, "g-alice", "alice")
    assert await model.revoke_subject_grant("g-alice", "bob", NOW) is False
    assert await model.revoke_subject_grant("g-nobody", "bob", NOW) is False
    assert await model.revoke_subject_grant("g-alice", "Alice", NOW) is False  # exact match, no case folding
    assert await model.get_authorization_code(code_digest) is not None
    assert await model.get_access_token(access_digest) is not None
    assert await model.get_refresh_token(refresh_digest) is not None
    assert [g.grant_id for g in await model.list_grants(subject="alice")] == ["g-alice"]
    assert await model.save_tokens(access("g-alice", subject="alice"), None) is True


async def test_revoking_an_own_grant_again_keeps_the_first_time(model: OAuthServerModel) -> None:
    await _grant_with_tokens(model, "g-alice", "alice")
    assert await model.revoke_subject_grant("g-alice", "alice", NOW) is True
    assert await model.revoke_subject_grant("g-alice", "alice", NOW + 50) is True
    [revoked] = await model.list_grants(subject="alice", include_revoked=True)
    assert revoked.revoked_at == NOW


async def test_only_the_named_grant_of_the_subject_ends(model: OAuthServerModel) -> None:
    await _grant_with_tokens(model, "g-1", "alice")
    _, kept_access, kept_refresh = await _grant_with_tokens(model, "g-2", "alice")
    assert await model.revoke_subject_grant("g-1", "alice", NOW)
    assert await model.get_access_token(kept_access) is not None
    assert await model.get_refresh_token(kept_refresh) is not None
    assert [g.grant_id for g in await model.list_grants(subject="alice")] == ["g-2"]


async def test_own_revocation_wins_over_concurrent_issuance(
        model: OAuthServerModel, second_process: OAuthServerModel) -> None:
    """RFC 9700 §4.14.2: 60 rounds of the owner's revocation racing save_tokens and a rotation on
    two processes; no token of the grant is left, whatever the order."""
    rng = random.Random()
    for number in range(ROUNDS):
        grant_id = f"g-race-{number}"
        _, _, old = await _grant_with_tokens(model, grant_id, "alice")
        issued = (access(grant_id, subject="alice"), refresh(grant_id, subject="alice"))
        rotation = (access(grant_id, subject="alice"), refresh(grant_id, subject="alice"))
        revoker, issuer = (model, second_process) if number % 2 else (second_process, model)
        owned, _, _ = await asyncio.gather(
            after(rng.uniform(0, JITTER), revoker.revoke_subject_grant(grant_id, "alice", NOW)),
            after(rng.uniform(0, JITTER), issuer.save_tokens(*issued)),
            after(rng.uniform(0, JITTER), issuer.rotate_refresh_token(old, NOW, *rotation)),
        )
        assert owned is True
        survivors = await left_over((model, second_process), [issued[0].token_digest, rotation[0].token_digest],
                                    [old, issued[1].token_digest, rotation[1].token_digest])
        assert survivors == [], f"round {number}: tokens of the revoked grant survived"


async def test_concurrent_own_revocations_all_succeed(model: OAuthServerModel) -> None:
    """Twenty clicks on "revoke" at once: each is told the grant was the user's, none fails."""
    await _grant_with_tokens(model, "g-alice", "alice")
    results = await asyncio.gather(*(model.revoke_subject_grant("g-alice", "alice", NOW + i)
                                     for i in range(CONCURRENCY)))
    assert results == [True] * CONCURRENCY
    [revoked] = await model.list_grants(subject="alice", include_revoked=True)
    assert revoked.revoked_at is not None


# -- last use --------------------------------------------------------------------------------------
async def test_record_grant_use_keeps_the_latest_time(model: OAuthServerModel) -> None:
    await open_grant(model, "g-1")
    [fresh] = await model.list_grants()
    assert fresh == grant("g-1") and fresh.last_used_at is None
    await model.record_grant_use("g-1", NOW + 10)
    await model.record_grant_use("g-1", NOW + 5)  # an older request finishing late does not go back
    [used] = await model.list_grants()
    assert used.last_used_at == NOW + 10
    await model.record_grant_use("g-1", NOW + 20)
    assert (await model.list_grants())[0].last_used_at == NOW + 20


async def test_record_grant_use_leaves_revoked_and_unknown_grants_alone(model: OAuthServerModel) -> None:
    await open_grant(model, "g-1")
    await model.record_grant_use("g-1", NOW + 1)
    await model.revoke_grant("g-1", NOW + 2)
    await model.record_grant_use("g-1", NOW + 3)
    [revoked] = await model.list_grants(include_revoked=True)
    assert (revoked.revoked_at, revoked.last_used_at) == (NOW + 2, NOW + 1)
    await model.record_grant_use("g-unknown", NOW)
    assert len(await model.list_grants(include_revoked=True)) == 1


async def test_concurrent_uses_end_at_the_latest(model: OAuthServerModel) -> None:
    await open_grant(model, "g-1")
    times = list(range(NOW, NOW + CONCURRENCY))
    random.shuffle(times)
    await asyncio.gather(*(model.record_grant_use("g-1", t) for t in times))
    assert (await model.list_grants())[0].last_used_at == NOW + CONCURRENCY - 1


# -- a model written before these verbs ----------------------------------------------------------------
class _OlderModel(MemoryOAuthServerModel):
    """A model that implements neither verb: the base class's defaults apply."""

    revoke_subject_grant = OAuthServerModel.revoke_subject_grant
    record_grant_use = OAuthServerModel.record_grant_use


async def test_a_model_without_the_verbs_serves_flows_and_says_what_is_missing() -> None:
    older = _OlderModel()
    await open_grant(older, "g-1")
    await older.record_grant_use("g-1", NOW)  # the default does nothing
    assert (await older.list_grants())[0].last_used_at is None
    with pytest.raises(NotImplementedError, match="revoke_subject_grant"):
        await older.revoke_subject_grant("g-1", "alice", NOW)
