"""The servers under test: how to check, prepare, start and stop each one.

Ours (memory, SQLite, Postgres), the peers (mcp-oauth-server on Express, the MCP SDK's auth
routes) and the ceiling (bare Starlette). Every Python app runs on the same uvicorn settings
(``bench.apps.serve``); the node peer runs with ``NODE_ENV=production``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = BENCH / "peers"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "oauth_bench"
#: The node peers: each runs ``bench/peers/<name>/server.mjs``, installed by ``npm ci`` from its lock file.
NODE_PEERS = ("mcp-oauth-server", "reference-e2e")


@dataclass
class Server:
    name: str
    kind: str  # "ours", "peer" or "ceiling"
    adapter: str  # the driver's flow adapter
    description: str
    available: bool = True
    reason: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    #: Environment variables of the server process (the example's settings).
    extra_env: dict[str, str] = field(default_factory=dict)
    #: False: the server may run on every core (a multi-process server), not pinned to one.
    pinned: bool = True

    @property
    def base_name(self) -> str:
        """``ours-memory`` for ``ours-memory@2f5263d`` (a baseline: the same server at another commit)."""
        return self.name.split("@", 1)[0]

    @property
    def root(self) -> Path:
        """The source tree the server runs from: this checkout, or a baseline's git worktree."""
        return Path(self.extra["root"]) if "root" in self.extra else ROOT

    @property
    def node_peer(self) -> str | None:
        """The directory under bench/peers/ of a node peer (``reference-e2e-signin`` runs ``reference-e2e``)."""
        name = self.extra.get("peer", self.name)
        return name if name in NODE_PEERS else None

    def command(self, port: int, workdir: Path) -> tuple[list[str], Path, dict[str, str]]:
        """argv, cwd and extra environment for one start on ``port``."""
        py = [sys.executable, "-m"]
        root = self.root
        if self.base_name == "ours-memory":
            return [*py, "bench.apps.ours", "--port", str(port), "--model", "memory"], root, {}
        if self.base_name in ("ours-sqlite", "ours-sqlite-normal"):
            url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
            normal = ["--sqlite-synchronous", "NORMAL"] if self.base_name.endswith("-normal") else []
            argv = [*py, "bench.apps.ours", "--port", str(port), "--model", "sqlite", "--db-url", url, *normal]
            return argv, root, {}
        if self.base_name in ("ours-postgres", "ours-postgres-jwt", "ours-postgres-1w", "ours-postgres-2w"):
            url = self.extra.get("db_url") or f"postgresql+asyncpg://{_pg_netloc()}/{PG_DATABASE}"
            jwt = ["--token-format", "jwt"] if self.base_name.endswith("-jwt") else []
            workers = ["--workers", "2"] if self.base_name.endswith("-2w") else []
            argv = [*py, "bench.apps.ours", "--port", str(port), "--model", "postgres", "--db-url", url, *jwt, *workers]
            return argv, root, {}
        if self.base_name == "ours-rs-jwt":
            return [*py, "bench.apps.ours", "--port", str(port), "--model", "memory", "--token-format", "jwt",
                    "--guard", "resource-server"], root, {}
        if self.base_name.startswith("example-"):
            # The example as `make run` starts it, on a fresh SQLite file; rate limits off (one
            # driver address sends thousands of requests a second).
            database = f"sqlite+aiosqlite:///{workdir / 'example.db'}"
            if self.base_name.startswith("example-postgres"):
                database = f"postgresql+asyncpg://{_pg_netloc()}/{PG_DATABASE}"
            env = {"PORT": str(port), "PUBLIC_URL": f"http://127.0.0.1:{port}", "DATABASE_URL": database,
                   "RATE_LIMIT": "off", "LOG_LEVEL": "WARNING", "PURGE_INTERVAL": "3600",
                   "MCP_SESSIONS": "on" if self.base_name.endswith("-sessions") else "off", **self.extra_env}
            return [*py, "example.server"], root, env
        if self.name == "mcp-sdk":
            return [*py, "bench.apps.sdk", "--port", str(port)], ROOT, {}
        if self.name == "starlette":
            return [*py, "bench.apps.ceiling", "--port", str(port)], ROOT, {}
        if self.name == "fastapi":
            return [*py, "bench.apps.ceiling", "--port", str(port), "--framework", "fastapi"], ROOT, {}
        if self.node_peer:
            node = shutil.which("node") or "node"
            return [node, "server.mjs", str(port)], PEERS / self.node_peer, {"NODE_ENV": "production"}
        raise ValueError(self.name)

    @contextlib.contextmanager
    def prepared(self) -> Iterator[Path]:
        """A fresh store for one start: a temp directory (SQLite file), a new Postgres database."""
        with tempfile.TemporaryDirectory(prefix=f"bench-{self.name}-") as tmp:
            if self.base_name.startswith("ours-postgres") and "db_url" not in self.extra:  # bench.scale: its own
                asyncio.run(_recreate_database())
            yield Path(tmp)


