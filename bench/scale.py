"""Scale: does a big Postgres database slow the hot paths, and does purging it hurt serving?

1. Two databases, ``oauth_bench_empty`` and ``oauth_bench_scale``; the second is filled with
   1,000,000 grants (a live access token and a live refresh token each) and 100,000 clients
   through ``COPY``. ``ours-postgres`` is then
   measured on each, interleaved (empty, full, empty, full, ...), on tests 4 (refresh) and 5
   (bearer-protected resource). Target: full within 1.2× of empty.
2. The same tests run once on the full database, then each test once more while another process
   runs ``AuthorizationServer.purge_expired()`` (batches of 1,000, the database busy at most a quarter of
   the time) over 2,000,000 expired access tokens added just before it (``--expired``). Each
   test gets its own purge, started with the server, so that the purge outlasts the test's
   warm-up and measured window; the report says how long each purge ran against that window.
   Target: p99 during the purge at most 2× the p99 without.

Writes ``bench/results/scale.md`` and ``scale.json``. Usage::

    python -m bench.scale [--tokens 1000000] [--clients 100000] [--expired 2000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.run import can_pin, run_slot
from bench.servers import BENCH, ROOT, Server, _pg_execute, _pg_netloc, pin

EMPTY, FULL = "oauth_bench_empty", "oauth_bench_scale"
RESOURCE = "http://127.0.0.1/mcp"  # never matches a bench server's resource: the rows are ballast
TESTS = ["refresh", "resource"]


def url(database: str) -> str:
    return f"postgresql+asyncpg://{_pg_netloc()}/{database}"


def digest(kind: str, n: int) -> str:
    return hashlib.sha256(f"{kind}-{n}".encode()).hexdigest()


async def create(database: str) -> None:
    from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel

    await _pg_execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)", f"CREATE DATABASE {database}")
    model = SQLAlchemyOAuthServerModel(url(database))
    await model.create_all()
    await model.close()


async def copy(database: str, table: str, columns: list[str], rows: Any) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"postgresql://{_pg_netloc()}/{database}")
    try:
        await conn.copy_records_to_table(table, records=rows, columns=columns)
        await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()


async def fill(database: str, tokens: int, clients: int) -> None:
    now = int(time.time())
    scopes = '["mcp:tools"]'
    await copy(database, "oauth_clients",
               ["client_id", "redirect_uris", "token_endpoint_auth_method", "grant_types", "response_types",
                "client_id_issued_at", "contacts"],
               ((f"scale-client-{n}", '["http://127.0.0.1:33418/callback"]', "none",
                 '["authorization_code","refresh_token"]', '["code"]', now, "[]") for n in range(clients)))
    await copy(database, "oauth_access_tokens",
               ["token_digest", "grant_id", "client_id", "subject", "scopes", "resource", "expires_at"],
               ((digest("access", n), f"grant-{n}", f"scale-client-{n % clients}", "user", scopes, RESOURCE,
                 now + 86400) for n in range(tokens)))
    await copy(database, "oauth_refresh_tokens",
               ["token_digest", "grant_id", "client_id", "subject", "scopes", "resource", "expires_at",
                "grant_expires_at", "granted_scopes"],
               ((digest("refresh", n), f"grant-{n}", f"scale-client-{n % clients}", "user", scopes, RESOURCE,
                 now + 86400, now + 86400 * 30, scopes) for n in range(tokens)))


async def add_expired(database: str, count: int) -> None:
    now = int(time.time())
    await copy(database, "oauth_access_tokens",
               ["token_digest", "grant_id", "client_id", "subject", "scopes", "resource", "expires_at"],
               ((digest("expired", n), f"old-grant-{n}", "old-client", "user", '["mcp:tools"]', RESOURCE,
                 now - 3600 - n % 1000) for n in range(count)))


#: What a deployment runs: ``AuthorizationServer.purge_expired()`` with its defaults (batches of 1,000,
#: the database kept busy at most a quarter of the time). Prints rows, batches, seconds.
PURGER = """
import asyncio, sys, time
from oauth_server import AuthorizationServer, OAuthServerSettings
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
class Counting(SQLAlchemyOAuthServerModel):
    batches = 0
    async def purge_expired(self, now, batch=1000):
        Counting.batches += 1
        return await super().purge_expired(now, batch)
async def main():
    model = Counting(sys.argv[1])
    server = AuthorizationServer(model, OAuthServerSettings(
        issuer_url="http://localhost", resource_server_url="http://localhost/mcp",
        authorization_url="http://localhost/consent", scopes_supported=("mcp:tools",)))
    start = time.monotonic()
    total = await server.purge_expired()
    print(total, Counting.batches, round(time.monotonic() - start, 2))
    await model.close()
