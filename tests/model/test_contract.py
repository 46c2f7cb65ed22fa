"""The contract every ``OAuthServerModel`` keeps, run on memory, SQLite and Postgres.

What the server relies on: records come back exactly as saved; unknown keys give None;
``consume_*``, ``bind_*`` and ``rotate_*`` succeed once, also under concurrency (RFC 6749 §10.5,
RFC 9700 §4.14.2); ``revoke_grant`` ends exactly one grant, and nothing is issued into a
revoked grant; ``purge_expired`` removes only expired records, at most ``batch`` of each kind
per call; signing keys (RFC 9068) are listed in one order everywhere and retired once. The races
between revocation and issuance are in ``test_revocation_races.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from oauth_server.errors import StorageUnavailable
from oauth_server.model.base import OAuthServerModel
from oauth_server.model.memory import MemoryOAuthServerModel
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.records import (
    AccessToken,
    AuthorizationCode,
    Client,
    Grant,
    PendingAuthorization,
    RefreshToken,
    SigningKey,
)

NOW = 1_800_000_000
CONCURRENCY = 20


def digest() -> str:
    return secrets.token_hex(32)


def client(**changes: object) -> Client:
    record = Client(
        client_id=secrets.token_urlsafe(16), redirect_uris=("http://127.0.0.1:33418/callback", "https://app.example/cb"),
        token_endpoint_auth_method="client_secret_post", client_id_issued_at=NOW, client_secret_digest=digest(),
        client_secret_expires_at=0, scope="mcp:tools mcp:prompts", client_name="Ünïcode client",
        client_uri="https://app.example", contacts=("ops@app.example", "name with spaces"),
        software_id="sw", software_version="1.0", application_type="native",
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def pending(**changes: object) -> PendingAuthorization:
    record = PendingAuthorization(
        request_digest=digest(), client_id="client-1", redirect_uri="http://127.0.0.1:33418/callback",
        redirect_uri_provided_explicitly=True, scopes=("mcp:tools",), code_challenge="c" * 43,
        resource="http://localhost:8000/mcp", state="xyz", expires_at=NOW + 600,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def grant(grant_id: str = "grant-1", **changes: object) -> Grant:
    record = Grant(
        grant_id=grant_id, client_id="client-1", subject="alice", scopes=("mcp:tools", "mcp:prompts"),
        resource="http://localhost:8000/mcp", created_at=NOW, expires_at=NOW + 90 * 86400,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def code(grant_id: str = "grant-1", **changes: object) -> AuthorizationCode:
    record = AuthorizationCode(
        code_digest=digest(), grant_id=grant_id, client_id="client-1", subject="alice",
        redirect_uri="http://127.0.0.1:33418/callback", redirect_uri_provided_explicitly=False,
        scopes=("mcp:tools", "mcp:prompts"), code_challenge="c" * 43, resource="http://localhost:8000/mcp",
        expires_at=NOW + 60,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def access(grant_id: str = "grant-1", **changes: object) -> AccessToken:
    record = AccessToken(
        token_digest=digest(), grant_id=grant_id, client_id="client-1", subject="alice",
        scopes=("mcp:tools",), resource="http://localhost:8000/mcp", expires_at=NOW + 3600,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def refresh(grant_id: str = "grant-1", **changes: object) -> RefreshToken:
    record = RefreshToken(
        token_digest=digest(), grant_id=grant_id, client_id="client-1", subject="alice", scopes=("mcp:tools",),
        resource="http://localhost:8000/mcp", expires_at=NOW + 86400, grant_expires_at=NOW + 30 * 86400,
        granted_scopes=("mcp:tools", "mcp:prompts"),
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def signing_key(kid: str | None = None, **changes: object) -> SigningKey:
    record = SigningKey(
        kid=kid or secrets.token_urlsafe(32), algorithm="ES256",
        public_jwk='{"kty":"EC","crv":"P-256","x":"ünï","y":"y"}', private_key="v1." + secrets.token_urlsafe(96),
        created_at=NOW, activates_at=NOW + 300,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


async def open_grant(model: OAuthServerModel, grant_id: str | None = None, *,
                     first_code: AuthorizationCode | None = None, **changes: object) -> AuthorizationCode:
    """Approve a new grant (``grant_id`` or a random one) as the server does: the grant with its
    first code. Returns that code; ``changes`` apply to the grant."""
    grant_id = first_code.grant_id if first_code is not None else grant_id or f"grant-{secrets.token_hex(8)}"
    first = first_code or code(grant_id)
    await model.save_authorization_code(first, grant(grant_id, **changes))
    return first


# -- roundtrips ----------------------------------------------------------------------------------
async def test_client_roundtrip(model: OAuthServerModel) -> None:
    full, bare = client(), client(client_secret_digest=None, client_secret_expires_at=None, scope=None,
                                  client_name=None, client_uri=None, contacts=(), software_id=None,
                                  software_version=None, application_type=None, token_endpoint_auth_method="none")
    for record in (full, bare):
        await model.save_client(record)
        assert await model.get_client(record.client_id) == record


async def test_pending_roundtrip(model: OAuthServerModel) -> None:
    record = pending(state=None)
    await model.save_pending_authorization(record)
    assert await model.get_pending_authorization(record.request_digest) == record


async def test_code_roundtrip(model: OAuthServerModel) -> None:
    record = code()
    await model.save_authorization_code(record, grant())
    assert await model.get_authorization_code(record.code_digest) == record


async def test_tokens_roundtrip(model: OAuthServerModel) -> None:
    await open_grant(model, "grant-1")
    pair = access(), refresh(scopes=())
    assert await model.save_tokens(*pair) is True
    assert await model.get_access_token(pair[0].token_digest) == pair[0]
    assert await model.get_refresh_token(pair[1].token_digest) == pair[1]
    alone = access()
    assert await model.save_tokens(alone, None) is True
    assert await model.get_access_token(alone.token_digest) == alone


async def test_a_grant_is_saved_once_and_only_with_its_own_code(model: OAuthServerModel) -> None:
    """A second save of a grant id must fail, so it can never bring a revoked grant back."""
    await open_grant(model, "grant-1")
    await model.revoke_grant("grant-1", NOW)
    with pytest.raises((ValueError, IntegrityError)):
        await model.save_authorization_code(code("grant-1"), grant("grant-1"))
    with pytest.raises(ValueError):
        await model.save_authorization_code(code("grant-2"), grant("grant-3"))
    assert await model.save_tokens(access("grant-1"), None) is False


async def test_a_grant_without_a_code_holds_tokens_and_is_revoked_whole(model: OAuthServerModel) -> None:
    """``save_grant``: a grant born at the token endpoint (client_credentials, ID-JAG) takes its
    tokens, is listed, is revoked with them, is never saved twice, and is purged at expiry."""
    machine = grant("grant-m", subject="client-1", expires_at=NOW + 3600)
    await model.save_grant(machine)
    token = access("grant-m", subject="client-1")
    assert await model.save_tokens(token, None) is True
    assert await model.list_grants(client_id="client-1") == [machine]
    with pytest.raises((ValueError, IntegrityError)):
        await model.save_grant(machine)
    await model.revoke_grant("grant-m", NOW)
    assert await model.get_access_token(token.token_digest) is None
    assert await model.save_tokens(access("grant-m"), None) is False
    with pytest.raises((ValueError, IntegrityError)):
        await model.save_grant(machine)  # a revoked grant is never revived
    assert await model.purge_expired(NOW + 3600) >= 1
    assert await model.list_grants(client_id="client-1", include_revoked=True) == []


async def test_unknown_keys(model: OAuthServerModel) -> None:
    unknown = digest()
    assert await model.get_client(unknown) is None
    assert await model.get_pending_authorization(unknown) is None
    assert await model.bind_pending_authorization(unknown, digest()) is False
    assert await model.consume_pending_authorization(unknown) is None
    assert await model.get_authorization_code(unknown) is None
    assert await model.consume_authorization_code(unknown, NOW) is None
    assert await model.get_access_token(unknown) is None
    assert await model.get_refresh_token(unknown) is None
    new_access, new_refresh = access(), refresh()
    assert await model.rotate_refresh_token(unknown, NOW, new_access, new_refresh) is False
    assert await model.get_access_token(new_access.token_digest) is None
    await model.revoke_grant(unknown, NOW)  # no-op


async def test_no_tokens_for_a_grant_never_saved(model: OAuthServerModel) -> None:
    """Every credential belongs to a stored grant: nothing is issued for an unknown one."""
    orphan_access, orphan_refresh = access("grant-unknown"), refresh("grant-unknown")
    assert await model.save_tokens(orphan_access, orphan_refresh) is False
    assert await model.save_tokens(orphan_access, None) is False
    assert await model.get_access_token(orphan_access.token_digest) is None
    assert await model.get_refresh_token(orphan_refresh.token_digest) is None


# -- single use ----------------------------------------------------------------------------------
async def test_code_is_consumed_once(model: OAuthServerModel) -> None:
    """RFC 6749 §10.5: a code is single use; the consumed code stays so a replay is recognised."""
    record = await open_grant(model)
    consumed = await model.consume_authorization_code(record.code_digest, NOW + 5)
    assert consumed is not None
    assert dataclasses.replace(consumed, consumed_at=None) == record
    assert await model.consume_authorization_code(record.code_digest, NOW + 6) is None
    assert await model.get_authorization_code(record.code_digest) == dataclasses.replace(record, consumed_at=NOW + 5)


async def test_pending_is_consumed_once(model: OAuthServerModel) -> None:
    record = pending()
    await model.save_pending_authorization(record)
    assert await model.consume_pending_authorization(record.request_digest) == record
    assert await model.consume_pending_authorization(record.request_digest) is None
    assert await model.get_pending_authorization(record.request_digest) is None


async def test_pending_is_bound_once(model: OAuthServerModel) -> None:
    record = pending()
    first, second = digest(), digest()
    await model.save_pending_authorization(record)
    assert await model.bind_pending_authorization(record.request_digest, first) is True
    assert await model.bind_pending_authorization(record.request_digest, second) is False
    stored = await model.get_pending_authorization(record.request_digest)
    assert stored == dataclasses.replace(record, browser_digest=first)


async def test_refresh_token_rotates_once(model: OAuthServerModel) -> None:
    """RFC 9700 §4.14.2: a rotated refresh token stays, marked, so its reuse is detected."""
    await open_grant(model, "grant-1")
    old = refresh()
    await model.save_tokens(access(), old)
    new_access, new_refresh = access(), refresh()
    assert await model.rotate_refresh_token(old.token_digest, NOW + 7, new_access, new_refresh) is True
    assert await model.get_refresh_token(old.token_digest) == dataclasses.replace(old, rotated_at=NOW + 7)
    assert await model.get_access_token(new_access.token_digest) == new_access
    assert await model.get_refresh_token(new_refresh.token_digest) == new_refresh
    late_access, late_refresh = access(), refresh()
    assert await model.rotate_refresh_token(old.token_digest, NOW + 8, late_access, late_refresh) is False
    assert await model.get_access_token(late_access.token_digest) is None
    assert await model.get_refresh_token(late_refresh.token_digest) is None


# -- revocation ----------------------------------------------------------------------------------
async def test_revoke_grant_removes_that_grant_only(model: OAuthServerModel) -> None:
    """RFC 9700 §4.5 / §4.14.2: a replay or reuse ends the whole grant, and nothing else."""
    grants = {
        grant_id: (code(grant_id), access(grant_id), refresh(grant_id), refresh(grant_id, rotated_at=NOW))
        for grant_id in ("grant-a", "grant-b")
    }
    for grant_code, grant_access, live, rotated in grants.values():
        await open_grant(model, first_code=grant_code)
        assert await model.save_tokens(grant_access, live) is True
        assert await model.save_tokens(access(grant_code.grant_id), rotated) is True
    waiting = pending()
    await model.save_pending_authorization(waiting)

    await model.revoke_grant("grant-a", NOW)

    revoked_code, revoked_access, revoked_live, revoked_rotated = grants["grant-a"]
    assert await model.get_authorization_code(revoked_code.code_digest) is None
    assert await model.get_access_token(revoked_access.token_digest) is None
    assert await model.get_refresh_token(revoked_live.token_digest) is None
    assert await model.get_refresh_token(revoked_rotated.token_digest) is None
    kept_code, kept_access, kept_live, kept_rotated = grants["grant-b"]
    assert await model.get_authorization_code(kept_code.code_digest) == kept_code
    assert await model.get_access_token(kept_access.token_digest) == kept_access
    assert await model.get_refresh_token(kept_live.token_digest) == kept_live
    assert await model.get_refresh_token(kept_rotated.token_digest) == kept_rotated
    assert await model.get_pending_authorization(waiting.request_digest) == waiting


async def test_save_tokens_after_revoke_grant_stores_nothing(model: OAuthServerModel) -> None:
    """RFC 9700 §4.5: once a replay revoked the grant, the redemption that raced it gets nothing."""
    await open_grant(model, "grant-1")
    await model.revoke_grant("grant-1", NOW)
    late_access, late_refresh = access(), refresh()
    assert await model.save_tokens(late_access, late_refresh) is False
    assert await model.save_tokens(late_access, None) is False
    assert await model.get_access_token(late_access.token_digest) is None
    assert await model.get_refresh_token(late_refresh.token_digest) is None


async def test_rotate_after_revoke_grant_returns_false(model: OAuthServerModel) -> None:
    """RFC 9700 §4.14.2: a refresh that lost to a revocation stores nothing."""
    await open_grant(model, "grant-1")
    old = refresh()
    await model.save_tokens(access(), old)
    await model.revoke_grant("grant-1", NOW)
    await model.revoke_grant("grant-1", NOW + 1)  # again: still revoked, no error
    new_access, new_refresh = access(), refresh()
    assert await model.rotate_refresh_token(old.token_digest, NOW + 2, new_access, new_refresh) is False
    assert await model.get_access_token(new_access.token_digest) is None
    assert await model.get_refresh_token(new_refresh.token_digest) is None


async def test_revoked_grant_is_kept_until_it_expires_then_purged(model: OAuthServerModel) -> None:
    """The revocation mark outlives every credential the grant could have had, then goes."""
    await open_grant(model, "grant-1", expires_at=NOW + 100)
    await model.revoke_grant("grant-1", NOW)
    assert await model.purge_expired(NOW + 99) == 0
    assert await model.save_tokens(access(), None) is False
    assert await model.purge_expired(NOW + 100) == 1
    assert await model.save_tokens(access(), None) is False
    assert await model.purge_expired(NOW + 100) == 0


# -- housekeeping --------------------------------------------------------------------------------
async def test_purge_expired_removes_only_expired_records_in_batches(model: OAuthServerModel) -> None:
    await open_grant(model, "grant-1", first_code=code(expires_at=NOW + 1))
    expired_access = [access(expires_at=NOW - i) for i in range(3)]  # expires_at == NOW is expired
    for token in expired_access:
        await model.save_tokens(token, None)
    # An expired grant, and its code: both go.
    expired_code = await open_grant(model, first_code=code(f"grant-{secrets.token_hex(4)}", expires_at=NOW),
                                    expires_at=NOW)
    expired_refresh, expired_pending = refresh(expires_at=NOW - 1), pending(expires_at=NOW - 1)
    await model.save_tokens(access(), expired_refresh)
    await model.save_pending_authorization(expired_pending)
    secret_expired = client(client_secret_expires_at=NOW - 1)
    await model.save_client(secret_expired)
    # Live ones, including a consumed code and a rotated refresh token: kept until they expire.
    live = [code("grant-2", expires_at=NOW + 1), code("grant-3", consumed_at=NOW - 5), access(expires_at=NOW + 1),
            refresh(rotated_at=NOW - 5), pending(expires_at=NOW + 1), client(), client(client_secret_expires_at=None),
            client(client_secret_expires_at=NOW + 1)]
    for record in live:
        await _save(model, record)

    # batch=2: two expired access tokens, and the one expired record of each other kind.
    assert await model.purge_expired(NOW, batch=2) == 2 + 1 + 1 + 1 + 1 + 1
    assert await model.purge_expired(NOW, batch=2) == 1
    assert await model.purge_expired(NOW, batch=2) == 0

    for token in expired_access:
        assert await model.get_access_token(token.token_digest) is None
    assert await model.get_authorization_code(expired_code.code_digest) is None
    assert await model.get_refresh_token(expired_refresh.token_digest) is None
    assert await model.get_pending_authorization(expired_pending.request_digest) is None
    assert await model.get_client(secret_expired.client_id) is None
    for record in live:
        assert await _load(model, record) == record


async def _save(model: OAuthServerModel, record: object) -> None:
    """Save ``record``; a code as the first of its grant, a token in (existing) grant-1."""
    if isinstance(record, AuthorizationCode):
        await open_grant(model, first_code=record)
    elif isinstance(record, AccessToken):
        await model.save_tokens(record, None)
    elif isinstance(record, RefreshToken):
        await model.save_tokens(access(), record)
    elif isinstance(record, PendingAuthorization):
        await model.save_pending_authorization(record)
    elif isinstance(record, Client):
        await model.save_client(record)


async def _load(model: OAuthServerModel, record: object) -> object:
    if isinstance(record, AuthorizationCode):
        return await model.get_authorization_code(record.code_digest)
    if isinstance(record, AccessToken):
        return await model.get_access_token(record.token_digest)
    if isinstance(record, RefreshToken):
        return await model.get_refresh_token(record.token_digest)
    if isinstance(record, PendingAuthorization):
        return await model.get_pending_authorization(record.request_digest)
    assert isinstance(record, Client)
    return await model.get_client(record.client_id)


# -- signing keys (RFC 9068) ---------------------------------------------------------------------
async def test_signing_keys_roundtrip_in_activation_then_kid_order(model: OAuthServerModel) -> None:
    """Every process must pick the same signing key: one order, ``kid`` by code point (``B`` < ``a``
    < ``a-b``), whatever the database's collation."""
    assert await model.list_signing_keys() == []
    later = signing_key("0-first-by-kid", activates_at=NOW + 600)
    retired = signing_key("old", created_at=NOW - 900, activates_at=NOW - 600, retires_at=NOW, expires_at=NOW + 3600)
    tied = [signing_key(kid) for kid in ("a-b", "B", "a")]
    for key in (later, *tied, retired):
        await model.save_signing_key(key)
    assert await model.list_signing_keys() == [retired, tied[1], tied[2], tied[0], later]


