"""The SQL model's client cache: found clients only, never stale after a client write.

Clients change and go (RFC 7592 §2.2 update, §2.3 delete; re-fetched metadata documents). The
process that writes sees the change at once; on Postgres every other process does within
milliseconds (``client:<id>`` notices), and a process not hearing notices does not cache. On
SQLite every lookup first reads the client change count that triggers keep (migration 0008), so
no process, ever, uses a record another process, the CLI or hand-written SQL changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.model.sqlalchemy.client_cache import RecentClients
from oauth_server.model.sqlalchemy.notices import CHANNEL, NoticeFeed
from tests.model.test_contract import NOW, client
from tests.model.test_token_cache import OWN_LISTENER, eventually


def same_database(model: SQLAlchemyOAuthServerModel, **options: Any) -> SQLAlchemyOAuthServerModel:
    """A second model on ``model``'s database: another server process."""
    return SQLAlchemyOAuthServerModel(model.engine.url.render_as_string(hide_password=False), **options)


@pytest.fixture
async def short_ttl(sql_model: SQLAlchemyOAuthServerModel) -> AsyncIterator[SQLAlchemyOAuthServerModel]:
    other = same_database(sql_model, client_cache_ttl=0.3, access_token_cache_ttl=0)
    yield other
    await other.close()


async def delete_client_by_hand(model: SQLAlchemyOAuthServerModel, client_id: str) -> None:
    async with model.engine.connect() as conn:
        await conn.execute(text("DELETE FROM oauth_clients WHERE client_id = :c"), {"c": client_id})
        await conn.commit()


async def cached(model: SQLAlchemyOAuthServerModel, client_id: str) -> None:
    """Look ``client_id`` up until it is served from the cache (on Postgres: once the feed is up)."""
    async def holds() -> bool:
        await model.get_client(client_id)
        return model._clients.get(client_id) is not None

    await eventually(holds)


async def test_client_cache_never_keeps_a_miss(sql_model: SQLAlchemyOAuthServerModel,
                                                short_ttl: SQLAlchemyOAuthServerModel) -> None:
    """A client registered in another process is found at once, even right after a miss here."""
    registered = client(client_id="registered-elsewhere")
    assert await short_ttl.get_client(registered.client_id) is None
    await sql_model.save_client(registered)
    assert await short_ttl.get_client(registered.client_id) == registered


async def test_client_cache_and_a_row_deleted_by_hand(short_ttl: SQLAlchemyOAuthServerModel) -> None:
    """A row deleted behind the model's back (hand-written SQL): on SQLite the trigger counts it and
    the next lookup misses at once; on Postgres (no notice for it) the record lives out its TTL,
    the one staleness the cache allows there."""
    kept = client(client_id="deleted-by-hand")
    await short_ttl.save_client(kept)
    await cached(short_ttl, kept.client_id)
    await delete_client_by_hand(short_ttl, kept.client_id)
    if short_ttl._lite is not None:
        assert await short_ttl.get_client(kept.client_id) is None
        return
    assert await short_ttl.get_client(kept.client_id) == kept  # served from memory
    await asyncio.sleep(0.35)
    assert await short_ttl.get_client(kept.client_id) is None


async def test_client_cache_off_reads_every_time(sql_model: SQLAlchemyOAuthServerModel) -> None:
    uncached = same_database(sql_model, client_cache_ttl=0, access_token_cache_ttl=0)
    try:
        gone = client(client_id="not-cached")
        await uncached.save_client(gone)
        assert await uncached.get_client(gone.client_id) == gone
        await delete_client_by_hand(uncached, gone.client_id)
        assert await uncached.get_client(gone.client_id) is None
    finally:
        await uncached.close()


async def test_client_cache_defaults(sql_model: SQLAlchemyOAuthServerModel) -> None:
    """Postgres caches 5 s, kept current by notices; SQLite 60 s, kept exact by the change count."""
    postgres = sql_model.engine.dialect.name == "postgresql"
    assert sql_model._clients.ttl == (5.0 if postgres else 60.0)
    assert (sql_model._feed is not None) == postgres


async def test_client_writes_are_seen_at_once_by_the_writing_process(short_ttl: SQLAlchemyOAuthServerModel) -> None:
    """RFC 7592 §2.2/§2.3: after an update or deletion returns, this process never serves the
    old record, whatever its TTL."""
    first = client(client_id="written-here")
    await short_ttl.save_client(first)
    await cached(short_ttl, first.client_id)
    changed = dataclasses.replace(first, redirect_uris=("https://app.example/new",))
    assert await short_ttl.replace_client(changed) is True
    assert await short_ttl.get_client(first.client_id) == changed
    upserted = dataclasses.replace(first, client_name="again")
    await short_ttl.upsert_client(upserted)
    assert await short_ttl.get_client(first.client_id) == upserted
    assert await short_ttl.delete_client(first.client_id, NOW) is True
    assert await short_ttl.get_client(first.client_id) is None


