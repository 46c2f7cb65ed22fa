"""The database's change notices, on Postgres: one LISTEN connection per process feeds its caches.

Why: the SQL model keeps verified access tokens (``token_cache``) and client records
(``client_cache``) in memory for a few seconds, and another process may revoke or change them in
the meantime. Every write that must reach the other processes' caches sends a notice on
``CHANNEL`` inside its own transaction, so the notice goes out exactly when (and only if) the
write commits:

* ``grant:<grant_id>``: ``revoke_grant`` ended the grant: its tokens go;
* ``client:<client_id>``: ``upsert_client``, ``replace_client`` or ``delete_client`` changed
  the client (deletion also ended its grants): the client's record and tokens go;
* anything else (a notice of a later version): every cache forgets everything rather than guess.

Each process keeps one extra connection ``LISTEN``-ing on the channel and hands each notice to
its caches (milliseconds after the commit). While that connection is down (or not yet up), the
feed is not ``live``: the caches are emptied and bypassed, so every lookup goes to the database,
as without a cache, and the feed reconnects by itself. Each transition empties the caches (their
generation counters move), so a lookup that straddled it cannot put back what it read before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

logger = logging.getLogger("oauth_server")

#: The name dates from when only revocations were announced; kept so that processes of an older
#: version still hear ``grant:`` notices during a rolling upgrade (and forget everything on the
#: ``client:`` notices they do not know).
CHANNEL = "oauth_server_revocations"
#: Postgres refuses a payload of 8000 bytes or more; a longer key is announced as "forget all".
_MAX_PAYLOAD = 7900


def notice(kind: str, key: str) -> str:
    """The payload announcing that the record ``key`` of ``kind`` changed."""
    payload = f"{kind}:{key}"
    return payload if len(payload.encode()) <= _MAX_PAYLOAD else "all:"


class Subscriber(Protocol):
    """A cache fed by the notices."""

    def on_notice(self, kind: str, key: str) -> None:
        """Drop what the notice ``kind:key`` made stale (an unknown kind: everything)."""

    def forget_all(self) -> None:
        """Drop everything, and refuse records read before this call."""


class NoticeFeed:
    """The LISTEN connection of one process; ``live`` while it is up."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.live = False
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def ensure_listening(self) -> None:
        """Start the listener if it is not running (a cache calls this while the feed is down)."""
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: stay offline
                self._task = asyncio.get_running_loop().create_task(self._listen())

    def _on_notice(self, connection: object, pid: int, channel: str, payload: str) -> None:
        kind, _, key = payload.partition(":")
        for subscriber in self._subscribers:
            subscriber.on_notice(kind, key)

    def _set_live(self, live: bool) -> None:
        """Either way, the caches forget: what they hold (or are reading) may have missed a notice."""
        for subscriber in self._subscribers:
            subscriber.forget_all()
        self.live = live

    async def _listen(self) -> None:
        """Hold a LISTEN connection; offline (caches bypassed) whenever it is not up."""
        import asyncpg  # only Postgres deployments have it (the [postgres] extra)

        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self.dsn, timeout=5)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, event=lost: event.set())
                await connection.add_listener(CHANNEL, self._on_notice)
                self._set_live(True)
                while not lost.is_set():
                    # A half-open TCP connection tells nothing: ask every few seconds.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(lost.wait(), timeout=5)
                    if not lost.is_set():
                        await connection.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                self._set_live(False)
                if connection is not None:
                    connection.terminate()
                raise
            except Exception as exc:  # any failure: go offline, retry
                logger.warning("model caches offline: change notices lost (%s)", exc.__class__.__name__)
            self._set_live(False)
            if connection is not None:
                connection.terminate()
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