async def test_a_duplicate_kid_is_an_error_not_an_outage(model: OAuthServerModel) -> None:
    first = signing_key("kid-1")
    await model.save_signing_key(first)
    with pytest.raises((ValueError, IntegrityError)) as raised:
        await model.save_signing_key(signing_key("kid-1", algorithm="RS256"))
    assert not isinstance(raised.value, StorageUnavailable)
    assert await model.list_signing_keys() == [first]


async def test_a_signing_key_is_retired_once(model: OAuthServerModel) -> None:
    """The second retirement changes nothing: the key keeps the times of the first."""
    key, other = signing_key("kid-1"), signing_key("kid-2")
    await model.save_signing_key(key)
    await model.save_signing_key(other)
    assert await model.retire_signing_key("kid-1", NOW + 10, NOW + 3610) is True
    assert await model.retire_signing_key("kid-1", NOW + 20, NOW + 3620) is False
    assert await model.retire_signing_key("no-such-kid", NOW, NOW) is False
    assert await model.list_signing_keys() == [
        dataclasses.replace(key, retires_at=NOW + 10, expires_at=NOW + 3610), other]


async def test_purge_removes_only_expired_signing_keys(model: OAuthServerModel) -> None:
    """A key without ``expires_at`` still signs: never purged. A retired one goes at its expiry."""
    signing, published = signing_key("signing"), signing_key("published")
    expired = signing_key("expired", retires_at=NOW - 100, expires_at=NOW - 1)
    for key in (signing, published, expired):
        await model.save_signing_key(key)
    assert await model.retire_signing_key("published", NOW - 50, NOW + 1) is True
    assert await model.purge_expired(NOW) == 1
    assert [key.kid for key in await model.list_signing_keys()] == ["published", "signing"]
    assert await model.purge_expired(NOW + 1) == 1
    assert await model.list_signing_keys() == [signing]
    assert await model.purge_expired(NOW + 10**9) == 0


