"""Alembic environment for oauth_server's tables, on an async engine.

The database URL is, in order: ``alembic -x url=...`` (what ``python -m oauth_server.migrate``
passes), the ``DATABASE_URL`` environment variable, ``sqlalchemy.url`` in alembic.ini. Only
tables named ``oauth_*`` are compared by autogenerate, and the history lives in
``oauth_server_alembic_version``, so these migrations can share a database with the
application's own.

This directory is the repository's ``migrations/`` and, in the wheel, ``oauth_server/migrations``
(pyproject.toml maps one onto the other), so the package can migrate without alembic.ini.

A caller may pass an open (sync) connection as ``config.attributes["connection"]`` to migrate
on it, e.g. from inside ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.types import TypeDecorator

from oauth_server.migrate import VERSION_TABLE
from oauth_server.model.sqlalchemy.tables import metadata

config = context.config

# The CLI logs per alembic.ini; inside an application (or pytest) its logging is left alone.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("DATABASE_URL")
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: pass -x url=..., set DATABASE_URL, or set sqlalchemy.url")
    return url


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Autogenerate looks at our tables only, never at the application's. ``type_`` is a plain
    ``str``: alembic's Literal of object kinds grows between releases (``check_constraint``)."""
    return type_ != "table" or (name or "").startswith("oauth_")


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render our column types as the plain SQL types they store, so revisions stay standalone."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def configure(**options: Any) -> None:
    context.configure(
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        render_item=render_item,
        compare_type=True,
        **options,
    )


def run_on(connection: Connection) -> None:
    # SQLite cannot ALTER most things in place: batch mode copies the table instead.
    configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_on)
    finally:
        await engine.dispose()


def run_offline(url: str) -> None:
    """``alembic upgrade --sql``: print the DDL instead of running it."""
    configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"},
              render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline(database_url())
elif isinstance(config.attributes.get("connection"), Connection):
    run_on(config.attributes["connection"])
else:
    asyncio.run(run_async(database_url()))
