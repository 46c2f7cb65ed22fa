"""The audit trail's cost on the hot path: CPU time of a whole flow and of a refresh, in process.

Three servers on ``MemoryOAuthServerModel`` behind our router (httpx's ASGI transport, no
sockets), identical but for ``on_event``:

* ``off``: ``on_event=None``;
* ``default, not collected``: the default ``log_event`` with ``oauth_server.audit`` below INFO
  (what a server that configured no logging pays: a level check per event);
* ``default, JSON lines``: ``log_event`` at INFO into a ``StreamHandler`` on ``/dev/null`` (each
  event serialised, formatted and written).

A whole flow is register → authorize → consent → token → refresh → introspect → revoke
(7 events); a refresh is one ``/token`` call (1 event). The three run alternately, ``--rounds``
times, each round ``--flows`` flows then ``--refreshes`` refreshes per server, measured with
``time.process_time`` (CPU of this process, so the other tenants of the machine count less than
with wall time). Reported: the median over rounds of the CPU per operation, and its ratio to
``off``, and the median of the per-round ratios with their interquartile range (the noise of a
shared machine shows there). Then the same three for one event alone (building a ``TokensIssued``
from an issuance and emitting it, 100,000 times): the sharper figure, since a flow's CPU varies by
more than the events cost. Writes ``bench/results/audit-cost.md`` and ``.json``.

Usage: ``python -m bench.audit_cost [--rounds 30] [--flows 40] [--refreshes 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from fastapi import FastAPI
from starlette.requests import Request

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings, RateLimits, mcp_auth_router
from oauth_server.audit import AuditTrail, EventHook, log_event
from oauth_server.audit.build import tokens_issued
from oauth_server.grants.issue import GrantContext, mint
from oauth_server.records import Client
from tests.helpers import REDIRECT, exchange, get_code

ISSUER = "http://localhost:8000"
RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = ("off", "default, not collected", "default, JSON lines")


async def user(request: Request) -> str | None:
    return "alice"


def app_for(on_event: EventHook | None) -> FastAPI:
    server = OAuthServer(MemoryOAuthServerModel(), OAuthServerSettings(
        issuer_url=ISSUER, resource_server_url=f"{ISSUER}/mcp", authorization_url=f"{ISSUER}/consent",
        scopes_supported=("mcp:tools",)), on_event=on_event)
    app = FastAPI()
    app.include_router(mcp_auth_router(server, get_user=user, rate_limits=RateLimits.disabled()))
    return app


async def flow(http: httpx.AsyncClient, rs: tuple[str, str]) -> None:
    registered = (await http.post("/register", json={"redirect_uris": [REDIRECT],
                                                     "token_endpoint_auth_method": "none"})).json()
    client_id = registered["client_id"]
    code = await get_code(http, client_id)
    tokens = (await exchange(http, client_id, code)).json()
    new = (await http.post("/token", data={"grant_type": "refresh_token", "client_id": client_id,
                                           "refresh_token": tokens["refresh_token"]})).json()
    await http.post("/introspect", data={"token": new["access_token"]}, auth=rs)
    await http.post("/revoke", data={"token": new["refresh_token"], "client_id": client_id})


async def measure(action: Callable[[], Awaitable[object]], times: int) -> float:
    started = time.process_time()
    for _ in range(times):
        await action()
    return (time.process_time() - started) / times


async def main(rounds: int, flows: int, refreshes: int) -> dict[str, dict[str, list[float]]]:
    audit = logging.getLogger("oauth_server.audit")
    audit.propagate = False
    sink = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 -- open for the whole run
    sink.setFormatter(logging.Formatter("%(message)s"))
    audit.addHandler(sink)
    clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app_for(None if name == "off" else log_event)),
                                       base_url=ISSUER, headers={"x-test-user": "alice"}) for name in CONFIGS}
    results: dict[str, dict[str, list[float]]] = {name: {"flow": [], "refresh": [], "event": []} for name in CONFIGS}
    try:
        state = {}
        for name, http in clients.items():
            rs = (await http.post("/register", json={"redirect_uris": [REDIRECT],
                                                     "token_endpoint_auth_method": "client_secret_basic"})).json()
            state[name] = (rs["client_id"], rs["client_secret"])
            await flow(http, state[name])  # warm-up
        for round_number in range(rounds):
            order = CONFIGS if round_number % 2 == 0 else tuple(reversed(CONFIGS))
            for name in order:
                audit.setLevel(logging.INFO if name == "default, JSON lines" else logging.WARNING)
                flow_cpu, refresh_cpu = await one_round(clients[name], state[name], flows, refreshes)
                results[name]["flow"].append(flow_cpu)
                results[name]["refresh"].append(refresh_cpu)
        for _ in range(5):
            for name, seconds in (await micro(audit)).items():
                results[name]["event"].append(seconds)
    finally:
        for http in clients.values():
            await http.aclose()
        sink.close()
    return results


async def one_round(http: httpx.AsyncClient, rs: tuple[str, str], flows: int, refreshes: int) -> tuple[float, float]:
    """CPU per whole flow, then per refresh of one grant's rotating refresh token."""
    flow_cpu = await measure(lambda: flow(http, rs), flows)
    public = (await http.post("/register", json={"redirect_uris": [REDIRECT],
                                                 "token_endpoint_auth_method": "none"})).json()
    client_id = public["client_id"]
    current = [(await exchange(http, client_id, await get_code(http, client_id))).json()["refresh_token"]]

    async def refresh() -> None:
        response = await http.post("/token", data={"grant_type": "refresh_token", "client_id": client_id,
                                                   "refresh_token": current[0]})
        current[0] = response.json()["refresh_token"]

    return flow_cpu, await measure(refresh, refreshes)


