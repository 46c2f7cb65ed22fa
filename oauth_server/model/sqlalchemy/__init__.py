"""SQL storage on SQLAlchemy 2.x async (Postgres via asyncpg, SQLite via aiosqlite).

Needs the ``postgres`` or ``sqlite`` extra; ``oauth_server`` imports it only when asked for.
"""

from oauth_server.model.sqlalchemy.model import SQLAlchemyOAuthServerModel
from oauth_server.model.sqlalchemy.tables import metadata

__all__ = ["SQLAlchemyOAuthServerModel", "metadata"]