async def test_client_writes_reach_every_process_on_postgres(postgres_model: SQLAlchemyOAuthServerModel) -> None:
    """Process A caches a client for 30 s; process B updates, then deletes it: A sees each change
    within seconds (the client:<id> notice), not after its 30 s TTL."""
    a = same_database(postgres_model, client_cache_ttl=30, access_token_cache_ttl=0)
    b = postgres_model
    try:
        first = client(client_id="https://app.example/client.json", metadata_document_expires_at=NOW + 3600)
        await b.upsert_client(first)
        await cached(a, first.client_id)
        refetched = dataclasses.replace(first, client_name="re-fetched", metadata_document_expires_at=NOW + 7200)
        await b.upsert_client(refetched)

        async def updated() -> bool:
            return await a.get_client(first.client_id) == refetched

        assert await eventually(updated, within=10.0) < 5.0  # notified, not the 30 s TTL
        await cached(a, first.client_id)
        assert await b.delete_client(first.client_id, NOW) is True

        async def gone() -> bool:
            return await a.get_client(first.client_id) is None

        assert await eventually(gone, within=10.0) < 5.0
    finally:
        await a.close()


async def test_client_cache_bypassed_while_the_feed_is_down(postgres_model: SQLAlchemyOAuthServerModel) -> None:
    """Attack: cut the LISTEN connection so notices are lost. The client cache must empty and step
    aside until the feed is back."""
    model = postgres_model
    kept = client(client_id="feed-down")
    await model.save_client(kept)
    await cached(model, kept.client_id)
    feed = model._feed
    assert feed is not None
    async with model.engine.connect() as conn:
        await conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity {OWN_LISTENER}"),
                           {"q": f'LISTEN "{CHANNEL}"%'})

    async def offline() -> bool:
        return not feed.live

    await eventually(offline)
    await delete_client_by_hand(model, kept.client_id)
    assert await model.get_client(kept.client_id) is None, "served from a cache with no feed"


def test_client_cache_a_lookup_that_raced_a_write_is_not_kept() -> None:
    """A record read before a client write (here, or announced by a notice) is not put back after."""
    feed = NoticeFeed("postgresql://unused")
    recent = RecentClients(ttl=60, feed=feed)
    feed.live = True
    old = client(client_id="raced")
    generation = recent.generation
    feed._on_notice(None, 0, CHANNEL, "client:raced")  # the write lands while the SELECT is in flight
    recent.put(old, generation)
    assert recent.get(old.client_id) is None
    recent.put(old, recent.generation)
    assert recent.get(old.client_id) == old
    feed._on_notice(None, 0, CHANNEL, "grant:some-grant")  # not about clients
    assert recent.get(old.client_id) == old
    feed._on_notice(None, 0, CHANNEL, "later-kind:x")  # unknown: forget everything
    assert recent.get(old.client_id) is None


def test_client_cache_is_bounded() -> None:
    recent = RecentClients(ttl=60, max_entries=3)
    for number in range(10):
        recent.put(client(client_id=f"c{number}"), recent.generation)
    assert [recent.get(f"c{number}") is not None for number in range(10)] == [False] * 7 + [True] * 3


async def test_sqlite_client_writes_of_any_process_are_seen_at_once(sqlite_model: SQLAlchemyOAuthServerModel,
                                                                   tmp_path: Any) -> None:
    """Process A caches a client for 60 s; process B updates it, an operator's SQL renames it, B
    deletes it: A's very next lookup sees each change (the trigger-kept count moved), never its TTL."""
    a = same_database(sqlite_model)
    b = sqlite_model
    try:
        first = client(client_id="shared-file")
        await b.save_client(first)
        await cached(a, first.client_id)
        changed = dataclasses.replace(first, redirect_uris=("https://app.example/new",))
        assert await b.replace_client(changed) is True
        assert await a.get_client(first.client_id) == changed
        database = sqlite_model.engine.url.database
        assert database is not None
        with sqlite3.connect(database) as operator:
            operator.execute("UPDATE oauth_clients SET client_name = 'by hand' WHERE client_id = ?", (first.client_id,))
        assert (await a.get_client(first.client_id)) == dataclasses.replace(changed, client_name="by hand")
        assert await b.delete_client(first.client_id, NOW) is True
        assert await a.get_client(first.client_id) is None
    finally:
        await a.close()


async def test_sqlite_cached_lookup_reads_the_count_only(sqlite_model: SQLAlchemyOAuthServerModel) -> None:
    """What the cache saves on SQLite: a hit reads one counter row, not the client's."""
    kept = client(client_id="hit")
    await sqlite_model.save_client(kept)
    await cached(sqlite_model, kept.client_id)
    lite = sqlite_model._lite
    assert lite is not None
    seen: list[str] = []
    lite._reader().set_trace_callback(seen.append)
    try:
        assert await sqlite_model.get_client(kept.client_id) == kept
    finally:
        lite._reader().set_trace_callback(None)
    assert len(seen) == 1 and "oauth_change_counters" in seen[0], seen


async def test_sqlite_without_the_counter_reads_every_time(sqlite_model: SQLAlchemyOAuthServerModel,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A database not migrated to 0008 (no counter table): no outage, no cache, one warning."""
    async with sqlite_model.engine.begin() as conn:  # what a database at revision 0007 lacks
        for event in ("insert", "update", "delete"):
            await conn.execute(text(f"DROP TRIGGER oauth_clients_counted_{event}"))
        await conn.execute(text("DROP TABLE oauth_change_counters"))
    gone = client(client_id="no-counter")
    await sqlite_model.save_client(gone)
    assert await sqlite_model.get_client(gone.client_id) == gone
    assert "migrate to revision 0008" in caplog.text
    assert sqlite_model._clients.ttl == 0
    await delete_client_by_hand(sqlite_model, gone.client_id)
    assert await sqlite_model.get_client(gone.client_id) is None
