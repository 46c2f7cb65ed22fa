"""A few seconds' memory of client records, so a token request costs one round trip less.

Clients change (RFC 7592 updates, re-fetched client ID metadata documents) and go (RFC 7592
deletion, which also ends their grants), so a cached record can be stale. How long it may be:

* This process: never. The model evicts a client here as soon as its own write commits, and a
  generation counter stops a lookup that raced the write from putting the old record back.
* Other processes, on Postgres: for milliseconds. Every client write announces ``client:<id>``
  in its transaction (``notices``) and every process evicts on it; while a process's feed is
  down its cache is bypassed, as the token cache is. The TTL then bounds only a row changed by
  hand (no notice).
* Other processes, on SQLite (no notifications): never. Triggers count every write of
  ``oauth_clients`` (``tables.change_counters``, by any process, the CLI or hand-written SQL),
  and each lookup reads that count first, a one-row read, and forgets every cached record when
  it moved (``at_revision``). Nothing else can come between the two reads: they run one after
  the other on the event loop's thread, and another process's write between them moves the
  count again, so the next lookup forgets. A database without the counter (not migrated to
  0008) gets no cache.

Only found clients are kept, so a client registered by another process is found at once and
random ``client_id`` guesses cannot fill the cache; at most ``max_entries``, oldest dropped first.
"""

from __future__ import annotations

import time

from oauth_server.model.sqlalchemy.notices import NoticeFeed
from oauth_server.records import Client


class RecentClients:
    """client_id → (record, monotonic deadline); with a ``feed``, live only while it is connected."""

    def __init__(self, ttl: float, max_entries: int = 10_000, feed: NoticeFeed | None = None) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.feed = feed
        self.generation = 0
        #: SQLite: the client change count the cached records were read at (``at_revision``).
        self.revision: int | None = None
        self._entries: dict[str, tuple[Client, float]] = {}
        if feed is not None and ttl > 0:
            feed.subscribe(self)

    def _usable(self) -> bool:
        if self.ttl <= 0:
            return False
        if self.feed is not None and not self.feed.live:
            self.feed.ensure_listening()
            return False
        return True

    def get(self, client_id: str) -> Client | None:
        if not self._usable():
            return None
        entry = self._entries.get(client_id)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self._entries[client_id]
            return None
        return entry[0]

    def put(self, client: Client, generation: int) -> None:
        """Keep ``client``, read when ``self.generation`` was ``generation``, unless a client was
        written (or the feed lost) since: the record may be stale already."""
        if not self._usable() or generation != self.generation:
            return
        if len(self._entries) >= self.max_entries and client.client_id not in self._entries:
            del self._entries[next(iter(self._entries))]
        self._entries[client.client_id] = (client, time.monotonic() + self.ttl)

    def evict(self, client_id: str) -> None:
        self.generation += 1
        self._entries.pop(client_id, None)

    def at_revision(self, revision: int | None) -> None:
        """SQLite: the change count read just now; records read at another count are forgotten."""
        if revision != self.revision:
            self.forget_all()
            self.revision = revision

    def forget_all(self) -> None:
        self.generation += 1
        self._entries.clear()

    def on_notice(self, kind: str, key: str) -> None:
        if kind == "client":
            self.evict(key)
        elif kind != "grant":
            self.forget_all()  # a notice this version does not know: forget everything rather than guess
