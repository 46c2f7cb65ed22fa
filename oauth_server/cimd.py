"""Client ID Metadata Documents: a ``client_id`` that is an HTTPS URL names the client's metadata.

draft-ietf-oauth-client-id-metadata-document-02 (CIMD), which MCP 2025-11-25 and 2026-07-28
prefer over dynamic registration: the client hosts a JSON document at a URL and uses that URL as
its ``client_id``; the authorization server fetches it when it first sees the URL. The URL is
chosen by a stranger, so everything here is guarded:

- the fetch goes through ``oauth_server.fetch.Fetcher`` (resolve once, refuse private and other
  special addresses, pin the address, no redirects, 5 s, 5 KB, per-host rate limit), built from
  the ``cimd_*`` settings;
- a host allow-list, deny-list and an application hook (``policy``) decide before any fetch;
- the document is the client's own statement: its ``client_id`` must equal the URL exactly
  (§4.1 "simple string comparison"), it may not carry a shared secret (§4.1, §8.4), and it goes
  through the same registration rules as RFC 7591 (``clients.build_client``);
- a fetched document is cached in the model as a client until ``metadata_document_expires_at``
  (§4.2, the HTTP caching headers bounded by our floor and a day); a failure is remembered in
  this process for a minute, so a bad URL cannot make us fetch in a loop; concurrent resolutions
  of one URL share one fetch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from oauth_server import clients
from oauth_server.audit.events import CIMDFetchRefused
from oauth_server.audit.trail import NO_AUDIT, AuditTrail
from oauth_server.errors import InvalidClient, OAuthError
from oauth_server.fetch import Fetcher, FetchError, FetchPolicy, cache_lifetime
from oauth_server.model.base import OAuthServerModel
from oauth_server.records import Client
from oauth_server.settings import OAuthServerSettings

logger = logging.getLogger("oauth_server")

#: §4.1: "MUST NOT use ... client_secret_basic, client_secret_post, client_secret_jwt" or any
#: other method based on a shared secret: a document is public, so it cannot hold one.
DOCUMENT_AUTH_METHODS = ("none", "private_key_jwt")
#: How long a failed resolution is remembered in this process (no fetch for that URL meanwhile).
FAILURE_TTL = 60
#: A cached document is fetched again after at most a day, whatever its headers say (§4.2).
MAX_CACHE = 86_400
DEFAULT_CACHE = 3_600

Policy = Callable[[str], bool]
"""The application's say over a metadata document URL: True to allow fetching it."""


def looks_like_url(client_id: str) -> bool:
    """Whether ``client_id`` is meant as a metadata document URL (server-issued ids never are)."""
    return client_id.startswith(("https://", "http://"))


def url_problem(url: str, *, allow_loopback_http: bool = False) -> str | None:
    """Why ``url`` cannot be a client identifier URL, or None.

    §3: it "MUST have an https scheme, MUST contain a path component, MUST NOT contain single-dot
    or double-dot path segments, MAY contain a query string component, MUST NOT contain a
    fragment component, and MUST NOT contain a username or password component". A path of just
    ``/`` is refused too (MCP: the URL names the document, not the site). Dot segments are
    checked percent-decoded as well, since a server may decode ``%2e`` before resolving. Plain
    http is accepted only in development (``cimd_allow_loopback``), and the fetcher still lets it
    reach loopback addresses only.
    """
    if any(ord(c) <= 0x20 or c in "\\\x7f" for c in url) or "#" in url:
        return "it has a fragment, a space, a control character or a backslash"
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_loopback_http and parts.scheme == "http"):
        return "it must use https"
    if not parts.netloc or "@" in parts.netloc:
        return "it must name a host and no username or password"
    if len(parts.path) < 2 or not parts.path.startswith("/"):
        return "it must have a path"
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        return "it must not have dot segments in its path"
    return None


def fetch_policy(settings: OAuthServerSettings) -> FetchPolicy:
    """The fetcher policy the ``cimd_*`` settings describe (http only to loopback, in development)."""
    return FetchPolicy(
        allow_loopback=settings.cimd_allow_loopback, allow_http=False, timeout=5.0,
        max_bytes=settings.cimd_max_bytes, ca_bundle=settings.cimd_ca_bundle,
        per_host_per_minute=settings.cimd_fetches_per_host_per_minute,
    )


