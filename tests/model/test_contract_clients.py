"""The contract for clients and what hangs on them, run on memory, SQLite and Postgres.

Client ID metadata documents are cached with ``upsert_client`` (atomic: two processes fetching
at once both succeed); RFC 7592 §2.2 ``replace_client`` replaces and never inserts; §2.3
``delete_client`` ends every grant of the client so that no credential issued to it survives,
whatever races it; listings page by code point and list grants newest first; a client
assertion's ``jti`` is used once (RFC 7523 §3 item 7); a refresh token may rotate again within a
grace window (``reuse_after``), and only then.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable

import pytest
from sqlalchemy.exc import IntegrityError

from oauth_server.model.base import MAX_JTI_LENGTH, OAuthServerModel
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.records import Client, Grant
from tests.model.test_contract import (
    CONCURRENCY,
    NOW,
    PeakConnections,
    access,
    client,
    grant,
    open_grant,
    pending,
    refresh,
    warm_pool,
)
from tests.model.test_revocation_races import JITTER, after, left_over

#: Rounds of delete_client racing issuance.
ROUNDS = 60


def document_client(client_id: str = "https://app.example/oauth/client.json", **changes: object) -> Client:
    """A client known by its metadata document, authenticating with private_key_jwt (RFC 7523)."""
    record = client(client_id=client_id, client_secret_digest=None, client_secret_expires_at=None,
                    token_endpoint_auth_method="private_key_jwt", metadata_document_expires_at=NOW + 3600,
                    jwks='{"keys":[{"kty":"EC","crv":"P-256","x":"ünï","y":"y"}]}',
                    jwks_uri="https://app.example/jwks.json", token_endpoint_auth_signing_alg="ES256",
                    registration_access_token_digest="d" * 64)
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


# -- clients -------------------------------------------------------------------------------------
async def test_client_new_fields_roundtrip(model: OAuthServerModel) -> None:
    for record in (document_client(), client()):
        await model.save_client(record)
        assert await model.get_client(record.client_id) == record


async def test_save_client_refuses_a_taken_id(model: OAuthServerModel) -> None:
    """Registration inserts only: a taken id is a defect (ids are generated), never an overwrite."""
    first = client()
    await model.save_client(first)
    with pytest.raises((ValueError, IntegrityError)):
        await model.save_client(dataclasses.replace(first, client_name="other"))
    assert await model.get_client(first.client_id) == first


async def test_upsert_client_inserts_then_replaces_every_field(model: OAuthServerModel) -> None:
    first = document_client()
    await model.upsert_client(first)
    assert await model.get_client(first.client_id) == first
    refetched = document_client(client_name=None, jwks=None, contacts=(), metadata_document_expires_at=NOW + 7200,
                                redirect_uris=("https://app.example/cb2",))
    await model.upsert_client(refetched)
    assert await model.get_client(first.client_id) == refetched


async def test_replace_client_replaces_every_field_and_never_inserts(model: OAuthServerModel) -> None:
    """RFC 7592 §2.2: an update of a client that does not exist creates nothing."""
    unknown = client()
    assert await model.replace_client(unknown) is False
    assert await model.get_client(unknown.client_id) is None
    registered, other = client(), client()
    await model.save_client(registered)
    await model.save_client(other)
    changed = dataclasses.replace(registered, redirect_uris=("https://app.example/new",), client_secret_digest=None,
                                  scope=None, registration_access_token_digest="e" * 64, client_secret_expires_at=None)
    assert await model.replace_client(changed) is True
    assert await model.get_client(registered.client_id) == changed
    assert await model.get_client(other.client_id) == other


async def test_delete_client_ends_every_grant_of_it_and_nothing_else(model: OAuthServerModel) -> None:
    """RFC 7592 §2.3: after the deletion no code, token or pending request of the client is
    left, its grants are revoked (an issuance into them stores nothing), and other clients keep
    everything."""
    doomed, kept = client(), client()
    for record in (doomed, kept):
        await model.save_client(record)
    credentials = {}
    for grant_id, owner in (("grant-d1", doomed), ("grant-d2", doomed), ("grant-k", kept)):
        first = await open_grant(model, grant_id, client_id=owner.client_id)
        live, rotated = refresh(grant_id, client_id=owner.client_id), refresh(grant_id, rotated_at=NOW)
        token = access(grant_id, client_id=owner.client_id)
        assert await model.save_tokens(token, live) and await model.save_tokens(access(grant_id), rotated)
        credentials[grant_id] = (first, token, live, rotated)
    await model.revoke_grant("grant-d2", NOW - 10)  # already revoked: keeps its first time
    waiting, other_waiting = pending(client_id=doomed.client_id), pending(client_id=kept.client_id)
    for request in (waiting, other_waiting):
        await model.save_pending_authorization(request)

    assert await model.delete_client(doomed.client_id, NOW) is True

    assert await model.get_client(doomed.client_id) is None
    for grant_id in ("grant-d1", "grant-d2"):
        first, token, live, rotated = credentials[grant_id]
        assert await model.get_authorization_code(first.code_digest) is None
        assert await model.get_access_token(token.token_digest) is None
        assert await model.get_refresh_token(live.token_digest) is None
        assert await model.get_refresh_token(rotated.token_digest) is None
        assert await model.save_tokens(access(grant_id), refresh(grant_id)) is False
        assert await model.rotate_refresh_token(live.token_digest, NOW, access(grant_id), refresh(grant_id),
                                                reuse_after=0) is False
    assert await model.get_pending_authorization(waiting.request_digest) is None
    revoked = await model.list_grants(client_id=doomed.client_id, include_revoked=True)
    assert {(g.grant_id, g.revoked_at) for g in revoked} == {("grant-d1", NOW), ("grant-d2", NOW - 10)}
    assert await model.list_grants(client_id=doomed.client_id) == []

    assert await model.get_client(kept.client_id) == kept
    first, token, live, rotated = credentials["grant-k"]
    assert await model.get_authorization_code(first.code_digest) == first
    assert await model.get_access_token(token.token_digest) == token
    assert await model.get_refresh_token(live.token_digest) == live
    assert await model.get_pending_authorization(other_waiting.request_digest) == other_waiting
    assert [g.grant_id for g in await model.list_grants(client_id=kept.client_id)] == ["grant-k"]


async def test_delete_client_of_an_unknown_client(model: OAuthServerModel) -> None:
    """False when there was no client; grants carrying its id are ended all the same."""
    assert await model.delete_client("no-such-client", NOW) is False
    await open_grant(model, "grant-orphan", client_id="never-registered")
    orphan = access("grant-orphan")
    assert await model.save_tokens(orphan, None)
    assert await model.delete_client("never-registered", NOW) is False
    assert await model.get_access_token(orphan.token_digest) is None
    assert await model.save_tokens(access("grant-orphan"), None) is False


async def test_list_clients_pages_by_code_point(model: OAuthServerModel) -> None:
    """``B`` < ``a`` < ``a-b`` < ``aB`` < ``z`` < ``é``, whatever the database's collation."""
    ids = ["z", "aB", "é", "B", "a-b", "https://app.example/client.json", "a"]
    for client_id in ids:
        await model.save_client(client(client_id=client_id))
    expected = sorted(ids)
    assert expected == ["B", "a", "a-b", "aB", "https://app.example/client.json", "z", "é"]
    assert [c.client_id for c in await model.list_clients()] == expected
    pages: list[str] = []
    page = await model.list_clients(limit=3)
    while page:
        assert len(page) <= 3
        pages += [c.client_id for c in page]
        page = await model.list_clients(limit=3, after=page[-1].client_id)
    assert pages == expected
    assert await model.list_clients(after="é") == []
    assert await model.list_clients(limit=1, after="A") == [await model.get_client("B")]
    with pytest.raises(ValueError, match="limit"):
        await model.list_clients(limit=0)


