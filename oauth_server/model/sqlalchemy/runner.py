"""How the SQL model reaches its database: engines, pool, caches, and running statements.

The base of ``SQLAlchemyOAuthServerModel`` (whose docstring describes the constructor's
arguments): it owns the engines (an ``AUTOCOMMIT`` one for single statements, a transactional
one), the asyncpg fast path, the Postgres change-notice feed with the caches it keeps honest,
and the few ways a verb runs SQL: one statement on its own (``_one``, ``_run``, ``_all``) or
several in one transaction that, on Postgres, announces a change to every process
(``_transaction``). The verbs are in ``clients.py`` and ``model.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from oauth_server.model.base import OAuthServerModel
from oauth_server.model.sqlalchemy.asyncpg_path import AsyncpgPath
from oauth_server.model.sqlalchemy.client_cache import RecentClients
from oauth_server.model.sqlalchemy.failures import storage
from oauth_server.model.sqlalchemy.notices import CHANNEL, NoticeFeed
from oauth_server.model.sqlalchemy.sqlite_path import SqlitePath
from oauth_server.model.sqlalchemy.statements import INSERT, NOTIFY
from oauth_server.model.sqlalchemy.tables import metadata, to_row
from oauth_server.model.sqlalchemy.token_cache import VerifiedTokenCache


def _sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int, synchronous: str) -> None:
    """WAL lets readers run beside the writer; the busy timeout makes writers queue, not fail.

    The model's own statements run on ``sqlite_path``'s connections; the engine's serve
    ``create_all`` and whoever uses ``model.engine``, with the same settings."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()


#: The isolation level of our transactions, where the engine's own default is AUTOCOMMIT.
_TRANSACTION_ISOLATION = {"postgresql": "READ COMMITTED", "sqlite": "SERIALIZABLE"}
#: Postgres: ``revoke_grant`` and ``delete_client`` need each statement's own snapshot.
_POSTGRES_ISOLATION = "READ COMMITTED"
#: Seconds a client record is cached on Postgres, where change notices keep every process's
#: cache current; on SQLite, where a change counter does (see ``client_cache``), the TTL only
#: bounds how long an unused record stays in memory; elsewhere nothing is cached unless asked.
_POSTGRES_CLIENT_CACHE_TTL = 5.0
_SQLITE_CLIENT_CACHE_TTL = 60.0


def _pool_defaults(backend: str) -> dict[str, Any]:
    """Pool options for an engine we create from a URL (any of them can be overridden).

    SQLAlchemy's default pool keeps 5 connections and closes each overflow connection as soon as
    it is returned: under 32 concurrent requests that opened and closed a Postgres connection
    (TLS handshake included) for most queries, and cut the bearer check to a sixth. We keep 20
    and open no overflow connections (they churn the same way): every statement is short, so a
    request briefly waits for a free connection instead.

    No ``pool_pre_ping``: its round trip before every statement cost a third of a lookup's CPU.
    A pooled connection whose socket is already closed is replaced at checkout, for free; one
    dropped so recently that its end has not been read yet fails its statement: reads are then
    retried once (``failures.read``), a write answers 503 once and the next request gets a new
    connection. ``pool_pre_ping=True`` trades that one 503 per outage for the extra round trip.
    """
    options: dict[str, Any] = {}
    if backend == "postgresql":
        options.update(pool_size=20, max_overflow=0)
    return options


