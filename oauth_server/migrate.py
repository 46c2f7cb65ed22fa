"""Create or upgrade oauth_server's tables from the installed package: no alembic.ini needed.

    python -m oauth_server.migrate upgrade [--url URL] [--sql]
    python -m oauth_server.migrate current [--url URL]

The URL comes from ``--url``, else ``DATABASE_URL``. The migrations are the ones in the
repository's ``migrations/``, shipped inside the wheel as ``oauth_server/migrations``; the same
``env.py`` runs them, so its rules hold here too (history in ``oauth_server_alembic_version``,
only ``oauth_*`` tables). ``upgrade`` and ``current`` block and run their own event loop
(``env.py`` calls ``asyncio.run``): from async code, call them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from argparse import Namespace
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

VERSION_TABLE = "oauth_server_alembic_version"

_PACKAGE = Path(__file__).resolve().parent
_EXAMPLE_URLS = "sqlite+aiosqlite:///./oauth.db or postgresql+asyncpg://user:pass@host:5432/db"
_ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg://...", "sqlite": "sqlite+aiosqlite://..."}


class DatabaseURLError(ValueError):
    """The URL is missing, unparseable, names an unknown dialect, or a driver that is not installed."""


def script_location() -> Path:
    """The migrations directory: inside the installed wheel, or at the root of a source checkout.

    A checkout (or an editable install of it) has no ``oauth_server/migrations``: the wheel maps
    the repository's ``migrations/`` there. The checkout is recognised by ``alembic.ini`` beside
    it, so an unrelated top-level ``migrations`` in site-packages is never picked up.
    """
    installed = _PACKAGE / "migrations"
    if (installed / "env.py").is_file():
        return installed
    checkout = _PACKAGE.parent
    if (checkout / "migrations" / "env.py").is_file() and (checkout / "alembic.ini").is_file():
        return checkout / "migrations"
    raise FileNotFoundError(f"no migrations in {installed} nor in a source checkout at {checkout}")


def check_url(url: str, *, online: bool = True) -> URL:
    """Parse ``url`` and load its dialect; online, the driver must be async and importable."""
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except NoSuchModuleError:  # a subclass of ArgumentError: first
        raise DatabaseURLError(f"unknown database dialect or driver {url.split(':', 1)[0]!r} "
                               f"(e.g. {_EXAMPLE_URLS})") from None
    except ArgumentError:
        # Not echoed: a malformed URL may still hold a password.
        raise DatabaseURLError(f"not a database URL (expected e.g. {_EXAMPLE_URLS})") from None
    if not online:
        return parsed
    if not dialect.is_async:
        async_name = _ASYNC_DRIVERS.get(parsed.get_backend_name(), "an async driver")
        raise DatabaseURLError(f"{parsed.drivername!r} is not an async driver and the migrations run on an "
                               f"async engine: use {async_name}")
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        extra = {"postgresql": "postgres", "sqlite": "sqlite"}.get(parsed.get_backend_name(), "postgres,sqlite")
        raise DatabaseURLError(f"the driver for {parsed.drivername!r} is not installed ({exc}): "
                               f"pip install 'oauth_server[{extra}]'") from None
    return parsed


def alembic_config(url: str) -> Config:
    """An alembic ``Config`` for our migrations on ``url``, as ``alembic -x url=...`` would make it.

    The URL goes in as ``-x url`` rather than ``sqlalchemy.url`` so that it wins over
    ``DATABASE_URL`` in ``env.py`` and escapes ConfigParser's ``%`` interpolation.
    """
    config = Config(cmd_opts=Namespace(x=[f"url={url}"]))
    config.set_main_option("script_location", str(script_location()).replace("%", "%%"))
    return config


def heads() -> tuple[str, ...]:
    """The head revision(s) the shipped migrations lead to."""
    return tuple(ScriptDirectory(str(script_location())).get_heads())


def upgrade(url: str, sql: bool = False) -> None:
    """Upgrade ``url``'s schema to head. With ``sql``, print the DDL to stdout instead of running it."""
    check_url(url, online=not sql)
    command.upgrade(alembic_config(url), "head", sql=sql)


def current(url: str) -> tuple[str, ...]:
    """The revision(s) ``url``'s schema is at; empty if it was never migrated."""
    check_url(url)
    return asyncio.run(_current(url))


async def _current(url: str) -> tuple[str, ...]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revisions)
    finally:
        await engine.dispose()


def _revisions(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_heads())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m oauth_server.migrate", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("upgrade", "create or upgrade the tables to the newest revision"),
                        ("current", "print the revision the database is at")):
        sub = commands.add_parser(name, help=help_)
        sub.add_argument("--url", help="async SQLAlchemy URL (default: $DATABASE_URL)")
        if name == "upgrade":
            sub.add_argument("--sql", action="store_true", help="print the DDL instead of running it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. Exit status: 0 done, 1 the database refused or failed, 2 a bad or missing URL."""
    args = _parser().parse_args(argv)
    url = args.url or os.environ.get("DATABASE_URL")
    if not url:
        print("error: no database URL: pass --url or set DATABASE_URL", file=sys.stderr)
        return 2
    # alembic's progress ("Running upgrade -> 0001") on stderr; stdout carries --sql and current.
    logging.basicConfig(level=logging.INFO if args.command == "upgrade" else logging.WARNING,
                        format="%(message)s", stream=sys.stderr)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    try:
        if args.command == "upgrade":
            upgrade(url, sql=args.sql)
        else:
            at, newest = current(url), set(heads())
            for revision in at:
                print(f"{revision} (head)" if revision in newest else revision)
            if not at:
                print("no revision: the tables were never migrated", file=sys.stderr)
    except DatabaseURLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError, CommandError) as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        print(f"error: {args.command} failed on {shown}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
