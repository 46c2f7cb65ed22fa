"""The Postgres model's verified-token cache never outlives a revocation made by any process.

RFC 7009 §2 and RFC 9700 §4.14.2: once a grant is revoked (by /revoke, a reused refresh token or
a replayed code), or its client deleted (RFC 7592 §2.3), its access tokens must stop working.
Each test here runs two models on one database, standing in for two server processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text

from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.model.sqlalchemy.notices import CHANNEL, NoticeFeed
from oauth_server.model.sqlalchemy.token_cache import VerifiedTokenCache
from tests.model.test_contract import NOW, access, open_grant, refresh

#: The LISTEN connection on this test's database only: other test runs may share the server.
OWN_LISTENER = "WHERE datname = current_database() AND query LIKE :q"


async def eventually(condition: Callable[[], Awaitable[bool]], within: float = 20.0) -> float:
    """Seconds until ``condition()`` held; fails the test after ``within``."""
    start = time.monotonic()
    while not await condition():
        assert time.monotonic() - start < within, "condition never held"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
async def two_processes(postgres_model: SQLAlchemyOAuthServerModel, postgres_url: str
                        ) -> AsyncIterator[tuple[SQLAlchemyOAuthServerModel, SQLAlchemyOAuthServerModel]]:
    other = SQLAlchemyOAuthServerModel(postgres_url, access_token_cache_ttl=30)
    yield postgres_model, other
    await other.close()


async def cached_live(model: SQLAlchemyOAuthServerModel, digest: str) -> None:
    """Look ``digest`` up until the cache is live and holds it."""
    cache = model._cache
    assert cache is not None

    async def holds() -> bool:
        await model.get_access_token(digest)
        return cache.live and cache.get(digest) is not None

    await eventually(holds)


async def delete_row_behind_the_cache(model: SQLAlchemyOAuthServerModel, digest: str) -> None:
    """Remove the token without a notification (what no code path of ours does)."""
    async with model.engine.connect() as conn:
        await conn.execute(text("DELETE FROM oauth_access_tokens WHERE token_digest = :d"), {"d": digest})


async def test_cache_revocation_in_another_process_reaches_this_one(two_processes: tuple[
        SQLAlchemyOAuthServerModel, SQLAlchemyOAuthServerModel]) -> None:
    """RFC 7009 §2: a grant revoked by process B is refused by process A, which had it cached."""
    a, b = two_processes
    await open_grant(a, "grant-x")
    token = access("grant-x")
    await a.save_tokens(token, refresh("grant-x"))
    await cached_live(a, token.token_digest)
    await b.revoke_grant("grant-x", NOW)

    async def refused() -> bool:
        return await a.get_access_token(token.token_digest) is None

    took = await eventually(refused, within=10.0)
    assert took < 3.0, f"(the cache TTL is 5 s) the revocation took {took:.3f} s to reach the other process"


async def test_cache_client_deletion_in_another_process_reaches_this_one(two_processes: tuple[
        SQLAlchemyOAuthServerModel, SQLAlchemyOAuthServerModel]) -> None:
    """RFC 7592 §2.3: a client deleted by process B has its tokens refused by process A, which had
    one cached; A keeps another client's token cached."""
    a, b = two_processes
    await open_grant(a, "grant-c", client_id="client-gone")
    await open_grant(a, "grant-d", client_id="client-kept")
    token, other = access("grant-c", client_id="client-gone"), access("grant-d", client_id="client-kept")
    await a.save_tokens(token, None)
    await a.save_tokens(other, None)
    await cached_live(a, token.token_digest)
    await cached_live(a, other.token_digest)
    await b.delete_client("client-gone", NOW)

    async def refused() -> bool:
        return await a.get_access_token(token.token_digest) is None

    took = await eventually(refused, within=10.0)
    assert took < 3.0, f"(the cache TTL is 5 s) the deletion took {took:.3f} s to reach the other process"
    assert a._cache is not None and a._cache.get(other.token_digest) == other


