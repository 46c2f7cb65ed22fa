"""The example's storage: ``SQLAlchemyOAuthServerModel`` on SQLite (default) or Postgres.

SQLite needs no server, so the example brings its tables up to date itself at start (alembic
``upgrade head``, the same migrations production uses). On Postgres the schema is the operator's
business: run ``make migrate`` (alembic) before starting, as a deployment would.
"""

from __future__ import annotations

import asyncio
import logging
from argparse import Namespace
from pathlib import Path

from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel

logger = logging.getLogger("example")

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_model(database_url: str) -> SQLAlchemyOAuthServerModel:
    """The model for ``database_url`` (an async SQLAlchemy URL: ``sqlite+aiosqlite``, ``postgresql+asyncpg``)."""
    return SQLAlchemyOAuthServerModel(database_url)


def _alembic_upgrade(database_url: str) -> None:
    """``alembic -x url=<database_url> upgrade head``, in process."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI), cmd_opts=Namespace(x=[f"url={database_url}"]))
    command.upgrade(config, "head")


async def prepare_database(model: SQLAlchemyOAuthServerModel, database_url: str) -> None:
    """Create or migrate the SQLite schema; on other databases expect ``make migrate`` to have run."""
    if not is_sqlite(database_url):
        logger.info("not SQLite: expecting the schema to be migrated already (make migrate)")
        return
    if ALEMBIC_INI.exists():
        # alembic's env.py runs its own event loop (asyncio.run), so it cannot run on this one.
        await asyncio.to_thread(_alembic_upgrade, database_url)
        return
    # Installed without the repository (no alembic.ini next to it): create the tables directly.
    await model.create_all()
