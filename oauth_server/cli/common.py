"""What every ``oauth-server`` command shares: the database, exit codes, errors and output.

Exit codes are the command's contract with scripts: 0 done, 1 the operation failed (no such
client, the database refused), 2 a usage or configuration error (click's own usage errors are 2
too), 3 the database is unreachable or not migrated. Every failure is one line on stderr and
never a traceback: an operator reads the line, a script reads the code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from oauth_server import migrate
from oauth_server.errors import StorageUnavailable
from oauth_server.settings import OAuthServerSettings

if TYPE_CHECKING:  # SQLAlchemy loads only when a command needs the database (not for --help)
    from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_ISSUER = "http://localhost:8000"


class Failed(click.ClickException):
    """The operation failed: no such record, or the database refused it."""

    exit_code = 1


class ConfigError(click.ClickException):
    """A bad or missing URL, secret or setting: nothing was attempted."""

    exit_code = 2


class DatabaseError(click.ClickException):
    """The database cannot be reached, or its tables are missing or older than this package."""

    exit_code = 3


def first_line(exc: BaseException) -> str:
    """SQLAlchemy's messages run over several lines (the SQL, a link): the first says what failed."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def database_options(command: F) -> F:
    """``--database-url`` (else ``DATABASE_URL``) and ``--json``, on every command that needs them."""
    command = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(command)
    return click.option("--database-url", envvar="DATABASE_URL", metavar="URL",
                        help="Async SQLAlchemy URL, e.g. sqlite+aiosqlite:///./oauth.db or "
                             "postgresql+asyncpg://user@host/db (default: $DATABASE_URL).")(command)


def issuer_option(command: F) -> F:
    return click.option("--issuer", envvar="OAUTH_ISSUER", default=DEFAULT_ISSUER, show_default=True,
                        help="The server's issuer URL (default: $OAUTH_ISSUER).")(command)


def secret_option(command: F) -> F:
    return click.option("--key-encryption-secret", envvar="KEY_ENCRYPTION_SECRET", metavar="SECRET",
                        help="The secret the server encrypts its signing keys with, at least 32 bytes "
                             "(default: $KEY_ENCRYPTION_SECRET).")(command)


def require_url(url: str | None) -> str:
    """The URL, parsed and its driver loaded; a bad one is a configuration error (2)."""
    if not url:
        raise ConfigError("no database URL: pass --database-url or set DATABASE_URL")
    try:
        migrate.check_url(url)
    except migrate.DatabaseURLError as exc:
        raise ConfigError(str(exc)) from None
    return url


def shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def ensure_migrated(url: str) -> None:
    """Refuse (3) a database that is unreachable or whose tables are missing or behind.

    Checked before any verb runs, so that an operator reads "run oauth-server migrate" rather
    than a driver's "no such table". A SQLite file that does not exist is not created here.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(str(parsed.database)).exists():
            raise DatabaseError(f"no database file {parsed.database}: run oauth-server migrate")
    try:
        at = migrate.current(url)
    except Exception as exc:
        raise DatabaseError(f"database {shown(url)} unreachable: {first_line(exc)}") from None
    if not at:
        raise DatabaseError(f"database {shown(url)} has no oauth_server tables: run oauth-server migrate")
    if set(at) != set(migrate.heads()):
        raise DatabaseError(f"database {shown(url)} is at revision {', '.join(at)}, this package needs "
                            f"{', '.join(migrate.heads())}: run oauth-server migrate")


def _missing_table(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if "no such table" in str(seen) or getattr(seen, "sqlstate", None) == "42P01":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def with_model(url: str | None, action: Callable[[SQLAlchemyOAuthServerModel], Awaitable[T]]) -> T:
    """Run ``action`` on the SQL model of ``url`` in a fresh event loop, mapping failures to exit codes.

    The caches are off: this process lives for one command, and with them off on Postgres it
    opens no LISTEN connection.
    """
    checked = require_url(url)
    ensure_migrated(checked)
    from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel

    async def run() -> T:
        model = SQLAlchemyOAuthServerModel(checked, access_token_cache_ttl=0, client_cache_ttl=0)
        try:
            return await action(model)
        finally:
            await model.close()

    try:
        return asyncio.run(run())
    except click.ClickException:
        raise
    except StorageUnavailable as exc:
        cause = exc.__cause__ or exc
        raise DatabaseError(f"database {shown(checked)} unreachable: {first_line(cause)}") from None
    except Exception as exc:
        if _missing_table(exc):
            raise DatabaseError(f"database {shown(checked)} lacks a table: run oauth-server migrate") from None
        raise Failed(first_line(exc)) from None


def settings(issuer: str, scopes: Iterable[str] = (), **extra: Any) -> OAuthServerSettings:
    """Settings enough for the rules the CLI calls; a bad issuer or scope is a configuration error."""
    base = issuer.rstrip("/")
    extra.setdefault("resource_server_url", f"{base}/mcp")
    try:
        return OAuthServerSettings(issuer_url=issuer, authorization_url=f"{base}/consent",
                                   scopes_supported=tuple(scopes), **extra)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def split_commas(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...] | None) -> tuple[str, ...]:
    """A repeatable option that also takes comma lists: ``--scopes a,b --scopes c``."""
    return tuple(dict.fromkeys(part.strip() for value in values or () for part in value.split(",") if part.strip()))


def iso(timestamp: int | None) -> str | None:
    """ISO 8601 UTC, the one time format the CLI prints (JSON included)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def emit(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        human()


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Aligned columns for a human; empty cells as ``-``."""
    cells = [[str(row.get(col) if row.get(col) is not None else "-") for col in columns] for row in rows]
    widths = [max([len(col), *(len(line[i]) for line in cells)]) for i, col in enumerate(columns)]
    click.echo("  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
