"""What a database failure means for the caller: retry it, answer 503, or let it propagate.

The model's contract (``OAuthServerModel``) has one outage signal, ``StorageUnavailable``,
answered 503. Every public method of the SQL model goes through ``storage`` (writes) or
``read`` (reads), which sort the failures:

* a conflict, SQLSTATE 40001 (serialization failure) or 40P01 (deadlock): the database rolled
  the transaction back, nothing of it was applied, so it is run again, a bounded number of times
  with a short jittered backoff. One that outlasts the retries propagates unchanged (500): our
  statements take their locks in one order, so it is a defect to see, not an outage for
  clients to retry;
* an outage (the connection refused, dropped or timed out, the database shutting down or out of
  connections, the pool exhausted): ``StorageUnavailable``, its cause chained for the log;
* anything else (integrity and programming errors): propagates unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import exc as sa_exc

from oauth_server.errors import StorageUnavailable
from oauth_server.model.sqlalchemy.asyncpg_path import DroppedConnection

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("oauth_server")

#: SQLSTATE classes meaning "the database is not serving": 08 connection exception,
#: 53 insufficient resources (too many connections), 57 operator intervention (shutdown).
_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57")
#: SQLSTATEs of a transaction rolled back to resolve a conflict: serialization_failure, deadlock_detected.
_CONFLICT_SQLSTATES = ("40001", "40P01")
#: Runs after the first of a call that lost a conflict.
CONFLICT_RETRIES = 3
#: Seconds before the first retry, doubled for each further one, each scaled by 0.5-1.5 at random
#: so that the parties of a conflict do not collide again in step.
CONFLICT_BACKOFF = 0.005


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes: the driver's own error is in the chain (bounded: chains are short)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 16:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def _sqlstates(exc: BaseException) -> list[str]:
    states = (getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None) for seen in _chain(exc))
    return [state for state in states if isinstance(state, str)]


def is_conflict(exc: BaseException) -> bool:
    """Whether the database rolled ``exc``'s transaction back to resolve a conflict (retry it)."""
    return any(state in _CONFLICT_SQLSTATES for state in _sqlstates(exc))


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot serve (answer 503), rather than a bug or a conflict.

    SQLite reports a missing table as an OperationalError too: an unmigrated schema is then a 503
    whose cause, chained to the StorageUnavailable, is in the log. A conflict is never an outage,
    even where the driver files it under OperationalError (psycopg does).
    """
    if is_conflict(exc):
        return False
    if isinstance(exc, DroppedConnection):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError):
            return True  # PEP 249: OperationalError is the database's trouble, not the caller's
        if isinstance(exc, sa_exc.IntegrityError):
            return False
    elif isinstance(exc, sa_exc.TimeoutError):
        return True  # the pool stayed exhausted: overloaded
    if any(isinstance(seen, OSError) for seen in _chain(exc)):
        return True  # refused, reset, unreachable, timed out
    return any(state[:2] in _OUTAGE_SQLSTATE_CLASSES for state in _sqlstates(exc))


def storage(method: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Run ``method`` again when it lost a conflict; raise an outage as StorageUnavailable."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        retries = 0
        while True:
            try:
                return await method(*args, **kwargs)
            except StorageUnavailable:
                raise
            except Exception as exc:
                if is_conflict(exc) and retries < CONFLICT_RETRIES:
                    retries += 1
                    logger.info("%s lost a conflict (%s); retry %d", method.__name__, type(exc).__name__, retries)
                    jitter = random.uniform(0.5, 1.5)  # noqa: S311 - spreads retries, guards nothing
                    await asyncio.sleep(CONFLICT_BACKOFF * 2 ** (retries - 1) * jitter)
                    continue
                if is_outage(exc):
                    # The message names the class only: a driver message may carry host names.
                    raise StorageUnavailable(f"database unavailable ({type(exc).__name__})") from exc
                raise

    return wrapper


def read(method: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """``storage`` for a read, run once more on a fresh connection if the pooled one was dead.

    Without a pre-ping (see ``runner._pool_defaults``) a connection the database dropped is
    replaced at checkout when this process has already seen its socket close (``AsyncpgPath``);
    when it has not (the drop is a few milliseconds old) the first statement fails and the
    connection is invalidated, so a second try gets a new one. Only reads are retried so: a
    failed write may have been applied, so it is answered 503 and the client retries.
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

    return storage(retried)
