"""Create the Postgres database named in a SQLAlchemy URL if it does not exist yet (``make migrate``).

Usage: ``python scripts/create_database.py postgresql+asyncpg://user@host:5432/name``. SQLite URLs
need nothing (the file is created on first connect), so they are left alone.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg
from sqlalchemy.engine import make_url


async def create_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        return
    admin = parsed.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database)
        if not exists:
            quoted = '"' + parsed.database.replace('"', '""') + '"'
            await conn.execute(f"CREATE DATABASE {quoted}")
            print(f"created database {parsed.database}")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(create_database(sys.argv[1]))
