"""Model fixtures: every contract test runs on the memory model, SQLite and Postgres.

Postgres gets a fresh database per test session (``oauth_test_<hex>``, dropped at the end) on
``PG_URL`` (default: the local server); tables are truncated before each test. With ``CI`` set
an unreachable Postgres fails the run instead of skipping it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from oauth_server.model.base import OAuthServerModel
from oauth_server.model.memory import MemoryOAuthServerModel
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel, metadata

PG_URL = os.environ.get("PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
#: Enough connections that 20 concurrent calls each hold their own.
POOL: dict[str, Any] = {"pool_size": 20, "max_overflow": 10}
T = TypeVar("T")


def blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a private loop in a thread: usable even while a test's loop is running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def postgres_unreachable(exc: BaseException) -> None:
    message = f"PostgreSQL at {make_url(PG_URL).render_as_string()} is unreachable: {exc!r}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


async def create_database(base_url: str = PG_URL) -> str:
    """A new empty database next to ``base_url``'s; returns its URL."""
    name = f"oauth_test_{secrets.token_hex(6)}"
    admin = create_async_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str, base_url: str = PG_URL) -> None:
    name = make_url(url).database
    assert name is not None and name.startswith("oauth_test_")
    admin = create_async_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def _create_tables(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create a database (or skip, or fail under CI), yield its URL, drop it."""
    try:
        url = blocking(create_database())
    except Exception as exc:  # any failure to connect means "unreachable"
        postgres_unreachable(exc)
        raise
    try:
        yield url
    finally:
        blocking(drop_database(url))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A session-wide Postgres database with the tables created."""
    with fresh_postgres_database() as url:
        blocking(_create_tables(url))
        yield url


async def open_model(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> OAuthServerModel:
    """A ready, empty model of ``kind``."""
    if kind == "memory":
        return MemoryOAuthServerModel()
    if kind == "sqlite":
        sqlite = SQLAlchemyOAuthServerModel(f"sqlite+aiosqlite:///{tmp_path / 'oauth.db'}", **POOL)
        await sqlite.create_all()
        return sqlite
    postgres = SQLAlchemyOAuthServerModel(request.getfixturevalue("postgres_url"), **POOL)
    tables = ", ".join(table.name for table in metadata.sorted_tables)
    async with postgres.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables}"))
    return postgres


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def model(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OAuthServerModel]:
    opened = await open_model(request.param, request, tmp_path)
    yield opened
    await opened.close()


@pytest.fixture
async def second_process(model: OAuthServerModel) -> AsyncIterator[OAuthServerModel]:
    """Another model on ``model``'s database, with its own pool (and token cache), standing in for
    a second server process. The memory model lives in one process: it is its own second."""
    if not isinstance(model, SQLAlchemyOAuthServerModel):
        yield model
        return
    other = SQLAlchemyOAuthServerModel(model.engine.url.render_as_string(hide_password=False), **POOL)
    yield other
    await other.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def sql_model(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLAlchemyOAuthServerModel]:
    opened = await open_model(request.param, request, tmp_path)
    assert isinstance(opened, SQLAlchemyOAuthServerModel)
    yield opened
    await opened.close()


@pytest.fixture
async def postgres_model(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLAlchemyOAuthServerModel]:
    opened = await open_model("postgres", request, tmp_path)
    assert isinstance(opened, SQLAlchemyOAuthServerModel)
    yield opened
    await opened.close()


@pytest.fixture
async def sqlite_model(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLAlchemyOAuthServerModel]:
    opened = await open_model("sqlite", request, tmp_path)
    assert isinstance(opened, SQLAlchemyOAuthServerModel)
    yield opened
    await opened.close()
