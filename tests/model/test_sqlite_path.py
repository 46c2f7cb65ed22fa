"""SQLite's group commit (``sqlite_path``): concurrent writes share one transaction, yet each is
all-or-nothing on its own, answered only once committed, and as durable as ``sqlite_synchronous`` says."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from tests.model.test_contract import access, client, open_grant, refresh


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[SQLAlchemyOAuthServerModel]:
    model = SQLAlchemyOAuthServerModel(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await model.create_all()
    yield model
    await model.close()


def trace_writer(model: SQLAlchemyOAuthServerModel, seen: list[str]) -> None:
    """Record every statement the writer thread's connection runs from now on."""
    lite = model._lite
    assert lite is not None
    connect = lite._connect

    def traced(busy_timeout: float) -> Any:
        connection = connect(busy_timeout)
        connection.set_trace_callback(lambda sql: seen.append(sql.split()[0].upper()))
        return connection

    lite._connect = traced  # type: ignore[method-assign]


async def test_concurrent_writes_share_a_commit_and_a_failed_one_rolls_back_alone(
        lite: SQLAlchemyOAuthServerModel) -> None:
    """20 writes at once: fewer COMMITs than writes (group commit), and the one that fails half-way
    (its refresh token exists already) leaves nothing of itself while all the others are stored."""
    await open_grant(lite, "grant-1")
    existing = refresh()
    await lite.save_tokens(access(), existing)
    assert lite._lite is not None
    await lite._lite.close()  # the next write starts a writer whose connection is traced
    seen: list[str] = []
    trace_writer(lite, seen)
    pairs = [(access(), refresh()) for _ in range(19)]
    orphan = access()
    results = await asyncio.gather(*(lite.save_tokens(*pair) for pair in pairs),
                                   lite.save_tokens(orphan, existing), return_exceptions=True)
    assert results[:19] == [True] * 19
    assert isinstance(results[19], IntegrityError)
    assert await lite.get_access_token(orphan.token_digest) is None
    for new_access, new_refresh in pairs:
        assert await lite.get_access_token(new_access.token_digest) == new_access
        assert await lite.get_refresh_token(new_refresh.token_digest) == new_refresh
    commits = seen.count("COMMIT")
    assert 1 <= commits < 20, f"{commits} commits for 20 writes: no grouping"
    print(f"20 concurrent writes: {commits} commits")


async def test_an_answered_write_is_committed(lite: SQLAlchemyOAuthServerModel, tmp_path: Path) -> None:
    """A caller hears of its write only after the COMMIT: another connection (another process)
    sees it at once."""
    registered = client()
    await lite.save_client(registered)
    with sqlite3.connect(tmp_path / "g.db") as other:
        rows = other.execute("SELECT client_id FROM oauth_clients").fetchall()
    assert rows == [(registered.client_id,)]


@pytest.mark.parametrize(("level", "value"), [("FULL", 2), ("NORMAL", 1)])
async def test_sqlite_synchronous_sets_the_durability_of_every_connection(
        tmp_path: Path, level: str, value: int) -> None:
    model = SQLAlchemyOAuthServerModel(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", sqlite_synchronous=level)
    try:
        await model.create_all()
        seen: list[int] = []
        assert model._lite is not None
        connection = model._lite._connect(1.0)
        try:
            seen.append(connection.execute("PRAGMA synchronous").fetchone()[0])
        finally:
            connection.close()
        async with model.engine.connect() as conn:
            seen.append((await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one())
        assert seen == [value, value]
    finally:
        await model.close()


@pytest.mark.parametrize("url", ["sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"])
def test_sqlite_must_be_a_file(url: str) -> None:
    with pytest.raises(ValueError, match="must be a file"):
        SQLAlchemyOAuthServerModel(url)


def test_sqlite_synchronous_is_checked(tmp_path: Path) -> None:
    """Only the documented levels: OFF could corrupt the database on a power loss."""
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        SQLAlchemyOAuthServerModel(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", sqlite_synchronous="OFF")
