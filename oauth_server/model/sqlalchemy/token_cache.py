"""A short-lived cache of verified access tokens that honours revocation across processes.

Why: the bearer check runs before every MCP request, and on Postgres the lookup (one indexed
``SELECT`` through SQLAlchemy) costs about five times the rest of the check. Caching the record
for a few seconds makes the check as cheap as the memory model's; the danger is serving a token
another process has just revoked. So the cache is used only while this process listens to the
database's revocations:

* ``revoke_grant`` sends ``pg_notify('oauth_server_revocations', 'grant:<id>')`` inside its own
  transaction, so the notice goes out exactly when the revocation commits (every revocation
  ends a whole grant: the server has no narrower one);
* every process keeps one extra connection ``LISTEN``-ing on that channel and evicts the grant's
  tokens when a notice arrives (milliseconds after the commit);
* while that connection is down (or not yet up) the cache is emptied and bypassed: every check
  goes to the database, as without a cache. It reconnects by itself;
* a generation counter, bumped by every eviction, stops a lookup that raced a revocation from
  putting the revoked record back.

Only hits are cached (random guesses cannot fill it), for at most ``ttl`` seconds, at most
``max_entries`` records (oldest dropped first); expiry is still checked by ``OAuthServer`` on
every use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from oauth_server.records import AccessToken

logger = logging.getLogger("oauth_server")

CHANNEL = "oauth_server_revocations"


class VerifiedTokenCache:
    """digest → (record, monotonic deadline), live only while the revocation feed is connected."""

    def __init__(self, dsn: str, ttl: float, max_entries: int = 10_000) -> None:
        self.dsn = dsn
        self.ttl = ttl
        self.max_entries = max_entries
        self.live = False
        self.generation = 0
        self._entries: dict[str, tuple[AccessToken, float]] = {}
        self._task: asyncio.Task[None] | None = None

    # -- the cache ----------------------------------------------------------------------------
    def get(self, digest: str) -> AccessToken | None:
        if not self.live:
            self._start()
            return None
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            self._entries.pop(digest, None)
            return None
        return entry[0]

    def put(self, record: AccessToken, generation: int) -> None:
        """Keep ``record``, read when ``self.generation`` was ``generation``, unless a revocation
        (or a lost feed) happened since: the record may already be revoked."""
        if not self.live or generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[record.token_digest] = (record, time.monotonic() + self.ttl)

    def evict_grant(self, grant_id: str) -> None:
        self.generation += 1
        for digest in [d for d, (record, _) in self._entries.items() if record.grant_id == grant_id]:
            del self._entries[digest]

    def evict_all(self) -> None:
        self.generation += 1
        self._entries.clear()

    def _go_offline(self) -> None:
        self.live = False
        self.evict_all()

    # -- the revocation feed -------------------------------------------------------------------
    def _start(self) -> None:
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: stay offline
                self._task = asyncio.get_running_loop().create_task(self._listen())

    def _on_notice(self, connection: object, pid: int, channel: str, payload: str) -> None:
        kind, _, key = payload.partition(":")
        if kind == "grant":
            self.evict_grant(key)
        else:
            self.evict_all()  # a notice this version does not know: forget everything rather than guess

    async def _listen(self) -> None:
        """Hold a LISTEN connection; offline (cache bypassed) whenever it is not up."""
        import asyncpg  # only Postgres deployments have it (the [postgres] extra)

        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self.dsn, timeout=5)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, event=lost: event.set())
                await connection.add_listener(CHANNEL, self._on_notice)
                self.generation += 1
                self.live = True
                while not lost.is_set():
                    # A half-open TCP connection tells nothing: ask every few seconds.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(lost.wait(), timeout=5)
                    if not lost.is_set():
                        await connection.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                self._go_offline()
                if connection is not None:
                    connection.terminate()
                raise
            except Exception as exc:  # any failure: go offline, retry
                logger.warning("token cache offline: revocation feed lost (%s)", exc.__class__.__name__)
            self._go_offline()
            if connection is not None:
                connection.terminate()
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