async def test_list_grants_newest_first_with_filters(model: OAuthServerModel) -> None:
    """A user's connected apps, or a client's grants: newest first, ties by grant_id code point;
    revoked ones only when asked."""
    layout = [("g-old", "alice", "c1", NOW - 100), ("g-B", "alice", "c2", NOW), ("g-a", "alice", "c1", NOW),
              ("g-bob", "bob", "c1", NOW + 5), ("g-revoked", "alice", "c2", NOW + 10)]
    for grant_id, subject, client_id, created_at in layout:
        await open_grant(model, grant_id, subject=subject, client_id=client_id, created_at=created_at)
    await model.revoke_grant("g-revoked", NOW + 20)

    def ids(grants: list[Grant]) -> list[str]:
        return [g.grant_id for g in grants]

    assert ids(await model.list_grants()) == ["g-bob", "g-B", "g-a", "g-old"]
    assert ids(await model.list_grants(include_revoked=True)) == ["g-revoked", "g-bob", "g-B", "g-a", "g-old"]
    assert ids(await model.list_grants(subject="alice")) == ["g-B", "g-a", "g-old"]
    assert ids(await model.list_grants(client_id="c1")) == ["g-bob", "g-a", "g-old"]
    assert ids(await model.list_grants(subject="alice", client_id="c2", include_revoked=True)) == ["g-revoked", "g-B"]
    assert ids(await model.list_grants(subject="alice", limit=2)) == ["g-B", "g-a"]
    assert await model.list_grants(subject="nobody") == []
    stored = (await model.list_grants(subject="bob"))[0]
    assert stored == grant("g-bob", subject="bob", client_id="c1", created_at=NOW + 5)
    with pytest.raises(ValueError, match="limit"):
        await model.list_grants(limit=0)