async def micro(audit: logging.Logger, emits: int = 100_000) -> dict[str, float]:
    """CPU seconds per event: build a ``TokensIssued`` from an issuance and emit it."""
    settings = OAuthServerSettings(issuer_url=ISSUER, resource_server_url=f"{ISSUER}/mcp",
                                   authorization_url=f"{ISSUER}/consent", scopes_supported=("mcp:tools",))
    ctx = GrantContext(MemoryOAuthServerModel(), settings, 1_800_000_000, Client(client_id="c", redirect_uris=()))
    issuance = mint(ctx, grant_id="g" * 22, subject="alice", scopes=("mcp:tools",), granted_scopes=("mcp:tools",),
                    resource=f"{ISSUER}/mcp", grant_expires_at=1_900_000_000)
    per_event: dict[str, float] = {}
    for name in CONFIGS:
        trail = AuditTrail(None if name == "off" else log_event)
        audit.setLevel(logging.INFO if name == "default, JSON lines" else logging.WARNING)
        started = time.process_time()
        for _ in range(emits):
            await trail.emit(tokens_issued("authorization_code", issuance, 1_800_000_000))
        per_event[name] = (time.process_time() - started) / emits
    return per_event


def report(results: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> str:
    lines = [f"# Audit trail cost (`python -m bench.audit_cost --rounds {args.rounds} --flows {args.flows} "
             f"--refreshes {args.refreshes}`)", "",
             "CPU time per operation in this process (median over rounds; the three servers alternate).", "",
             "| on_event | whole flow (7 events) | paired ratio to off (IQR) | refresh (1 event) "
             "| paired ratio to off (IQR) | one event alone |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in CONFIGS:
        cells = [name]
        for kind in ("flow", "refresh"):
            ratios = [a / b for a, b in zip(results[name][kind], results["off"][kind], strict=True)]
            quartiles = statistics.quantiles(ratios, n=4)
            cells += [f"{statistics.median(results[name][kind]) * 1000:.3f} ms",
                      f"{statistics.median(ratios):.3f} ({quartiles[0]:.3f}–{quartiles[2]:.3f})"]
        cells.append(f"{statistics.median(results[name]['event']) * 1e6:.2f} µs")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--flows", type=int, default=40)
    parser.add_argument("--refreshes", type=int, default=200)
    parser.add_argument("--name", default="audit-cost")
    args = parser.parse_args()
    measured = asyncio.run(main(args.rounds, args.flows, args.refreshes))
    text = report(measured, args)
    (RESULTS / f"{args.name}.md").write_text(text)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(measured, indent=1))
    print(text)
