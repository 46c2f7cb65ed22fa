"""A few seconds' memory of registered clients, so a token request costs one round trip less.

Why it is safe without any invalidation feed (unlike ``token_cache``): a client record never
changes once registered: the model has no update or delete verb (RFC 7592 management is not
offered), and everything that decides whether a client may act now (its secret's
``client_secret_expires_at``, its redirect URIs, its auth method) is in the record and checked
by ``OAuthServer`` on every use. Only found clients are kept, so a client registered by another
process is found at once, and random ``client_id`` guesses cannot fill the cache. The one thing
the TTL bounds is a row deleted by hand (or by ``purge_expired`` once its secret has expired,
when it could not authenticate anyway): such a client keeps working here for at most ``ttl``
seconds.
"""

from __future__ import annotations

import time

from oauth_server.records import Client


class RecentClients:
    """client_id → (record, monotonic deadline); at most ``max_entries``, oldest dropped first."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Client, float]] = {}

    def get(self, client_id: str) -> Client | None:
        entry = self._entries.get(client_id)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self._entries[client_id]
            return None
        return entry[0]

    def put(self, client: Client) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries and client.client_id not in self._entries:
            del self._entries[next(iter(self._entries))]
        self._entries[client.client_id] = (client, time.monotonic() + self.ttl)