# -- client assertions (RFC 7523 §3 item 7) -------------------------------------------------------
async def test_an_assertion_jti_is_used_once_per_client(model: OAuthServerModel) -> None:
    assert await model.consume_assertion_jti("client-a", "jti-1", NOW + 60) is True
    assert await model.consume_assertion_jti("client-a", "jti-1", NOW + 120) is False
    assert await model.consume_assertion_jti("client-b", "jti-1", NOW + 60) is True  # another client's
    assert await model.consume_assertion_jti("client-a", "jti-2", NOW + 60) is True
    # No mix-up of where the client id ends and the jti begins.
    assert await model.consume_assertion_jti("client-a:", "jti-1", NOW + 60) is True
    assert await model.consume_assertion_jti("client-", "a:jti-1", NOW + 60) is True


async def test_an_id_jag_jti_is_used_once_per_identity_provider(model: OAuthServerModel) -> None:
    """ID-JAGs (``grants.jwt_bearer``) share the verb under ``"id-jag " + issuer``: single use per
    provider across processes, even under concurrency, and apart from any client's assertions
    (a metadata-document client's id may be the provider's URL)."""
    issuer = "https://idp.example.com"
    results = await asyncio.gather(*(model.consume_assertion_jti("id-jag " + issuer, "jag-1", NOW + 60)
                                     for _ in range(CONCURRENCY)))
    assert sorted(results) == [False] * (CONCURRENCY - 1) + [True]
    assert await model.consume_assertion_jti(issuer, "jag-1", NOW + 60) is True
    assert await model.consume_assertion_jti("id-jag https://other.example.com", "jag-1", NOW + 60) is True


async def test_an_assertion_jti_is_bounded(model: OAuthServerModel) -> None:
    longest = "j" * MAX_JTI_LENGTH
    assert await model.consume_assertion_jti("client-a", longest, NOW + 60) is True
    with pytest.raises(ValueError, match="jti"):
        await model.consume_assertion_jti("client-a", longest + "j", NOW + 60)
    assert await model.consume_assertion_jti("client-a", "ü" * MAX_JTI_LENGTH, NOW + 60) is True


async def test_used_jtis_are_purged_once_expired(model: OAuthServerModel) -> None:
    for number in range(3):
        assert await model.consume_assertion_jti("client-a", f"old-{number}", NOW - number)
    assert await model.consume_assertion_jti("client-a", "live", NOW + 1)
    assert await model.purge_expired(NOW, batch=2) == 2
    assert await model.purge_expired(NOW, batch=2) == 1
    assert await model.purge_expired(NOW) == 0
    assert await model.consume_assertion_jti("client-a", "live", NOW + 1) is False
    assert await model.consume_assertion_jti("client-a", "old-0", NOW + 60) is True  # forgotten after expiry


