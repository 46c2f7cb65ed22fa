"""Run the whole benchmark: every available server, interleaved in rounds, then the report.

Each server runs alone, pinned to core 1; the driver runs pinned to core 0. Rounds interleave
the servers (A B C A B C ...) because this machine's speed drifts over minutes; the report gives
medians over rounds and every figure as a ratio against the peers measured in the same run.

Usage::

    python -m bench.run                      # 3 rounds, 2 s warm-up + 10 s per test, 32 connections
    python -m bench.run --smoke              # CI: 1 round, ~1 s per test, 8 connections
    python -m bench.run --servers ours-memory,mcp-sdk --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from bench import report
from bench.driver import TESTS
from bench.servers import (
    ALL,
    BENCH,
    NODE_PEERS,
    PEERS,
    ROOT,
    Running,
    Server,
    baseline,
    check,
    drop_database,
    install_peer,
    pin,
    worktree,
)

SERVER_CORE, DRIVER_CORE = 1, 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None, help="default 3 (smoke: 1)")
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per test (default 10, smoke 1)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before measuring (default 2, smoke 0.3)")
    parser.add_argument("--connections", type=int, default=None, help="concurrent connections (default 32, smoke 8)")
    parser.add_argument("--smoke", action="store_true",
                        help="one short round: proves the harness works, measures nothing")
    parser.add_argument("--servers", default=None, help="comma-separated; default: all available: "
                        + ",".join(s.name for s in ALL))
    parser.add_argument("--tests", default=",".join(TESTS))
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="directory for the report files")
    parser.add_argument("--name", default=None, help="report file stem (default 'latest', smoke: 'smoke')")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and driver to separate cores")
    parser.add_argument("--no-install", action="store_true", help="do not run npm ci for the node peer")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="also run each selected ours-* server as it was at git commit REV (from a worktree), "
                             "interleaved, and report now ÷ then")
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.rounds = args.rounds or (1 if smoke else 3)
    args.duration = args.duration or (1.0 if smoke else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if smoke else 2.0)
    args.connections = args.connections or (8 if smoke else 32)
    args.name = args.name or ("smoke" if smoke else "latest")
    return args


def select_servers(spec: str | None) -> list[Server]:
    by_name = {s.name: s for s in ALL}
    if spec:
        names = [n.strip() for n in spec.split(",") if n.strip()]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise SystemExit(f"unknown servers {unknown}; known: {sorted(by_name)}")
        chosen = [by_name[n] for n in names]
    else:
        chosen = list(ALL)
    return [check(s) for s in chosen]


def can_pin() -> bool:
    return bool(pin(0)) and (os.cpu_count() or 1) >= 2


def run_slot(server: Server, args: argparse.Namespace, tests: list[str], pinned: bool) -> dict[str, Any]:
    """Start one server, run the driver's tests against it, stop it."""
    with server.prepared() as workdir:
        running = Running(server, workdir, SERVER_CORE if pinned and server.pinned else None)
        try:
            running.wait_ready()
            out = workdir / "driver.json"
            argv = [*pin(DRIVER_CORE if pinned else None), sys.executable, "-m", "bench.driver", running.resource_url,
                    "--adapter", server.adapter, "--tests", ",".join(tests),
                    "--connections", str(args.connections), "--warmup", str(args.warmup),
                    "--duration", str(args.duration), "--server-pid", str(running.process.pid), "--json", str(out)]
            budget = 120 + len(tests) * (args.warmup + args.duration + 30)
            done = subprocess.run(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                  capture_output=True, text=True, timeout=budget, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"driver failed against {server.name}:\n{done.stderr[-3000:]}\n"
                                   f"server log:\n{running.log_tail()}")
            result: dict[str, Any] = json.loads(out.read_text())
            if running.process.poll() is not None:
                result["server_exited"] = running.process.returncode
            return result
        finally:
            running.stop()


