"""The retention of stored audit events: ``audit_retention`` seconds, then purged in batches."""

from __future__ import annotations

import asyncio
import time

from oauth_server.audit.trail import RetainingSink


async def purge_events(hook: object, before: int, batch: int = 1000, busy_share: float = 0.25) -> int:
    """Delete the events older than ``before`` from a sink that stores them; how many went.

    Paced like ``housekeeping.purge_expired`` (one bounded batch per statement, then a pause,
    so requests served meanwhile keep their latency). A hook that stores nothing (the JSON log,
    an app's own callable without ``purge``) has nothing to purge: 0.
    """
    if not isinstance(hook, RetainingSink):
        return 0
    if not 0 < busy_share <= 1:
        raise ValueError("busy_share must be in (0, 1]")
    total = 0
    while True:
        started = time.monotonic()
        removed = await hook.purge(before, batch)
        total += removed
        if removed < batch:
            return total
        await asyncio.sleep((time.monotonic() - started) * (1 - busy_share) / busy_share)