# -- refresh rotation with a grace window ---------------------------------------------------------
async def test_refresh_rotation_within_the_grace_window(model: OAuthServerModel) -> None:
    """Strict by default; with ``reuse_after``, a token rotated at or after it rotates again,
    storing each pair, and keeps the time of its first rotation; before it, reuse fails."""
    await open_grant(model, "grant-1")
    old = refresh()
    await model.save_tokens(access(), old)
    first, second, strict, late = [(access(), refresh()) for _ in range(4)]
    assert await model.rotate_refresh_token(old.token_digest, NOW + 7, *first) is True
    assert await model.rotate_refresh_token(old.token_digest, NOW + 8, *strict) is False
    assert await model.rotate_refresh_token(old.token_digest, NOW + 9, *second, reuse_after=NOW + 7) is True
    assert await model.rotate_refresh_token(old.token_digest, NOW + 10, *late, reuse_after=NOW + 8) is False
    assert await model.get_refresh_token(old.token_digest) == dataclasses.replace(old, rotated_at=NOW + 7)
    for new_access, new_refresh in (first, second):
        assert await model.get_access_token(new_access.token_digest) == new_access
        assert await model.get_refresh_token(new_refresh.token_digest) == new_refresh
    for new_access, new_refresh in (strict, late):
        assert await model.get_access_token(new_access.token_digest) is None
        assert await model.get_refresh_token(new_refresh.token_digest) is None


async def test_a_grace_window_never_outlives_the_grant(model: OAuthServerModel) -> None:
    await open_grant(model, "grant-1")
    old = refresh()
    await model.save_tokens(access(), old)
    assert await model.rotate_refresh_token(old.token_digest, NOW, access(), refresh(), reuse_after=NOW) is True
    await model.revoke_grant("grant-1", NOW)
    pair = access(), refresh()
    assert await model.rotate_refresh_token(old.token_digest, NOW, *pair, reuse_after=0) is False
    assert await model.get_access_token(pair[0].token_digest) is None
    unknown = access(), refresh()
    assert await model.rotate_refresh_token("0" * 64, NOW, *unknown, reuse_after=0) is False


# -- concurrency ---------------------------------------------------------------------------------
async def test_concurrent_upserts_from_two_processes_all_succeed(model: OAuthServerModel,
                                                                  second_process: OAuthServerModel) -> None:
    """Two processes caching the same metadata document at once: no error, one record kept."""
    await warm_pool(model, CONCURRENCY)
    await warm_pool(second_process, CONCURRENCY)
    peaks = PeakConnections(model), PeakConnections(second_process)
    versions = [document_client(client_name=f"fetch {n}") for n in range(CONCURRENCY)]
    await asyncio.gather(*((model if n % 2 else second_process).upsert_client(version)
                           for n, version in enumerate(versions)))
    stored = await model.get_client(versions[0].client_id)
    assert stored in versions
    assert await second_process.get_client(versions[0].client_id) == stored
    assert await model.list_clients() == [stored]
    if isinstance(model, SQLAlchemyOAuthServerModel):
        assert min(peak.peak for peak in peaks) >= CONCURRENCY // 4, "calls did not overlap in both processes"


async def test_concurrent_jti_use_from_two_processes_succeeds_once(model: OAuthServerModel,
                                                                   second_process: OAuthServerModel) -> None:
    """RFC 7523 §3 item 7: one assertion replayed 20 times at once, across two processes: one wins."""
    await warm_pool(model, CONCURRENCY)
    await warm_pool(second_process, CONCURRENCY)
    peaks = PeakConnections(model), PeakConnections(second_process)
    results = await asyncio.gather(*((model if n % 2 else second_process).consume_assertion_jti(
        "client-a", "the-jti", NOW + 60) for n in range(CONCURRENCY)))
    assert results.count(True) == 1
    if isinstance(model, SQLAlchemyOAuthServerModel):
        assert min(peak.peak for peak in peaks) >= CONCURRENCY // 4, "calls did not overlap in both processes"


async def test_concurrent_rotations_within_the_window_all_succeed_until_revoked(model: OAuthServerModel) -> None:
    """With a grace window, 20 simultaneous refreshes of one token all succeed and each stores its
    pair while the grant is live; after revoke_grant none does, and nothing of theirs is left."""
    await open_grant(model, "grant-1")
    old = refresh()
    await model.save_tokens(access(), old)
    pairs = [(access(), refresh()) for _ in range(CONCURRENCY)]
    await warm_pool(model, CONCURRENCY)
    results = await asyncio.gather(*(model.rotate_refresh_token(old.token_digest, NOW + n, *pair, reuse_after=NOW)
                                     for n, pair in enumerate(pairs)))
    assert results == [True] * CONCURRENCY
    for new_access, new_refresh in pairs:
        assert await model.get_access_token(new_access.token_digest) == new_access
        assert await model.get_refresh_token(new_refresh.token_digest) == new_refresh
    stored = await model.get_refresh_token(old.token_digest)
    assert stored is not None and stored.rotated_at is not None and NOW <= stored.rotated_at < NOW + CONCURRENCY
    await model.revoke_grant("grant-1", NOW + 30)
    late = [(access(), refresh()) for _ in range(CONCURRENCY)]
    results = await asyncio.gather(*(model.rotate_refresh_token(old.token_digest, NOW + 31, *pair, reuse_after=NOW)
                                     for pair in late))
    assert results == [False] * CONCURRENCY
    assert await left_over((model,), [p[0].token_digest for p in pairs + late],
                           [p[1].token_digest for p in pairs + late]) == []


