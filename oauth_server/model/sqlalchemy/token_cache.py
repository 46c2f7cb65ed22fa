"""A short-lived cache of verified access tokens that honours revocation across processes.

Why: the bearer check runs before every MCP request, and on Postgres the lookup (one indexed
``SELECT`` through SQLAlchemy) costs about five times the rest of the check. Caching the record
for a few seconds makes the check as cheap as the memory model's; the danger is serving a token
another process has just revoked. So the cache is used only while this process hears the
database's change notices (``notices``):

* ``revoke_grant`` announces ``grant:<id>`` and ``delete_client`` announces ``client:<id>``
  inside their own transactions (every revocation ends a whole grant, or every grant of a
  client: the server has no narrower one), and this cache drops that grant's, or that client's,
  tokens when the notice arrives (milliseconds after the commit);
* while the feed is down (or not yet up) the cache is emptied and bypassed: every check goes to
  the database, as without a cache;
* a generation counter, bumped by every eviction, stops a lookup that raced a revocation from
  putting the revoked record back.

Only hits are cached (random guesses cannot fill it), for at most ``ttl`` seconds, at most
``max_entries`` records (oldest dropped first); expiry is still checked by ``OAuthServer`` on
every use.
"""

from __future__ import annotations

import time

from oauth_server.model.sqlalchemy.notices import NoticeFeed
from oauth_server.records import AccessToken


class VerifiedTokenCache:
    """digest → (record, monotonic deadline), live only while the notice feed is connected."""

    def __init__(self, feed: NoticeFeed, ttl: float, max_entries: int = 10_000) -> None:
        self.feed = feed
        self.ttl = ttl
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[str, tuple[AccessToken, float]] = {}
        feed.subscribe(self)

    @property
    def live(self) -> bool:
        return self.feed.live

    def get(self, digest: str) -> AccessToken | None:
        if not self.feed.live:
            self.feed.ensure_listening()
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
        if not self.feed.live or generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[record.token_digest] = (record, time.monotonic() + self.ttl)

    def evict_grant(self, grant_id: str) -> None:
        self.generation += 1
        for digest in [d for d, (record, _) in self._entries.items() if record.grant_id == grant_id]:
            del self._entries[digest]

    def evict_client(self, client_id: str) -> None:
        self.generation += 1
        for digest in [d for d, (record, _) in self._entries.items() if record.client_id == client_id]:
            del self._entries[digest]

    def forget_all(self) -> None:
        self.generation += 1
        self._entries.clear()

    def on_notice(self, kind: str, key: str) -> None:
        if kind == "grant":
            self.evict_grant(key)
        elif kind == "client":
            self.evict_client(key)
        else:
            self.forget_all()  # a notice this version does not know: forget everything rather than guess
