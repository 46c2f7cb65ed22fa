"""The JWK Set cache: rotation is picked up, invented ``kid`` values cause no fetch storm."""

from __future__ import annotations

import asyncio

import pytest

from oauth_server.resource import IssuerConfig, ResourceServer, VerifierUnavailable
from tests.helpers import FrozenClock
from tests.resource.support import ISSUER, FakeIssuer, SigningKey, claims, resource_server

JWKS = "/tenant/jwks"


@pytest.fixture
def rs(issuer: FakeIssuer, clock: FrozenClock) -> ResourceServer:
    return resource_server(clock, ISSUER, issuers=(issuer,))


async def test_keys_are_fetched_once_and_cached(rs: ResourceServer, rsa_key: SigningKey, issuer: FakeIssuer,
                                                clock: FrozenClock) -> None:
    """RFC 7517 keys change rarely: one metadata fetch and one JWKS fetch serve many tokens."""
    for _ in range(20):
        assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    assert issuer.hits[JWKS] == 1
    assert issuer.hits["/.well-known/oauth-authorization-server/tenant"] == 1


async def test_concurrent_first_requests_share_one_fetch(rs: ResourceServer, rsa_key: SigningKey,
                                                         issuer: FakeIssuer, clock: FrozenClock) -> None:
    """Requests arriving together before the keys are known wait for one fetch, not one each."""
    token = rsa_key.sign(claims(clock.now))
    results = await asyncio.gather(*(rs.verify(token) for _ in range(10)))
    assert all(result is not None for result in results)
    assert issuer.hits[JWKS] == 1


async def test_unknown_kid_refetches_once_then_refuses(rs: ResourceServer, rsa_key: SigningKey,
                                                       issuer: FakeIssuer, clock: FrozenClock) -> None:
    """OpenID Connect Core §10.1.1 (rotation): an unknown ``kid`` fetches the set again, once;
    a kid still unknown afterwards is refused (401), not an outage."""
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    clock.advance(61)
    stranger = SigningKey("RS256", "unknown-kid")
    assert await rs.verify(stranger.sign(claims(clock.now))) is None
    assert issuer.hits[JWKS] == 2


async def test_many_bad_kids_cause_one_fetch_per_interval(rs: ResourceServer, rsa_key: SigningKey,
                                                          issuer: FakeIssuer, clock: FrozenClock) -> None:
    """No fetch storm: tokens with invented ``kid`` values refetch at most once per
    ``jwks_refetch_interval`` (default 60 s), however many arrive."""
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    clock.advance(61)
    for index in range(200):
        assert await rs.verify(rsa_key.sign(claims(clock.now), kid=f"bogus-{index}")) is None
        clock.advance(0.1)  # 20 s in all
    assert issuer.hits[JWKS] == 2
    clock.advance(41)
    assert await rs.verify(rsa_key.sign(claims(clock.now), kid="bogus-again")) is None
    assert issuer.hits[JWKS] == 3


async def test_rotated_key_is_picked_up(rs: ResourceServer, rsa_key: SigningKey, issuer: FakeIssuer,
                                        clock: FrozenClock) -> None:
    """A key the issuer adds later verifies once the refetch interval allows one fetch."""
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    new_key = SigningKey("RS256", "rsa-2")
    issuer.keys.append(new_key)
    clock.advance(61)
    assert await rs.verify(new_key.sign(claims(clock.now))) is not None
    assert issuer.hits[JWKS] == 2


async def test_refetch_interval_is_configurable(issuer: FakeIssuer, rsa_key: SigningKey,
                                                clock: FrozenClock) -> None:
    rs = resource_server(clock, IssuerConfig(ISSUER, jwks_refetch_interval=5), issuers=(issuer,))
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    clock.advance(6)
    assert await rs.verify(rsa_key.sign(claims(clock.now), kid="nope")) is None
    assert issuer.hits[JWKS] == 2


@pytest.mark.parametrize(("cache_control", "refetched_after"), [
    ("max-age=120", 121),      # honoured
    ("no-store", 61),          # raised to the 60 s floor: not one fetch per request
    ("max-age=31536000", 86_401),  # capped at one day
])
async def test_cache_control_is_respected_within_bounds(issuer: FakeIssuer, rsa_key: SigningKey,
                                                        clock: FrozenClock, cache_control: str,
                                                        refetched_after: float) -> None:
    """RFC 9111 §5.2.2.1 ``max-age``, bounded: keys live between 60 s and one day."""
    issuer.jwks_headers = {"cache-control": cache_control}
    rs = resource_server(clock, ISSUER, issuers=(issuer,))
    start = clock.now
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    clock.now = start + refetched_after - 2
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    assert issuer.hits[JWKS] == 1
    clock.now = start + refetched_after
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    assert issuer.hits[JWKS] == 2


async def test_expired_cache_with_issuer_down_is_unavailable(rs: ResourceServer, rsa_key: SigningKey,
                                                             issuer: FakeIssuer, clock: FrozenClock) -> None:
    """Keys past their lifetime are not trusted because the refresh failed: 503 until it works."""
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    issuer.fail[JWKS] = 503
    clock.advance(601)
    with pytest.raises(VerifierUnavailable):
        await rs.verify(rsa_key.sign(claims(clock.now)))


async def test_unknown_kid_while_issuer_down_is_unavailable(rs: ResourceServer, rsa_key: SigningKey,
                                                            issuer: FakeIssuer, clock: FrozenClock) -> None:
    """An unknown ``kid`` when the refetch fails may be a new key: 503, not 401; known keys
    still verify meanwhile."""
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    issuer.fail[JWKS] = 500
    clock.advance(61)
    with pytest.raises(VerifierUnavailable):
        await rs.verify(rsa_key.sign(claims(clock.now), kid="rotated"))
    clock.advance(1)
    with pytest.raises(VerifierUnavailable):
        await rs.verify(rsa_key.sign(claims(clock.now), kid="rotated"))
    assert await rs.verify(rsa_key.sign(claims(clock.now))) is not None
    assert issuer.hits[JWKS] == 2