async def test_delete_client_wins_over_concurrent_issuance(model: OAuthServerModel,
                                                           second_process: OAuthServerModel) -> None:
    """RFC 7592 §2.3: delete_client racing save_tokens and a rotation (with a grace window) of one
    of its grants, on two processes: afterwards no token of the client is left, and nothing more
    can be stored into its grants."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    stored = rotated = 0
    for number in range(ROUNDS):
        owner = client()
        await model.save_client(owner)
        grant_id = (await open_grant(model, client_id=owner.client_id)).grant_id
        old = refresh(grant_id, client_id=owner.client_id)
        assert await model.save_tokens(access(grant_id, client_id=owner.client_id), old)
        issued = access(grant_id, client_id=owner.client_id), refresh(grant_id, client_id=owner.client_id)
        rotation = access(grant_id, client_id=owner.client_id), refresh(grant_id, client_id=owner.client_id)
        deleter, issuer = (model, second_process) if number % 2 else (second_process, model)
        deleted, saved, rotated_now = await asyncio.gather(
            after(rng.uniform(0, JITTER), deleter.delete_client(owner.client_id, NOW)),
            after(rng.uniform(0, JITTER), issuer.save_tokens(*issued)),
            after(rng.uniform(0, JITTER), issuer.rotate_refresh_token(old.token_digest, NOW, *rotation,
                                                                      reuse_after=NOW)),
        )
        assert deleted is True
        stored += saved
        rotated += rotated_now
        survivors = await left_over((model, second_process), [issued[0].token_digest, rotation[0].token_digest],
                                    [old.token_digest, issued[1].token_digest, rotation[1].token_digest])
        assert survivors == [], f"round {number} (seed {seed}): tokens of the deleted client survived"
        assert await issuer.save_tokens(access(grant_id), None) is False
    print(f"{ROUNDS} rounds: issuance stored first in {stored}, rotation first in {rotated} (seed {seed})")
    assert 0 < stored < ROUNDS and 0 < rotated < ROUNDS  # both orders happened


async def test_deleting_a_client_while_its_grants_are_revoked_never_fails(
        model: OAuthServerModel, second_process: OAuthServerModel, caplog: pytest.LogCaptureFixture) -> None:
    """Two deletions of one client and revocations of each of its grants, all at once on two
    processes, while tokens are issued: no exception, no deadlock (not even one resolved by a
    retry), and nothing of the client left."""
    caplog.set_level(logging.INFO, logger="oauth_server")
    rng = random.Random()
    for _ in range(10):
        owner = client()
        await model.save_client(owner)
        grant_ids = [(await open_grant(model, client_id=owner.client_id)).grant_id for _ in range(4)]
        issued = [(access(g), refresh(g)) for g in grant_ids]
        calls: list[Awaitable[object]] = [after(rng.uniform(0, JITTER), process.delete_client(owner.client_id, NOW))
                                          for process in (model, second_process)]
        calls += [after(rng.uniform(0, JITTER), (model if n % 2 else second_process).revoke_grant(g, NOW))
                  for n, g in enumerate(reversed(grant_ids))]
        calls += [after(rng.uniform(0, JITTER), second_process.save_tokens(*pair)) for pair in issued]
        results = await asyncio.gather(*calls)
        assert results[:2].count(True) == 1 and results[:2].count(False) == 1  # one deletion found the client
        assert await left_over((model,), [p[0].token_digest for p in issued], [p[1].token_digest for p in issued]) == []
        assert await model.list_grants(client_id=owner.client_id) == []
    conflicts = [record.getMessage() for record in caplog.records if "lost a conflict" in record.getMessage()]
    assert conflicts == []
