"""Opaque tokens checked by RFC 7662 introspection at the issuer, with a bounded cache."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from oauth_server.resource import IssuerConfig, ResourceServer, VerifierUnavailable
from tests.helpers import FrozenClock
from tests.resource.support import ISSUER, RESOURCE, RS_CLIENT, FakeIssuer, resource_server

INTROSPECT = "/tenant/introspect"


@pytest.fixture
def config() -> IssuerConfig:
    return IssuerConfig(ISSUER, client_id=RS_CLIENT[0], client_secret=RS_CLIENT[1])


@pytest.fixture
def rs(issuer: FakeIssuer, clock: FrozenClock, config: IssuerConfig) -> ResourceServer:
    return resource_server(clock, config, issuers=(issuer,))


def answer(clock: FrozenClock, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"active": True, "sub": "bob", "client_id": "cli", "scope": "mcp:tools",
                            "aud": RESOURCE, "iss": ISSUER, "exp": int(clock.now) + 3600, "token_type": "Bearer"}
    base.update(fields)
    return {name: value for name, value in base.items() if value is not None}


async def test_active_token_is_accepted_with_basic_auth(rs: ResourceServer, issuer: FakeIssuer,
                                                        clock: FrozenClock) -> None:
    """RFC 7662 §2.1: the resource server authenticates with its own credentials
    (client_secret_basic, RFC 6749 §2.3.1), and ``active: true`` accepts the token."""
    issuer.introspect = lambda token: answer(clock) if token == "opaque-good" else {"active": False}
    record = await rs.verify("opaque-good")
    assert record is not None
    assert (record.subject, record.client_id, record.scopes) == ("bob", "cli", ("mcp:tools",))
    expected = "Basic " + base64.b64encode(b"mcp-resource:rs-secret").decode()
    assert issuer.authorizations == [expected]


async def test_inactive_token_is_refused(rs: ResourceServer, issuer: FakeIssuer) -> None:
    """RFC 7662 §2.2: ``active: false`` (unknown, expired, revoked) is refused."""
    assert await rs.verify("opaque-bad") is None


@pytest.mark.parametrize("active", ["true", 1, None])
async def test_active_must_be_the_boolean_true(rs: ResourceServer, issuer: FakeIssuer, clock: FrozenClock,
                                               active: object) -> None:
    """RFC 7662 §2.2: ``active`` is a boolean; "true" or 1 are not true, and an answer without a
    boolean ``active`` is nonsense from the issuer (503), never an acceptance."""
    issuer.introspect = lambda token: answer(clock, active=active)
    with pytest.raises(VerifierUnavailable):
        await rs.verify("opaque")


async def test_active_answer_is_cached_up_to_the_ttl(rs: ResourceServer, issuer: FakeIssuer,
                                                     clock: FrozenClock) -> None:
    """RFC 7662 §4: cached for min(exp, ttl) — 60 s by default — then asked again."""
    issuer.introspect = lambda token: answer(clock)
    for _ in range(5):
        assert await rs.verify("opaque-good") is not None
    assert issuer.hits[INTROSPECT] == 1
    clock.advance(61)
    assert await rs.verify("opaque-good") is not None
    assert issuer.hits[INTROSPECT] == 2


async def test_cache_never_outlives_the_token(rs: ResourceServer, issuer: FakeIssuer, clock: FrozenClock) -> None:
    """A token expiring in 10 s is not served from the cache after that, whatever the ttl."""
    issuer.introspect = lambda token: answer(clock, exp=int(clock.now) + 10)
    assert await rs.verify("short") is not None
    clock.advance(11)
    issuer.introspect = lambda token: {"active": False}
    assert await rs.verify("short") is None
    assert issuer.hits[INTROSPECT] == 2


async def test_inactive_answer_is_cached_briefly(rs: ResourceServer, issuer: FakeIssuer,
                                                 clock: FrozenClock) -> None:
    """A refused token asked again at once costs no second call; seconds later it does."""
    for _ in range(3):
        assert await rs.verify("opaque-bad") is None
    assert issuer.hits[INTROSPECT] == 1
    clock.advance(6)
    assert await rs.verify("opaque-bad") is None
    assert issuer.hits[INTROSPECT] == 2


async def test_introspection_refusing_our_credentials_is_unavailable(rs: ResourceServer, issuer: FakeIssuer,
                                                                     clock: FrozenClock) -> None:
    """A 401 from the introspection endpoint means our client credentials are wrong: the token
    cannot be judged, so 503 — neither a 401 blaming the client's token nor an acceptance."""
    issuer.introspect = lambda token: answer(clock)
    issuer.fail[INTROSPECT] = 401
    with pytest.raises(VerifierUnavailable):
        await rs.verify("opaque-good")
    issuer.fail[INTROSPECT] = 500
    with pytest.raises(VerifierUnavailable):
        await rs.verify("opaque-good")


