"""The alembic migrations build exactly the schema of ``tables.py``, and tear it down again.

Postgres: a fresh database per test, dropped after. SQLite: a temp file. ``upgrade head`` then
``compare_metadata`` (what ``alembic revision --autogenerate`` would see) must find nothing.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from argparse import Namespace
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel, metadata
from oauth_server.model.sqlalchemy.tables import (
    access_tokens,
    authorization_codes,
    clients,
    grants,
    refresh_tokens,
    to_row,
)
from tests.model.conftest import fresh_postgres_database
from tests.model.test_contract import NOW, access, client, code, refresh

ROOT = Path(__file__).resolve().parents[2]
ALEMBIC = Path(sys.executable).with_name("alembic")
VERSION_TABLE = "oauth_server_alembic_version"
#: The columns of oauth_clients as 0001 created them.
OLD_CLIENT_COLUMNS = {
    "client_id", "redirect_uris", "token_endpoint_auth_method", "grant_types", "response_types",
    "client_id_issued_at", "client_secret_digest", "client_secret_expires_at", "scope", "client_name", "client_uri",
    "logo_uri", "tos_uri", "policy_uri", "contacts", "software_id", "software_version", "application_type",
}


@pytest.fixture
def postgres_database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def alembic(url: str, *args: str) -> None:
    """The alembic command API, as example/database.py uses it (``-x url=...``)."""
    config = Config(str(ROOT / "alembic.ini"), cmd_opts=Namespace(x=[f"url={url}"]))
    getattr(command, args[0])(config, *args[1:])


def alembic_cli(url: str, *args: str) -> None:
    """The alembic CLI from the repository root, the URL from ``DATABASE_URL``."""
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([str(ALEMBIC), *args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={
        "compare_type": True,
        "version_table": VERSION_TABLE,
        # Only our tables, as in migrations/env.py.
        "include_name": lambda name, type_, _parents: type_ != "table" or name.startswith("oauth_"),
    })
    return list(compare_metadata(context, metadata))


def _oauth_tables(connection: Connection) -> set[str]:
    return {name for name in inspect(connection).get_table_names() if name.startswith("oauth_")}


async def inspect_database(url: str) -> tuple[list[Any], set[str], int]:
    """Differences from tables.py, the oauth_* tables present, and the rows in the version table."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
            tables = await conn.run_sync(_oauth_tables)
            versions = 0
            if VERSION_TABLE in tables:
                versions = await conn.scalar(text(f"SELECT count(*) FROM {VERSION_TABLE}"))
    finally:
        await engine.dispose()
    return differences, tables - {VERSION_TABLE}, int(versions or 0)


async def check_round_trip(url: str, run: Any) -> None:
    differences, tables, _ = await inspect_database(url)
    assert tables == set() and differences, "the comparison must see a missing schema"

    # env.py runs its own event loop (asyncio.run), so alembic runs in a thread.
    await asyncio.to_thread(run, "upgrade", "head")
    differences, tables, versions = await inspect_database(url)
    assert differences == []
    assert tables == {table.name for table in metadata.sorted_tables}
    assert versions == 1
    await asyncio.to_thread(run, "check")  # the same comparison through env.py: raises on a difference

    await asyncio.to_thread(run, "downgrade", "base")
    differences, tables, versions = await inspect_database(url)
    assert tables == set()
    assert versions == 0


async def test_postgres_upgrade_matches_tables_and_downgrades(postgres_database: str) -> None:
    await check_round_trip(postgres_database, lambda *args: alembic(postgres_database, *args))