def client_from_document(document: Any, url: str, settings: OAuthServerSettings, now: int) -> Client:
    """Validate a fetched document and build its client. Raises ``OAuthError``.

    The registration rules of RFC 7591 apply through ``clients.build_client`` (redirect URIs,
    loopback port rule, grant and response types, application_type); the auth method and keys
    are checked here, since a document may not ask for a secret and may name its own keys.
    """
    if not isinstance(document, dict):
        raise InvalidClient("the client's metadata document is not a JSON object")
    if document.get("client_id") != url:  # §4.1: exact string comparison, no normalisation
        raise InvalidClient("the metadata document's client_id is not exactly its URL")
    secrets = sorted(name for name in document if name.startswith("client_secret"))
    if secrets:
        raise InvalidClient(f"a metadata document must not contain {', '.join(secrets)} (§4.1)")
    name = document.get("client_name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidClient("the metadata document must have a client_name")
    method = document.get("token_endpoint_auth_method", "none")
    if method not in DOCUMENT_AUTH_METHODS:
        raise InvalidClient("a metadata document's token_endpoint_auth_method must be none or private_key_jwt")
    jwks, jwks_uri = _keys(document, method)
    metadata = {k: v for k, v in document.items() if k not in ("client_id", "jwks", "jwks_uri", "scope")}
    metadata["token_endpoint_auth_method"] = "none"  # keys are checked above; never issue a secret
    scope = document.get("scope")
    if isinstance(scope, str):
        # A document serves many servers: scopes this one does not know are left out, not refused.
        known = [s for s in scope.split() if s in settings.scopes_supported]
        if known:
            metadata["scope"] = " ".join(known)
    try:
        client, _ = clients.build_client(metadata, settings, now, client_id=url)
    except OAuthError as exc:
        raise InvalidClient(f"the client's metadata document is invalid: {exc.description or exc.error}") from None
    alg = document.get("token_endpoint_auth_signing_alg")
    return dataclasses.replace(
        client, token_endpoint_auth_method=method, client_secret_digest=None, client_secret_expires_at=None,
        jwks=jwks, jwks_uri=jwks_uri, token_endpoint_auth_signing_alg=alg if isinstance(alg, str) else None)


def _keys(document: dict[str, Any], method: str) -> tuple[str | None, str | None]:
    """RFC 7591 §2: ``jwks`` or ``jwks_uri``, never both; ``private_key_jwt`` needs one."""
    jwks, jwks_uri = document.get("jwks"), document.get("jwks_uri")
    if jwks is not None and jwks_uri is not None:
        raise InvalidClient("a metadata document must not have both jwks and jwks_uri (RFC 7591 §2)")
    if jwks is not None and not (isinstance(jwks, dict) and isinstance(jwks.get("keys"), list)):
        raise InvalidClient("jwks must be a JWK Set (RFC 7517 §5)")
    if jwks_uri is not None and (not isinstance(jwks_uri, str) or url_problem(jwks_uri) is not None):
        raise InvalidClient("jwks_uri must be an https URL with a path")
    if method == "private_key_jwt" and jwks is None and jwks_uri is None:
        raise InvalidClient("private_key_jwt needs jwks or jwks_uri in the metadata document")
    return (json.dumps(jwks, separators=(",", ":")) if jwks is not None else None), jwks_uri


class ClientDocuments:
    """Resolves metadata document URLs to clients: the model's cached copy, else a guarded fetch.

    ``policy`` is the application's hook (``AuthorizationServer(cimd_policy=...)``), asked after
    the ``cimd_allowed_hosts``/``cimd_denied_hosts`` settings; ``fetcher`` replaces the one built
    from the settings (tests inject a resolver and transport through it). ``audit`` hears of
    every refused URL (not of the cached refusals that follow it for ``FAILURE_TTL``).
    """

    def __init__(self, model: OAuthServerModel, settings: OAuthServerSettings, clock: Callable[[], float], *,
                 fetcher: Fetcher | None = None, policy: Policy | None = None, audit: AuditTrail = NO_AUDIT) -> None:
        self.model = model
        self.settings = settings
        self.clock = clock
        self.fetcher = fetcher or Fetcher(fetch_policy(settings))
        self.policy = policy
        self.audit = audit
        self._failures: dict[str, tuple[float, str]] = {}
        self._inflight: dict[str, asyncio.Future[Client]] = {}

    async def resolve(self, url: str) -> Client:
        """The client ``url`` names, fresh enough to use. Raises ``InvalidClient``."""
        now = self.clock()
        cached = await self.model.get_client(url)
        if (cached is not None and cached.metadata_document_expires_at is not None
                and cached.metadata_document_expires_at > now):
            return cached
        failed = self._failures.get(url)
        if failed is not None and failed[0] > now:
            raise InvalidClient(failed[1])
        task = self._inflight.get(url)
        if task is None:  # single flight: concurrent resolutions of one URL await one fetch
            task = asyncio.ensure_future(self._load(url))
            self._inflight[url] = task
            task.add_done_callback(lambda _: self._inflight.pop(url, None))
        return await asyncio.shield(task)

    async def aclose(self) -> None:
        """Close the fetcher's pooled connections (at shutdown)."""
        await self.fetcher.aclose()

    async def _load(self, url: str) -> Client:
        try:
            return await self._fetch_and_store(url)
        except InvalidClient as exc:
            now = self.clock()
            if len(self._failures) > 10_000:
                self._failures = {u: f for u, f in self._failures.items() if f[0] > now}
            self._failures[url] = (now + FAILURE_TTL, exc.description or "invalid client")
            logger.warning("client metadata document %s refused: %s", url, exc.description)
            reason = exc.description or "invalid client"
            await self.audit.emit(CIMDFetchRefused(time=int(now), client_id=url, reason=reason))
            raise

    def _refusal(self, url: str) -> str | None:
        problem = url_problem(url, allow_loopback_http=self.settings.cimd_allow_loopback)
        if problem is not None:
            return f"the client_id is not a valid metadata document URL: {problem}"
        host = (urlsplit(url).hostname or "").lower()
        settings = self.settings
        if host in settings.cimd_denied_hosts or (
                settings.cimd_allowed_hosts is not None and host not in settings.cimd_allowed_hosts):
            return "this server does not accept clients from this host"
        if self.policy is not None and not self.policy(url):
            return "this server does not accept this client"
        return None

    async def _fetch_and_store(self, url: str) -> Client:
        refusal = self._refusal(url)
        if refusal is not None:
            raise InvalidClient(refusal)
        try:
            result = await self.fetcher.get_json(url)
        except FetchError as exc:
            raise InvalidClient(f"the client's metadata document could not be fetched: {exc.reason}") from None
        now = int(self.clock())
        client = client_from_document(result.body, url, self.settings, now)
        lifetime = cache_lifetime(result.headers, floor=self.settings.cimd_cache_min, ceiling=MAX_CACHE,
                                  default=DEFAULT_CACHE)
        client = dataclasses.replace(client, metadata_document_expires_at=now + int(lifetime))
        await self.model.upsert_client(client)
        return client
