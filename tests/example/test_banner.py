"""What the example prints at start: a chosen demo password never reaches the terminal.

design.md: never log a credential. The built-in default (demo/demo) is in the README anyway, so
showing it helps; a password set with ``DEMO_PASSWORD`` is the operator's secret.
"""

from __future__ import annotations

import pytest
import uvicorn

import example.server
from example.server import startup_banner
from example.settings import ExampleSettings

CHOSEN = "Tr0ub4dor-s3cret"


def test_banner_shows_the_built_in_demo_password() -> None:
    """The default password is public (README); printing it tells a first-time user how to sign in."""
    banner = startup_banner(ExampleSettings.from_env({}))
    assert "Demo users: demo/demo (admin), guest/guest (guest)" in banner
    assert "Listening on http://127.0.0.1:8000" in banner and "MCP endpoint: http://localhost:8000/mcp" in banner


@pytest.mark.parametrize("env", [{"DEMO_PASSWORD": CHOSEN}, {"DEMO_PASSWORD": CHOSEN, "DEMO_USERNAME": "ada"}])
def test_banner_hides_a_password_chosen_with_demo_password(env: dict[str, str]) -> None:
    """design.md (never log a credential): only the username and where the password came from."""
    settings = ExampleSettings.from_env(env)
    banner = startup_banner(settings)
    assert CHOSEN not in banner
    assert f"Demo users: {settings.demo_username} (password from DEMO_PASSWORD) (admin)" in banner


def test_main_prints_the_banner_without_the_chosen_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """design.md (never log a credential): what ``python -m example.server`` prints at start."""
    served: list[object] = []
    monkeypatch.setenv("DEMO_PASSWORD", CHOSEN)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("GC_TUNING", "off")  # main() runs in this test process
    monkeypatch.setattr(example.server, "create_app", lambda settings: "the app")
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    example.server.main()
    printed = capsys.readouterr().out
    assert served == ["the app"]
    assert CHOSEN not in printed
    assert "Demo users: demo (password from DEMO_PASSWORD) (admin), guest/guest (guest)" in printed
