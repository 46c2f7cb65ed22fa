"""The example's device grant switch: DEVICE_FLOW (on by default)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from example.server import create_app, server_settings
from example.settings import ExampleSettings, SettingsError


def test_device_flow_on_by_default_and_off_by_the_switch() -> None:
    assert server_settings(ExampleSettings.from_env({})).device_authorization_grant is True
    assert server_settings(ExampleSettings.from_env({"DEVICE_FLOW": "off"})).device_authorization_grant is False
    with pytest.raises(SettingsError, match="DEVICE_FLOW"):
        ExampleSettings.from_env({"DEVICE_FLOW": "maybe"})


@pytest.mark.parametrize(("flag", "status"), [("on", 200), ("off", 404)])
async def test_device_page_follows_the_switch(flag: str, status: int, tmp_path: Path) -> None:
    """The verification page reads nothing from the database, so no start-up is needed (the
    file is never created; SQLite must be a file, an in-memory database is refused)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'example.db'}"
    app = create_app(ExampleSettings.from_env({"DEVICE_FLOW": flag, "DATABASE_URL": url}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost:8000") as http:
        assert (await http.get("/device")).status_code == status
