"""SQLite's group commit (``sqlite_path``): concurrent writes share one transaction, yet each is
all-or-nothing on its own, answered only once committed, and as durable as ``sqlite_synchronous`` says."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel, sqlite_path
from tests.model.test_contract import access, client, open_grant, refresh


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[SQLAlchemyOAuthServerModel]:
    model = SQLAlchemyOAuthServerModel(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await model.create_all()
    yield model
    await model.close()


def trace_connections(model: SQLAlchemyOAuthServerModel, on_statement: Callable[[str], None]) -> None:
    """Call ``on_statement(sql)`` for every statement run by any writing connection the SQLite path
    opens from now on (the loop's, the committer's, the writer's; readers are not traced)."""
    lite = model._lite
    assert lite is not None
    connect = lite._connect

    def traced(busy_timeout: float) -> Any:
        connection = connect(busy_timeout)
        connection.set_trace_callback(on_statement)
        return connection

    lite._connect = traced  # type: ignore[method-assign]


def trace_writer(model: SQLAlchemyOAuthServerModel, seen: list[str]) -> None:
    """Record the first word of every statement the writing connections run from now on."""
    trace_connections(model, lambda sql: seen.append(sql.split()[0].upper()))


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


def trace_threads(model: SQLAlchemyOAuthServerModel, seen: list[tuple[str, str]]) -> None:
    """Record (thread name, first two words) of every statement the writing connections run from now on."""
    trace_connections(model, lambda sql: seen.append((threading.current_thread().name,
                                                      " ".join(sql.split()[:2]).upper())))


@pytest.mark.parametrize(("level", "committer"), [("FULL", "oauth-sqlite-committer"), ("NORMAL", "MainThread")])
async def test_the_statements_run_on_the_loop_and_a_full_commit_on_the_committer(
        tmp_path: Path, level: str, committer: str) -> None:
    """The writes' statements run on the event loop's thread (microseconds: a thread hand-off per
    write cost more); under FULL the COMMIT, which waits for an fsync, runs on the committer
    thread so the loop never waits for the disk; under NORMAL it has no fsync and runs inline."""
    model = SQLAlchemyOAuthServerModel(f"sqlite+aiosqlite:///{tmp_path / 't.db'}", sqlite_synchronous=level)
    await model.create_all()
    try:
        seen: list[tuple[str, str]] = []
        trace_threads(model, seen)
        await model.save_client(client())
        assert ("MainThread", "BEGIN IMMEDIATE") in seen
        assert ("MainThread", "INSERT INTO") in seen
        assert (committer, "COMMIT") in seen
        assert [name for name, sql in seen if sql == "COMMIT"] == [committer]
    finally:
        await model.close()


async def test_a_write_waits_for_another_process_on_the_writer_thread_never_on_the_loop(
        lite: SQLAlchemyOAuthServerModel, tmp_path: Path) -> None:
    """Another process holds SQLite's write lock: the loop's ``BEGIN IMMEDIATE`` (busy timeout 0)
    fails at once and the group goes to the writer thread, which waits with the busy timeout.
    Meanwhile the loop keeps serving (a ticker keeps ticking); the write lands once the lock is free."""
    registered = client()
    other = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        saving = asyncio.create_task(lite.save_client(registered))
        await asyncio.sleep(0.4)
        assert not saving.done()
        assert ticks >= 10, f"the loop ticked {ticks} times in 0.4 s: it was blocked"
        other.execute("COMMIT")
        await asyncio.wait_for(saving, 5)
    finally:
        ticking.cancel()
        other.close()
    assert await lite.get_client(registered.client_id) == registered


async def test_normal_checkpoints_the_wal_on_the_committer_thread(tmp_path: Path) -> None:
    """NORMAL: the loop's connection never checkpoints (a checkpoint fsyncs); the committer runs a
    PASSIVE checkpoint every ``_CHECKPOINT_EVERY`` group commits, so the WAL does not grow forever."""
    model = SQLAlchemyOAuthServerModel(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", sqlite_synchronous="NORMAL")
    await model.create_all()
    try:
        seen: list[tuple[str, str]] = []
        trace_threads(model, seen)
        for _ in range(sqlite_path._CHECKPOINT_EVERY + 1):
            await model.save_client(client())
        await model.close()  # after the checkpoint queued
        checkpoints = [name for name, sql in seen if sql.startswith("PRAGMA WAL_CHECKPOINT")]
        assert checkpoints == ["oauth-sqlite-committer"]
        assert ("MainThread", "PRAGMA WAL_AUTOCHECKPOINT=0") in seen
    finally:
        await model.close()


def test_a_model_outlives_its_first_event_loop(tmp_path: Path) -> None:
    """The group commit runs on the loop that wrote first; when that loop is gone (a test's loop, a
    restarted server loop), the next loop takes over and writes still land."""
    model = SQLAlchemyOAuthServerModel(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}")
    first, second = client(), client()
    asyncio.run(model.create_all())
    asyncio.run(model.save_client(first))

    async def later() -> None:
        await model.save_client(second)
        assert await model.get_client(first.client_id) == first
        assert await model.get_client(second.client_id) == second
        await model.close()

    asyncio.run(later())


async def test_writes_from_another_threads_loop_go_through_the_writer_thread(lite: SQLAlchemyOAuthServerModel) -> None:
    """While this loop runs the group commits, a loop in another thread must not touch them (their
    state belongs to one loop): its writes take the writer thread's queue, and all of them land."""
    here, there = [client() for _ in range(10)], [client() for _ in range(10)]

    async def other_thread() -> None:
        await asyncio.gather(*(lite.save_client(registered) for registered in there))

    await asyncio.gather(asyncio.to_thread(asyncio.run, other_thread()),
                         *(lite.save_client(registered) for registered in here))
    for registered in here + there:
        assert await lite.get_client(registered.client_id) == registered
