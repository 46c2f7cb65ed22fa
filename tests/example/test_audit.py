"""The example's audit switches: JSON lines by default, ``AUDIT_SQL=on`` stores events in its
database, ``AUDIT_RETENTION`` bounds how long."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from example.server import log_audit_lines, server_settings
from example.settings import ExampleSettings, SettingsError
from oauth_server.audit import ClientDeleted, RateLimitHit, SQLAuditSink, log_event
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


async def test_audit_default_is_a_json_line(start_example: StartExample, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="oauth_server.audit")
    async with start_example() as base, httpx.AsyncClient(base_url=base) as http:
        registered = await http.post("/register", json=CLIENT)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "oauth_server.audit"]
    assert [(line["event"], line["client_id"]) for line in lines] == [
        ("client_registered", registered.json()["client_id"])]


def test_audit_lines_are_bare_json_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """``main`` without AUDIT_SQL: each event is one line that parses alone (no time/level prefix)."""
    audit = logging.getLogger("oauth_server.audit")
    before = (list(audit.handlers), audit.level, audit.propagate)
    try:
        log_audit_lines()
        log_event(ClientDeleted(time=1, client_id="c"))
        log_event(RateLimitHit(time=2, limit="token", key="127.0.0.1", retry_after=3))
    finally:
        for handler in audit.handlers[len(before[0]):]:
            audit.removeHandler(handler)
        audit.setLevel(before[1])
        audit.propagate = before[2]
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["client_deleted", "rate_limit_hit"]