class SQLRunner(OAuthServerModel):
    """Engines, caches and statement runners; the verbs live in the subclasses."""

    def __init__(self, engine: AsyncEngine | str, *, sqlite_busy_timeout: float = 30.0,
                 sqlite_synchronous: str = "FULL", access_token_cache_ttl: float = 5.0,
                 client_cache_ttl: float | None = None, **engine_options: Any) -> None:
        if isinstance(engine, str):
            backend = make_url(engine).get_backend_name()
            isolation = engine_options.pop("isolation_level", _TRANSACTION_ISOLATION.get(backend, "READ COMMITTED"))
            engine = create_async_engine(
                engine, **{**_pool_defaults(backend), **engine_options, "isolation_level": "AUTOCOMMIT"}
            )
            self._autocommit = engine
            self._transactional = engine.execution_options(isolation_level=isolation)
        else:
            self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._transactional = engine
        self._postgres = engine.dialect.name == "postgresql"
        if self._postgres:
            self._transactional = engine.execution_options(isolation_level=_POSTGRES_ISOLATION)
        # On asyncpg the statements run on the driver itself (see asyncpg_path).
        self._pg = AsyncpgPath(self._autocommit, _POSTGRES_ISOLATION) if engine.dialect.driver == "asyncpg" else None
        # On SQLite they run on sqlite3 itself: reads at once, writes group-committed (see sqlite_path).
        self._lite: SqlitePath | None = None
        if engine.dialect.name == "sqlite":
            database = engine.url.database
            if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
                raise ValueError("SQLite must be a file: an in-memory database is private to one connection")
            self._lite = SqlitePath(database, engine.dialect, sqlite_busy_timeout, sqlite_synchronous)
            _sqlite_pragmas(engine, int(sqlite_busy_timeout * 1000), sqlite_synchronous)
        self.engine = engine
        if client_cache_ttl is None:
            client_cache_ttl = (_POSTGRES_CLIENT_CACHE_TTL if self._postgres
                                else _SQLITE_CLIENT_CACHE_TTL if self._lite is not None else 0.0)
        # Postgres: one LISTEN connection keeps both caches honest (notices.py); none if both are off.
        self._feed: NoticeFeed | None = None
        if self._postgres and (access_token_cache_ttl > 0 or client_cache_ttl > 0):
            self._feed = NoticeFeed(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
        self._clients = RecentClients(client_cache_ttl, feed=self._feed)
        self._cache: VerifiedTokenCache | None = None
        if self._feed is not None and access_token_cache_ttl > 0:
            self._cache = VerifiedTokenCache(self._feed, access_token_cache_ttl)

    @storage
    async def create_all(self) -> None:
        """Create the tables if missing (tests and development; production runs alembic)."""
        async with self._transactional.begin() as conn:
            await conn.run_sync(metadata.create_all)

    @storage
    async def close(self) -> None:
        if self._feed is not None:
            await self._feed.close()
        if self._lite is not None:
            await self._lite.close()
        await self.engine.dispose()

    async def _one(self, statement: Any, params: dict[str, Any]) -> Mapping[Any, Any] | None:
        """Run one statement on its own; the first row as a mapping, or None."""
        if self._pg is not None:
            return await self._pg.fetchrow(statement, params)
        if self._lite is not None:
            rows = (await self._lite.execute(statement, params))[1]
            return rows[0] if rows else None
        async with self._autocommit.connect() as conn:
            return (await conn.execute(statement, params)).mappings().first()

    async def _run(self, statement: Any, params: dict[str, Any], column_keys: tuple[str, ...] = ()) -> int:
        """Run one statement on its own; the number of rows it touched."""
        if self._pg is not None:
            return await self._pg.run(statement, params, column_keys)
        if self._lite is not None:
            return (await self._lite.execute(statement, params, column_keys))[0]
        async with self._autocommit.connect() as conn:
            return (await conn.execute(statement, params)).rowcount

    async def _all(self, statement: Any, params: dict[str, Any]) -> list[Mapping[Any, Any]]:
        """Run one statement on its own; every row, as mappings."""
        if self._pg is not None:
            return list(await self._pg.fetch(statement, params))
        if self._lite is not None:
            return list((await self._lite.execute(statement, params))[1])
        async with self._autocommit.connect() as conn:
            return list((await conn.execute(statement, params)).mappings().all())

    async def _count(self, statement: Any, params: dict[str, Any]) -> int:
        """Run a ``SELECT count(*) ...`` statement on its own; the count."""
        row = await self._one(statement, params)
        return 0 if row is None else int(next(iter(row.values())))

    async def _insert(self, table: Table, record: object) -> None:
        row = to_row(record)
        await self._run(INSERT[table], row, tuple(row))

    async def _transaction(self, statements: Sequence[Any], params: dict[str, Any],
                           notice: str | None = None) -> list[int]:
        """Run ``statements`` in one transaction; the number of rows each touched.

        On Postgres, ``notice`` (``notices.notice(...)``) goes to every process's caches when,
        and only if, the transaction commits (``pg_notify`` is transactional).
        """
        counts: list[int] = []
        announce = {"channel": CHANNEL, "payload": notice}
        if self._pg is not None:
            async with self._pg.connection(transaction=True) as raw:
                for statement in statements:
                    counts.append(await self._pg.execute(raw, statement, params))
                if notice is not None:
                    await self._pg.execute(raw, NOTIFY, announce)
            return counts
        if self._lite is not None:
            done = await self._lite.write([(statement, params, ()) for statement in statements])
            return [count for count, _ in done or ()]
        async with self._transactional.begin() as conn:
            for statement in statements:
                counts.append((await conn.execute(statement, params)).rowcount)
            if notice is not None and self._postgres:
                await conn.execute(NOTIFY, announce)
        return counts
