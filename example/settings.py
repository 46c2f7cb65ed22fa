"""The example server's settings, read once from the environment into a frozen object.

Only the example reads the environment (the library takes explicit settings), so every knob the
example has is listed here with its default. A combination that cannot work (JWT access tokens
without any key, a loopback issuer the fetch policy would refuse) is a ``SettingsError`` at start,
with what to set, rather than a server that starts and then fails every request.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

_TRUE = ("1", "on", "true", "yes")
_FALSE = ("0", "off", "false", "no")

#: A sign-in lasts at least a minute and at most 30 days (a stolen cookie is good until it expires).
MIN_SESSION_LIFETIME, MAX_SESSION_LIFETIME = 60, 30 * 86400

#: How to make a KEY_ENCRYPTION_SECRET, quoted in the error that asks for one.
SECRET_HINT = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


class SettingsError(ValueError):
    """A setting, or a combination of them, that the example refuses to start with."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be on or off, got {raw!r}")


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine: ``localhost`` (RFC 6761 §6.3) or a loopback address."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return False


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or "#" in url:
        raise SettingsError(f"{name} must be an absolute http(s) URL without query or fragment, got {url!r}")


@dataclass(frozen=True, slots=True)
class ExampleSettings:
    """Where the example listens, what it calls itself, where it stores records, who may sign in,
    which access tokens it issues, and (``auth_issuer``) whether it is only a resource server."""

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
    #: ``jwt``: RFC 9068 access tokens another process can verify with our JWKS alone.
    access_token_format: Literal["opaque", "jwt"] = "opaque"
    #: Encrypts the managed signing keys stored in the database (≥ 32 bytes).
    key_encryption_secret: str | None = field(default=None, repr=False)
    #: A PEM private key of the app's own that signs instead of managed keys.
    signing_key_file: Path | None = None
    #: Seconds a new managed key is published before it signs (and the JWKS's max-age).
    signing_key_propagation: int = 300
    #: More resources (RFC 8707) this authorization server issues tokens for, besides ``/mcp``.
    resource_urls: tuple[str, ...] = ()
    #: Another authorization server's issuer: this process is then only its resource server.
    auth_issuer: str | None = None
    #: Let discovery and JWKS fetches reach loopback addresses (development only).
    auth_allow_loopback: bool = False
    #: Seconds between two JWKS refetches caused by tokens with an unknown ``kid``.
    auth_jwks_refetch_interval: float = 60.0
    #: Accept client ID metadata documents (a client_id that is an https URL); on by default.
    cimd: bool = True
    #: Let metadata document URLs reach this machine, over http too (development only: a
    #: document URL is chosen by a stranger and must never reach inside the network).
    cimd_allow_loopback: bool = False
    #: A PEM CA bundle that replaces the default trust store for metadata document fetches.
    cimd_ca_bundle: str | None = None
    #: Let dynamic registration grant ``client_credentials`` (anyone could register a machine).
    dcr_client_credentials: bool = False
    #: One trusted enterprise identity provider for ID-JAGs (the jwt-bearer grant): its issuer
    #: and JWK Set URL, both or neither; ``idjag_allow_loopback`` for one on this machine.
    idjag_issuer: str | None = None
    idjag_jwks_uri: str | None = None
    idjag_allow_loopback: bool = False
    #: The RFC 8628 device authorization grant (``/device_authorization``, the page ``/device``).
    device_flow: bool = True
    #: Store audit events in the database (``oauth_audit_events``) instead of logging them as
    #: JSON lines on stderr.
    audit_sql: bool = False
    #: Seconds stored audit events are kept; the periodic purge deletes older ones.
    audit_retention: int = 7_776_000
    #: Seconds a sign-in lasts (the session cookie's lifetime; see ``example.sessions``).
    session_lifetime: int = 28_800
    #: Signs the session cookies (at least 32 bytes); None: a random key per process, so
    #: sessions end at restart and worker processes do not share them.
    session_secret: str | None = field(default=None, repr=False)
    #: Stateful MCP sessions (``Mcp-Session-Id``, SSE streams). Off: every POST /mcp stands alone
    #: and is answered with JSON, so any process behind a load balancer can serve it.
    mcp_sessions: bool = False
    #: On SQLite: FULL (an answered write survives a power loss) or NORMAL (a process crash only).
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    #: uvicorn worker processes. More than one needs shared rate-limit counters (Redis).
    workers: int = 1
    #: Freeze start-up's objects and collect garbage less often (``example.tuning``).
    gc_tuning: bool = True
    #: Where rate-limit counters live: ``memory://`` (this process) or ``redis://host:port/db``.
    rate_limit_storage: str = "memory://"

    @property
    def issuer_url(self) -> str:
        return self.public_url

    @property
    def resource_url(self) -> str:
        return f"{self.public_url}/mcp"

    @property
    def resource_server_only(self) -> bool:
        """``AUTH_ISSUER`` names another issuer: serve only the MCP server, trusting that issuer."""
        return self.auth_issuer is not None and self.auth_issuer.rstrip("/") != self.public_url

    def signing_keys(self) -> tuple[str, ...]:
        """The app's own key from ``SIGNING_KEY_FILE``, if any (read at start, never logged)."""
        if self.signing_key_file is None:
            return ()
        try:
            return (self.signing_key_file.read_text(),)
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"SIGNING_KEY_FILE {str(self.signing_key_file)!r} cannot be read: {exc}") from None

    def authorization_server_variables(self) -> list[str]:
        """The settings a resource-server-only process ignores, when they differ from the defaults
        (``main`` warns about them: they configure an authorization server this process is not)."""
        defaults = ExampleSettings()
        names = {"access_token_format": "ACCESS_TOKEN_FORMAT", "key_encryption_secret": "KEY_ENCRYPTION_SECRET",
                 "signing_key_file": "SIGNING_KEY_FILE", "resource_urls": "RESOURCE_URLS", "cimd": "CIMD",
                 "cimd_allow_loopback": "CIMD_ALLOW_LOOPBACK", "cimd_ca_bundle": "CIMD_CA_BUNDLE",
                 "dcr_client_credentials": "DCR_CLIENT_CREDENTIALS", "idjag_issuer": "IDJAG_ISSUER",
                 "device_flow": "DEVICE_FLOW",
                 "session_lifetime": "SESSION_LIFETIME", "session_secret": "SESSION_SECRET"}
        return [variable for name, variable in names.items() if getattr(self, name) != getattr(defaults, name)]

    def __post_init__(self) -> None:
        if self.access_token_format not in ("opaque", "jwt"):
            raise SettingsError(f"ACCESS_TOKEN_FORMAT must be opaque or jwt, got {self.access_token_format!r}")
        if self.key_encryption_secret is not None and len(self.key_encryption_secret.encode()) < 32:
            raise SettingsError(f"KEY_ENCRYPTION_SECRET must be at least 32 bytes; make one with: {SECRET_HINT}")
        if not MIN_SESSION_LIFETIME <= self.session_lifetime <= MAX_SESSION_LIFETIME:
            raise SettingsError(f"SESSION_LIFETIME must be between {MIN_SESSION_LIFETIME} and "
                                f"{MAX_SESSION_LIFETIME} seconds, got {self.session_lifetime}")
        if self.session_secret is not None and len(self.session_secret.encode()) < 32:
            raise SettingsError(f"SESSION_SECRET must be at least 32 bytes; make one with: {SECRET_HINT}")
        if self.sqlite_synchronous not in ("FULL", "NORMAL"):
            raise SettingsError(f"SQLITE_SYNCHRONOUS must be FULL or NORMAL, got {self.sqlite_synchronous!r}")
        if self.workers < 1:
            raise SettingsError(f"WORKERS must be at least 1, got {self.workers}")
        if self.workers > 1 and self.rate_limit and self.rate_limit_storage.startswith("memory"):
            # Each worker would count alone: every limit would be WORKERS times looser.
            raise SettingsError("WORKERS > 1 needs shared rate-limit counters: set "
                                "RATE_LIMIT_STORAGE=redis://host:6379/0 (or RATE_LIMIT=off)")
        if self.workers > 1 and self.session_secret is None:
            # Each worker would sign sessions with its own random key: a sign-in on one worker
            # would be unknown to the next.
            raise SettingsError(f"WORKERS > 1 needs SESSION_SECRET (shared by every worker): {SECRET_HINT}")
        if self.signing_key_propagation < 0:
            raise SettingsError("SIGNING_KEY_PROPAGATION must be >= 0 seconds")
        if self.audit_retention <= 0:
            raise SettingsError("AUDIT_RETENTION must be > 0 seconds")
        if self.auth_jwks_refetch_interval <= 0:
            # 0 would let every token with an invented kid cost a fetch from the issuer.
            raise SettingsError("AUTH_JWKS_REFETCH_INTERVAL must be > 0 seconds")
        for url in self.resource_urls:
            _check_url("RESOURCE_URLS", url)
        if (self.idjag_issuer is None) != (self.idjag_jwks_uri is None):
            raise SettingsError("IDJAG_ISSUER and IDJAG_JWKS_URI go together: set both or neither")
        if self.cimd_ca_bundle is not None and not Path(self.cimd_ca_bundle).expanduser().is_file():
            raise SettingsError(f"CIMD_CA_BUNDLE {self.cimd_ca_bundle!r} is not a readable file")
        if self.resource_server_only:
            self._check_issuer()
        elif self.access_token_format == "jwt" and not self.key_encryption_secret and self.signing_key_file is None:
            # Deriving a key from something else (DEMO_PASSWORD, a constant) would make tokens
            # forgeable by anyone who reads the README; refusing is the only safe default.
            raise SettingsError(
                "ACCESS_TOKEN_FORMAT=jwt needs signing keys: set KEY_ENCRYPTION_SECRET (at least 32 bytes; "
                f"it encrypts the keys managed in the database), make one with: {SECRET_HINT} "
                "-- or set SIGNING_KEY_FILE to a PEM private key of your own")

    def _check_issuer(self) -> None:
        """The issuer must be reachable under the fetch policy the resource server uses, so a
        mistake shows at start rather than as a 503 on every request."""
        issuer = self.auth_issuer or ""
        _check_url("AUTH_ISSUER", issuer)
        loopback = is_loopback_url(issuer)
        if loopback and not self.auth_allow_loopback:
            raise SettingsError(f"AUTH_ISSUER {issuer} is on this machine (loopback), which outbound fetches may "
                                "not reach by default: set AUTH_ALLOW_LOOPBACK=on (development only)")
        if urlsplit(issuer).scheme == "http" and not loopback:
            raise SettingsError(f"AUTH_ISSUER must use https (plain http only on loopback), got {issuer!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExampleSettings:
        """Read ``HOST``, ``PORT``, ``PUBLIC_URL``, ``DATABASE_URL``, ``DEMO_USERNAME``,
        ``DEMO_PASSWORD``, ``RATE_LIMIT``, ``LOG_LEVEL``, ``ACCESS_LOG``,
        ``ACCESS_TOKEN_LIFETIME``, ``PURGE_INTERVAL``, ``ACCESS_TOKEN_FORMAT``,
        ``KEY_ENCRYPTION_SECRET``, ``SIGNING_KEY_FILE``, ``SIGNING_KEY_PROPAGATION``,
        ``RESOURCE_URLS``, ``AUTH_ISSUER``, ``AUTH_ALLOW_LOOPBACK``,
        ``AUTH_JWKS_REFETCH_INTERVAL``, ``CIMD``, ``CIMD_ALLOW_LOOPBACK``, ``CIMD_CA_BUNDLE``,
        ``DCR_CLIENT_CREDENTIALS``, ``IDJAG_ISSUER``, ``IDJAG_JWKS_URI``, ``IDJAG_ALLOW_LOOPBACK``,
        ``DEVICE_FLOW``, ``AUDIT_SQL``, ``AUDIT_RETENTION``, ``SESSION_LIFETIME``,
        ``SESSION_SECRET``, ``MCP_SESSIONS``, ``SQLITE_SYNCHRONOUS``, ``WORKERS``,
        ``GC_TUNING`` and ``RATE_LIMIT_STORAGE``; unset or empty means the default."""
        env = os.environ if env is None else env
        defaults = cls()

        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        def number(name: str, default: float) -> float:
            try:
                return float(get(name, str(default)))
            except ValueError:
                raise SettingsError(f"{name} must be a number, got {env.get(name)!r}") from None

        def integer(name: str, default: int) -> int:
            try:
                return int(get(name, str(default)))
            except ValueError:
                raise SettingsError(f"{name} must be a whole number, got {env.get(name)!r}") from None

        port = integer("PORT", defaults.port)
        token_format = get("ACCESS_TOKEN_FORMAT", defaults.access_token_format).lower()
        key_file = get("SIGNING_KEY_FILE", "")
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
            access_token_lifetime=integer("ACCESS_TOKEN_LIFETIME", defaults.access_token_lifetime),
            purge_interval=number("PURGE_INTERVAL", defaults.purge_interval),
            access_token_format=token_format,  # type: ignore[arg-type]  # checked in __post_init__
            key_encryption_secret=get("KEY_ENCRYPTION_SECRET", "") or None,
            signing_key_file=Path(key_file).expanduser() if key_file else None,
            signing_key_propagation=integer("SIGNING_KEY_PROPAGATION", defaults.signing_key_propagation),
            resource_urls=tuple(url.strip() for url in get("RESOURCE_URLS", "").split(",") if url.strip()),
            auth_issuer=get("AUTH_ISSUER", "") or None,
            auth_allow_loopback=_flag(env, "AUTH_ALLOW_LOOPBACK", defaults.auth_allow_loopback),
            auth_jwks_refetch_interval=number("AUTH_JWKS_REFETCH_INTERVAL", defaults.auth_jwks_refetch_interval),
            cimd=_flag(env, "CIMD", defaults.cimd),
            cimd_allow_loopback=_flag(env, "CIMD_ALLOW_LOOPBACK", defaults.cimd_allow_loopback),
            cimd_ca_bundle=get("CIMD_CA_BUNDLE", "") or None,
            dcr_client_credentials=_flag(env, "DCR_CLIENT_CREDENTIALS", defaults.dcr_client_credentials),
            idjag_issuer=get("IDJAG_ISSUER", "") or None,
            idjag_jwks_uri=get("IDJAG_JWKS_URI", "") or None,
            idjag_allow_loopback=_flag(env, "IDJAG_ALLOW_LOOPBACK", defaults.idjag_allow_loopback),
            device_flow=_flag(env, "DEVICE_FLOW", defaults.device_flow),
            audit_sql=_flag(env, "AUDIT_SQL", defaults.audit_sql),
            audit_retention=integer("AUDIT_RETENTION", defaults.audit_retention),
            session_lifetime=integer("SESSION_LIFETIME", defaults.session_lifetime),
            session_secret=get("SESSION_SECRET", "") or None,
            mcp_sessions=_flag(env, "MCP_SESSIONS", defaults.mcp_sessions),
            sqlite_synchronous=get("SQLITE_SYNCHRONOUS", defaults.sqlite_synchronous).upper(),  # type: ignore[arg-type]
            workers=integer("WORKERS", defaults.workers),
            gc_tuning=_flag(env, "GC_TUNING", defaults.gc_tuning),
            rate_limit_storage=get("RATE_LIMIT_STORAGE", defaults.rate_limit_storage),
        )
