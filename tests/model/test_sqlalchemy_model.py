"""What the SQL model adds to the contract: transactions, the order of a revocation and an
issuance held open mid-way (both orders), hot-path cost, an order independent of collation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.model.sqlalchemy.statements import REVOKE_GRANT, ROTATE_AND_ISSUE_POSTGRES, ROTATE_REFRESH_TOKEN
from oauth_server.model.sqlalchemy.tables import access_tokens, refresh_tokens, to_row
from tests.model.conftest import fresh_postgres_database
from tests.model.test_contract import NOW, access, client, code, grant, open_grant, refresh, signing_key
from tests.model.test_sqlite_path import trace_connections

#: Long enough for a blocked statement to show it is blocked.
HOLD = 0.3


async def test_integrity_errors_are_not_swallowed(sql_model: SQLAlchemyOAuthServerModel) -> None:
    """A duplicate key is a bug to see, not an outage to retry (so not StorageUnavailable)."""
    registered = client()
    await sql_model.save_client(registered)
    with pytest.raises(IntegrityError):
        await sql_model.save_client(registered)


async def test_save_tokens_is_one_transaction(sql_model: SQLAlchemyOAuthServerModel) -> None:
    """A failed pair leaves nothing behind: no access token without its refresh token."""
    await open_grant(sql_model, "grant-1")
    existing = refresh()
    await sql_model.save_tokens(access(), existing)
    orphan = access()
    with pytest.raises(IntegrityError):
        await sql_model.save_tokens(orphan, existing)
    assert await sql_model.get_access_token(orphan.token_digest) is None


async def rotate_held_open(model: SQLAlchemyOAuthServerModel, conn: AsyncConnection, old: str,
                           minted: tuple[Any, Any]) -> None:
    """The model's own rotation statements, in a transaction the caller commits."""
    params = {"key": old, "now": NOW, "grant": minted[1].grant_id}
    if model.engine.dialect.name == "postgresql":
        prefixed = {f"a_{k}": v for k, v in to_row(minted[0]).items()} | {
            f"r_{k}": v for k, v in to_row(minted[1]).items()}
        assert await conn.scalar(ROTATE_AND_ISSUE_POSTGRES, params | prefixed) == 1
        return
    assert (await conn.execute(ROTATE_REFRESH_TOKEN, params)).first()
    await conn.execute(insert(access_tokens), to_row(minted[0]))
    await conn.execute(insert(refresh_tokens), to_row(minted[1]))


async def test_revoke_grant_waits_for_a_rotation_in_flight(sql_model: SQLAlchemyOAuthServerModel) -> None:
    """RFC 9700 §4.14.2, issuance first: a rotation holds the grant (FOR SHARE; on SQLite the
    writer lock); the revocation waits for its commit, then removes what it minted."""
    await open_grant(sql_model, "grant-r")
    old = refresh("grant-r")
    await sql_model.save_tokens(access("grant-r"), old)
    minted = access("grant-r"), refresh("grant-r")
    async with sql_model._transactional.connect() as rotation:
        await rotate_held_open(sql_model, rotation, old.token_digest, minted)
        revocation = asyncio.create_task(sql_model.revoke_grant("grant-r", NOW))
        await asyncio.sleep(HOLD)
        assert not revocation.done(), "revoke_grant should wait for the rotation's lock"
        await rotation.commit()
    await revocation
    assert await sql_model.get_refresh_token(old.token_digest) is None
    assert await sql_model.get_access_token(minted[0].token_digest) is None
    assert await sql_model.get_refresh_token(minted[1].token_digest) is None


async def test_issuance_waits_for_a_revocation_in_flight_then_stores_nothing(
        sql_model: SQLAlchemyOAuthServerModel) -> None:
    """RFC 9700 §4.5, revocation first: the revocation holds the grant row (on SQLite the writer
    lock); an issuance and a rotation wait for its commit, then see the grant revoked and store
    nothing (on Postgres: the FOR SHARE re-checks the updated row)."""
    await open_grant(sql_model, "grant-v")
    old = refresh("grant-v")
    await sql_model.save_tokens(access("grant-v"), old)
    issued, rotated = (access("grant-v"), refresh("grant-v")), (access("grant-v"), refresh("grant-v"))
    async with sql_model._transactional.connect() as revocation:
        for statement in REVOKE_GRANT:
            await revocation.execute(statement, {"grant": "grant-v", "now": NOW})
        issuance = asyncio.create_task(sql_model.save_tokens(*issued))
        rotation = asyncio.create_task(sql_model.rotate_refresh_token(old.token_digest, NOW, *rotated))
        await asyncio.sleep(HOLD)
        assert not issuance.done() and not rotation.done(), "issuance should wait for the revocation's lock"
        await revocation.commit()
    assert await issuance is False
    assert await rotation is False
    for minted in (issued[0], rotated[0]):
        assert await sql_model.get_access_token(minted.token_digest) is None
    for token in (old, issued[1], rotated[1]):
        assert await sql_model.get_refresh_token(token.token_digest) is None