ALL = [
    Server("ours-memory", "ours", "consent-page", "oauth_server, MemoryOAuthServerModel, uvicorn"),
    Server("ours-sqlite", "ours", "consent-page",
           "oauth_server, SQLAlchemyOAuthServerModel on SQLite (aiosqlite, temp file)"),
    Server("ours-sqlite-normal", "ours", "consent-page",
           "the same with sqlite_synchronous=NORMAL (a commit survives a process crash, not a power loss)"),
    Server("ours-postgres", "ours", "consent-page",
           "oauth_server, SQLAlchemyOAuthServerModel on Postgres (asyncpg, local)"),
    Server("ours-postgres-1w", "ours", "consent-page",
           "ours-postgres, one uvicorn worker, unpinned (the scaling baseline)", pinned=False),
    Server("ours-postgres-2w", "ours", "consent-page",
           "ours-postgres with 2 uvicorn workers, unpinned: ÷ ours-postgres-1w is the scaling ratio "
           "(CPU is the supervisor's only: read throughput)", pinned=False),
    Server("ours-postgres-jwt", "ours", "consent-page",
           "the same with JWT access tokens (RFC 9068, managed RS256 keys in Postgres)"),
    Server("ours-rs-jwt", "ours", "consent-page",
           "resource-server mode: /mcp verifies JWTs by the issuer's JWKS only (ResourceServer), memory AS"),
    Server("example-sqlite", "ours", "example",
           "the example (python -m example.server) on SQLite: sign-in + consent (argon2), the MCP SDK's "
           "server at /mcp, stateless JSON (MCP_SESSIONS=off)"),
    Server("example-sqlite-sessions", "ours", "example-sessions",
           "the same with MCP_SESSIONS=on (stateful sessions, SSE answers)"),
    Server("mcp-oauth-server", "peer", "consent-page",
           "npm mcp-oauth-server 1.0.0, Express 5, MemoryOAuthServerModel, node"),
    Server("reference-e2e", "peer", "example",
           "issue #17's reference for the example: npm mcp-oauth-server 1.0.0, Express 5, MemoryOAuthServerModel, "
           "the same sign-in + consent form (argon2id m=65536 t=3 p=4, npm argon2; a signed session cookie), "
           "the TypeScript MCP SDK's server at /mcp (stateless JSON), node"),
    Server("example-sqlite-signin", "ours", "example-signin",
           "example-sqlite driven as a new browser every flow: no session cookie, so every flow signs in (argon2)"),
    Server("reference-e2e-signin", "peer", "example-signin",
           "reference-e2e driven as a new browser every flow (every flow signs in: argon2)",
           extra={"peer": "reference-e2e"}),
    Server("mcp-sdk", "peer", "immediate-code", "MCP Python SDK create_auth_routes + in-memory provider, uvicorn"),
    Server("starlette", "ceiling", "none", "bare Starlette hello JSON on uvicorn (ceiling)"),
    Server("fastapi", "ceiling", "none",
           "bare FastAPI hello JSON on uvicorn, shaped as ours (the framework's ceiling)"),
]


def baseline(server: Server, rev: str, root: Path) -> Server:
    """``server`` as it was at commit ``rev``, run from the git worktree ``root`` (same venv)."""
    return Server(f"{server.name}@{rev}", "baseline", server.adapter, f"{server.description}, at {rev}",
                  extra={**server.extra, "root": str(root)}, extra_env=dict(server.extra_env))


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[tuple[str, Path]]:
    """A detached git worktree of ``rev`` (its short hash and path), removed afterwards."""
    short = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix=f"bench-baseline-{short}-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(path), short], cwd=ROOT, check=True)
        try:
            yield short, path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def _pg_netloc() -> str:
    rest = PG_ADMIN_URL.split("://", 1)[1]
    return rest.split("/", 1)[0]


async def _pg_execute(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _recreate_database() -> None:
    await _pg_execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)", f"CREATE DATABASE {PG_DATABASE}")


def drop_database() -> None:
    with contextlib.suppress(Exception):
        asyncio.run(_pg_execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))


def check(server: Server) -> Server:
    """Mark a server unavailable (with the reason) when what it needs is missing here."""
    def off(reason: str) -> Server:
        server.available, server.reason = False, reason
        return server

    if server.base_name in ("ours-sqlite", "ours-sqlite-normal", "ours-postgres", "ours-postgres-jwt",
                            "ours-postgres-1w", "ours-postgres-2w"):
        try:
            module = importlib.import_module("oauth_server.model.sqlalchemy")
            module.SQLAlchemyOAuthServerModel  # noqa: B018 - the attribute is the check
        except Exception as exc:
            return off(f"SQL model not importable ({type(exc).__name__}: {exc})")
        if server.base_name.startswith("ours-sqlite") and importlib.util.find_spec("aiosqlite") is None:
            return off("aiosqlite is not installed")
        if server.base_name.startswith("ours-postgres"):
            if importlib.util.find_spec("asyncpg") is None:
                return off("asyncpg is not installed")
            try:
                asyncio.run(_pg_execute("SELECT 1"))
            except Exception as exc:
                return off(f"PostgreSQL unreachable at {_pg_netloc()} ({type(exc).__name__})")
    if server.node_peer:
        if not shutil.which("node") or not shutil.which("npm"):
            return off("node and npm are needed")
    return server


def install_peer(name: str = "mcp-oauth-server") -> None:
    """``npm ci`` from the committed lock file, when node_modules is missing or older than it."""
    directory = PEERS / name
    marker = directory / "node_modules" / ".package-lock.json"
    lock = directory / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    print(f"[bench] npm ci in {directory.relative_to(ROOT)}", file=sys.stderr)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=directory, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(core: int | None) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(core)] if core is not None and taskset else []


class Running:
    """A started server: its process (pinned), its port, its log."""

    def __init__(self, server: Server, workdir: Path, core: int | None) -> None:
        self.server = server
        self.port = free_port()
        argv, cwd, env = server.command(self.port, workdir)
        self.log_path = workdir / "server.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        environment = {**os.environ, **env, "PYTHONPATH": str(server.root)}
        # taskset execs the server, so the pid is the server's own (for /proc CPU accounting).
        self.process = subprocess.Popen([*pin(core), *argv], cwd=cwd, env=environment,
                                        stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def resource_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def wait_ready(self, timeout: float = 60.0) -> None:
        url = f"http://127.0.0.1:{self.port}/.well-known/oauth-protected-resource/mcp"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.server.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.server.name} not ready after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()
