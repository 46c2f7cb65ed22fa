"""The memory model's expiry heap: purges find expired records without scanning live ones,
and the heap's stale entries (records revoked or consumed before they expired) stay bounded."""

from __future__ import annotations

from oauth_server import MemoryOAuthServerModel
from tests.model.test_contract import NOW, access, refresh


async def test_memory_expiry_heap_stays_bounded_when_grants_are_revoked() -> None:
    model = MemoryOAuthServerModel()
    for number in range(5000):
        grant = f"grant-{number}"
        await model.save_tokens(access(grant, expires_at=NOW + 3600), refresh(grant, expires_at=NOW + 86400))
        await model.revoke_grant(grant)  # two stale heap entries per grant
    assert model._count() == 0
    assert len(model._expiry) <= 1010  # rebuilt from the live records, not grown to 10,000


async def test_memory_purge_skips_revoked_entries_and_keeps_live_ones() -> None:
    model = MemoryOAuthServerModel()
    live = access("live", expires_at=NOW + 60)
    revoked = access("revoked", expires_at=NOW - 5)
    expired = [access(f"expired-{n}", expires_at=NOW - n) for n in range(3)]
    for token in (live, revoked, *expired):
        await model.save_tokens(token, None)
    await model.revoke_grant("revoked")
    assert await model.purge_expired(NOW, batch=2) == 2  # oldest first: expired-2, expired-1
    assert await model.get_access_token(expired[0].token_digest) == expired[0]
    assert await model.purge_expired(NOW, batch=2) == 1
    assert await model.purge_expired(NOW + 59, batch=2) == 0
    assert await model.get_access_token(live.token_digest) == live
    assert await model.purge_expired(NOW + 60, batch=2) == 1
    assert model._expiry == [] and model.grants == {}
