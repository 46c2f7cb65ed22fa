"""``migrate``, ``current`` and ``purge``: the schema and the housekeeping of the database."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import click

from oauth_server import migrate
from oauth_server.audit import purge_events
from oauth_server.cli.common import (
    DatabaseError,
    database_options,
    emit,
    ensure_migrated,
    first_line,
    require_url,
    shown,
    with_model,
)
from oauth_server.model.base import OAuthServerModel

if TYPE_CHECKING:
    from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel

#: How often at most ``purge`` reports its progress on stderr.
PROGRESS_EVERY = 1.0


@click.command("migrate")
@database_options
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (offline: no connection).")
def migrate_command(database_url: str | None, as_json: bool, sql: bool) -> None:
    """Create or upgrade the tables to the newest revision shipped in the package."""
    url = require_url(database_url) if not sql else _offline_url(database_url)
    try:
        migrate.upgrade(url, sql=sql)
    except Exception as exc:
        raise DatabaseError(f"migrate failed on {shown(url)}: {first_line(exc)}") from None
    if not sql:
        emit({"revisions": list(migrate.heads())}, as_json,
             lambda: click.echo(f"migrated {shown(url)} to {', '.join(migrate.heads())}"))


def _offline_url(url: str | None) -> str:
    from oauth_server.cli.common import ConfigError

    if not url:
        raise ConfigError("no database URL: pass --database-url or set DATABASE_URL")
    try:
        migrate.check_url(url, online=False)
    except migrate.DatabaseURLError as exc:
        raise ConfigError(str(exc)) from None
    return url


@click.command("current")
@database_options
def current_command(database_url: str | None, as_json: bool) -> None:
    """Print the revision the database is at; exit 3 if it is missing or behind the package."""
    url = require_url(database_url)
    ensure_migrated(url)  # exits 3 with the hint when not at head
    at = migrate.current(url)
    emit({"revisions": list(at), "heads": list(migrate.heads()), "up_to_date": True}, as_json,
         lambda: click.echo("\n".join(f"{revision} (head)" for revision in at)))


@click.command("purge")
@database_options
@click.option("--batch", default=1000, show_default=True, help="Rows of each kind deleted per statement.")
@click.option("--busy-share", default=0.25, show_default=True,
              help="Largest share of the time the purge keeps the database busy (0-1].")
@click.option("--audit-retention", envvar="OAUTH_AUDIT_RETENTION", default=7_776_000, show_default=True,
              help="Seconds audit events are kept (env OAUTH_AUDIT_RETENTION); older ones go too.")
def purge_command(database_url: str | None, as_json: bool, batch: int, busy_share: float,
                  audit_retention: int) -> None:
    """Delete every expired record (codes, tokens, grants, client secrets, retired keys), and
    the audit events older than --audit-retention.

    Paced like AuthorizationServer.purge_expired: one short batch per statement, and a pause
    after each so that a server using the database meanwhile keeps its latency. A large backlog
    reports its progress on stderr about once a second (not with --json).
    """
    if batch < 1 or not 0 < busy_share <= 1 or audit_retention < 1:
        raise click.BadParameter("--batch and --audit-retention must be >= 1 and --busy-share in (0, 1]")
    total = with_model(database_url, lambda model: _purge(model, batch, busy_share, progress=not as_json,
                                                          audit_retention=audit_retention))
    emit({"purged": total}, as_json, lambda: click.echo(f"purged {total} expired records"))


async def _purge(model: SQLAlchemyOAuthServerModel, batch: int, busy_share: float, progress: bool,
                 audit_retention: int) -> int:
    """AuthorizationServer.purge_expired's loop, with a progress line: it has no hook to report one.

    Records expiring after the purge began are left for the next run, so the loop ends. Then the
    audit events past their retention (``SQLAuditSink``), paced the same way.
    """
    from oauth_server.audit.sql import SQLAuditSink

    now = int(time.time())
    return (await _purge_records(model, now, batch, busy_share, progress)
            + await purge_events(SQLAuditSink(model), now - audit_retention, batch, busy_share))


async def _purge_records(model: OAuthServerModel, now: int, batch: int, busy_share: float, progress: bool) -> int:
    total, reported = 0, time.monotonic()
    while True:
        started = time.monotonic()
        removed = await model.purge_expired(now, batch)
        total += removed
        if removed == 0:
            return total
        if progress and time.monotonic() - reported >= PROGRESS_EVERY:
            click.echo(f"purged {total} so far...", err=True)
            reported = time.monotonic()
        await asyncio.sleep((time.monotonic() - started) * (1 - busy_share) / busy_share)
