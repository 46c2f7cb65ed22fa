"""The memory model's expiry heap: purges find expired records without scanning live ones,
and the heap's stale entries (records revoked or consumed before they expired) stay bounded.
It purges as it writes, by the server's clock; full, it is an outage (StorageUnavailable)."""

from __future__ import annotations

import pytest

from oauth_server import MemoryOAuthServerModel
from oauth_server.errors import StorageUnavailable
from tests.model.test_contract import NOW, access, code, open_grant, pending, refresh

LATER = NOW + 10**6  # codes and grants of these tests live until then


async def test_memory_expiry_heap_stays_bounded_when_grants_are_revoked() -> None:
    model = MemoryOAuthServerModel()
    for number in range(5000):
        grant = f"grant-{number}"
        await open_grant(model, first_code=code(grant, expires_at=LATER), expires_at=LATER)
        await model.save_tokens(access(grant, expires_at=NOW + 3600), refresh(grant, expires_at=NOW + 86400))
        await model.revoke_grant(grant, NOW)  # three stale heap entries per grant; the grant stays
    assert model._count() == 5000 and len(model.grants) == 5000
    assert not model.codes and not model.access_tokens and not model.refresh_tokens and not model.credentials
    # Rebuilt from the live records whenever stale entries outnumber them, not grown to 20,000.
    assert len(model._expiry.entries) <= 2 * model._count() + 1001


async def test_memory_purge_skips_revoked_entries_and_keeps_live_ones() -> None:
    model = MemoryOAuthServerModel()
    live = access("live", expires_at=NOW + 60)
    revoked = access("revoked", expires_at=NOW - 5)
    expired = [access(f"expired-{n}", expires_at=NOW - n) for n in range(3)]
    for token in (live, revoked, *expired):
        await open_grant(model, first_code=code(token.grant_id, expires_at=LATER), expires_at=LATER)
        await model.save_tokens(token, None)
    await model.revoke_grant("revoked", NOW)
    assert await model.purge_expired(NOW, batch=2) == 2  # oldest first: expired-2, expired-1
    assert await model.get_access_token(expired[0].token_digest) == expired[0]
    assert await model.purge_expired(NOW, batch=2) == 1
    assert await model.purge_expired(NOW + 59, batch=2) == 0
    assert await model.get_access_token(live.token_digest) == live
    assert await model.purge_expired(NOW + 60, batch=2) == 1
    assert not model.access_tokens and set(model.credentials) == set(model.grants) - {"revoked"}
    assert await model.purge_expired(LATER, batch=10) == 5 + 4  # the grants, and the codes of those not revoked
    assert model._expiry.entries == [] and not model.credentials and not model.grants


async def test_memory_purges_on_write_by_the_servers_clock() -> None:
    """``use_clock``: what the model purges by itself is decided by the clock the server runs on."""
    model = MemoryOAuthServerModel(purge_every=1)
    model.use_clock(lambda: NOW)
    stale = pending(expires_at=NOW - 1)
    await model.save_pending_authorization(stale)
    await model.save_pending_authorization(pending(expires_at=NOW + 60))
    assert await model.get_pending_authorization(stale.request_digest) is None
    model.use_clock(lambda: NOW - 10**6)  # a clock far behind the wall clock purges nothing
    older = pending(expires_at=NOW - 1)
    await model.save_pending_authorization(older)
    await model.save_pending_authorization(pending())
    assert await model.get_pending_authorization(older.request_digest) == older


async def test_memory_at_capacity_is_an_outage() -> None:
    model = MemoryOAuthServerModel(max_records=3)
    model.use_clock(lambda: NOW)
    await model.save_pending_authorization(pending())
    await model.save_pending_authorization(pending())
    await model.save_pending_authorization(pending())
    with pytest.raises(StorageUnavailable):
        await model.save_pending_authorization(pending())
