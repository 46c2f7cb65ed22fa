"""CLI fixtures: a real SQLite file and a real Postgres database, each migrated by the CLI itself.

The Postgres database is new per test (``oauth_cli_<hex>``, dropped after) on ``PG_URL``; an
unreachable server skips those tests, or fails them with ``CI`` set.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from oauth_server.cli import cli
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.records import AuthorizationCode, Client, Grant

PG_URL = os.environ.get("PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run the command in-process; stdout and stderr apart (click 8.2+)."""
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": None, **(env or {})})


async def _admin(statement: str) -> None:
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'oauth.db'}"


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    name = f"oauth_cli_{secrets.token_hex(6)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        message = f"PostgreSQL at {PG_URL} is unreachable: {exc!r}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database migrated with ``oauth-server migrate``, on each backend."""
    chosen: str = (request.getfixturevalue("sqlite_url") if request.param == "sqlite"
                   else request.getfixturevalue("empty_postgres_url"))
    result = invoke("migrate", "--database-url", chosen)
    assert result.exit_code == 0, result.output
    return chosen


def seed_grants(url: str, *grants: tuple[str, str, int]) -> list[str]:
    """Store a client ``c1`` and one grant (with its code) per (subject, client_id, expires_in)."""

    async def seed() -> list[str]:
        model = SQLAlchemyOAuthServerModel(url, access_token_cache_ttl=0, client_cache_ttl=0)
        now = int(time.time())
        ids = []
        try:
            for client_id in {client for _, client, _ in grants}:
                if await model.get_client(client_id) is None:
                    await model.save_client(Client(client_id=client_id, redirect_uris=("https://app.example/cb",)))
            for subject, client_id, expires_in in grants:
                grant = Grant(grant_id=secrets.token_hex(8), client_id=client_id, subject=subject,
                              scopes=("mcp:read",), resource="http://localhost:8000/mcp",
                              created_at=now - 10, expires_at=now + expires_in)
                code = AuthorizationCode(code_digest=secrets.token_hex(16), grant_id=grant.grant_id,
                                         client_id=client_id, subject=subject, redirect_uri="https://app.example/cb",
                                         redirect_uri_provided_explicitly=True, scopes=grant.scopes,
                                         code_challenge="x" * 43, resource=grant.resource,
                                         expires_at=min(now + 60, now + expires_in))
                await model.save_authorization_code(code, grant)
                ids.append(grant.grant_id)
        finally:
            await model.close()
        return ids

    return asyncio.run(seed())
