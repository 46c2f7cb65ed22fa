"""The SQL model's client cache: found clients only, for at most ``client_cache_ttl`` seconds.

Client records never change once registered (no update or delete verb), so the cache can only
ever serve a row deleted by hand, and then for at most its TTL; a client registered by another
process must be found at once (misses are never cached).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.model.sqlalchemy.client_cache import RecentClients
from tests.model.test_contract import client


def same_database(model: SQLAlchemyOAuthServerModel, **options: float) -> SQLAlchemyOAuthServerModel:
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


async def test_client_cache_never_keeps_a_miss(sql_model: SQLAlchemyOAuthServerModel,
                                                short_ttl: SQLAlchemyOAuthServerModel) -> None:
    """A client registered in another process is found at once, even right after a miss here."""
    registered = client(client_id="registered-elsewhere")
    assert await short_ttl.get_client(registered.client_id) is None
    await sql_model.save_client(registered)
    assert await short_ttl.get_client(registered.client_id) == registered


async def test_client_cache_serves_a_deleted_row_for_at_most_its_ttl(short_ttl: SQLAlchemyOAuthServerModel) -> None:
    """The one staleness the cache allows: a row deleted by hand, for at most the TTL."""
    kept = client(client_id="deleted-by-hand")
    await short_ttl.save_client(kept)
    assert await short_ttl.get_client(kept.client_id) == kept
    await delete_client_by_hand(short_ttl, kept.client_id)
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


def test_client_cache_is_bounded() -> None:
    recent = RecentClients(ttl=60, max_entries=3)
    for number in range(10):
        recent.put(client(client_id=f"c{number}"))
    assert [recent.get(f"c{number}") is not None for number in range(10)] == [False] * 7 + [True] * 3
