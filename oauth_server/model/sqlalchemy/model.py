"""``SQLAlchemyOAuthServerModel``: the storage interface on SQLAlchemy 2.x async Core.

How it keeps the contract of :class:`~oauth_server.model.base.OAuthServerModel`:

* Single use is decided by the database, one statement each (``UPDATE ... WHERE consumed_at IS
  NULL RETURNING``, ``DELETE ... RETURNING``): of any number of concurrent callers, on any number
  of processes, exactly one gets the row. Nothing is read first and decided in Python.
* "Revoked" wins under any interleaving with an issuance, on any number of processes: the
  grant's row orders them (``statements.py`` says how, and why in both orders).
* Reads and single-statement writes run on an ``AUTOCOMMIT`` connection: one statement is its own
  transaction, so a token lookup costs one primary-key ``SELECT`` and no ``BEGIN``/``COMMIT``
  round trips. On Postgres every write but ``revoke_grant`` is a single statement (data-modifying
  CTEs); on SQLite the writes of several rows are transactions that start with a write.
* Core statements, no ORM session: no identity map or unit of work on the hot path.
* Every public method goes through ``failures.storage`` or ``failures.read``: an unreachable
  database raises :class:`~oauth_server.errors.StorageUnavailable` (answered 503), never a raw
  driver error; a deadlock or serialization failure is retried; anything else propagates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from oauth_server.model.base import OAuthServerModel
from oauth_server.model.sqlalchemy.asyncpg_path import AsyncpgPath
from oauth_server.model.sqlalchemy.client_cache import RecentClients
from oauth_server.model.sqlalchemy.failures import read, storage
from oauth_server.model.sqlalchemy.statements import (
    BIND_PENDING,
    CONSUME_CODE,
    CONSUME_PENDING,
    GET_ACCESS_TOKEN,
    GET_CLIENT,
    GET_CODE,
    GET_PENDING,
    GET_REFRESH_TOKEN,
    INSERT,
    LIST_SIGNING_KEYS,
    LIST_SIGNING_KEYS_POSTGRES,
    NOTIFY_REVOKED,
    PURGE,
    PURGE_POSTGRES,
    RETIRE_SIGNING_KEY,
    REVOKE_GRANT,
    ROTATE_AND_ISSUE_POSTGRES,
    ROTATE_REFRESH_TOKEN,
    SAVE_ACCESS_IF_LIVE,
    SAVE_ACCESS_POSTGRES,
    SAVE_GRANT_AND_CODE_POSTGRES,
    SAVE_PAIR_POSTGRES,
)
from oauth_server.model.sqlalchemy.tables import (
    access_tokens,
    authorization_codes,
    clients,
    grants,
    metadata,
    pending_authorizations,
    refresh_tokens,
    signing_keys,
    to_row,
)
from oauth_server.model.sqlalchemy.token_cache import CHANNEL, VerifiedTokenCache
from oauth_server.records import (
    AccessToken,
    AuthorizationCode,
    Client,
    Grant,
    PendingAuthorization,
    RefreshToken,
    SigningKey,
)


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
#: Postgres: ``revoke_grant`` (the one transaction there) needs each statement's own snapshot.
_POSTGRES_ISOLATION = "READ COMMITTED"


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


class SQLAlchemyOAuthServerModel(OAuthServerModel):
    """Records in SQL tables (``oauth_*``), on Postgres (asyncpg) or SQLite (aiosqlite).

    Args:
        engine: a URL such as ``postgresql+asyncpg://...`` or ``sqlite+aiosqlite:///path.db``,
            or an ``AsyncEngine``. From a URL the engine is created with a pool of 20 connections
            (Postgres; ``pool_size``, ``max_overflow`` to change; no pre-ping, reads retried on a
            dropped connection instead: see ``_pool_defaults``) and ``AUTOCOMMIT`` as its
            default, so that a single statement costs no ``BEGIN``/``ROLLBACK``; SQLite's
            transactions ask for ``isolation_level`` (default SERIALIZABLE). A given engine is
            used as it is, and single statements switch its connections to AUTOCOMMIT. On
            Postgres the one transaction, ``revoke_grant``, always runs READ COMMITTED: that
            each of its statements sees what committed before it is what makes it final
            (``statements.py``); under REPEATABLE READ its DELETEs could miss tokens.
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
            self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._transactional = engine
        self._postgres = engine.dialect.name == "postgresql"
        if self._postgres:
            self._transactional = engine.execution_options(isolation_level=_POSTGRES_ISOLATION)
        # On asyncpg the statements run on the driver itself (see asyncpg_path).
        self._pg = AsyncpgPath(self._autocommit, _POSTGRES_ISOLATION) if engine.dialect.driver == "asyncpg" else None
        if engine.dialect.name == "sqlite":
            _sqlite_pragmas(engine, int(sqlite_busy_timeout * 1000))
        self.engine = engine
        self._purge = PURGE_POSTGRES if self._postgres else PURGE
        self._clients = RecentClients(client_cache_ttl)
        self._cache: VerifiedTokenCache | None = None
        if engine.dialect.name == "postgresql" and access_token_cache_ttl > 0:
            dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._cache = VerifiedTokenCache(dsn, access_token_cache_ttl)

    @storage
    async def create_all(self) -> None:
        """Create the tables if missing (tests and development; production runs alembic)."""
        async with self._transactional.begin() as conn:
            await conn.run_sync(metadata.create_all)

    @storage
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

    async def _all(self, statement: Any, params: dict[str, Any]) -> list[Mapping[Any, Any]]:
        """Run one statement on its own; every row, as mappings."""
        if self._pg is not None:
            return list(await self._pg.fetch(statement, params))
        async with self._autocommit.connect() as conn:
            return list((await conn.execute(statement, params)).mappings().all())

    async def _count(self, statement: Any, params: dict[str, Any]) -> int:
        """Run a ``SELECT count(*) ...`` statement on its own; the count."""
        row = await self._one(statement, params)
        return 0 if row is None else int(next(iter(row.values())))

    async def _insert(self, table: Table, record: object) -> None:
        row = to_row(record)
        await self._run(INSERT[table], row, tuple(row))

    # -- clients (RFC 7591) -----------------------------------------------------------------
    @read
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

    @storage
    async def save_client(self, client: Client) -> None:
        await self._insert(clients, client)

    # -- pending authorizations ---------------------------------------------------------------
    @storage
    async def save_pending_authorization(self, pending: PendingAuthorization) -> None:
        await self._insert(pending_authorizations, pending)

    @read
    async def get_pending_authorization(self, request_digest: str) -> PendingAuthorization | None:
        row = await self._one(GET_PENDING, {"key": request_digest})
        return None if row is None else PendingAuthorization(**row)

    @storage
    async def bind_pending_authorization(self, request_digest: str, browser_digest: str) -> bool:
        return await self._run(BIND_PENDING, {"key": request_digest, "browser_digest": browser_digest}) == 1

    @storage
    async def consume_pending_authorization(self, request_digest: str) -> PendingAuthorization | None:
        row = await self._one(CONSUME_PENDING, {"key": request_digest})
        return None if row is None else PendingAuthorization(**row)

    # -- grants and authorization codes -----------------------------------------------------------
    @storage
    async def save_authorization_code(self, code: AuthorizationCode, grant: Grant) -> None:
        if code.grant_id != grant.grant_id:
            raise ValueError("the code must belong to the grant saved with it")
        if self._postgres:
            await self._run(SAVE_GRANT_AND_CODE_POSTGRES, {**_prefixed("g_", grant), **_prefixed("c_", code)})
            return
        async with self._transactional.begin() as conn:
            await conn.execute(INSERT[grants], to_row(grant))
            await conn.execute(INSERT[authorization_codes], to_row(code))

    @read
    async def get_authorization_code(self, code_digest: str) -> AuthorizationCode | None:
        row = await self._one(GET_CODE, {"key": code_digest})
        return None if row is None else AuthorizationCode(**row)

    @storage
    async def consume_authorization_code(self, code_digest: str, now: int) -> AuthorizationCode | None:
        row = await self._one(CONSUME_CODE, {"key": code_digest, "now": now})
        return None if row is None else AuthorizationCode(**row)

    # -- tokens ---------------------------------------------------------------------------------
    @storage
    async def save_tokens(self, access: AccessToken, refresh: RefreshToken | None) -> bool:
        params = {"grant": access.grant_id, **_prefixed("a_", access)}
        if refresh is not None:
            params.update(_prefixed("r_", refresh))
        if self._postgres:
            statement = SAVE_ACCESS_POSTGRES if refresh is None else SAVE_PAIR_POSTGRES
            return await self._count(statement, params) == 1
        if refresh is None:
            return await self._run(SAVE_ACCESS_IF_LIVE, params) == 1
        async with self._transactional.begin() as conn:
            # A write first: it holds SQLite's write lock until commit, so no revocation can
            # come between this check of the grant and the second insert.
            if (await conn.execute(SAVE_ACCESS_IF_LIVE, params)).rowcount != 1:
                await conn.rollback()
                return False
            await conn.execute(INSERT[refresh_tokens], to_row(refresh))
        return True

    @read
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

    @read
    async def get_refresh_token(self, token_digest: str) -> RefreshToken | None:
        row = await self._one(GET_REFRESH_TOKEN, {"key": token_digest})
        return None if row is None else RefreshToken(**row)

    @storage
    async def rotate_refresh_token(
        self, old_digest: str, now: int, access: AccessToken, refresh: RefreshToken
    ) -> bool:
        # The conditional UPDATE comes first: on Postgres it takes the row lock (a concurrent
        # rotation waits, then finds rotated_at set); on SQLite a transaction that starts with a
        # write queues on the lock instead of failing to upgrade a read snapshot.
        params = {"key": old_digest, "now": now, "grant": refresh.grant_id}
        if self._postgres:
            return await self._count(ROTATE_AND_ISSUE_POSTGRES, {
                **params, **_prefixed("a_", access), **_prefixed("r_", refresh)}) == 1
        async with self._transactional.begin() as conn:
            if (await conn.execute(ROTATE_REFRESH_TOKEN, params)).first() is None:
                await conn.rollback()
                return False
            await conn.execute(INSERT[access_tokens], to_row(access))
            await conn.execute(INSERT[refresh_tokens], to_row(refresh))
        return True

    @storage
    async def revoke_grant(self, grant_id: str, now: int) -> None:
        # RFC 9700 §4.14.2 / §4.5: a reused refresh token or replayed code ends the whole grant.
        if self._cache is not None:
            self._cache.evict_grant(grant_id)  # this process at once; the others on the NOTIFY
        await self._revoke(grant_id, now)
        if self._cache is not None:
            self._cache.evict_grant(grant_id)  # and a lookup that raced the DELETE

    async def _revoke(self, grant_id: str, now: int) -> None:
        """``REVOKE_GRANT`` in one transaction; on Postgres, announce it to every process's token
        cache (``pg_notify`` is delivered when the transaction commits)."""
        params = {"grant": grant_id, "now": now}
        notify = {"channel": CHANNEL, "payload": f"grant:{grant_id}"}
        if self._pg is not None:
            async with self._pg.connection(transaction=True) as raw:
                for statement in REVOKE_GRANT:
                    await self._pg.execute(raw, statement, params)
                await self._pg.execute(raw, NOTIFY_REVOKED, notify)
            return
        async with self._transactional.begin() as conn:
            for statement in REVOKE_GRANT:
                await conn.execute(statement, params)
            if self._postgres:
                await conn.execute(NOTIFY_REVOKED, notify)

    # -- signing keys (RFC 9068) --------------------------------------------------------------------
    @storage
    async def save_signing_key(self, key: SigningKey) -> None:
        await self._insert(signing_keys, key)  # a duplicate kid: IntegrityError, never an outage

    @read
    async def list_signing_keys(self) -> list[SigningKey]:
        statement = LIST_SIGNING_KEYS_POSTGRES if self._postgres else LIST_SIGNING_KEYS
        return [SigningKey(**row) for row in await self._all(statement, {})]

    @storage
    async def retire_signing_key(self, kid: str, retires_at: int, expires_at: int) -> bool:
        params = {"key": kid, "retires_at": retires_at, "expires_at": expires_at}
        return await self._run(RETIRE_SIGNING_KEY, params) == 1

    # -- housekeeping -----------------------------------------------------------------------------
    @storage
    async def purge_expired(self, now: int, batch: int = 1000) -> int:
        # One short transaction per table, so a purge never holds locks across tables.
        removed = 0
        async with self._autocommit.connect() as conn:
            for statement in self._purge:
                removed += (await conn.execute(statement, {"now": now, "batch": batch})).rowcount
        return removed


def _prefixed(prefix: str, record: object) -> dict[str, Any]:
    """The record's columns as the parameters ``<prefix><column>`` of an ``_insert_from`` statement."""
    return {f"{prefix}{name}": value for name, value in to_row(record).items()}