async def test_sqlite_upgrade_matches_tables_and_downgrades(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    # The CLI once (it imports the whole package, seconds), the command API for the rest.
    await check_round_trip(url, lambda *args: (alembic_cli if args[0] == "upgrade" else alembic)(url, *args))


async def test_migrations_share_a_database_with_the_application(postgres_database: str) -> None:
    """Our history lives in its own version table and autogenerate ignores foreign tables."""
    engine = create_async_engine(postgres_database, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO alembic_version VALUES ('the_apps_own')"))
            await conn.execute(text("CREATE TABLE app_users (id integer PRIMARY KEY)"))
        await asyncio.to_thread(alembic, postgres_database, "upgrade", "head")
        await asyncio.to_thread(alembic, postgres_database, "check")  # app_users is not ours: no difference
        _, _, versions = await inspect_database(postgres_database)
        assert versions == 1
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT version_num FROM alembic_version")) == "the_apps_own"
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'upgraded.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


async def test_grants_revision_backfills_the_grants_of_existing_credentials(any_database: str) -> None:
    """0002 on a database in use: every grant_id with a code or token gets its grant row, so its
    refresh tokens still rotate and its code still redeems, and revocation still wins."""
    url = any_database
    await asyncio.to_thread(alembic, url, "upgrade", "0001")
    refreshing, redeeming = code("grant-old-1"), code("grant-old-2", expires_at=NOW + 60)
    old_access = access("grant-old-1", expires_at=NOW + 3600)
    old_refresh = refresh("grant-old-1", grant_expires_at=NOW + 5000, expires_at=NOW + 4000)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for table, record in ((authorization_codes, refreshing), (authorization_codes, redeeming),
                                  (access_tokens, old_access), (refresh_tokens, old_refresh)):
                await conn.execute(insert(table), to_row(record))
        await asyncio.to_thread(alembic, url, "upgrade", "head")
        async with engine.connect() as conn:
            rows = (await conn.execute(select(grants).order_by(grants.c.grant_id))).mappings().all()
    finally:
        await engine.dispose()
    assert [(row["grant_id"], row["client_id"], row["subject"], row["expires_at"], row["revoked_at"])
            for row in rows] == [
        ("grant-old-1", "client-1", "alice", refreshing.expires_at + 7_776_000 + 3600, None),
        ("grant-old-2", "client-1", "alice", NOW + 60 + 7_776_000 + 3600, None),
    ]

    model = SQLAlchemyOAuthServerModel(url, access_token_cache_ttl=0)
    try:
        assert await model.rotate_refresh_token(old_refresh.token_digest, NOW, access("grant-old-1"),
                                                 refresh("grant-old-1")) is True
        assert await model.consume_authorization_code(redeeming.code_digest, NOW) is not None
        assert await model.save_tokens(access("grant-old-2"), refresh("grant-old-2")) is True
        await model.revoke_grant("grant-old-1", NOW)
        assert await model.get_access_token(old_access.token_digest) is None
        assert await model.save_tokens(access("grant-old-1"), None) is False
    finally:
        await model.close()


async def test_clients_revision_keeps_registered_clients_and_drops_document_clients_on_downgrade(
        any_database: str) -> None:
    """0004 on a database in use: a client registered before it reads back unchanged (its new
    fields None). Downgraded again, the registered client stays and the cached metadata-document
    clients go (an older server could never refresh them)."""
    url = any_database
    await asyncio.to_thread(alembic, url, "upgrade", "0003")
    registered = client(client_id="registered-before")
    old_row = {name: value for name, value in to_row(registered).items() if name in OLD_CLIENT_COLUMNS}
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(clients).values(old_row))
        await asyncio.to_thread(alembic, url, "upgrade", "head")
        model = SQLAlchemyOAuthServerModel(url, access_token_cache_ttl=0)
        document = client(client_id="https://app.example/client.json", client_secret_digest=None,
                          metadata_document_expires_at=NOW + 3600, jwks='{"keys":[]}',
                          token_endpoint_auth_method="private_key_jwt", token_endpoint_auth_signing_alg="ES256")
        try:
            assert await model.get_client(registered.client_id) == registered
            await model.upsert_client(document)
            assert await model.consume_assertion_jti(document.client_id, "jti-1", NOW + 60) is True
        finally:
            await model.close()
        await asyncio.to_thread(alembic, url, "downgrade", "0003")
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT client_id FROM oauth_clients"))).all()
            names = await conn.run_sync(lambda sync: {c["name"] for c in inspect(sync).get_columns("oauth_clients")})
    finally:
        await engine.dispose()
    assert [row[0] for row in rows] == [registered.client_id]
    assert names == OLD_CLIENT_COLUMNS


async def test_client_counter_revision_counts_every_client_write_on_sqlite(tmp_path: Path) -> None:
    """Revision 0008: on SQLite, triggers bump ``oauth_change_counters['clients']`` on every INSERT,
    UPDATE and DELETE of a client row, whoever writes it (here: plain SQL, as an operator would),
    so every process's client cache sees the change; 0007 has neither the triggers nor the table."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'counted.db'}"
    await asyncio.to_thread(alembic, url, "upgrade", "head")
    database = tmp_path / "counted.db"

    def count() -> Any:
        with sqlite3.connect(database) as conn:
            row = conn.execute("SELECT value FROM oauth_change_counters WHERE name = 'clients'").fetchone()
        return None if row is None else row[0]

    assert count() is None
    with sqlite3.connect(database) as conn:
        conn.execute("INSERT INTO oauth_clients (client_id, redirect_uris, token_endpoint_auth_method, grant_types, "
                     "response_types, client_id_issued_at, contacts) VALUES ('c', '[]', 'none', '[]', '[]', 1, '[]')")
    assert count() == 1
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE oauth_clients SET client_name = 'x' WHERE client_id = 'c'")
    assert count() == 2
    with sqlite3.connect(database) as conn:
        conn.execute("DELETE FROM oauth_clients WHERE client_id = 'c'")
    assert count() == 3
    await asyncio.to_thread(alembic, url, "downgrade", "0007")
    with sqlite3.connect(database) as conn:
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert triggers == [] and "oauth_change_counters" not in tables
