"""Replay and reuse revoke the grant, under concurrency, across processes, over real HTTP.

RFC 6749 §4.1.2: a code used more than once is refused, and the server SHOULD revoke every token
issued from it; RFC 9700 §4.5 and §4.14.2: a replayed code or a reused refresh token means one
party holds a stolen copy, so the whole grant ends. The attack here is the one a thief with a
copy mounts: 20 redemptions of one code (or refreshes of one refresh token) at once, split over
two server processes on one database, so that some requests lose the race while the winner is
still storing its tokens. Whatever the interleaving, afterwards no credential of the grant may
work, every loser gets ``invalid_grant`` (never 503 or 500), and the logs show no deadlock.

Each process is ``python -m example.server`` (uvicorn on ``create_app(ExampleSettings)``), rate
limits off, both with the same ``PUBLIC_URL`` as behind one load balancer. Postgres: a fresh
database migrated to head; SQLite: one file, migrated by the first process at start.

A code race may end with no 200 at all: when a loser's revocation commits before the winner has
stored its tokens, the grant is already revoked and the winner gets ``invalid_grant`` too, which
is the rule working (nothing is issued from a replayed code). A refresh race always has exactly
one winner: a revocation only follows a rotation that committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from oauth_server.migrate import upgrade
from tests.flows.live import free_port
from tests.helpers import REDIRECT, VERIFIER, authorize_params, form_fields, query
from tests.model.conftest import create_database, drop_database, postgres_unreachable

ROOT = Path(__file__).resolve().parents[2]
REPETITIONS = 20
CONCURRENCY = 20
#: What must never appear in a server's log during the races.
FORBIDDEN_IN_LOGS = ("DeadlockDetectedError", "deadlock detected", "storage unavailable", "unexpected error",
                     "Traceback")


@dataclass
class Cluster:
    """Two example server processes on one database."""

    backend: str
    urls: tuple[str, str]
    logs: tuple[Path, Path]
    outcomes: list[str] = field(default_factory=list)

    def log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs)


@contextlib.contextmanager
def example_process(port: int, public_url: str, database_url: str, log: Path) -> Iterator[None]:
    """``python -m example.server`` on ``port``, its output in ``log``, until it answers /health."""
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "PUBLIC_URL": public_url,
           "DATABASE_URL": database_url, "RATE_LIMIT": "off", "LOG_LEVEL": "WARNING", "ACCESS_LOG": "off"}
    with log.open("w") as output:
        server = subprocess.Popen([sys.executable, "-m", "example.server"], cwd=ROOT, env=env,
                                  stdout=output, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the example server did not start"
            time.sleep(0.1)
        yield
    finally:
        server.terminate()
        server.wait(timeout=15)


@contextlib.contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'race.db'}"
        return
    try:
        url = asyncio.run(create_database())
    except OSError as exc:
        postgres_unreachable(exc)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(drop_database(url))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp(f"race-{request.param}")
    ports = free_port(), free_port()
    public_url = f"http://127.0.0.1:{ports[0]}"
    logs = directory / "first.log", directory / "second.log"
    with database(request.param, directory) as url, \
            example_process(ports[0], public_url, url, logs[0]), example_process(ports[1], public_url, url, logs[1]):
        found = Cluster(request.param, (public_url, f"http://127.0.0.1:{ports[1]}"), logs)
        yield found
    print(f"\n{request.param}: " + "; ".join(found.outcomes))


@contextlib.asynccontextmanager
async def clients(cluster: Cluster) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=cluster.urls[0], timeout=30, limits=limits) as first, \
            httpx.AsyncClient(base_url=cluster.urls[1], timeout=30, limits=limits) as second:
        yield first, second


async def approved_code(base_url: str) -> tuple[str, str]:
    """A new client, and a code the demo user approved for it: (client_id, code)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as browser:
        registered = await browser.post("/register", json={
            "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "race"})
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        started = await browser.get("/authorize", params=authorize_params(client_id))
        assert started.status_code == 303, started.text
        page = await browser.get(started.headers["location"])
        assert page.status_code == 200, page.text
        approved = await browser.post("/consent", data={**form_fields(page.text), "username": "demo",
                                                        "password": "demo", "decision": "approve"})
        assert approved.status_code == 303, approved.text
        return client_id, query(approved.headers["location"])["code"]


def redemption(client_id: str, code: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER,
            "client_id": client_id}


def refreshing(client_id: str, refresh_token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}


async def race(servers: tuple[httpx.AsyncClient, httpx.AsyncClient], form: dict[str, str]) -> list[httpx.Response]:
    """``CONCURRENCY`` identical token requests at once, alternating between the two processes."""
    return list(await asyncio.gather(*(servers[n % 2].post("/token", data=form) for n in range(CONCURRENCY))))


def winners(responses: list[httpx.Response]) -> list[dict[str, str]]:
    """The successful bodies; every other response must be 400 invalid_grant (no 503, no 500)."""
    for response in responses:
        if response.status_code != 200:
            assert (response.status_code, response.json()["error"]) == (400, "invalid_grant"), response.text
    return [response.json() for response in responses if response.status_code == 200]


async def assert_grant_is_dead(servers: tuple[httpx.AsyncClient, httpx.AsyncClient], client_id: str,
                               access_tokens: list[str], refresh_tokens: list[str]) -> None:
    """On both processes: every access token refused at /mcp (401), every refresh token at /token."""
    for server in servers:
        for token in access_tokens:
            response = await server.post("/mcp", headers={"Authorization": f"Bearer {token}"}, json={})
            assert response.status_code == 401, f"{server.base_url}: a token of the revoked grant still works"
        for token in refresh_tokens:
            response = await server.post("/token", data=refreshing(client_id, token))
            assert (response.status_code, response.json()["error"]) == (400, "invalid_grant"), response.text


async def test_replay_race_code_redeemed_once_and_the_replay_revokes_the_grant(cluster: Cluster) -> None:
    """RFC 6749 §4.1.2 / RFC 9700 §4.5: 20 concurrent redemptions of one code over two processes,
    20 times: at most one 200 (exactly one unless the revocation came first), every other answer
    invalid_grant, and afterwards the winner's access and refresh tokens are refused everywhere."""
    won = 0
    async with clients(cluster) as servers:
        for _ in range(REPETITIONS):
            client_id, code = await approved_code(cluster.urls[0])
            issued = winners(await race(servers, redemption(client_id, code)))
            assert len(issued) <= 1
            won += len(issued)
            await assert_grant_is_dead(servers, client_id, [body["access_token"] for body in issued],
                                       [body["refresh_token"] for body in issued])
    assert won > 0, "no redemption ever won: the race test raced nothing"
    for forbidden in FORBIDDEN_IN_LOGS:
        assert forbidden not in cluster.log_text()
    cluster.outcomes.append(f"code races: {REPETITIONS} x {CONCURRENCY} requests, {won} with a 200, "
                            f"{REPETITIONS - won} revoked before the winner stored its tokens, no token survived")


async def test_replay_race_refresh_token_rotated_once_and_the_reuse_revokes_the_grant(cluster: Cluster) -> None:
    """RFC 9700 §4.14.2: 20 concurrent refreshes of one refresh token over two processes, 20 times:
    exactly one 200, every other answer invalid_grant, and afterwards no token of the grant works,
    the one just minted by the winner included."""
    async with clients(cluster) as servers:
        for _ in range(REPETITIONS):
            client_id, code = await approved_code(cluster.urls[0])
            first = await servers[1].post("/token", data=redemption(client_id, code))
            assert first.status_code == 200, first.text
            tokens = first.json()
            for server in servers:  # the check below is meaningful: a live token passes it on both
                accepted = await server.post("/mcp", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                                             json={})
                assert accepted.status_code != 401, accepted.text
            issued = winners(await race(servers, refreshing(client_id, tokens["refresh_token"])))
            assert len(issued) == 1
            await assert_grant_is_dead(servers, client_id, [tokens["access_token"], issued[0]["access_token"]],
                                       [tokens["refresh_token"], issued[0]["refresh_token"]])
    for forbidden in FORBIDDEN_IN_LOGS:
        assert forbidden not in cluster.log_text()
    cluster.outcomes.append(f"refresh races: {REPETITIONS} x {CONCURRENCY} requests, one 200 each, no token survived")