def versions() -> dict[str, str]:
    found: dict[str, str] = {"python": platform.python_version()}
    for dist in ("mcp", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "sqlalchemy", "asyncpg", "aiosqlite"):
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            found[dist] = importlib_metadata.version(dist)
    with contextlib.suppress(Exception):
        found["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10,
                                       check=False).stdout.strip()
    for package in ("mcp-oauth-server", "express", "@modelcontextprotocol/sdk", "argon2"):
        for peer in NODE_PEERS:  # whichever peer this run installed
            with contextlib.suppress(Exception):
                meta = json.loads((PEERS / peer / "node_modules" / package / "package.json").read_text())
                found.setdefault(package, meta["version"])
    with contextlib.suppress(Exception):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "oauth_server"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        found["oauth_server (git)"] = head + (" + uncommitted changes in oauth_server/" if dirty else "")
    return found


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cpu = model or platform.processor() or "unknown CPU"
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def uvicorn_stack() -> str:
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} + {http}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        servers = select_servers(args.servers)
        if args.baseline:
            rev, root = stack.enter_context(worktree(args.baseline))
            # Only servers whose command a past tree can run: ours-memory, ours-sqlite,
            # ours-postgres (bench.apps.ours) and the example on SQLite (example.server).
            servers += [check(baseline(s, rev, root)) for s in list(servers)
                        if s.name in ("ours-memory", "ours-sqlite", "ours-postgres", "example-sqlite")]
        return run(args, servers)


def run(args: argparse.Namespace, servers: list[Server]) -> int:
    tests = [t for t in args.tests.split(",") if t]
    for s in servers:
        if not s.available:
            print(f"[bench] skipping {s.name}: {s.reason}", file=sys.stderr)
    if not args.no_install:
        for name in sorted({s.node_peer for s in servers if s.available and s.node_peer}):
            install_peer(name)
    active = [s for s in servers if s.available]
    if not active:
        raise SystemExit("no server available to benchmark")
    pinned = can_pin() and not args.no_pin
    if pinned:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {DRIVER_CORE})  # the orchestrator idles; keep it off the server's core
    started = datetime.now(UTC)
    wall = time.monotonic()
    rounds: list[dict[str, dict[str, Any]]] = []
    try:
        for index in range(args.rounds):
            results: dict[str, dict[str, Any]] = {}
            for server in active:
                print(f"[bench] round {index + 1}/{args.rounds}: {server.name}", file=sys.stderr, flush=True)
                try:
                    results[server.name] = run_slot(server, args, tests, pinned)
                except Exception as exc:
                    print(f"[bench] {server.name} failed: {exc}", file=sys.stderr)
                    results[server.name] = {"failed": str(exc)[:2000], "tests": {}}
                for test, r in results[server.name].get("tests", {}).items():
                    print(f"[bench]   {test:9} {r['ops_per_s']:9.1f}/s  p50 {r.get('p50_ms') or 0:7.2f} ms  "
                          f"p99 {r.get('p99_ms') or 0:7.2f} ms  errors {r['errors']}  "
                          f"server CPU {r.get('server_cpu_pct') or 0:5.1f}%  "
                          f"driver CPU {r.get('driver_cpu_pct') or 0:5.1f}%", file=sys.stderr, flush=True)
            rounds.append(results)
    finally:
        if any(s.base_name.startswith("ours-postgres") for s in active):
            drop_database()
    document = {
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "wall_s": round(time.monotonic() - wall, 1),
            "machine": machine(),
            "versions": versions(),
            "uvicorn": uvicorn_stack(),
            "pinned": pinned,
            "server_core": SERVER_CORE if pinned else None,
            "driver_core": DRIVER_CORE if pinned else None,
            "smoke": args.smoke,
        },
        "config": {"rounds": args.rounds, "duration": args.duration, "warmup": args.warmup,
                   "connections": args.connections, "tests": tests},
        "servers": {s.name: {"kind": s.kind, "adapter": s.adapter, "description": s.description,
                             "available": s.available, "reason": s.reason} for s in servers},
        "summary": report.aggregate(rounds, [s.name for s in active], tests),
        "rounds": rounds,
    }
    paths = report.write(document, args.out, args.name)
    for path in paths:
        print(f"[bench] wrote {path}", file=sys.stderr)
    failed = [name for r in rounds for name, v in r.items() if "failed" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
