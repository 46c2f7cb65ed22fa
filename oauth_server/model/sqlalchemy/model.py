"""``SQLAlchemyOAuthServerModel``: the storage interface on SQLAlchemy 2.x async Core.

How it keeps the contract of :class:`~oauth_server.model.base.OAuthServerModel`:

* Single use is decided by the database, one statement each (``UPDATE ... WHERE consumed_at IS
  NULL RETURNING``, ``DELETE ... RETURNING``): of any number of concurrent callers, on any number
  of processes, exactly one gets the row. Nothing is read first and decided in Python.
* Reads and single-statement writes run on an ``AUTOCOMMIT`` connection: one statement is its own
  transaction, so a token lookup costs one primary-key ``SELECT`` and no ``BEGIN``/``COMMIT``
  round trips. On Postgres, saving a token pair and rotating a refresh token are single
  statements too (data-modifying CTEs); only ``revoke_grant`` and ``revoke_access_token`` (and
  on SQLite the pair writes) open a transaction.
* Core statements, no ORM session: no identity map or unit of work on the hot path.
* An unreachable database raises :class:`~oauth_server.errors.StorageUnavailable` (answered 503),
  never a raw driver error; integrity and programming errors propagate unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Table, and_, any_, bindparam, delete, event, func, insert, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import ColumnElement, Delete

from oauth_server.errors import StorageUnavailable
from oauth_server.model.base import OAuthServerModel
from oauth_server.model.sqlalchemy.asyncpg_path import AsyncpgPath, DroppedConnection
from oauth_server.model.sqlalchemy.client_cache import RecentClients
from oauth_server.model.sqlalchemy.tables import (
    access_tokens,
    authorization_codes,
    clients,
    metadata,
    pending_authorizations,
    refresh_tokens,
    to_row,
)
from oauth_server.model.sqlalchemy.token_cache import CHANNEL, VerifiedTokenCache
from oauth_server.records import AccessToken, AuthorizationCode, Client, PendingAuthorization, RefreshToken

P = ParamSpec("P")
T = TypeVar("T")

# -- statements (module level: built once, and reused by scripts/explain_plans.py) ------------
_codes, _access, _refresh, _pending = authorization_codes.c, access_tokens.c, refresh_tokens.c, pending_authorizations.c

GET_CLIENT = select(clients).where(clients.c.client_id == bindparam("key"))
GET_PENDING = select(pending_authorizations).where(_pending.request_digest == bindparam("key"))
GET_CODE = select(authorization_codes).where(_codes.code_digest == bindparam("key"))
GET_ACCESS_TOKEN = select(access_tokens).where(_access.token_digest == bindparam("key"))
GET_REFRESH_TOKEN = select(refresh_tokens).where(_refresh.token_digest == bindparam("key"))

BIND_PENDING = (
    update(pending_authorizations)
    .where(_pending.request_digest == bindparam("key"), _pending.browser_digest.is_(None))
    .values(browser_digest=bindparam("browser_digest"))
)
CONSUME_PENDING = (
    delete(pending_authorizations).where(_pending.request_digest == bindparam("key")).returning(*_pending)
)
# RFC 6749 §10.5 / OAuth 2.1 §4.1.3: codes are single use; the database decides who got it.
CONSUME_CODE = (
    update(authorization_codes)
    .where(_codes.code_digest == bindparam("key"), _codes.consumed_at.is_(None))
    .values(consumed_at=bindparam("now"))
    .returning(*_codes)
)
# RFC 9700 §4.14.2: a refresh token rotates once; the loser sees no row and stores nothing.
ROTATE_REFRESH_TOKEN = (
    update(refresh_tokens)
    .where(_refresh.token_digest == bindparam("key"), _refresh.rotated_at.is_(None))
    .values(rotated_at=bindparam("now"))
    .returning(_refresh.token_digest)
)


def _insert_from(table: Table, prefix: str, source: Any) -> Any:
    """``INSERT INTO table SELECT :prefix_<column>, ... FROM source``: one row per row of ``source``."""
    values = [bindparam(f"{prefix}{column.name}", type_=column.type) for column in table.columns]
    query = select(*values).select_from(source) if source is not None else select(*values)
    return insert(table).from_select([column.name for column in table.columns], query)


# Postgres, one statement each (one round trip instead of BEGIN, 2-3 statements, COMMIT): a
# statement is atomic, and data-modifying CTEs all run, in one snapshot. The rotation's INSERTs
# select from its UPDATE, so a rotation that found ``rotated_at`` already set inserts nothing;
# the UPDATE's row lock orders concurrent rotations exactly as in the transaction.
_ROTATED = ROTATE_REFRESH_TOKEN.cte("rotated")
ROTATE_AND_ISSUE_POSTGRES = (
    select(func.count()).select_from(_ROTATED)
    .add_cte(_insert_from(access_tokens, "a_", _ROTATED).cte("new_access"),
             _insert_from(refresh_tokens, "r_", _ROTATED).cte("new_refresh"))
)
SAVE_PAIR_POSTGRES = _insert_from(refresh_tokens, "r_", None).add_cte(
    _insert_from(access_tokens, "a_", None).cte("new_access"))
REVOKE_ACCESS_TOKEN = delete(access_tokens).where(_access.token_digest == bindparam("key"))
# Refresh tokens first: that DELETE waits for any rotation in flight (it holds the old row's
# lock), so the later statements, each with a fresh READ COMMITTED snapshot, see the tokens
# that rotation inserted; the final pass removes its new refresh token.
NOTIFY_REVOKED = text("SELECT pg_notify(:channel, :payload)")
INSERT = {table: insert(table) for table in (clients, pending_authorizations, authorization_codes,
                                             access_tokens, refresh_tokens)}
REVOKE_GRANT = tuple(
    delete(table).where(table.c.grant_id == bindparam("grant_id"))
    for table in (refresh_tokens, access_tokens, authorization_codes, refresh_tokens)
)


def _purge(table: Table, expires: ColumnElement[int], expired: ColumnElement[bool], *, postgres: bool) -> Delete:
    """Delete one bounded batch of expired rows, oldest first, so it is safe while serving.

    The batch is chosen on the ``expires`` index (``ORDER BY ... LIMIT``). On Postgres it is
    ``pk = ANY(ARRAY(batch))``: the batch is computed once, then each row is deleted through the
    primary key (``pk IN (batch)`` lets the planner hash-join it against a scan of the whole
    table), and ``SKIP LOCKED`` leaves rows a request is consuming right now for the next purge.
    SQLite has neither; its writers are serialized anyway.
    """
    (key,) = table.primary_key.columns
    batch = select(key).where(expired).order_by(expires).limit(bindparam("batch"))
    if postgres:
        return delete(table).where(key == any_(func.array(batch.with_for_update(skip_locked=True).scalar_subquery())))
    return delete(table).where(key.in_(batch))


def purge_statements(*, postgres: bool) -> tuple[Delete, ...]:
    """One purge statement per table, for the dialect."""
    client_expiry = clients.c.client_secret_expires_at
    return (
        _purge(pending_authorizations, _pending.expires_at, _pending.expires_at <= bindparam("now"), postgres=postgres),
        _purge(authorization_codes, _codes.expires_at, _codes.expires_at <= bindparam("now"), postgres=postgres),
        _purge(access_tokens, _access.expires_at, _access.expires_at <= bindparam("now"), postgres=postgres),
        _purge(refresh_tokens, _refresh.expires_at, _refresh.expires_at <= bindparam("now"), postgres=postgres),
        # RFC 7591 §3.2.1: a client whose secret expired goes too (0 means never), as in the memory model.
        _purge(clients, client_expiry, and_(client_expiry > 0, client_expiry <= bindparam("now")), postgres=postgres),
    )


PURGE = purge_statements(postgres=False)
PURGE_POSTGRES = purge_statements(postgres=True)


# -- outages --------------------------------------------------------------------------------
#: SQLSTATE classes meaning "the database is not serving": 08 connection exception,
#: 53 insufficient resources (too many connections), 57 operator intervention (shutdown).
_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot serve (answer 503), rather than a bug or a conflict.

    SQLite reports a missing table as an OperationalError too: an unmigrated schema is then a 503
    whose cause, chained to the StorageUnavailable, is in the log.
    """
    if isinstance(exc, DroppedConnection):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError):
            return True  # PEP 249: OperationalError is the database's trouble, not the caller's
        if isinstance(exc, sa_exc.IntegrityError):
            return False
    elif isinstance(exc, sa_exc.TimeoutError):
        return True  # the pool stayed exhausted: overloaded
    seen: BaseException | None = exc
    for _ in range(16):  # the driver's own error is in the cause chain (bounded: chains are short)
        if seen is None:
            break
        if isinstance(seen, OSError):
            return True  # refused, reset, unreachable, timed out
        sqlstate = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _storage(method: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turn an outage raised by ``method`` into StorageUnavailable, chained for the log."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except StorageUnavailable:
            raise
        except Exception as exc:
            if is_outage(exc):
                # The message names the class only: a driver message may carry host names.
                raise StorageUnavailable(f"database unavailable ({type(exc).__name__})") from exc
            raise

    return wrapper


def _read(method: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """``_storage`` for a read, run once more on a fresh connection if the pooled one was dead.

    Without a pre-ping (see ``_pool_defaults``) a connection the database dropped is replaced
    at checkout when this process has already seen its socket close (``AsyncpgPath``); when
    it has not (the drop is a few milliseconds old) the first statement fails and the
    connection is invalidated, so a second try gets a new one. Only reads are retried: a failed
    write may have been applied, so it is answered 503 and the client retries.
    """

    @functools.wraps(method)
    async def retried(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except DroppedConnection:
            pass
        except sa_exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return await method(*args, **kwargs)

    return _storage(retried)


def _sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """WAL lets readers run beside the writer; the busy timeout makes writers queue, not fail."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()


#: The isolation level of our transactions, where the engine's own default is AUTOCOMMIT.
_TRANSACTION_ISOLATION = {"postgresql": "READ COMMITTED", "sqlite": "SERIALIZABLE"}


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
    retried once (``_read``), a write answers 503 once and the next request gets a new
    connection. ``pool_pre_ping=True`` trades that one 503 per outage for the extra round trip.
    """
    options: dict[str, Any] = {}
    if backend == "postgresql":
        options.update(pool_size=20, max_overflow=0)
    return options


class SQLAlchemyOAuthServerModel(OAuthServerModel):
    """Records in SQL tables (``oauth_*``), on Postgres (asyncpg) or SQLite (aiosqlite).

    Args:
        engine: a URL such as ``postgresql+asyncpg://...`` or ``sqlite+aiosqlite:///path.db``,
            or an ``AsyncEngine``. From a URL the engine is created with a pool of 20 connections
            (Postgres; ``pool_size``, ``max_overflow`` to change; no pre-ping, reads retried on a
            dropped connection instead: see ``_pool_defaults``) and ``AUTOCOMMIT`` as its
            default, so that a single statement costs no ``BEGIN``/``ROLLBACK``; transactions
            ask for ``isolation_level`` (default READ COMMITTED, SERIALIZABLE on SQLite). A
            given engine is used as it is, and single statements switch its connections to
            AUTOCOMMIT.
        sqlite_busy_timeout: seconds a SQLite writer waits for the lock before giving up.
        access_token_cache_ttl: on Postgres, seconds a verified access token is served from
            memory (see ``token_cache``: revocations reach every process by LISTEN/NOTIFY, and
            the cache is bypassed whenever this process is not listening). 0 turns it off.
            SQLite has no notifications, so it never caches.
        client_cache_ttl: seconds a found client record is kept in memory (see
            ``client_cache``: records never change, so this saves a round trip per token
            request; it bounds only how long a row deleted by hand keeps working). 0 turns it off.
        **engine_options: passed to ``create_async_engine`` (``pool_size``, ``echo``, ...).

    The schema comes from the alembic migrations (``alembic upgrade head``); ``create_all`` is
    for tests and development. SQLite must be a file: WAL needs one, and an in-memory
    database is private to one connection.
    """

    def __init__(self, engine: AsyncEngine | str, *, sqlite_busy_timeout: float = 30.0,
                 access_token_cache_ttl: float = 5.0, client_cache_ttl: float = 5.0,
                 **engine_options: Any) -> None:
        if isinstance(engine, str):
            backend = make_url(engine).get_backend_name()
            isolation = engine_options.pop("isolation_level", _TRANSACTION_ISOLATION.get(backend, "READ COMMITTED"))
            engine = create_async_engine(
                engine, **{**_pool_defaults(backend), **engine_options, "isolation_level": "AUTOCOMMIT"}
            )
            self._autocommit = engine
            self._transactional = engine.execution_options(isolation_level=isolation)
        else:
            isolation = "READ COMMITTED"
            self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._transactional = engine
        # On asyncpg the statements run on the driver itself (see asyncpg_path).
        self._pg = AsyncpgPath(self._autocommit, isolation) if engine.dialect.driver == "asyncpg" else None
        if engine.dialect.name == "sqlite":
            _sqlite_pragmas(engine, int(sqlite_busy_timeout * 1000))
        self.engine = engine
        self._purge = PURGE_POSTGRES if engine.dialect.name == "postgresql" else PURGE
        self._clients = RecentClients(client_cache_ttl)
        self._cache: VerifiedTokenCache | None = None
        if engine.dialect.name == "postgresql" and access_token_cache_ttl > 0:
            dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._cache = VerifiedTokenCache(dsn, access_token_cache_ttl)

    @_storage
    async def create_all(self) -> None:
        """Create the tables if missing (tests and development; production runs alembic)."""
        async with self._transactional.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        if self._cache is not None:
            await self._cache.close()
        await self.engine.dispose()

    async def _one(self, statement: Any, params: dict[str, Any]) -> Mapping[Any, Any] | None:
        """Run one statement on its own; the first row as a mapping, or None."""
        if self._pg is not None:
            return await self._pg.fetchrow(statement, params)
        async with self._autocommit.connect() as conn:
            return (await conn.execute(statement, params)).mappings().first()

    async def _run(self, statement: Any, params: dict[str, Any], column_keys: tuple[str, ...] = ()) -> int:
        """Run one statement on its own; the number of rows it touched."""
        if self._pg is not None:
            return await self._pg.run(statement, params, column_keys)
        async with self._autocommit.connect() as conn:
            return (await conn.execute(statement, params)).rowcount

    async def _insert(self, table: Table, record: object) -> None:
        row = to_row(record)
        await self._run(INSERT[table], row, tuple(row))

    # -- clients (RFC 7591) -----------------------------------------------------------------
    @_read
    async def get_client(self, client_id: str) -> Client | None:
        cached = self._clients.get(client_id)
        if cached is not None:
            return cached
        row = await self._one(GET_CLIENT, {"key": client_id})
        if row is None:
            return None
        client = Client(**row)
        self._clients.put(client)
        return client

    @_storage
    async def save_client(self, client: Client) -> None:
        await self._insert(clients, client)

    # -- pending authorizations ---------------------------------------------------------------
    @_storage
    async def save_pending_authorization(self, pending: PendingAuthorization) -> None:
        await self._insert(pending_authorizations, pending)

    @_read
    async def get_pending_authorization(self, request_digest: str) -> PendingAuthorization | None:
        row = await self._one(GET_PENDING, {"key": request_digest})
        return None if row is None else PendingAuthorization(**row)

    @_storage
    async def bind_pending_authorization(self, request_digest: str, browser_digest: str) -> bool:
        return await self._run(BIND_PENDING, {"key": request_digest, "browser_digest": browser_digest}) == 1

    @_storage
    async def consume_pending_authorization(self, request_digest: str) -> PendingAuthorization | None:
        row = await self._one(CONSUME_PENDING, {"key": request_digest})
        return None if row is None else PendingAuthorization(**row)

    # -- authorization codes --------------------------------------------------------------------
    @_storage
    async def save_authorization_code(self, code: AuthorizationCode) -> None:
        await self._insert(authorization_codes, code)

    @_read
    async def get_authorization_code(self, code_digest: str) -> AuthorizationCode | None:
        row = await self._one(GET_CODE, {"key": code_digest})
        return None if row is None else AuthorizationCode(**row)

    @_storage
    async def consume_authorization_code(self, code_digest: str, now: int) -> AuthorizationCode | None:
        row = await self._one(CONSUME_CODE, {"key": code_digest, "now": now})
        return None if row is None else AuthorizationCode(**row)

    # -- tokens ---------------------------------------------------------------------------------
    @_storage
    async def save_tokens(self, access: AccessToken, refresh: RefreshToken | None) -> None:
        if refresh is None:
            await self._insert(access_tokens, access)
            return
        if self._pg is not None:
            await self._run(SAVE_PAIR_POSTGRES, _pair_params(access, refresh))
            return
        async with self._transactional.begin() as conn:
            await _insert_pair(conn, access, refresh)

    @_read
    async def get_access_token(self, token_digest: str) -> AccessToken | None:
        cache = self._cache
        if cache is not None and (cached := cache.get(token_digest)) is not None:
            return cached
        generation = cache.generation if cache is not None else 0
        row = await self._one(GET_ACCESS_TOKEN, {"key": token_digest})
        if row is None:
            return None
        record = AccessToken(**row)
        if cache is not None:
            cache.put(record, generation)
        return record

    @_read
    async def get_refresh_token(self, token_digest: str) -> RefreshToken | None:
        row = await self._one(GET_REFRESH_TOKEN, {"key": token_digest})
        return None if row is None else RefreshToken(**row)

    @_storage
    async def rotate_refresh_token(
        self, old_digest: str, now: int, access: AccessToken, refresh: RefreshToken
    ) -> bool:
        # The conditional UPDATE comes first: on Postgres it takes the row lock (a concurrent
        # rotation waits, then finds rotated_at set); on SQLite a transaction that starts with a
        # write queues on the lock instead of failing to upgrade a read snapshot.
        if self._pg is not None:
            params = {"key": old_digest, "now": now, **_pair_params(access, refresh)}
            row = await self._pg.fetchrow(ROTATE_AND_ISSUE_POSTGRES, params)
            return row is not None and next(iter(row.values())) == 1
        async with self._transactional.begin() as conn:
            rotated = (await conn.execute(ROTATE_REFRESH_TOKEN, {"key": old_digest, "now": now})).first()
            if rotated is None:
                return False
            await _insert_pair(conn, access, refresh)
        return True

    @_storage
    async def revoke_access_token(self, token_digest: str) -> None:
        await self._in_transaction(((REVOKE_ACCESS_TOKEN, {"key": token_digest}),), f"token:{token_digest}")
        if self._cache is not None:
            self._cache.evict_token(token_digest)

    @_storage
    async def revoke_grant(self, grant_id: str) -> None:
        # RFC 9700 §4.14.2 / §4.5: a reused refresh token or replayed code ends the whole grant.
        if self._cache is not None:
            self._cache.evict_grant(grant_id)  # this process at once; the others on the NOTIFY
        await self._in_transaction(tuple((statement, {"grant_id": grant_id}) for statement in REVOKE_GRANT),
                                   f"grant:{grant_id}")
        if self._cache is not None:
            self._cache.evict_grant(grant_id)  # and a lookup that raced the DELETE

    async def _in_transaction(self, statements: tuple[tuple[Any, dict[str, Any]], ...], revoked: str) -> None:
        """Run ``statements`` in one transaction; on Postgres, announce ``revoked`` to every
        process's token cache (``pg_notify`` is delivered when the transaction commits)."""
        notify = (NOTIFY_REVOKED, {"channel": CHANNEL, "payload": revoked})
        if self._pg is not None:
            async with self._pg.connection(transaction=True) as raw:
                for statement, params in (*statements, notify):
                    await self._pg.execute(raw, statement, params)
            return
        async with self._transactional.begin() as conn:
            for statement, params in statements:
                await conn.execute(statement, params)
            if self.engine.dialect.name == "postgresql":
                await conn.execute(*notify)

    # -- housekeeping -----------------------------------------------------------------------------
    @_storage
    async def purge_expired(self, now: int, batch: int = 1000) -> int:
        # One short transaction per table, so a purge never holds locks across tables.
        removed = 0
        async with self._autocommit.connect() as conn:
            for statement in self._purge:
                removed += (await conn.execute(statement, {"now": now, "batch": batch})).rowcount
        return removed


def _pair_params(access: AccessToken, refresh: RefreshToken) -> dict[str, Any]:
    return {**{f"a_{k}": v for k, v in to_row(access).items()}, **{f"r_{k}": v for k, v in to_row(refresh).items()}}


async def _insert_pair(conn: AsyncConnection, access: AccessToken, refresh: RefreshToken) -> None:
    await conn.execute(INSERT[access_tokens], to_row(access))
    await conn.execute(INSERT[refresh_tokens], to_row(refresh))
