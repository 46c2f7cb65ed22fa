"""The example's MCP endpoint: stateless JSON by default (any process can answer any request),
stateful sessions only with ``MCP_SESSIONS=on``; the MCP SDK client works either way."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from example.client import run
from example.settings import ExampleSettings, SettingsError
from tests.example.conftest import StartExample
from tests.example.test_example import options, stored

PING = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.mark.parametrize("sessions", [False, True], ids=["stateless", "sessions"])
async def test_mcp_endpoint_is_stateless_json_unless_sessions_are_asked_for(
        start_example: StartExample, tmp_path: Path, sessions: bool) -> None:
    token_file = tmp_path / "tokens.json"
    async with start_example(mcp_sessions=sessions) as base:
        result = await run(options(base, token_file))  # the SDK client: initialize, list, call
        assert result.whoami["user"] == "demo"
        token = stored(token_file)["tokens"]
        assert isinstance(token, dict)
        headers = {**ACCEPT, "Authorization": f"Bearer {token['access_token']}"}
        async with httpx.AsyncClient(base_url=base) as http:
            # A lone request, as a load balancer may hand any process: no initialize, no session id.
            response = await http.post("/mcp", json=PING, headers=headers)
    if sessions:
        assert response.status_code == 400, "a stateful server wants the session id"
    else:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}
        assert "mcp-session-id" not in response.headers


def test_mcp_sessions_setting() -> None:
    assert ExampleSettings.from_env({}).mcp_sessions is False
    assert ExampleSettings.from_env({"MCP_SESSIONS": "on"}).mcp_sessions is True


def test_sqlite_synchronous_setting() -> None:
    assert ExampleSettings.from_env({}).sqlite_synchronous == "FULL"
    assert ExampleSettings.from_env({"SQLITE_SYNCHRONOUS": "normal"}).sqlite_synchronous == "NORMAL"
    with pytest.raises(SettingsError, match="SQLITE_SYNCHRONOUS"):
        ExampleSettings.from_env({"SQLITE_SYNCHRONOUS": "off"})
