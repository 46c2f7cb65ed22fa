"""Clearing expired records without slowing the requests served meanwhile."""

from __future__ import annotations

import asyncio
import time

from oauth_server.model.base import OAuthServerModel


async def purge_expired(model: OAuthServerModel, now: int, batch: int = 1000, busy_share: float = 0.25) -> int:
    """Delete every record expired by ``now``, ``batch`` rows per kind at a time; how many went.

    The model deletes one short batch per call, so no statement holds locks for long; this
    loop calls it until nothing expired is left, so a backlog of any size is cleared (one
    batch per periodic call would fall behind any server issuing more tokens than that).
    Between batches it sleeps, so that the purge keeps the database busy at most
    ``busy_share`` of the time and requests served meanwhile keep their latency
    (``bench/scale.py`` measures it). Records expiring after ``now`` are left for the next
    call, so the loop always ends.
    """
    if not 0 < busy_share <= 1:
        raise ValueError("busy_share must be in (0, 1]")
    total = 0
    while True:
        started = time.monotonic()
        removed = await model.purge_expired(now, batch)
        total += removed
        if removed == 0:
            return total
        await asyncio.sleep((time.monotonic() - started) * (1 - busy_share) / busy_share)
