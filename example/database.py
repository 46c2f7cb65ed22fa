"""The example's storage: ``SQLAlchemyOAuthServerModel`` on SQLite (default) or Postgres.

SQLite needs no server, so the example brings its tables up to date itself at start with the
migrations shipped in the package (``oauth_server.migrate``, the same ones production runs), from
a checkout and from an installed wheel alike. On Postgres the schema is the operator's business:
run ``make migrate`` (``python -m oauth_server.migrate upgrade``) before starting, as a
deployment would.
"""

from __future__ import annotations

import asyncio
import logging

from oauth_server import migrate
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel

logger = logging.getLogger("example")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_model(database_url: str, sqlite_synchronous: str = "FULL") -> SQLAlchemyOAuthServerModel:
    """The model for ``database_url`` (an async SQLAlchemy URL: ``sqlite+aiosqlite``, ``postgresql+asyncpg``)."""
    return SQLAlchemyOAuthServerModel(database_url, sqlite_synchronous=sqlite_synchronous)


async def prepare_database(model: SQLAlchemyOAuthServerModel, database_url: str) -> None:
    """Migrate the SQLite schema to head; on other databases expect ``make migrate`` to have run."""
    if not is_sqlite(database_url):
        logger.info("not SQLite: expecting the schema to be migrated already (make migrate)")
        return
    # env.py runs its own event loop (asyncio.run), so the migration cannot run on this one.
    await asyncio.to_thread(migrate.upgrade, database_url)
