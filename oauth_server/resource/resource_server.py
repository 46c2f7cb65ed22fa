"""``ResourceServer``: one protected resource (an MCP server) trusting one or more issuers.

RFC 9728 §2 makes ``authorization_servers`` a list, so a resource may accept tokens from
several authorization servers. A JWT names its issuer (``iss``), and only that issuer's
verifier sees it: the signature is then checked with that issuer's keys and ``iss`` again, so
reading the claim unverified for routing grants nothing. An opaque token names nobody; it goes
to each issuer configured for introspection in turn, and the first that knows it wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from oauth_server.fetch import Fetcher, FetchPolicy
from oauth_server.resource.issuer import IssuerConfig, IssuerVerifier, issuer_configs, unverified_issuer
from oauth_server.resource.verified import RememberedTokens, VerifiedToken, VerifierUnavailable

#: A bearer token longer than this is refused unread (a JWT with many roles stays far below).
MAX_TOKEN_LENGTH = 16 * 1024


def resource_fetch_policy(*, allow_loopback: bool = False, allow_http: bool = False,
                          per_host_per_minute: int = 1200) -> FetchPolicy:
    """The fetch policy for issuers the operator configured.

    Unlike client metadata documents (CIMD), whose URLs strangers choose and which must never
    reach inside the network (draft-ietf-oauth-client-id-metadata-document §8.6), issuer URLs
    come from the operator: a Keycloak on the company network is a normal deployment, so private
    addresses are allowed; loopback and plain http only when asked for (local development).
    The body cap fits real JWK Sets and metadata documents; the per-host rate allows one
    introspection per new token under load, and still caps what sprayed tokens can send on.
    """
    return FetchPolicy(allow_private=True, allow_loopback=allow_loopback, allow_http=allow_http,
                       max_bytes=64 * 1024, per_host_per_minute=per_host_per_minute)


class ResourceServer:
    """Verify bearer tokens for ``resource`` from any of ``issuers`` (a ``TokenVerifier``).

    ``ResourceServer("https://mcp.example.com/mcp", ["https://auth.example.com"])``; give
    ``IssuerConfig`` objects for anything beyond discovery by the RFC 8414 rule. The fetcher
    is built from ``resource_fetch_policy`` unless one is given; ``aclose`` releases it.
    """

    def __init__(
        self,
        resource: str,
        issuers: Iterable[IssuerConfig | str],
        *,
        allow_loopback: bool = False,
        allow_http: bool = False,
        fetcher: Fetcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resource = resource
        self.configs = issuer_configs(issuers)
        self.fetcher = fetcher or Fetcher(resource_fetch_policy(allow_loopback=allow_loopback, allow_http=allow_http))
        self.verifiers = {config.issuer: IssuerVerifier(config, resource, self.fetcher, clock=clock)
                          for config in self.configs}
        self.clock = clock
        # Never longer than an issuer's own introspection cache: an operator who shortened it
        # wants revocations at that issuer to bite that soon.
        ttls = [config.introspection_cache_ttl for config in self.configs if config.introspects]
        self._remembered = RememberedTokens(ttl=min([60.0, *ttls]))

    @property
    def authorization_servers(self) -> list[str]:
        """For RFC 9728 ``authorization_servers`` (``protected_resource_router``)."""
        return list(self.verifiers)

    async def verify(self, token: str) -> VerifiedToken | None:
        """Route the token to its issuer's verifier; a token accepted in the last minute (and
        not expired) is answered from memory, without even reading its claims again."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        key, now = RememberedTokens.key(token), self.clock()
        remembered = self._remembered.get(key, now)
        if remembered is not None:
            return remembered
        record = await self._route(token)
        if record is not None:
            self._remembered.put(key, record, now)
        return record

    async def _route(self, token: str) -> VerifiedToken | None:
        issuer = unverified_issuer(token)
        if issuer is not None:
            verifier = self.verifiers.get(issuer)
            return None if verifier is None else await verifier.verify(token)
        unavailable: VerifierUnavailable | None = None
        for verifier in self.verifiers.values():
            if not verifier.config.introspects:
                continue
            try:
                record = await verifier.verify(token)
            except VerifierUnavailable as exc:
                unavailable = exc  # another issuer may still know the token
                continue
            if record is not None:
                return record
        if unavailable is not None:
            raise unavailable  # nobody accepted it, and one issuer could not say: 503, not 401
        return None

    async def aclose(self) -> None:
        await self.fetcher.aclose()