async def test_a_model_without_signing_keys_says_what_to_do() -> None:
    """The defaults of the contract: a user's own model keeps working until managed keys are used."""
    model = MemoryOAuthServerModel()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: OAuthServerModel.save_signing_key(model, signing_key()),
        lambda: OAuthServerModel.list_signing_keys(model),
        lambda: OAuthServerModel.retire_signing_key(model, "kid", NOW, NOW),
    ]
    for call in calls:
        with pytest.raises(NotImplementedError, match="does not store signing keys; pass signing_keys="):
            await call()


# -- concurrency ---------------------------------------------------------------------------------
class PeakConnections:
    """How many calls a SQL model had at the database at once (proves real overlap): pooled
    connections checked out, or on SQLite, writes handed to its writer thread and not yet answered."""

    def __init__(self, model: OAuthServerModel) -> None:
        self.current = self.peak = 0
        lite = getattr(model, "_lite", None)
        if lite is not None:
            submit = lite._submit

            async def counted(*args: Any, **kwargs: Any) -> Any:
                self._checkout()
                try:
                    return await submit(*args, **kwargs)
                finally:
                    self._checkin()

            lite._submit = counted
        elif isinstance(model, SQLAlchemyOAuthServerModel):
            event.listen(model.engine.sync_engine.pool, "checkout", self._checkout)
            event.listen(model.engine.sync_engine.pool, "checkin", self._checkin)

    def _checkout(self, *_: object) -> None:
        self.current += 1
        self.peak = max(self.peak, self.current)

    def _checkin(self, *_: object) -> None:
        self.current -= 1