asyncio.run(main())
"""


def measure(database: str, args: argparse.Namespace, pinned: bool, tests: list[str] = TESTS) -> dict[str, Any]:
    server = Server("ours-postgres", "ours", "consent-page", f"ours on {database}", extra={"db_url": url(database)})
    result = run_slot(server, args, tests, pinned)
    return {test: result["tests"][test] for test in tests}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--expired", type=int, default=2_000_000, help="expired rows added before each test's purge")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    pinned = can_pin()
    started = time.monotonic()

    print(f"[scale] creating {EMPTY} and {FULL}; filling {FULL}", file=sys.stderr)
    asyncio.run(create(EMPTY))
    asyncio.run(create(FULL))
    t0 = time.monotonic()
    asyncio.run(fill(FULL, args.tokens, args.clients))
    fill_seconds = time.monotonic() - t0

    rounds: list[dict[str, Any]] = []
    for number in range(args.rounds):
        for database in (EMPTY, FULL):
            print(f"[scale] round {number + 1}/{args.rounds}: {database}", file=sys.stderr)
            rounds.append({"database": database, **measure(database, args, pinned)})

    print("[scale] without purge", file=sys.stderr)
    quiet = measure(FULL, args, pinned)
    purging: dict[str, Any] = {}
    purges: dict[str, tuple[int, int, float, float]] = {}  # rows, batches, purge s, test's s
    for test in TESTS:
        print(f"[scale] adding {args.expired:,} expired access tokens; {test} while purging", file=sys.stderr)
        asyncio.run(add_expired(FULL, args.expired))
        purger = subprocess.Popen([*pin(0 if pinned else None), sys.executable, "-c", PURGER, url(FULL)], cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
        began = time.monotonic()
        purging[test] = measure(FULL, args, pinned, [test])[test]
        test_seconds = time.monotonic() - began
        out, _ = purger.communicate(timeout=1800)
        rows, batches, seconds = out.split()
        purges[test] = (int(rows), int(batches), float(seconds), test_seconds)

    def med(database: str, test: str, key: str) -> float:
        values = sorted(float(r[test][key]) for r in rounds if r["database"] == database)
        return values[len(values) // 2]

    lines = [
        "# Scale and purge (ours-postgres)", "",
        f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} · {args.rounds} interleaved round(s) per database · "
        f"{args.warmup:g} s warm-up + {args.duration:g} s per test · {args.connections} connections · "
        f"`python -m bench.scale` · {time.monotonic() - started:.0f} s in all", "",
        f"The full database holds {args.tokens:,} live access tokens, {args.tokens:,} live refresh tokens and "
        f"{args.clients:,} clients (COPY took {fill_seconds:.0f} s); the empty one only what the tests create.",
        "", "## Full ÷ empty (median over rounds)", "",
        "| test | empty ops/s | full ops/s | full ÷ empty | empty p99 ms | full p99 ms | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    summary: dict[str, Any] = {}
    for test in TESTS:
        empty, full = med(EMPTY, test, "ops_per_s"), med(FULL, test, "ops_per_s")
        summary[test] = {"empty": empty, "full": full, "slowdown": empty / full}
        lines.append(f"| {test} | {empty:,.0f} | {full:,.0f} | {full / empty:.2f}× (slowdown {empty / full:.2f}×) | "
                     f"{med(EMPTY, test, 'p99_ms'):.1f} | {med(FULL, test, 'p99_ms'):.1f} | slowdown ≤ 1.2× |")
    lines += ["", f"## purge_expired() over {args.expired:,} expired rows while serving", "",
              "Each test ran on a server started together with its own purge: the test's slot (server start, "
              f"{args.warmup:g} s warm-up, {args.duration:g} s measured, stop) against the purge's run time.", "",
              "| test | p99 ms without | p99 ms while purging | ratio | ops/s without | ops/s while purging "
              "| rows purged | purge s | test slot s | target |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for test in TESTS:
        ratio = purging[test]["p99_ms"] / quiet[test]["p99_ms"]
        purged, _batches, purge_seconds, slot = purges[test]
        summary[f"purge_{test}_p99_ratio"] = ratio
        summary[f"purge_{test}_outlasted_slot"] = purge_seconds >= slot
        lines.append(f"| {test} | {quiet[test]['p99_ms']:.1f} | {purging[test]['p99_ms']:.1f} | {ratio:.2f}× | "
                     f"{quiet[test]['ops_per_s']:,.0f} | {purging[test]['ops_per_s']:,.0f} | {purged:,} | "
                     f"{purge_seconds:.1f} | {slot:.1f} | ≤ 2× |")
    short = [test for test in TESTS if purges[test][2] < purges[test][3]]
    if short:
        lines += ["", f"Note: the purge ended before the test's slot did for {', '.join(short)}: part of that "
                      "measured window ran without it, so its ratio understates the purge's cost (raise --expired)."]
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / "scale.md").write_text("\n".join(lines) + "\n")
    (results / "scale.json").write_text(json.dumps({"summary": summary, "rounds": rounds, "quiet": quiet,
                                                    "purging": purging, "purges": purges}, indent=1))
    print("\n".join(lines))
    for database in (EMPTY, FULL):
        asyncio.run(_pg_execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