async def test_cache_serves_hits_without_the_database(postgres_model: SQLAlchemyOAuthServerModel) -> None:
    """The cache is really used (a row removed behind its back is still served) and bounded by its TTL."""
    short = SQLAlchemyOAuthServerModel(postgres_model.engine.url.render_as_string(hide_password=False),
                                       access_token_cache_ttl=0.5)
    try:
        await open_grant(short, "grant-y")
        token = access("grant-y")
        await short.save_tokens(token, None)
        await cached_live(short, token.token_digest)
        await delete_row_behind_the_cache(short, token.token_digest)
        assert await short.get_access_token(token.token_digest) == token
        await asyncio.sleep(0.6)
        assert await short.get_access_token(token.token_digest) is None
    finally:
        await short.close()


async def test_cache_bypassed_while_the_revocation_feed_is_down(postgres_model: SQLAlchemyOAuthServerModel) -> None:
    """Attack: cut the LISTEN connection so notices are lost. The cache must empty and step aside
    (every check goes to the database) until the feed is back."""
    model = postgres_model
    cache = model._cache
    assert cache is not None
    await open_grant(model, "grant-z")
    token = access("grant-z")
    await model.save_tokens(token, None)
    await cached_live(model, token.token_digest)
    async with model.engine.connect() as conn:
        killed = await conn.scalar(text(
            f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity {OWN_LISTENER}"),
            {"q": f'LISTEN "{CHANNEL}"%'})
    assert killed == 1

    async def offline() -> bool:
        return not cache.live

    await eventually(offline)
    await delete_row_behind_the_cache(model, token.token_digest)
    assert await model.get_access_token(token.token_digest) is None, "served from a cache with no feed"

    async def back() -> bool:
        await model.get_access_token(token.token_digest)
        return cache.live

    await eventually(back)


def live_cache(ttl: float = 30, max_entries: int = 10_000) -> tuple[NoticeFeed, VerifiedTokenCache]:
    """A cache on a feed taken for connected (nothing listens)."""
    feed = NoticeFeed("postgresql://unused")
    cache = VerifiedTokenCache(feed, ttl=ttl, max_entries=max_entries)
    feed.live = True
    return feed, cache


def test_cache_a_lookup_that_raced_a_revocation_is_not_kept() -> None:
    """A record read before a revocation's notice arrived must not be put back after it."""
    _, cache = live_cache()
    token = access("grant-r")
    generation = cache.generation
    cache.evict_grant("grant-r")  # the notice arrives while the SELECT is in flight
    cache.put(token, generation)
    assert cache.get(token.token_digest) is None
    cache.put(token, cache.generation)
    assert cache.get(token.token_digest) == token


def test_cache_is_bounded() -> None:
    _, cache = live_cache(max_entries=3)
    tokens = [access(f"grant-{n}") for n in range(5)]
    for token in tokens:
        cache.put(token, cache.generation)
    assert [cache.get(t.token_digest) for t in tokens] == [None, None, *tokens[2:]]


def test_cache_forgets_everything_on_a_notice_it_does_not_know() -> None:
    """A revocation notice of a kind this version does not know empties the cache: safe."""
    feed, cache = live_cache()
    kept, other = access("grant-k"), access("grant-o")
    for token in (kept, other):
        cache.put(token, cache.generation)
    feed._on_notice(None, 0, CHANNEL, "grant:grant-o")
    assert cache.get(kept.token_digest) == kept and cache.get(other.token_digest) is None
    feed._on_notice(None, 0, CHANNEL, "token:" + kept.token_digest)
    assert cache.get(kept.token_digest) is None


def test_cache_a_client_notice_drops_that_clients_tokens_only() -> None:
    """RFC 7592 §2.3: a deleted client's tokens stop working; another client's stay cached."""
    feed, cache = live_cache()
    gone, kept = access("grant-1", client_id="client-gone"), access("grant-2", client_id="client-kept")
    for token in (gone, kept):
        cache.put(token, cache.generation)
    feed._on_notice(None, 0, CHANNEL, "client:client-gone")
    assert cache.get(gone.token_digest) is None and cache.get(kept.token_digest) == kept
