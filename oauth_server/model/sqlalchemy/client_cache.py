"""A few seconds' memory of client records, so a token request costs one round trip less.

Clients change (RFC 7592 updates, re-fetched client ID metadata documents) and go (RFC 7592
deletion, which also ends their grants), so a cached record can be stale. How long it may be:

* This process: never. The model evicts a client here as soon as its own write commits, and a
  generation counter stops a lookup that raced the write from putting the old record back.
* Other processes, on Postgres: for milliseconds. Every client write announces ``client:<id>``
  in its transaction (``notices``) and every process evicts on it; while a process's feed is
  down its cache is bypassed, as the token cache is. The TTL then bounds only a row changed by
  hand (no notice).
* Other processes, on SQLite (no notifications): for up to the TTL. A deleted client keeps
  passing ``get_client`` there, and an updated one keeps its old secret and redirect URIs, for
  up to ``ttl`` seconds. So the SQL model caches nothing on SQLite unless asked to (its
  ``client_cache_ttl`` defaults to 0 there): a SQLite read costs microseconds, not a network
  round trip, and a deleted client must stop working at once.

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

    def forget_all(self) -> None:
        self.generation += 1
        self._entries.clear()

    def on_notice(self, kind: str, key: str) -> None:
        if kind == "client":
            self.evict(key)
        elif kind != "grant":
            self.forget_all()  # a notice this version does not know: forget everything rather than guess
