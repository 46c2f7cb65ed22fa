"""Several authorization servers for one resource (RFC 9728 §2 ``authorization_servers``)."""

from __future__ import annotations

import pytest

from oauth_server.resource import IssuerConfig, ResourceServer, VerifierUnavailable
from tests.helpers import FrozenClock
from tests.resource.support import ISSUER, RESOURCE, RS_CLIENT, FakeIssuer, SigningKey, claims, resource_server

A = "https://a.example"
B = "https://b.example/realms/b"


@pytest.fixture
def key_a() -> SigningKey:
    return SigningKey("ES256", "a-1")


@pytest.fixture
def key_b() -> SigningKey:
    return SigningKey("ES256", "b-1")


@pytest.fixture
def issuers(key_a: SigningKey, key_b: SigningKey) -> tuple[FakeIssuer, FakeIssuer]:
    return FakeIssuer(key_a, issuer=A), FakeIssuer(key_b, issuer=B)


@pytest.fixture
def rs(issuers: tuple[FakeIssuer, FakeIssuer], clock: FrozenClock) -> ResourceServer:
    return resource_server(clock, IssuerConfig(A, client_id=RS_CLIENT[0], client_secret=RS_CLIENT[1]),
                           IssuerConfig(B, discovery="oidc", client_id=RS_CLIENT[0], client_secret=RS_CLIENT[1]),
                           issuers=issuers)


async def test_each_jwt_goes_to_its_issuer(rs: ResourceServer, issuers: tuple[FakeIssuer, FakeIssuer],
                                           key_a: SigningKey, key_b: SigningKey, clock: FrozenClock) -> None:
    """The token's ``iss`` picks the verifier; only that issuer is contacted."""
    _, b = issuers
    record = await rs.verify(key_a.sign(claims(clock.now, iss=A)))
    assert record is not None and record.issuer == A
    assert sum(b.hits.values()) == 0
    record = await rs.verify(key_b.sign(claims(clock.now, iss=B)))
    assert record is not None and record.issuer == B
    assert rs.authorization_servers == [A, B]


async def test_token_claiming_one_issuer_signed_by_another_is_refused(
    rs: ResourceServer, key_a: SigningKey, key_b: SigningKey, clock: FrozenClock
) -> None:
    """Routing by the unverified ``iss`` grants nothing: B's key does not verify for A, even
    with B's ``kid`` (RFC 9068 §4: the key must be the named issuer's)."""
    assert await rs.verify(key_b.sign(claims(clock.now, iss=A))) is None


async def test_opaque_token_tries_the_introspecting_issuers(
    rs: ResourceServer, issuers: tuple[FakeIssuer, FakeIssuer], clock: FrozenClock
) -> None:
    a, b = issuers
    b.introspect = lambda token: {"active": token == "from-b", "sub": "carol", "aud": RESOURCE, "iss": B,
                                  "exp": int(clock.now) + 60}
    record = await rs.verify("from-b")
    assert record is not None and (record.issuer, record.subject) == (B, "carol")
    assert a.hits["/introspect"] == 1 and b.hits["/realms/b/introspect"] == 1
    assert await rs.verify("from-nobody") is None


async def test_opaque_token_with_one_issuer_down_is_unavailable(
    rs: ResourceServer, issuers: tuple[FakeIssuer, FakeIssuer]
) -> None:
    """If no issuer accepts the token and one could not answer, the answer is 503: that issuer
    may have issued it."""
    a, _ = issuers
    a.fail["/introspect"] = 503
    with pytest.raises(VerifierUnavailable):
        await rs.verify("opaque")


async def test_opaque_token_accepted_by_one_issuer_while_another_is_down(
    rs: ResourceServer, issuers: tuple[FakeIssuer, FakeIssuer], clock: FrozenClock
) -> None:
    a, b = issuers
    a.fail["/introspect"] = 503
    b.introspect = lambda token: {"active": True, "sub": "carol", "aud": RESOURCE, "exp": int(clock.now) + 60}
    assert await rs.verify("opaque") is not None


def test_issuers_are_required_and_unique() -> None:
    with pytest.raises(ValueError):
        ResourceServer(RESOURCE, [])
    with pytest.raises(ValueError):
        ResourceServer(RESOURCE, [A, IssuerConfig(A)])


async def test_accepted_tokens_are_remembered_no_longer_than_an_issuers_introspection_cache(
    clock: FrozenClock, issuer: FakeIssuer
) -> None:
    """RFC 7662 §4: a short introspection cache is the operator's bound on how long a revoked
    token keeps working; remembering accepted tokens in ``ResourceServer`` must not extend it."""
    config = IssuerConfig(ISSUER, client_id="rs", client_secret="s", introspection_cache_ttl=5)
    rs = resource_server(clock, config, issuers=(issuer,))
    issuer.introspect = lambda token: {"active": True, "sub": "alice", "client_id": "c", "scope": "mcp:tools",
                                       "aud": RESOURCE, "iss": ISSUER, "exp": int(clock.now) + 300}
    assert await rs.verify("opaque-token") is not None
    issuer.introspect = lambda token: {"active": False}  # revoked at the issuer
    clock.advance(4)
    assert await rs.verify("opaque-token") is not None
    clock.advance(2)
    assert await rs.verify("opaque-token") is None
