"""Issuer discovery: the two well-known rules, a given URL, explicit metadata, the transform
hook, and the exact ``issuer`` match (RFC 8414 §3, OpenID Connect Discovery §4)."""

from __future__ import annotations

from typing import Any

import pytest

from oauth_server.resource import IssuerConfig, VerifierUnavailable, oauth_metadata_url, oidc_metadata_url
from tests.helpers import FrozenClock
from tests.resource.support import ISSUER, FakeIssuer, SigningKey, claims, resource_server

OAUTH_PATH = "/.well-known/oauth-authorization-server/tenant"
OIDC_PATH = "/tenant/.well-known/openid-configuration"


@pytest.mark.parametrize(("issuer", "oauth", "oidc"), [
    ("https://auth.example/tenant", "https://auth.example/.well-known/oauth-authorization-server/tenant",
     "https://auth.example/tenant/.well-known/openid-configuration"),
    ("https://auth.example/tenant/", "https://auth.example/.well-known/oauth-authorization-server/tenant",
     "https://auth.example/tenant/.well-known/openid-configuration"),
    ("https://auth.example", "https://auth.example/.well-known/oauth-authorization-server",
     "https://auth.example/.well-known/openid-configuration"),
    ("https://kc.example:8443/realms/acme", "https://kc.example:8443/.well-known/oauth-authorization-server/realms/acme",
     "https://kc.example:8443/realms/acme/.well-known/openid-configuration"),
])
def test_well_known_urls(issuer: str, oauth: str, oidc: str) -> None:
    """RFC 8414 §3.1 inserts the well-known segment before the issuer's path; OpenID Connect
    Discovery §4.1 appends it (the rules mcp-auth documents for ``type: 'oauth' | 'oidc'``)."""
    assert oauth_metadata_url(issuer) == oauth
    assert oidc_metadata_url(issuer) == oidc


async def test_oauth_rule_fetches_the_inserted_path(issuer: FakeIssuer, rsa_key: SigningKey,
                                                    clock: FrozenClock) -> None:
    issuer.metadata_paths = {OAUTH_PATH}
    rs = resource_server(clock, IssuerConfig(ISSUER, discovery="oauth"), issuers=(issuer,))
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    assert issuer.hits[OAUTH_PATH] == 1 and issuer.hits[OIDC_PATH] == 0


async def test_oidc_rule_fetches_the_appended_path(issuer: FakeIssuer, rsa_key: SigningKey,
                                                   clock: FrozenClock) -> None:
    issuer.metadata_paths = {OIDC_PATH}
    rs = resource_server(clock, IssuerConfig(ISSUER, discovery="oidc"), issuers=(issuer,))
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    assert issuer.hits[OIDC_PATH] == 1 and issuer.hits[OAUTH_PATH] == 0


async def test_given_well_known_url_is_used(issuer: FakeIssuer, rsa_key: SigningKey, clock: FrozenClock) -> None:
    issuer.metadata_paths = {"/custom/metadata.json"}
    config = IssuerConfig(ISSUER, well_known_url="https://auth.example/custom/metadata.json")
    rs = resource_server(clock, config, issuers=(issuer,))
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    assert issuer.hits["/custom/metadata.json"] == 1


async def test_explicit_metadata_needs_no_discovery(issuer: FakeIssuer, rsa_key: SigningKey,
                                                    clock: FrozenClock) -> None:
    config = IssuerConfig(ISSUER, metadata={"issuer": ISSUER, "jwks_uri": issuer.jwks_uri})
    rs = resource_server(clock, config, issuers=(issuer,))
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    assert issuer.hits[OAUTH_PATH] == issuer.hits[OIDC_PATH] == 0


def test_explicit_metadata_for_another_issuer_is_refused_at_configuration() -> None:
    """RFC 8414 §3.3 applies to written-down metadata too, and fails at start, not per request."""
    with pytest.raises(ValueError, match="issuer"):
        IssuerConfig(ISSUER, metadata={"issuer": "https://other.example", "jwks_uri": "https://other.example/k"})


