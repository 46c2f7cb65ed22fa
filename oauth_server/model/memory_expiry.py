"""The memory model's expiry heap: a purge costs what it removes, not a scan of every record.

One entry ``(expires_at, store number, key)`` per record written with an expiry. Entries of
records already gone (revoked, consumed, deleted) or whose expiry moved are dropped or re-filed
when they come up; when stale entries outnumber the live records the heap is rebuilt from the
stores, so it stays bounded whatever is revoked before it expires.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

from oauth_server.records import Client


def expires_at(record: object) -> int | None:
    """When ``record`` may be purged; None or 0: never (a client without an expiring secret).

    A used assertion ``jti`` is stored as its expiry alone.
    """
    if isinstance(record, int):
        return record
    if isinstance(record, Client):
        return record.client_secret_expires_at
    return getattr(record, "expires_at", None)


class ExpiryHeap:
    """The entries of ``stores`` (dicts keyed by str), by expiry."""

    def __init__(self, stores: Sequence[dict[str, object]]) -> None:
        self.stores = stores
        self.entries: list[tuple[int, int, str]] = []

    def track(self, store: int, key: str, expires: int | None, live: int) -> None:
        """File ``key`` of store number ``store``; ``live``: how many records are stored now."""
        if expires:
            heapq.heappush(self.entries, (expires, store, key))
            if len(self.entries) > 2 * live + 1000:
                self.rebuild()

    def rebuild(self) -> None:
        self.entries = [(expires, number, key) for number, store in enumerate(self.stores)
                        for key, record in store.items() if (expires := expires_at(record))]
        heapq.heapify(self.entries)

    def purge(self, now: int, batch: int, removed_one: Callable[[str, object], None]) -> int:
        """Remove up to ``batch`` expired records of each store, oldest first; ``removed_one(key,
        record)`` for each, so the model can drop it from its indexes. Returns how many went."""
        removed = [0] * len(self.stores)
        over_batch: list[tuple[int, int, str]] = []
        heap = self.entries
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            expires, number, key = entry
            if removed[number] >= batch:
                over_batch.append(entry)  # this kind's batch is full: keep for the next purge
                if min(removed) >= batch:
                    break
                continue
            store = self.stores[number]
            record = store.get(key)
            if record is None:
                continue  # revoked or consumed since
            current = expires_at(record)
            if current != expires:
                if current:
                    heapq.heappush(heap, (current, number, key))  # its expiry moved: track the new one
                continue
            del store[key]
            removed[number] += 1
            removed_one(key, record)
        for entry in over_batch:
            heapq.heappush(heap, entry)
        return sum(removed)
