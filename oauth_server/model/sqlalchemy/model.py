"""``SQLAlchemyOAuthServerModel``: the storage interface on SQLAlchemy 2.x async Core.

How it keeps the contract of :class:`~oauth_server.model.base.OAuthServerModel`:

* Single use is decided by the database, one statement each (``UPDATE ... WHERE consumed_at IS
  NULL RETURNING``, ``DELETE ... RETURNING``): of any number of concurrent callers, on any number
  of processes, exactly one gets the row. Nothing is read first and decided in Python.
* "Revoked" wins under any interleaving with an issuance, on any number of processes: the
  grant's row orders them (``statements.py`` says how, and why in both orders); deleting a
  client revokes each of its grants the same way (``client_statements.py``).
* Reads and single-statement writes run on an ``AUTOCOMMIT`` connection: one statement is its own
  transaction, so a token lookup costs one primary-key ``SELECT`` and no ``BEGIN``/``COMMIT``
  round trips. On Postgres every write is a single statement (data-modifying CTEs) but those
  that other processes' caches must hear of (``revoke_grant``, and the client writes: a
  transaction that ends with its ``pg_notify``); on SQLite the writes of several rows are
  transactions that start with a write.
* The layers, one module each: ``runner.py`` (engines, caches, running statements),
  ``client_verbs.py`` (clients, listings, assertion jtis), ``device_verbs.py`` (RFC 8628 device
  authorizations), ``fold_verbs.py`` (two verbs in one statement), this module (the authorization flow:
  pending requests, codes, tokens, revocation, signing keys, purging).
* Core statements, no ORM session: no identity map or unit of work on the hot path.
* Every public method goes through ``failures.storage`` or ``failures.read``: an unreachable
  database raises :class:`~oauth_server.errors.StorageUnavailable` (answered 503), never a raw
  driver error; a deadlock or serialization failure is retried; anything else propagates.
"""

from __future__ import annotations

from oauth_server.model.sqlalchemy.client_verbs import ClientVerbs
from oauth_server.model.sqlalchemy.device_verbs import DeviceVerbs
from oauth_server.model.sqlalchemy.failures import read, storage
from oauth_server.model.sqlalchemy.fold_verbs import FoldVerbs
from oauth_server.model.sqlalchemy.notices import notice
from oauth_server.model.sqlalchemy.statements import (
    BIND_PENDING,
    CONSUME_CODE,
    CONSUME_PENDING,
    GET_ACCESS_TOKEN,
    GET_CODE,
    GET_PENDING,
    GET_REFRESH_TOKEN,
    INSERT,
    LIST_SIGNING_KEYS,
    LIST_SIGNING_KEYS_POSTGRES,
    PURGE,
    PURGE_POSTGRES,
    RECORD_GRANT_USE,
    RETIRE_SIGNING_KEY,
    REVOKE_GRANT,
    REVOKE_SUBJECT_GRANT,
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
    grants,
    pending_authorizations,
    prefixed,
    refresh_tokens,
    signing_keys,
    to_row,
)
from oauth_server.records import (
    AccessToken,
    AuthorizationCode,
    Grant,
    PendingAuthorization,
    RefreshToken,
    SigningKey,
)


