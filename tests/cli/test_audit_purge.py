"""``oauth-server purge`` deletes the audit events past ``--audit-retention`` (``OAUTH_AUDIT_RETENTION``)."""

from __future__ import annotations

import asyncio
import json
import time

from oauth_server.audit import ClientDeleted, SQLAuditSink
from tests.cli.conftest import invoke

DAY = 86_400


def seed_events(url: str, *ages_in_days: int) -> None:
    async def seed() -> None:
        sink = SQLAuditSink(url)
        try:
            now = int(time.time())
            for age in ages_in_days:
                await sink(ClientDeleted(time=now - age * DAY, client_id=f"aged-{age}"))
        finally:
            await sink.aclose()

    asyncio.run(seed())


def stored(url: str) -> list[str]:
    async def read() -> list[str]:
        sink = SQLAuditSink(url)
        try:
            return [str(row["client_id"]) for row in await sink.events()]
        finally:
            await sink.aclose()

    return asyncio.run(read())


def test_purge_removes_audit_events_past_their_retention(url: str) -> None:
    seed_events(url, 100, 91, 10, 0)
    result = invoke("purge", "--database-url", url, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"purged": 2}  # the default: 90 days
    assert stored(url) == ["aged-10", "aged-0"]
    shorter = invoke("purge", "--database-url", url, "--json", env={"OAUTH_AUDIT_RETENTION": str(5 * DAY)})
    assert shorter.exit_code == 0 and json.loads(shorter.stdout) == {"purged": 1}
    assert stored(url) == ["aged-0"]
    assert invoke("purge", "--database-url", url, "--audit-retention", "0").exit_code == 2
