"""Several example processes behind one address: one Postgres database and one Redis hold
everything they share, so any process can serve any request of a flow.

Two ``python -m example.server`` processes (what ``WORKERS=2`` starts, on two ports so that the
test chooses which process answers) on one Postgres database and one Redis: a flow started on
one is finished on the other, a token issued by one works on the other, a revocation on one is
refused at once by the other (RFC 7009 §2: its token cache hears the NOTIFY), and a rate limit
counts the requests of both. Then ``WORKERS=2`` itself: uvicorn's two workers serve a flow.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from example.settings import ExampleSettings, SettingsError
from oauth_server import migrate
from tests.example.split import example_processes
from tests.flows.live import free_port
from tests.helpers import REDIRECT, VERIFIER, authorize_params, form_fields, query
from tests.model.conftest import fresh_postgres_database

REDIS = "redis://127.0.0.1:6379/0"
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
#: Shared by every process, so a sign-in on one is a sign-in on all.
SESSION_SECRET = "workers-test-session-secret-of-32-bytes+"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        migrate.upgrade(url)
        yield url


def shared(database: str, public_url: str, port: int, **extra: str) -> dict[str, str]:
    return {"PORT": str(port), "PUBLIC_URL": public_url, "DATABASE_URL": database,
            "RATE_LIMIT_STORAGE": REDIS, "SESSION_SECRET": SESSION_SECRET, **extra}


async def flow_across(http: httpx.AsyncClient, first: str, second: str, public: str) -> dict[str, str]:
    """Register and start on ``first``, sign in and approve on ``second``, redeem on ``first``."""
    registered = await http.post(f"{first}/register", json={
        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "workers"})
    assert registered.status_code == 201, registered.text
    client_id = registered.json()["client_id"]
    started = await http.get(f"{first}/authorize", params=authorize_params(client_id, resource=f"{public}/mcp"))
    assert started.status_code == 303, started.text
    consent_url = started.headers["location"].replace(public, second)
    page = await http.get(consent_url)  # the browser cookie is per host, not per port
    assert page.status_code == 200, page.text
    approved = await http.post(consent_url.split("?")[0], data={
        **form_fields(page.text), "username": "demo", "password": "demo", "decision": "approve"})
    assert approved.status_code == 303, approved.text
    tokens = await http.post(f"{first}/token", data={
        "grant_type": "authorization_code", "code": query(approved.headers["location"])["code"],
        "redirect_uri": REDIRECT, "code_verifier": VERIFIER, "client_id": client_id, "resource": f"{public}/mcp"})
    assert tokens.status_code == 200, tokens.text
    return {**tokens.json(), "client_id": client_id}


async def ping(http: httpx.AsyncClient, base: str, token: str) -> int:
    response = await http.post(f"{base}/mcp", json=PING, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"})
    return response.status_code


async def test_two_processes_share_flows_revocation_and_rate_limits(database: str, tmp_path: Path) -> None:
    ports = free_port(), free_port()
    public = f"http://127.0.0.1:{ports[0]}"
    with example_processes(tmp_path, *(shared(database, public, port) for port in ports), start_timeout=60) as running:
        a, b = (process.base for process in running)
        async with httpx.AsyncClient(timeout=30) as http:
            tokens = await flow_across(http, a, b, public)
            assert await ping(http, b, tokens["access_token"]) == 200
            assert await ping(http, a, tokens["access_token"]) == 200
            refreshed = await http.post(f"{b}/token", data={
                "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                "client_id": tokens["client_id"]})
            assert refreshed.status_code == 200, refreshed.text
            new = refreshed.json()
            assert await ping(http, b, new["access_token"]) == 200  # now in b's token cache
            revoked = await http.post(f"{a}/revoke", data={"token": new["refresh_token"],
                                                           "client_id": tokens["client_id"]})
            assert revoked.status_code == 200
            statuses = []
            for _ in range(40):  # the NOTIFY reaches b within milliseconds
                statuses.append(await ping(http, b, new["access_token"]))
                if statuses[-1] == 401:
                    break
                await asyncio.sleep(0.05)
            assert statuses[-1] == 401, statuses
            assert await ping(http, a, new["access_token"]) == 401

            # /register allows 30 a minute per client address, counted in Redis by both processes.
            address = {"X-Forwarded-For": f"198.51.100.{secrets.randbelow(250) + 1}"}
            body = {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}
            answers = [(await http.post(f"{(a, b)[n % 2]}/register", json=body, headers=address)).status_code
                       for n in range(34)]
    assert answers.count(201) == 30, answers
    assert answers[30:] == [429] * 4, answers
    for process in running:
        assert "Traceback" not in process.log.read_text()


async def test_workers_serve_a_flow(database: str, tmp_path: Path) -> None:
    """``WORKERS=2``: uvicorn's own worker processes, each its own app from the environment."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    # Each worker imports and starts the whole app: slower to answer than one process.
    with example_processes(tmp_path, shared(database, public, port, WORKERS="2"), start_timeout=60) as (running,):
        async with httpx.AsyncClient(timeout=30) as http:
            tokens = await flow_across(http, running.base, running.base, public)
            assert [await ping(http, running.base, tokens["access_token"]) for _ in range(10)] == [200] * 10
    assert "Traceback" not in running.log.read_text()


def test_workers_need_shared_rate_limits() -> None:
    with pytest.raises(SettingsError, match="RATE_LIMIT_STORAGE"):
        ExampleSettings.from_env({"WORKERS": "2"})
    signed = {"SESSION_SECRET": SESSION_SECRET}
    assert ExampleSettings.from_env({"WORKERS": "2", "RATE_LIMIT": "off", **signed}).workers == 2
    assert ExampleSettings.from_env({"WORKERS": "2", "RATE_LIMIT_STORAGE": REDIS, **signed}).workers == 2
    with pytest.raises(SettingsError, match="WORKERS"):
        ExampleSettings.from_env({"WORKERS": "0"})




def test_workers_need_one_session_secret() -> None:
    """A random session key per worker would make a sign-in on one worker unknown to the next."""
    with pytest.raises(SettingsError, match="SESSION_SECRET"):
        ExampleSettings.from_env({"WORKERS": "2", "RATE_LIMIT_STORAGE": REDIS})
