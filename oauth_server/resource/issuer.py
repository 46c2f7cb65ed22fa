"""One trusted authorization server: its settings (``IssuerConfig``) and its verifier.

``IssuerVerifier`` learns the issuer's metadata on first use (discovery, or the metadata the
operator wrote down), then checks JWTs against its ``jwks_uri`` and opaque tokens at its
``introspection_endpoint`` with the resource server's own client credentials.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from oauth_server.fetch import Fetcher
from oauth_server.json_input import loads
from oauth_server.resource.claims import ClaimPath, RoleRules
from oauth_server.resource.discovery import (
    IssuerMetadata,
    MetadataKind,
    Transform,
    check_issuer_url,
    fetch_metadata,
    parse_metadata,
)
from oauth_server.resource.introspection import IntrospectionVerifier
from oauth_server.resource.jwks import KeySet
from oauth_server.resource.verified import VerifiedToken, VerifierUnavailable
from oauth_server.resource.verifier import DEFAULT_ALGORITHMS, JWTVerifier, check_algorithms

logger = logging.getLogger("oauth_server.resource")


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    """How to trust one authorization server.

    Metadata comes from, in order of precedence: ``metadata`` (no fetch), ``well_known_url``, or
    the ``discovery`` rule applied to ``issuer`` ("oauth": RFC 8414 §3.1, "oidc": OpenID
    Connect Discovery §4.1). ``transform`` may rewrite the fetched document before it is checked.
    ``client_id``/``client_secret``: the resource server's credentials for RFC 7662
    introspection of opaque tokens; without them only JWTs are accepted.
    """

    issuer: str
    discovery: MetadataKind = "oauth"
    well_known_url: str | None = None
    metadata: Mapping[str, Any] | None = None
    transform: Transform | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    #: Seconds of clock skew allowed on ``exp`` and ``nbf`` (RFC 7519 §4.1.4 "some small leeway").
    leeway: float = 30.0
    accept_typ_jwt: bool = False
    #: Where roles are (``"roles"``, ``"realm_access.roles"``, ``keycloak_client_roles("mcp")``).
    role_claims: tuple[ClaimPath, ...] = ("roles",)
    #: Scopes each role grants, for routes that require scopes.
    role_scopes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    introspection_cache_ttl: float = 60.0
    #: Refuse introspection answers without an ``aud`` naming this resource (``checks``).
    introspection_requires_audience: bool = True
    #: An unknown ``kid`` refetches the JWK Set at most this often.
    jwks_refetch_interval: float = 60.0

    def __post_init__(self) -> None:
        check_issuer_url(self.issuer)
        check_algorithms(self.algorithms)
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("client_id and client_secret go together (introspection credentials)")
        if not 0 <= self.leeway <= 300:
            raise ValueError("leeway must be between 0 and 300 seconds")
        if self.metadata is not None:
            parse_metadata(self.metadata, self.issuer)  # fail at start, not per request

    @property
    def introspects(self) -> bool:
        return self.client_id is not None


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` of a JWS compact token (RFC 7515 §7.1), unverified: for routing only.

    Anyone can send this, so the payload goes through ``json_input`` (depth checked before
    parsing, duplicate names refused: RFC 8725 §3.2 warns of parsers that disagree on them).
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        payload = loads(raw, max_bytes=len(raw) + 1)
    except (binascii.Error, ValueError):  # JSONInputError is a ValueError
        return None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    return issuer if isinstance(issuer, str) else None


class IssuerVerifier:
    """JWTs and (with credentials) opaque tokens of one issuer, for ``resource``."""

    def __init__(
        self,
        config: IssuerConfig,
        resource: str,
        fetcher: Fetcher,
        *,
        failure_cooldown: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.issuer = config.issuer
        self.resource = resource
        self.fetcher = fetcher
        self.failure_cooldown = failure_cooldown
        self.clock = clock
        self.rules = RoleRules(config.role_claims, config.role_scopes)
        self.jwt: JWTVerifier | None = None
        self.introspection: IntrospectionVerifier | None = None
        self._metadata: IssuerMetadata | None = None
        self._retry_at = -math.inf
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> VerifiedToken | None:
        """A JWS-shaped token goes to the JWKS check when the issuer publishes keys; anything else
        (opaque, or a JWT of an issuer without ``jwks_uri``) to introspection when configured."""
        await self._load()
        if self.jwt is not None and unverified_issuer(token) is not None:
            return await self.jwt.verify(token)
        if self.introspection is not None:
            return await self.introspection.verify(token)
        return None

    async def _load(self) -> None:
        """Learn the metadata once; after a failure, wait ``failure_cooldown`` before asking again
        (requests meanwhile answer 503 rather than each hitting a down issuer)."""
        if self._metadata is not None:
            return
        async with self._lock:
            if self._metadata is not None:
                return
            if self.clock() < self._retry_at:
                raise VerifierUnavailable(f"metadata of {self.issuer} is unavailable")
            config = self.config
            try:
                if config.metadata is not None:
                    metadata = parse_metadata(config.metadata, config.issuer)
                else:
                    metadata = await fetch_metadata(
                        self.fetcher, config.issuer, kind=config.discovery,
                        well_known_url=config.well_known_url, transform=config.transform)
            except VerifierUnavailable:
                self._retry_at = self.clock() + self.failure_cooldown
                raise
            self._build(metadata)
            self._metadata = metadata

    def _build(self, metadata: IssuerMetadata) -> None:
        config = self.config
        if metadata.jwks_uri is not None:
            keys = KeySet(self.fetcher, metadata.jwks_uri, refetch_interval=config.jwks_refetch_interval,
                          failure_cooldown=self.failure_cooldown, clock=self.clock)
            self.jwt = JWTVerifier(resource=self.resource, issuer=self.issuer, keys=keys,
                                   algorithms=config.algorithms, leeway=config.leeway,
                                   accept_typ_jwt=config.accept_typ_jwt, rules=self.rules, clock=self.clock)
        if config.client_id is not None and config.client_secret is not None:
            if metadata.introspection_endpoint is None:
                logger.error("%s has introspection credentials but no introspection_endpoint", self.issuer)
            else:
                self.introspection = IntrospectionVerifier(
                    resource=self.resource, issuer=self.issuer, endpoint=metadata.introspection_endpoint,
                    client_id=config.client_id, client_secret=config.client_secret, fetcher=self.fetcher,
                    rules=self.rules, cache_ttl=config.introspection_cache_ttl, leeway=config.leeway,
                    require_audience=config.introspection_requires_audience, clock=self.clock)


def issuer_configs(issuers: Iterable[IssuerConfig | str]) -> tuple[IssuerConfig, ...]:
    configs = tuple(item if isinstance(item, IssuerConfig) else IssuerConfig(item) for item in issuers)
    if not configs:
        raise ValueError("at least one issuer is required")
    if len({config.issuer for config in configs}) != len(configs):
        raise ValueError("each issuer may be configured once")
    return configs