async def warm_pool(model: OAuthServerModel, size: int) -> None:
    """Open ``size`` connections up front, so the concurrent calls do not queue on connecting."""
    if isinstance(model, SQLAlchemyOAuthServerModel):
        connections = [await model.engine.connect() for _ in range(size)]
        for conn in connections:
            await conn.close()


async def test_concurrent_code_redemption_succeeds_once(model: OAuthServerModel) -> None:
    """RFC 6749 §10.5: of 20 simultaneous redemptions of one code, exactly one gets it."""
    record = await open_grant(model)
    await warm_pool(model, CONCURRENCY)
    peak = PeakConnections(model)
    results = await asyncio.gather(
        *(model.consume_authorization_code(record.code_digest, NOW + i) for i in range(CONCURRENCY))
    )
    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    stored = await model.get_authorization_code(record.code_digest)
    assert stored is not None and stored.consumed_at is not None
    if isinstance(model, SQLAlchemyOAuthServerModel):
        assert peak.peak >= CONCURRENCY // 2, f"calls did not overlap (peak {peak.peak} connections)"
    print(f"consume x{CONCURRENCY}: {len(winners)} winner, peak {peak.peak} connections")


async def test_concurrent_refresh_rotates_once(model: OAuthServerModel) -> None:
    """RFC 9700 §4.14.2: of 20 simultaneous refreshes of one token, exactly one rotates it."""
    await open_grant(model, "grant-1")
    old = refresh()
    await model.save_tokens(access(), old)
    pairs = [(access(), refresh()) for _ in range(CONCURRENCY)]
    await warm_pool(model, CONCURRENCY)
    peak = PeakConnections(model)
    results = await asyncio.gather(
        *(model.rotate_refresh_token(old.token_digest, NOW + 1, *pair) for pair in pairs)
    )
    assert results.count(True) == 1
    stored_refresh = [pair[1] for pair in pairs if await model.get_refresh_token(pair[1].token_digest) is not None]
    stored_access = [pair[0] for pair in pairs if await model.get_access_token(pair[0].token_digest) is not None]
    winner = pairs[results.index(True)]
    assert stored_refresh == [winner[1]]
    assert stored_access == [winner[0]]
    if isinstance(model, SQLAlchemyOAuthServerModel):
        assert peak.peak >= CONCURRENCY // 2, f"calls did not overlap (peak {peak.peak} connections)"
    print(f"rotate x{CONCURRENCY}: {results.count(True)} True, {len(stored_refresh)} new refresh token, "
          f"peak {peak.peak} connections")


async def test_concurrent_retirements_agree(model: OAuthServerModel, second_process: OAuthServerModel) -> None:
    """Two processes rotating at once: exactly one retirement wins, and its times are the ones kept."""
    key = signing_key("kid-1")
    await model.save_signing_key(key)
    await warm_pool(model, CONCURRENCY)
    await warm_pool(second_process, CONCURRENCY)
    peaks = PeakConnections(model), PeakConnections(second_process)
    results = await asyncio.gather(*(
        (model if i % 2 else second_process).retire_signing_key("kid-1", NOW + i, NOW + 3600 + i)
        for i in range(CONCURRENCY)
    ))
    assert results.count(True) == 1
    if isinstance(model, SQLAlchemyOAuthServerModel):
        assert min(peak.peak for peak in peaks) >= CONCURRENCY // 4, "calls did not overlap in both processes"
    print(f"retire x{CONCURRENCY} over two processes: {results.count(True)} True, "
          f"peak {peaks[0].peak} + {peaks[1].peak} connections")
    won = results.index(True)
    expected = [dataclasses.replace(key, retires_at=NOW + won, expires_at=NOW + 3600 + won)]
    assert await model.list_signing_keys() == expected
    assert await second_process.list_signing_keys() == expected
