"""Records survive a restart: a client registered and tokens issued by one server process are
honoured by the next one on the same database (two uvicorn processes in sequence).

On Postgres the database is fresh and migrated with ``alembic upgrade head`` exactly as the README's
"Deploy on Postgres" says; on SQLite the example migrates its file at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.flows.live import free_port
from tests.model.conftest import create_database, drop_database, postgres_unreachable

ROOT = Path(__file__).resolve().parents[2]
LIFETIME = 30  # seconds: long enough for a restart on a loaded machine (15 was not), short enough to wait out


@contextlib.contextmanager
def example_process(port: int, database_url: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m example.server`` as a user starts it, until it answers /health."""
    env = {**os.environ, "PORT": str(port), "PUBLIC_URL": f"http://127.0.0.1:{port}", "DATABASE_URL": database_url,
           "ACCESS_TOKEN_LIFETIME": str(LIFETIME), "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([sys.executable, "-m", "example.server"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(150):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            time.sleep(0.1)
        yield server
    finally:
        server.terminate()
        server.communicate(timeout=15)


def run_client(port: int, token_file: Path, password: str) -> dict[str, object]:
    """The example client; returns what it stored. A wrong password proves no new sign-in happened."""
    result = subprocess.run(
        [sys.executable, "-m", "example.client", "--server", f"http://127.0.0.1:{port}/mcp",
         "--token-file", str(token_file), "--username", "demo", "--password", password],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert '"user": "demo"' in result.stdout
    entry = next(iter(json.loads(token_file.read_text()).values()))
    assert isinstance(entry, dict)
    return entry


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'example.db'}"
        return
    try:
        url = asyncio.run(create_database())
    except OSError as exc:
        postgres_unreachable(exc)
    try:
        migrate = subprocess.run([sys.executable, "-m", "alembic", "-x", f"url={url}", "upgrade", "head"],
                                 cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert migrate.returncode == 0, migrate.stderr
        yield url
    finally:
        asyncio.run(drop_database(url))


def test_registration_and_tokens_survive_a_restart(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    token_file = tmp_path / "tokens.json"
    with example_process(port, database_url):
        issued = run_client(port, token_file, "demo")
    with example_process(port, database_url):
        # The access token from the first process is accepted as it is (nothing new stored).
        assert run_client(port, token_file, "wrong") == issued
        tokens = issued["tokens"]
        assert isinstance(tokens, dict)
        time.sleep(LIFETIME + 0.5)
        # Expired now: the client refreshes with the first process's refresh token and client id.
        refreshed = run_client(port, token_file, "wrong")
    assert refreshed["client_info"] == issued["client_info"]
    new_tokens = refreshed["tokens"]
    assert isinstance(new_tokens, dict)
    assert new_tokens["refresh_token"] != tokens["refresh_token"]
    assert new_tokens["access_token"] != tokens["access_token"]
