"""Database outages surface as StorageUnavailable (answered 503), and the model recovers;
conflicts (deadlocks, serialization failures) are retried and never taken for an outage.

No mocks: the connections are really killed (``pg_terminate_backend``), the port is closed, the
deadlock is a real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from oauth_server.errors import StorageUnavailable
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.model.sqlalchemy.failures import CONFLICT_RETRIES, is_conflict, is_outage, storage
from tests.model.conftest import POOL
from tests.model.test_contract import NOW, access, code, grant, open_grant, refresh

TERMINATE = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


async def terminate_other_connections(url: str) -> int:
    """Kill every other session on the database, from a second connection."""
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            return len((await conn.execute(TERMINATE)).all())
    finally:
        await admin.dispose()


async def succeeds_or_unavailable(call: Callable[[], Awaitable[object]]) -> bool:
    """True if ``call`` succeeded, False if it raised StorageUnavailable; anything else fails the test."""
    try:
        await call()
    except StorageUnavailable:
        return False
    return True


@pytest.mark.parametrize("pre_ping", [True, False], ids=["pre_ping", "no_pre_ping"])
async def test_killed_connections_recover(postgres_url: str, pre_ping: bool) -> None:
    # No token cache: every read below must reach the database.
    model = SQLAlchemyOAuthServerModel(postgres_url, pool_pre_ping=pre_ping, access_token_cache_ttl=0, **POOL)
    grant_id = (await open_grant(model)).grant_id
    token, kept = access(grant_id), refresh(grant_id)
    try:
        await model.save_tokens(token, kept)
        assert await model.get_access_token(token.token_digest) == token  # the pool holds a connection now

        assert await terminate_other_connections(postgres_url) >= 1

        # Reads recover at once: pre-ping replaces the dead connection, or the read is retried.
        assert await model.get_access_token(token.token_digest) == token
        assert await model.get_client("no-such-client") is None

        # The transactional paths recover the same way.
        await terminate_other_connections(postgres_url)
        await succeeds_or_unavailable(lambda: model.revoke_grant("no-such-grant", NOW))
        new_access, new_refresh = access(grant_id), refresh(grant_id)
        assert await model.rotate_refresh_token(kept.token_digest, NOW, new_access, new_refresh) is True
    finally:
        await model.close()


async def test_closed_port_raises_storage_unavailable() -> None:
    """Nothing listens on port 1: every verb answers StorageUnavailable, never a driver error."""
    model = SQLAlchemyOAuthServerModel("postgresql+asyncpg://postgres@127.0.0.1:1/oauth")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: model.get_access_token("0" * 64),
        lambda: model.consume_authorization_code("0" * 64, NOW),
        lambda: model.save_authorization_code(code(), grant()),
        lambda: model.save_tokens(access(), refresh()),
        lambda: model.save_tokens(access(), None),
        lambda: model.rotate_refresh_token("0" * 64, NOW, access(), refresh()),
        lambda: model.save_tokens_recording_use(access(), refresh(), NOW),
        lambda: model.rotate_refresh_token_recording_use("0" * 64, NOW, access(), refresh()),
        lambda: model.approve_pending_authorization("0" * 64, code(), grant()),
        lambda: model.revoke_grant("grant-1", NOW),
        lambda: model.purge_expired(NOW),
        model.create_all,
    ]
    try:
        for call in calls:
            with pytest.raises(StorageUnavailable) as raised:
                await call()
            assert isinstance(raised.value.__cause__, OSError)  # the cause is kept for the log
    finally:
        await model.close()


async def test_connection_dropped_while_idle_is_replaced_at_checkout(postgres_url: str) -> None:
    """A pooled connection the server closed while it sat idle is noticed at checkout (no round
    trip: the socket is closed) and replaced, so even a write succeeds, without pre-ping."""
    model = SQLAlchemyOAuthServerModel(postgres_url, pool_pre_ping=False, access_token_cache_ttl=0, **POOL)
    grant_id = (await open_grant(model)).grant_id
    kept = refresh(grant_id)
    try:
        await model.save_tokens(access(grant_id), kept)
        assert await terminate_other_connections(postgres_url) >= 1
        for _ in range(100):  # until this process has read the socket's end
            await asyncio.sleep(0.01)
            async with model.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                if raw.is_closed():
                    break
        await model.revoke_grant("no-such-grant", NOW)  # a write: no 503
        assert await model.rotate_refresh_token(kept.token_digest, NOW, access(grant_id), refresh(grant_id)) is True
    finally:
        await model.close()


async def test_cancelled_statement_gives_its_connection_back(postgres_url: str) -> None:
    """A request cancelled mid-statement (a client gone) returns its connection to the pool in a
    usable state: with a pool of one, a leak would make the next statement wait 30 s and fail."""
    model = SQLAlchemyOAuthServerModel(postgres_url, access_token_cache_ttl=0, pool_size=1, max_overflow=0,
                                       pool_timeout=2)
    path = model._pg
    assert path is not None

    async def slow() -> None:
        async with path.connection() as raw:
            await raw.execute("SELECT pg_sleep(5)")

    try:
        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(3):
            assert await model.get_client("nobody") is None
        assert model.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await model.close()


async def real_deadlock(url: str) -> asyncpg.PostgresError:
    """Two transactions take two advisory locks in opposite orders; Postgres aborts one (40P01)."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    first, second = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        for connection, lock in ((first, 1), (second, 2)):
            await connection.execute("BEGIN")
            await connection.execute(f"SELECT pg_advisory_xact_lock({lock})")
        results = await asyncio.gather(first.execute("SELECT pg_advisory_xact_lock(2)"),
                                       second.execute("SELECT pg_advisory_xact_lock(1)"), return_exceptions=True)
    finally:
        for connection in (first, second):
            await connection.close()
    (error,) = [result for result in results if isinstance(result, asyncpg.PostgresError)]
    return error


async def test_conflicts_are_retried_and_never_an_outage(postgres_url: str) -> None:
    """A deadlock rolled the transaction back, so the call runs again; one that outlasts the
    retries is raised as it is (a 500 and a traceback: our lock order should prevent it), never
    as StorageUnavailable, also where the driver files it under OperationalError (psycopg)."""
    deadlock = await real_deadlock(postgres_url)
    assert deadlock.sqlstate == "40P01"
    try:
        raise sa_exc.OperationalError("SELECT 1", {}, deadlock) from deadlock
    except sa_exc.OperationalError as exc:
        wrapped = exc
    for error in (deadlock, wrapped):
        assert is_conflict(error) and not is_outage(error)

    calls = 0

    @storage
    async def loses_twice() -> str:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise deadlock
        return "committed"

    assert await loses_twice() == "committed" and calls == 3

    calls = 0

    @storage
    async def always_loses() -> None:
        nonlocal calls
        calls += 1
        raise wrapped

    with pytest.raises(sa_exc.OperationalError):
        await always_loses()
    assert calls == 1 + CONFLICT_RETRIES
