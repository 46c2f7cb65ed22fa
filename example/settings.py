"""The example server's settings, read once from the environment into a frozen object.

Only the example reads the environment (the library takes explicit settings), so every knob the
example has is listed here with its default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

_TRUE = ("1", "on", "true", "yes")
_FALSE = ("0", "off", "false", "no")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be on or off, got {raw!r}")


@dataclass(frozen=True, slots=True)
class ExampleSettings:
    """Where the example listens, what it calls itself, where it stores records, who may sign in."""

    host: str = "127.0.0.1"
    port: int = 8000
    #: The issuer; the MCP endpoint (the protected resource) is ``{public_url}/mcp``.
    public_url: str = "http://localhost:8000"
    database_url: str = "sqlite+aiosqlite:///./example.db"
    demo_username: str = "demo"
    demo_password: str = "demo"
    #: Rate limits of the authorization endpoints (on by default; off for load tests).
    rate_limit: bool = True
    log_level: str = "INFO"
    #: uvicorn's per-request access log; off by default so a terminal shows only what matters.
    access_log: bool = False
    #: Seconds; short values let a demo (or a test) show the client refreshing its token.
    access_token_lifetime: int = 3600
    #: Seconds between two sweeps of expired codes and tokens.
    purge_interval: float = 300.0

    @property
    def issuer_url(self) -> str:
        return self.public_url

    @property
    def resource_url(self) -> str:
        return f"{self.public_url}/mcp"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExampleSettings:
        """Read ``HOST``, ``PORT``, ``PUBLIC_URL``, ``DATABASE_URL``, ``DEMO_USERNAME``,
        ``DEMO_PASSWORD``, ``RATE_LIMIT``, ``LOG_LEVEL``, ``ACCESS_LOG``,
        ``ACCESS_TOKEN_LIFETIME`` and ``PURGE_INTERVAL``; unset or empty means the default."""
        env = os.environ if env is None else env
        defaults = cls()

        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        port = int(get("PORT", str(defaults.port)))
        return cls(
            host=get("HOST", defaults.host),
            port=port,
            public_url=get("PUBLIC_URL", f"http://localhost:{port}").rstrip("/"),
            database_url=get("DATABASE_URL", defaults.database_url),
            demo_username=get("DEMO_USERNAME", defaults.demo_username),
            demo_password=get("DEMO_PASSWORD", defaults.demo_password),
            rate_limit=_flag(env, "RATE_LIMIT", defaults.rate_limit),
            log_level=get("LOG_LEVEL", defaults.log_level).upper(),
            access_log=_flag(env, "ACCESS_LOG", defaults.access_log),
            access_token_lifetime=int(get("ACCESS_TOKEN_LIFETIME", str(defaults.access_token_lifetime))),
            purge_interval=float(get("PURGE_INTERVAL", str(defaults.purge_interval))),
        )
