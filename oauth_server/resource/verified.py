"""What any bearer check knows about a token it accepted, and the contract every verifier keeps.

One record for every source of tokens: our own authorization server (``LocalVerifier``), a JWT
from any issuer (``JWTVerifier``), an RFC 7662 introspection answer (``IntrospectionVerifier``).
The web layer (``require_bearer_auth``, ``BearerAuthMiddleware``) speaks only this vocabulary,
so it protects an MCP server the same way whichever authorization server minted the token.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token a verifier accepted for its resource.

    ``audience`` holds every audience the token names (RFC 9068 §2.2 ``aud``; RFC 8707); the
    verifier has already checked that the protected resource is one of them. ``scopes`` are
    the token's scopes plus those its roles map to (``resource.claims.RoleRules``).
    """

    subject: str
    client_id: str | None
    scopes: tuple[str, ...]
    audience: tuple[str, ...]
    issuer: str
    #: Seconds since the epoch (RFC 7519 §4.1.4); None when the issuer did not say.
    expires_at: int | None
    roles: tuple[str, ...] = ()
    #: RFC 7519 §4.1.7 ``jti``, when the token has one.
    token_id: str | None = None
    #: Every claim of the token (JWT payload or introspection answer), for the application.
    claims: Mapping[str, Any] = field(default_factory=dict)


class VerifierUnavailable(Exception):
    """The verifier cannot tell right now whether the token is valid (issuer unreachable, JWKS
    broken, introspection refused our credentials, storage down).

    Answered 503 ``temporarily_unavailable``, never 401 ``invalid_token`` (which makes clients
    discard a token that may be fine) and never an acceptance: a failed fetch proves nothing.
    """


@runtime_checkable
class TokenVerifier(Protocol):
    """Anything that turns a bearer token into a ``VerifiedToken`` for one protected resource."""

    #: The resource this verifier protects (RFC 9728 §2 ``resource``).
    resource: str

    async def verify(self, token: str) -> VerifiedToken | None:
        """The token's record, or None when it is not valid for ``resource``.

        Raises ``VerifierUnavailable`` when it cannot tell right now.
        """
        ...


class RememberedTokens:
    """Tokens a verifier accepted, by SHA-256 digest, reused until their ``exp`` and never longer
    than ``ttl`` seconds: a client sends the same token with every request, and checking its
    signature (or asking the issuer) once a minute is enough. A key the issuer withdraws from its
    JWKS stops vouching for remembered tokens once the key set is refetched. Refusals are never
    remembered. Oldest out past ``size``.
    """

    def __init__(self, ttl: float = 60.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._tokens: OrderedDict[str, tuple[VerifiedToken, float]] = OrderedDict()

    @staticmethod
    def key(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str, now: float) -> VerifiedToken | None:
        remembered = self._tokens.get(key)
        if remembered is None:
            return None
        if now < remembered[1]:
            return remembered[0]
        del self._tokens[key]
        return None

    def put(self, key: str, record: VerifiedToken, now: float) -> None:
        expires = record.expires_at if record.expires_at is not None else now
        self._tokens[key] = (record, min(float(expires), now + self.ttl))
        if len(self._tokens) > self.size:
            self._tokens.popitem(last=False)