@pytest.mark.parametrize("fields", [
    {"aud": "https://other.example/mcp"},
    {"aud": ["https://other.example/a", "https://other.example/b"]},
    {"iss": "https://other.example"},
    {"exp": 1},
    {"nbf": 4_000_000_000},
    {"token_type": "refresh_token"},
    {"cnf": {"x5t#S256": "abc"}},
    {"sub": None, "client_id": None},
])
async def test_active_answer_breaking_a_rule_is_refused(rs: ResourceServer, issuer: FakeIssuer,
                                                        clock: FrozenClock, fields: dict[str, Any]) -> None:
    """RFC 7662 §4: the resource still checks what the answer says — audience (RFC 8707),
    issuer, expiry, a refresh token (RFC 6749 §1.5), a sender-constrained token (RFC 9449 §7)."""
    issuer.introspect = lambda token: answer(clock, **fields)
    assert await rs.verify("opaque") is None


async def test_answer_without_audience_is_refused_by_default(rs: ResourceServer, issuer: FakeIssuer) -> None:
    """MCP authorization (audience binding is a MUST) / RFC 8707: an answer that names no
    audience may be a refresh token or a token for another resource, so it is refused."""
    issuer.introspect = lambda token: {"active": True, "client_id": "machine"}
    assert await rs.verify("opaque") is None


async def test_minimal_active_answer_is_accepted_when_audience_is_not_required(issuer: FakeIssuer,
                                                                                clock: FrozenClock) -> None:
    """With ``introspection_requires_audience=False``, ``iss``, ``aud`` and ``exp`` are checked
    when present; ``active`` and a principal suffice."""
    config = IssuerConfig(ISSUER, client_id=RS_CLIENT[0], client_secret=RS_CLIENT[1],
                          introspection_requires_audience=False)
    rs = resource_server(clock, config, issuers=(issuer,))
    issuer.introspect = lambda token: {"active": True, "client_id": "machine"}
    record = await rs.verify("opaque")
    assert record is not None and record.subject == "machine" and record.expires_at is None


async def test_cache_is_bounded(issuer: FakeIssuer, clock: FrozenClock, config: IssuerConfig) -> None:
    """Sprayed tokens cannot grow the cache without bound."""
    rs = resource_server(clock, config, issuers=(issuer,))
    await rs.verify("warm-up")
    verifier = rs.verifiers[ISSUER].introspection
    assert verifier is not None
    verifier.max_entries = 10
    for index in range(50):
        await rs.verify(f"spray-{index}")
    assert len(verifier._cache) == 10


async def test_without_credentials_opaque_tokens_are_refused_unasked(issuer: FakeIssuer,
                                                                     clock: FrozenClock) -> None:
    """No introspection configured: an opaque token is simply not valid here."""
    rs = resource_server(clock, ISSUER, issuers=(issuer,))
    assert await rs.verify("opaque") is None
    assert sum(issuer.hits.values()) == 0


def test_credentials_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="together"):
        IssuerConfig(ISSUER, client_id="only-id")