async def test_hot_paths_are_one_statement_without_a_transaction(sql_model: SQLAlchemyOAuthServerModel) -> None:
    """Token lookup and code redemption: one primary-key statement each, no BEGIN/COMMIT of
    their own (on SQLite a write shares the writer's group transaction)."""
    issued = await open_grant(sql_model, "grant-1")
    token = access()
    await sql_model.save_tokens(token, None)
    seen: list[str] = []
    if sql_model.engine.dialect.name == "postgresql":
        # Statements run on asyncpg itself (asyncpg_path): log what each pooled connection runs.
        def log_queries(dbapi_connection: Any, *_: Any) -> None:
            dbapi_connection.driver_connection.add_query_logger(lambda q: seen.append(q.query.split()[0].upper()))

        event.listen(sql_model.engine.sync_engine.pool, "connect", log_queries)
        await sql_model.engine.dispose()  # new connections, each with the logger
        assert await sql_model.get_access_token(token.token_digest) == token
        assert await sql_model.consume_authorization_code(issued.code_digest, NOW) is not None
        await asyncio.sleep(0.05)  # asyncpg calls query loggers with loop.call_soon
        assert seen == ["SELECT", "UPDATE"]
        return
    # SQLite (sqlite_path): the lookup runs on the caller's reader; the redemption is one
    # statement in the writer's group transaction (alone here: BEGIN IMMEDIATE, UPDATE, COMMIT).
    assert sql_model._lite is not None
    sql_model._lite._reader().set_trace_callback(lambda sql: seen.append("reader " + sql.split()[0].upper()))
    assert await sql_model.get_access_token(token.token_digest) == token
    writes: list[str] = []
    await sql_model._lite.close()  # the next write opens a writing connection we trace
    trace_connections(sql_model, lambda sql: writes.append(" ".join(sql.split()[:2]).upper()))
    assert await sql_model.consume_authorization_code(issued.code_digest, NOW) is not None
    assert seen == ["reader SELECT"]
    assert writes == ["BEGIN IMMEDIATE", "UPDATE OAUTH_AUTHORIZATION_CODES", "COMMIT"]


async def test_tuples_are_stored_as_json_arrays(sql_model: SQLAlchemyOAuthServerModel) -> None:
    await open_grant(sql_model, "grant-1")
    token = access(scopes=("mcp:tools", "mcp:prompts"))
    await sql_model.save_tokens(token, None)
    async with sql_model.engine.connect() as conn:
        raw = await conn.scalar(text("SELECT scopes FROM oauth_access_tokens WHERE token_digest = :d"),
                                {"d": token.token_digest})
    assert raw == '["mcp:tools","mcp:prompts"]'


async def test_signing_keys_are_listed_by_code_point_whatever_the_collation() -> None:
    """Where text sorts by a language's rules (en: ``a`` < ``a-b`` < ``aB`` < ``B``), kids still
    compare by code point, as in SQLite and the memory model, so every model lists keys alike."""
    with fresh_postgres_database() as url:
        model = SQLAlchemyOAuthServerModel(url, access_token_cache_ttl=0)
        try:
            await model.create_all()
            async with model.engine.begin() as conn:
                await conn.execute(text('ALTER TABLE oauth_signing_keys ALTER COLUMN kid TYPE text COLLATE "en-x-icu"'))
            for kid in ("aB", "a-b", "B", "a"):
                await model.save_signing_key(signing_key(kid))
            assert [key.kid for key in await model.list_signing_keys()] == ["B", "a", "a-b", "aB"]
        finally:
            await model.close()


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Any) -> None:
    """WAL: readers do not block the writer; busy timeout: concurrent writers queue, not fail."""
    model = SQLAlchemyOAuthServerModel(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", sqlite_busy_timeout=12.5)
    try:
        async with model.engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await conn.scalar(text("PRAGMA busy_timeout")) == 12500
    finally:
        await model.close()


async def test_accepts_an_engine(tmp_path: Any) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'e.db'}")
    model = SQLAlchemyOAuthServerModel(engine)
    try:
        await model.create_all()
        await model.save_authorization_code(code(), grant())
        token = access()
        assert await model.save_tokens(token, None)
        assert await model.get_access_token(token.token_digest) == token
        async with engine.connect() as conn:
            assert await conn.scalar(select(access_tokens.c.grant_id)) == token.grant_id
    finally:
        await model.close()


async def test_a_cancelled_statement_leaves_the_pool_usable(postgres_url: str) -> None:
    """A request cancelled mid-statement must not hand a busy or dead connection to the next
    request (asyncpg cancels the query itself; terminating the connection here would not do)."""
    model = SQLAlchemyOAuthServerModel(postgres_url, pool_size=1, access_token_cache_ttl=0)
    try:
        assert model._pg is not None

        async def slow() -> None:
            assert model._pg is not None
            async with model._pg.connection() as raw:
                await raw.fetchval("SELECT pg_sleep(5)")

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        token = access((await open_grant(model)).grant_id)
        assert await asyncio.wait_for(model.save_tokens(token, None), timeout=3)
        assert await asyncio.wait_for(model.get_access_token(token.token_digest), timeout=3) == token
    finally:
        await model.close()