class SQLAlchemyOAuthServerModel(ClientVerbs, DeviceVerbs, FoldVerbs):
    """Records in SQL tables (``oauth_*``), on Postgres (asyncpg) or SQLite (aiosqlite).

    Args:
        engine: a URL such as ``postgresql+asyncpg://...`` or ``sqlite+aiosqlite:///path.db``,
            or an ``AsyncEngine``. From a URL the engine is created with a pool of 20 connections
            (Postgres; ``pool_size``, ``max_overflow`` to change; no pre-ping, reads retried on a
            dropped connection instead: see ``runner._pool_defaults``) and ``AUTOCOMMIT`` as its
            default, so that a single statement costs no ``BEGIN``/``ROLLBACK``; SQLite's
            transactions ask for ``isolation_level`` (default SERIALIZABLE). A given engine is
            used as it is, and single statements switch its connections to AUTOCOMMIT. On
            Postgres the transactions (``revoke_grant``, ``delete_client``, the client writes)
            always run READ COMMITTED: that each statement sees what committed before it is
            what makes a revocation final (``statements.py``); under REPEATABLE READ its
            DELETEs could miss tokens.
        sqlite_busy_timeout: seconds a SQLite writer waits for the lock before giving up.
        access_token_cache_ttl: on Postgres, seconds a verified access token is served from
            memory (see ``token_cache``: revocations and client deletions reach every process
            by LISTEN/NOTIFY, and the cache is bypassed whenever this process is not
            listening). 0 turns it off. SQLite has no notifications, so it never caches.
        client_cache_ttl: seconds a found client record is kept in memory, saving a round trip
            per token request (see ``client_cache``). Default: 5 on Postgres, where changes
            reach every process by LISTEN/NOTIFY (and the cache is bypassed while this process
            is not listening); 60 on SQLite, where every lookup first reads a change count that
            triggers keep (migration 0008), so no process uses a record another one changed;
            0 elsewhere. 0 turns it off.
        **engine_options: passed to ``create_async_engine`` (``pool_size``, ``echo``, ...).

    The schema comes from the alembic migrations (``alembic upgrade head``); ``create_all`` is
    for tests and development. SQLite must be a file: WAL needs one, and an in-memory
    database is private to one connection.
    """

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
            await self._run(SAVE_GRANT_AND_CODE_POSTGRES, {**prefixed("g_", grant), **prefixed("c_", code)})
            return
        grant_row, code_row = to_row(grant), to_row(code)
        if self._lite is not None:
            await self._lite.write([(INSERT[grants], grant_row, tuple(grant_row)),
                                    (INSERT[authorization_codes], code_row, tuple(code_row))])
            return
        async with self._transactional.begin() as conn:
            await conn.execute(INSERT[grants], grant_row)
            await conn.execute(INSERT[authorization_codes], code_row)

    @storage
    async def save_grant(self, grant: Grant) -> None:
        await self._insert(grants, grant)

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
        params = {"grant": access.grant_id, **prefixed("a_", access)}
        if refresh is not None:
            params.update(prefixed("r_", refresh))
        if self._postgres:
            statement = SAVE_ACCESS_POSTGRES if refresh is None else SAVE_PAIR_POSTGRES
            return await self._count(statement, params) == 1
        if refresh is None:
            return await self._run(SAVE_ACCESS_IF_LIVE, params) == 1
        if self._lite is not None:
            # The guarded write first: if the grant is not live, nothing of the pair is stored.
            row = to_row(refresh)
            return await self._lite.write([(SAVE_ACCESS_IF_LIVE, params, ()),
                                           (INSERT[refresh_tokens], row, tuple(row))], guarded=True) is not None
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
        self, old_digest: str, now: int, access: AccessToken, refresh: RefreshToken, *,
        reuse_after: int | None = None,
    ) -> bool:
        # The conditional UPDATE comes first: on Postgres it takes the row lock (a concurrent
        # rotation waits, then finds rotated_at set: no row, unless within reuse_after); on
        # SQLite a transaction that starts with a write queues on the lock instead of failing to
        # upgrade a read snapshot.
        params = {"key": old_digest, "now": now, "grant": refresh.grant_id, "reuse_after": reuse_after}
        if self._postgres:
            return await self._count(ROTATE_AND_ISSUE_POSTGRES, {
                **params, **prefixed("a_", access), **prefixed("r_", refresh)}) == 1
        if self._lite is not None:
            minted = to_row(access), to_row(refresh)
            return await self._lite.write([(ROTATE_REFRESH_TOKEN, params, ()),
                                           (INSERT[access_tokens], minted[0], tuple(minted[0])),
                                           (INSERT[refresh_tokens], minted[1], tuple(minted[1]))],
                                          guarded=True) is not None
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
        # One transaction; on Postgres it announces grant:<id> to every process's token cache.
        await self._transaction(REVOKE_GRANT, {"grant": grant_id, "now": now}, notice("grant", grant_id))
        if self._cache is not None:
            self._cache.evict_grant(grant_id)  # and a lookup that raced the DELETE

    @storage
    async def revoke_subject_grant(self, grant_id: str, subject: str, now: int) -> bool:
        # revoke_grant's transaction with every statement also matching the subject; the grant
        # row's lock orders it against issuance the same way (statements.py).
        if self._cache is not None:
            self._cache.evict_grant(grant_id)
        counts = await self._transaction(REVOKE_SUBJECT_GRANT, {"grant": grant_id, "owner": subject, "now": now},
                                         notice("grant", grant_id))
        if self._cache is not None:
            self._cache.evict_grant(grant_id)
        return counts[0] == 1

    @storage
    async def record_grant_use(self, grant_id: str, now: int) -> None:
        await self._run(RECORD_GRANT_USE, {"grant": grant_id, "now": now})

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
        if self._lite is not None:
            for statement in PURGE:
                removed += await self._run(statement, {"now": now, "batch": batch})
            return removed
        async with self._autocommit.connect() as conn:
            for statement in PURGE_POSTGRES if self._postgres else PURGE:
                removed += (await conn.execute(statement, {"now": now, "batch": batch})).rowcount
        return removed