async def test_transform_hook_rewrites_metadata_before_it_is_checked(issuer: FakeIssuer, rsa_key: SigningKey,
                                                                     clock: FrozenClock) -> None:
    """mcp-auth's ``transpileData``: the operator fixes a provider's document (here it names
    its keys under another field) before the checks run."""
    issuer.metadata = {"issuer": ISSUER, "keys_at": issuer.jwks_uri}
    seen: list[dict[str, Any]] = []

    def transform(document: dict[str, Any]) -> dict[str, Any]:
        seen.append(document)
        return {**document, "jwks_uri": document["keys_at"]}

    rs = resource_server(clock, IssuerConfig(ISSUER, transform=transform), issuers=(issuer,))
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    assert seen == [{"issuer": ISSUER, "keys_at": issuer.jwks_uri}]


async def test_transform_cannot_smuggle_in_another_issuer(issuer: FakeIssuer, rsa_key: SigningKey,
                                                          clock: FrozenClock) -> None:
    """The issuer check runs after the transform: RFC 8414 §3.3 holds whatever the hook does."""
    config = IssuerConfig(ISSUER, transform=lambda document: {**document, "issuer": ISSUER + "/"})
    rs = resource_server(clock, config, issuers=(issuer,))
    with pytest.raises(VerifierUnavailable):
        await rs.verify(rsa_key.sign(claims(clock.now)))


async def test_failing_transform_is_unavailable_not_a_crash(issuer: FakeIssuer, rsa_key: SigningKey,
                                                            clock: FrozenClock) -> None:
    def transform(document: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("bug in operator code")

    rs = resource_server(clock, IssuerConfig(ISSUER, transform=transform), issuers=(issuer,))
    with pytest.raises(VerifierUnavailable):
        await rs.verify(rsa_key.sign(claims(clock.now)))


@pytest.mark.parametrize("named", [ISSUER + "/", "https://auth.example", "https://AUTH.example/tenant", None])
async def test_metadata_naming_another_issuer_is_refused(issuer: FakeIssuer, rsa_key: SigningKey,
                                                         clock: FrozenClock, named: str | None) -> None:
    """RFC 8414 §3.3: the ``issuer`` in the document must be identical to the configured one —
    a trailing slash or another spelling is another issuer, whose keys we must not trust. The
    token is never accepted; the resource answers 503 (misconfiguration or attack)."""
    issuer.metadata["issuer"] = named
    rs = resource_server(clock, ISSUER, issuers=(issuer,))
    with pytest.raises(VerifierUnavailable):
        await rs.verify(rsa_key.sign(claims(clock.now)))
    assert issuer.hits["/tenant/jwks"] == 0


async def test_metadata_unreachable_is_unavailable_and_retried_after_cooldown(
    issuer: FakeIssuer, rsa_key: SigningKey, clock: FrozenClock
) -> None:
    """An issuer that is down answers 503, is asked again only after the cooldown, and the
    token passes once the issuer is back."""
    issuer.fail[OAUTH_PATH] = 502
    rs = resource_server(clock, ISSUER, issuers=(issuer,))
    token = rsa_key.sign(claims(clock.now))
    for _ in range(5):
        with pytest.raises(VerifierUnavailable):
            await rs.verify(token)
    assert issuer.hits[OAUTH_PATH] == 1
    del issuer.fail[OAUTH_PATH]
    clock.advance(6)
    assert await rs.verify(token) is not None


@pytest.mark.parametrize("url", ["ftp://auth.example", "https://auth.example/t?x=1", "https://auth.example/#f",
                                 "auth.example"])
def test_issuer_url_must_be_an_https_url_without_query_or_fragment(url: str) -> None:
    """RFC 8414 §2: issuer identifier form."""
    with pytest.raises(ValueError):
        IssuerConfig(url)
