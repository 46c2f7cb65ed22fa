"""The model's statements run straight on asyncpg, on connections from SQLAlchemy's pool.

Why: for a one-row statement SQLAlchemy's async execution layer (greenlet hand-offs, execution
context, result wrapping) cost about 4× asyncpg's own ``fetchrow`` here (~320 µs of CPU against
~70 µs), and the token endpoint runs five such statements. The statements stay SQLAlchemy Core
(``model.py``): each is compiled once, by SQLAlchemy's asyncpg dialect, to its SQL text with
``$n`` parameters; bind and result processing use the columns' own types (``StringTuple``'s
JSON). The pool, its invalidation and the error contract stay SQLAlchemy's: a dropped connection
is invalidated and reported as ``DroppedConnection`` (retried by reads), a constraint violation
as ``sqlalchemy.exc.IntegrityError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

Processor = Callable[[Any], Any] | None

_ISOLATION = {"READ COMMITTED": "read_committed", "REPEATABLE READ": "repeatable_read",
              "SERIALIZABLE": "serializable"}


class DroppedConnection(Exception):
    """The pooled connection was dead (the database restarted or dropped it); it is invalidated."""


class Compiled:
    """One statement as asyncpg runs it: SQL text, parameter order and processors, result columns."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None) -> None:
        compiled = cast(SQLCompiler, statement.compile(
            dialect=dialect, column_keys=list(column_keys) if column_keys else None))
        self.sql = compiled.string
        names = compiled.positiontup or []
        self.params: tuple[tuple[str, Processor], ...] = tuple(
            (name, compiled.binds[name].type.bind_processor(dialect)) for name in names
        )
        #: The values of anonymous literals (``column > 0`` binds its 0 as ``param_1``).
        self.literals = {name: compiled.binds[name].effective_value for name in names
                         if not compiled.binds[name].required}
        columns = getattr(statement, "exported_columns", None) or ()
        self.columns: tuple[tuple[str, Processor], ...] = tuple(
            (column.key, column.type.result_processor(dialect, None)) for column in columns
        )

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        if self.literals:
            params = {**self.literals, **params}
        return [params[name] if process is None else process(params[name]) for name, process in self.params]

    def row(self, record: Any) -> dict[str, Any]:
        return {key: record[i] if process is None else process(record[i])
                for i, (key, process) in enumerate(self.columns)}


class CompiledCache:
    """``compiled()``: each statement object compiled once for ``dialect`` (the asyncpg and the
    SQLite paths both run the model's module-level statements)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._compiled: dict[tuple[int, tuple[str, ...]], Compiled] = {}
        self._keep: list[ClauseElement] = []  # statements compiled here live as long as the cache

    def compiled(self, statement: ClauseElement, column_keys: Sequence[str] = ()) -> Compiled:
        key = (id(statement), tuple(column_keys))
        found = self._compiled.get(key)
        if found is None:
            if len(self._keep) >= 256:  # the model's statements are module constants: never here
                self._compiled.clear()
                self._keep.clear()
            found = self._compiled[key] = Compiled(statement, self.dialect, column_keys or None)
            self._keep.append(statement)
        return found


class AsyncpgPath(CompiledCache):
    """Checkout, run, translate errors. ``compiled()`` caches per statement object."""

    def __init__(self, engine: AsyncEngine, isolation_level: str) -> None:
        super().__init__(engine.dialect)
        self.engine = engine
        self.isolation = _ISOLATION.get(isolation_level.upper(), "read_committed")

    @contextlib.asynccontextmanager
    async def connection(self, transaction: bool = False) -> AsyncIterator[Any]:
        """An asyncpg connection from the pool (in a transaction if asked).

        Checked out of SQLAlchemy's pool itself rather than through ``AsyncEngine.connect()``:
        the pool's own rules (size, timeout, pre-ping, recycle, reset on return) all apply, and
        a statement saves the ``AsyncConnection`` wrapper and two of its three greenlet hand-offs
        (measured: about a third of a one-row statement's CPU).
        """
        pool = self.engine.sync_engine.pool  # looked up each time: engine.dispose() replaces it
        fairy: PoolProxiedConnection | None = await greenlet_spawn(pool.connect)
        try:
            if fairy is None:
                raise RuntimeError("the pool handed out no connection")
            raw: Any = fairy.driver_connection
            if raw.is_closed():  # the database dropped it while it sat in the pool: costs no round trip
                dead, fairy = fairy, None
                await greenlet_spawn(dead.invalidate)  # returns it to the pool, to reconnect later
                fairy = await greenlet_spawn(pool.connect)
                raw = fairy.driver_connection
            try:
                if transaction:
                    async with raw.transaction(isolation=self.isolation):
                        yield raw
                else:
                    yield raw
            except Exception as exc:
                dropped = _translate(exc)
                if dropped is None:
                    raise
                invalid, fairy = fairy, None
                with contextlib.suppress(Exception):
                    await greenlet_spawn(invalid.invalidate, exc)
                raise dropped from exc
        finally:
            if fairy is not None:
                await greenlet_spawn(fairy.close)

    async def fetchrow(self, statement: ClauseElement, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row of ``statement``, run on a connection of its own."""
        compiled = self.compiled(statement)
        async with self.connection() as raw:
            record = await raw.fetchrow(compiled.sql, *compiled.args(params))
        return None if record is None else compiled.row(record)

    async def fetch(self, statement: ClauseElement, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every row of ``statement``, run on a connection of its own."""
        compiled = self.compiled(statement)
        async with self.connection() as raw:
            records = await raw.fetch(compiled.sql, *compiled.args(params))
        return [compiled.row(record) for record in records]

    async def run(self, statement: ClauseElement, params: Mapping[str, Any], column_keys: Sequence[str] = ()) -> int:
        """``execute`` on a connection of its own."""
        async with self.connection() as raw:
            return await self.execute(raw, statement, params, column_keys)

    async def execute(self, raw: Any, statement: ClauseElement, params: Mapping[str, Any],
                      column_keys: Sequence[str] = ()) -> int:
        """Run on ``raw``; the number of rows the statement touched."""
        compiled = self.compiled(statement, column_keys)
        status: str = await raw.execute(compiled.sql, *compiled.args(params))
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0


#: Connection exceptions (08) and the server ending the session: admin or crash shutdown (57P01/2).
_DROPPED_SQLSTATES = ("08", "57P01", "57P02")
#: asyncpg's names for a connection that is gone. ``InternalClientError`` is what a pooled
#: connection raises when the server's "terminating connection" notice has been read but the
#: socket's end not yet: its protocol is left mid-error and can never run a statement again.
_DROPPED_ERRORS = ("ConnectionDoesNotExistError", "InterfaceError", "InternalClientError")


def _translate(exc: Exception) -> DroppedConnection | None:
    """SQLAlchemy's meaning of an asyncpg error: raises ``IntegrityError`` for a constraint
    violation, returns ``DroppedConnection`` for a dead connection (to be invalidated), or
    None to re-raise ``exc`` unchanged."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate.startswith("23"):
        raise sa_exc.IntegrityError(None, None, exc) from exc
    if isinstance(exc, OSError) or sqlstate.startswith(_DROPPED_SQLSTATES) or type(exc).__name__ in _DROPPED_ERRORS:
        return DroppedConnection(type(exc).__name__)
    return None


