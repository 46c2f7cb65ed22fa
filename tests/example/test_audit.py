"""The example's audit switches: JSON lines by default, ``AUDIT_SQL=on`` stores events in its
database, ``AUDIT_RETENTION`` bounds how long."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from example.server import AuditLines, server_settings
from example.settings import ExampleSettings, SettingsError
from oauth_server.audit import AuditEvent, ClientDeleted, RateLimitHit, SQLAuditSink
from tests.example.conftest import StartExample

CLIENT = {"redirect_uris": ["http://127.0.0.1:33418/callback"], "token_endpoint_auth_method": "none",
          "client_name": "Audited"}


def test_audit_settings_are_read() -> None:
    defaults = ExampleSettings.from_env({})
    assert (defaults.audit_sql, server_settings(defaults).audit_retention) == (False, 7_776_000)
    chosen = ExampleSettings.from_env({"AUDIT_SQL": "on", "AUDIT_RETENTION": "86400"})
    assert (chosen.audit_sql, server_settings(chosen).audit_retention) == (True, 86_400)
    for bad in ({"AUDIT_SQL": "maybe"}, {"AUDIT_RETENTION": "0"}, {"AUDIT_RETENTION": "a week"}):
        with pytest.raises(SettingsError, match="AUDIT_"):
            ExampleSettings.from_env(bad)


async def test_audit_sql_on_stores_events_in_the_example_database(start_example: StartExample,
                                                                  tmp_path: Path) -> None:
    async with start_example(audit_sql=True) as base, httpx.AsyncClient(base_url=base) as http:
        registered = await http.post("/register", json=CLIENT)
        assert registered.status_code == 201
    sink = SQLAuditSink(f"sqlite+aiosqlite:///{tmp_path / 'example.db'}")
    try:
        rows = await sink.events()
    finally:
        await sink.aclose()
    assert [(r["event"], r["client_id"], r["client_name"]) for r in rows] == [
        ("client_registered", registered.json()["client_id"], "Audited")]


async def test_audit_default_is_a_json_line(start_example: StartExample, capsys: pytest.CaptureFixture[str]) -> None:
    async with start_example() as base, httpx.AsyncClient(base_url=base) as http:
        registered = await http.post("/register", json=CLIENT)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [(line["event"], line["client_id"]) for line in lines] == [
        ("client_registered", registered.json()["client_id"])]


def test_audit_lines_are_bare_json_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """Without AUDIT_SQL: each event is one line that parses alone (no time/level prefix), the
    same line the library's ``log_event`` would log."""
    lines = AuditLines()
    events: list[AuditEvent] = [ClientDeleted(time=1, client_id="c"),
                                RateLimitHit(time=2, limit="token", key="127.0.0.1", retry_after=3)]
    for event in events:
        lines(event)
    written = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in written] == ["client_deleted", "rate_limit_hit"]
    assert written == [json.dumps(event.as_dict(), separators=(",", ":"), ensure_ascii=False) for event in events]
