"""``SQLAuditSink``: audit events as rows of ``oauth_audit_events``, kept for ``audit_retention``.

    model = SQLAlchemyOAuthServerModel(url)
    server = AuthorizationServer(model, settings, on_event=SQLAuditSink(model))

The sink writes on the model's engine (same database, same pool) in a statement of its own,
committed at once: an event is recorded whether or not the request that caused it succeeds,
and a revocation is not undone by a failed audit write. A failing write raises, and the
server's ``AuditTrail`` logs it and lets the request go on (``trail.py``). Old rows go in
bounded batches through ``purge`` (``AuthorizationServer.purge_expired``, ``oauth-server purge``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from oauth_server.audit.events import COMMON_FIELDS, AuditEvent
from oauth_server.model.sqlalchemy.tables import audit_events

if TYPE_CHECKING:
    from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel

_INSERT = insert(audit_events)


def _purge_statement(before: int, batch: int) -> Any:
    """The oldest ``batch`` rows before ``before``, by key (a subquery: SQLite's DELETE has no LIMIT)."""
    oldest = (select(audit_events.c.id).where(audit_events.c.time < before)
              .order_by(audit_events.c.id).limit(batch).scalar_subquery())
    return delete(audit_events).where(audit_events.c.id.in_(oldest))


def row(event: AuditEvent) -> dict[str, Any]:
    """The insert parameters of ``event``: common fields as columns, the rest as JSON."""
    body = event.as_dict()
    details = {name: value for name, value in body.items() if name not in COMMON_FIELDS and name != "event"}
    return {"time": event.time, "kind": event.kind, "client_id": event.client_id, "subject": event.subject,
            "grant_id": event.grant_id, "details": json.dumps(details, separators=(",", ":"), ensure_ascii=False)}


class SQLAuditSink:
    """An ``on_event`` hook that stores events in ``oauth_audit_events`` (``migrations`` 0006).

    Args:
        target: the ``SQLAlchemyOAuthServerModel`` whose engine to share, an ``AsyncEngine``, or
            a database URL (then the sink owns its engine: ``aclose`` it at shutdown).
    """

    def __init__(self, target: SQLAlchemyOAuthServerModel | AsyncEngine | str) -> None:
        self._owned: AsyncEngine | None = None
        if isinstance(target, str):
            engine = self._owned = create_async_engine(target)
        elif isinstance(target, AsyncEngine):
            engine = target
        else:
            engine = target.engine
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def __call__(self, event: AuditEvent) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(_INSERT, row(event))

    async def purge(self, before: int, batch: int = 1000) -> int:
        """Delete up to ``batch`` of the oldest events with ``time < before``; how many went."""
        async with self._engine.connect() as conn:
            return (await conn.execute(_purge_statement(before, batch))).rowcount

    async def events(self, *, kind: str | None = None, client_id: str | None = None, subject: str | None = None,
                     grant_id: str | None = None, since: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Stored events, oldest first, as ``Event.as_dict`` shaped them (plus their ``id``)."""
        query = select(audit_events).order_by(audit_events.c.id).limit(limit)
        filters: Mapping[str, object | None] = {"kind": kind, "client_id": client_id, "subject": subject,
                                                "grant_id": grant_id}
        for name, value in filters.items():
            if value is not None:
                query = query.where(audit_events.c[name] == value)
        if since is not None:
            query = query.where(audit_events.c.time >= since)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [{"id": r["id"], "event": r["kind"], **{name: r[name] for name in COMMON_FIELDS},
                 **json.loads(r["details"])} for r in rows]

    async def aclose(self) -> None:
        """Dispose of the engine the sink created from a URL (a shared one is its owner's)."""
        if self._owned is not None:
            await self._owned.dispose()
