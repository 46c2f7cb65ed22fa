"""The enterprise identity providers whose ID-JAGs we accept, their keys, and whose user a
verified assertion names here.

Keys come from each provider's ``jwks_uri`` through the resource-server machinery
(``resource.jwks.KeySet``: cached per ``Cache-Control``, refetched at most once a minute for an
unknown ``kid``, a failure remembered briefly) and the guarded fetcher with the policy for
operator-configured issuers (``resource.resource_fetch_policy``: private addresses allowed,
loopback and plain http only with the provider's ``allow_loopback``).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import jwt

from oauth_server.fetch import Fetcher
from oauth_server.resource.jwks import KeySet
from oauth_server.resource.resource_server import resource_fetch_policy
from oauth_server.settings import TrustedIdentityProvider

#: ``(provider, verified claims) -> our subject``, plain or async; None or "" refuses the assertion.
SubjectMapper = Callable[[TrustedIdentityProvider, Mapping[str, Any]], "str | Awaitable[str | None] | None"]


def namespaced_subject(provider: TrustedIdentityProvider, claims: Mapping[str, Any]) -> str:
    """The default: ``{issuer}#{sub}``. The draft makes ``iss`` + ``sub`` the unique pair
    (ext-auth §4.3 implementation notes: "iss+sub is unique"), so one provider can never name
    another provider's user, nor a user who signs in here directly, whatever ``sub`` it writes."""
    return f"{provider.issuer}#{claims['sub']}"


def as_is_subject(provider: TrustedIdentityProvider, claims: Mapping[str, Any]) -> str:
    """``sub`` unchanged: for a single provider that already speaks our subject identifiers
    (ext-auth §4.3: "the subject identifier ... of the user at the MCP Server"). Only safe when
    every trusted provider may name every user of this server."""
    return str(claims["sub"])


class IdentityProviders:
    """The trusted providers by issuer, with a key set each, and the subject mapping."""

    def __init__(self, providers: Iterable[TrustedIdentityProvider], *, subject: SubjectMapper | None = None,
                 fetcher: Fetcher | None = None, clock: Callable[[], float] = time.time) -> None:
        self.providers = {provider.issuer: provider for provider in providers}
        self._subject = subject or namespaced_subject
        self._own_fetchers: list[Fetcher] = []
        self._keys: dict[str, KeySet] = {}
        for provider in self.providers.values():
            chosen = fetcher
            if chosen is None:
                chosen = Fetcher(resource_fetch_policy(allow_loopback=provider.allow_loopback,
                                                       allow_http=provider.allow_loopback))
                self._own_fetchers.append(chosen)
            self._keys[provider.issuer] = KeySet(chosen, provider.jwks_uri, clock=clock)

    def get(self, issuer: object) -> TrustedIdentityProvider | None:
        return self.providers.get(issuer) if isinstance(issuer, str) else None

    async def keys_for(self, provider: TrustedIdentityProvider, kid: str | None, alg: str) -> list[jwt.PyJWK]:
        """Candidate keys; ``VerifierUnavailable`` when the provider's JWK Set cannot be had."""
        return await self._keys[provider.issuer].keys_for(kid, alg)

    async def subject(self, provider: TrustedIdentityProvider, claims: Mapping[str, Any]) -> str | None:
        mapped = self._subject(provider, claims)
        if inspect.isawaitable(mapped):
            mapped = await mapped
        return mapped if isinstance(mapped, str) and mapped else None

    async def aclose(self) -> None:
        """Release the fetchers this object made (an injected one is its owner's to close)."""
        for fetcher in self._own_fetchers:
            await fetcher.aclose()
