"""Revocation wins over issuance under any interleaving, on every model (RFC 9700 §4.5, §4.14.2).

A replayed code or a reused refresh token revokes the grant while the request that won the code
or the rotation may still be storing its tokens. Whatever the order, once both are done no token
of the grant may be left. On SQLite and Postgres the two sides run on two model instances (two
pools, as two server processes would); random delays of a few milliseconds shift each side's
start, so that across the rounds both orders, and every overlap in between, occur.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from oauth_server.model.base import OAuthServerModel
from oauth_server.records import AccessToken, RefreshToken
from tests.model.test_contract import NOW, access, open_grant, refresh

T = TypeVar("T")
ROUNDS = 200
#: Seconds: about one revocation's duration on Postgres, so the starts overlap in every way.
JITTER = 0.003
REVOKERS = 20


async def after(delay: float, call: Awaitable[T]) -> T:
    await asyncio.sleep(delay)
    return await call


async def left_over(models: tuple[OAuthServerModel, ...], access_digests: list[str],
                    refresh_digests: list[str]) -> list[str]:
    """The digests still found by any of ``models``."""
    found = []
    for model in models:
        found += [d for d in access_digests if await model.get_access_token(d) is not None]
        found += [d for d in refresh_digests if await model.get_refresh_token(d) is not None]
    return found


def issuing(issuer: OAuthServerModel, fold: bool, pair: tuple[AccessToken, RefreshToken]) -> Awaitable[bool]:
    """``save_tokens``, or its fold ``save_tokens_recording_use``."""
    return issuer.save_tokens_recording_use(*pair, NOW) if fold else issuer.save_tokens(*pair)


def rotating(issuer: OAuthServerModel, fold: bool, old: str, pair: tuple[AccessToken, RefreshToken]) -> Awaitable[bool]:
    """``rotate_refresh_token``, or its fold ``rotate_refresh_token_recording_use``."""
    if fold:
        return issuer.rotate_refresh_token_recording_use(old, NOW, *pair)
    return issuer.rotate_refresh_token(old, NOW, *pair)


@pytest.mark.parametrize("fold", [False, True], ids=["two-verbs", "folds"])
async def test_revocation_wins_over_concurrent_issuance_and_rotation(
        model: OAuthServerModel, second_process: OAuthServerModel, fold: bool) -> None:
    """200 rounds of revoke_grant racing save_tokens and rotate_refresh_token of one grant (or
    their folds, which also record the use), on two processes: afterwards no token of the grant
    is left, and nothing more can be stored."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    stored = rotated = 0
    for number in range(ROUNDS):
        grant_id = (await open_grant(model)).grant_id
        old = refresh(grant_id)
        assert await model.save_tokens(access(grant_id), old)
        issued, rotation = (access(grant_id), refresh(grant_id)), (access(grant_id), refresh(grant_id))
        revoker, issuer = (model, second_process) if number % 2 else (second_process, model)
        _, saved, rotated_now = await asyncio.gather(
            after(rng.uniform(0, JITTER), revoker.revoke_grant(grant_id, NOW)),
            after(rng.uniform(0, JITTER), issuing(issuer, fold, issued)),
            after(rng.uniform(0, JITTER), rotating(issuer, fold, old.token_digest, rotation)),
        )
        stored += saved
        rotated += rotated_now
        survivors = await left_over((model, second_process), [issued[0].token_digest, rotation[0].token_digest],
                                    [old.token_digest, issued[1].token_digest, rotation[1].token_digest])
        assert survivors == [], f"round {number} (seed {seed}): tokens of the revoked grant survived"
        assert await issuer.save_tokens(access(grant_id), None) is False
    print(f"{ROUNDS} rounds: issuance stored first in {stored}, rotation first in {rotated} (seed {seed})")
    # Both orders happened, so both halves of the rule were exercised.
    assert 0 < stored < ROUNDS and 0 < rotated < ROUNDS


@pytest.mark.parametrize("fold", [False, True], ids=["two-verbs", "folds"])
async def test_concurrent_revocations_of_one_grant_never_fail(
        model: OAuthServerModel, second_process: OAuthServerModel, caplog: pytest.LogCaptureFixture,
        fold: bool) -> None:
    """20 revocations of one grant at once (20 requests that all saw the reuse) while a rotation
    and an issuance run, on two processes: no exception, no deadlock even resolved by a retry,
    and nothing of the grant left."""
    caplog.set_level(logging.INFO, logger="oauth_server")
    rng = random.Random()
    for _ in range(10):
        grant_id = (await open_grant(model)).grant_id
        old = refresh(grant_id)
        assert await model.save_tokens(access(grant_id), old)
        rotation, issued = (access(grant_id), refresh(grant_id)), (access(grant_id), refresh(grant_id))
        calls: list[Awaitable[object]] = [
            after(rng.uniform(0, JITTER), (model if n % 2 else second_process).revoke_grant(grant_id, NOW + n))
            for n in range(REVOKERS)
        ]
        calls.append(after(rng.uniform(0, JITTER), rotating(second_process, fold, old.token_digest, rotation)))
        calls.append(after(rng.uniform(0, JITTER), issuing(model, fold, issued)))
        await asyncio.gather(*calls)
        assert await left_over((model,), [rotation[0].token_digest, issued[0].token_digest],
                               [old.token_digest, rotation[1].token_digest, issued[1].token_digest]) == []
    conflicts = [record.getMessage() for record in caplog.records if "lost a conflict" in record.getMessage()]
    assert conflicts == []
