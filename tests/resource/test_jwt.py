"""JWT access tokens from a foreign issuer (RFC 9068 §4, RFC 8725), one test per rule."""

from __future__ import annotations

import json

import pytest

from oauth_server.resource import IssuerConfig, ResourceServer, VerifierUnavailable
from tests.helpers import FrozenClock
from tests.resource.support import (
    ISSUER,
    RESOURCE,
    FakeIssuer,
    SigningKey,
    b64,
    claims,
    resource_server,
    unsigned_token,
)


@pytest.fixture
def rs(issuer: FakeIssuer, clock: FrozenClock) -> ResourceServer:
    return resource_server(clock, ISSUER, issuers=(issuer,))


@pytest.mark.parametrize("key_name", ["rsa_key", "ec_key", "ed_key"])
async def test_good_token_is_accepted(
    rs: ResourceServer, clock: FrozenClock, key_name: str, request: pytest.FixtureRequest
) -> None:
    """RFC 9068 §4: a token signed by the issuer's key, for this resource, in time, is accepted."""
    key: SigningKey = request.getfixturevalue(key_name)
    record = await rs.verify(key.sign(claims(clock.now, scope="mcp:tools mcp:prompts")))
    assert record is not None
    assert (record.subject, record.client_id, record.issuer) == ("alice", "inspector", ISSUER)
    assert record.scopes == ("mcp:tools", "mcp:prompts")
    assert record.audience == (RESOURCE,)
    assert record.expires_at == int(clock.now) + 300 and record.token_id == "t-1"
    assert record.claims["sub"] == "alice"


async def test_token_for_another_audience_is_refused(rs: ResourceServer, rsa_key: SigningKey,
                                                      clock: FrozenClock) -> None:
    """RFC 9068 §4 step 4 / RFC 8707: ``aud`` must name this resource."""
    assert await rs.verify(rsa_key.sign(claims(clock.now, aud="https://other.example/mcp"))) is None


async def test_audience_list_containing_this_resource_is_accepted(rs: ResourceServer, rsa_key: SigningKey,
                                                                  clock: FrozenClock) -> None:
    """RFC 7519 §4.1.3: ``aud`` may be an array; this resource being one of them suffices."""
    token = rsa_key.sign(claims(clock.now, aud=["https://other.example/api", RESOURCE]))
    record = await rs.verify(token)
    assert record is not None and record.audience == ("https://other.example/api", RESOURCE)


async def test_token_without_audience_is_refused(rs: ResourceServer, rsa_key: SigningKey,
                                                 clock: FrozenClock) -> None:
    """RFC 9068 §2.2: ``aud`` is required in a JWT access token."""
    assert await rs.verify(rsa_key.sign(claims(clock.now, aud=None))) is None


async def test_expired_token_is_refused_after_the_leeway(rs: ResourceServer, rsa_key: SigningKey,
                                                         clock: FrozenClock) -> None:
    """RFC 7519 §4.1.4: past ``exp`` the token is refused; the default 30 s leeway covers skew."""
    token = rsa_key.sign(claims(clock.now, exp=int(clock.now) - 10))
    assert await rs.verify(token) is not None  # 10 s late: within the leeway
    clock.advance(21)
    assert await rs.verify(token) is None  # 31 s late


async def test_expired_token_without_leeway_is_refused_at_once(issuer: FakeIssuer, rsa_key: SigningKey,
                                                               clock: FrozenClock) -> None:
    """RFC 7519 §4.1.4 with ``leeway=0``: expired the second ``exp`` is reached."""
    rs = resource_server(clock, IssuerConfig(ISSUER, leeway=0), issuers=(issuer,))
    token = rsa_key.sign(claims(clock.now, exp=int(clock.now) + 1))
    assert await rs.verify(token) is not None
    clock.advance(1)
    assert await rs.verify(token) is None


async def test_token_without_exp_is_refused(rs: ResourceServer, rsa_key: SigningKey, clock: FrozenClock) -> None:
    """RFC 9068 §2.2: ``exp`` is required; a token that never expires is not accepted."""
    assert await rs.verify(rsa_key.sign(claims(clock.now, exp=None))) is None


async def test_token_not_valid_yet_is_refused(rs: ResourceServer, rsa_key: SigningKey, clock: FrozenClock) -> None:
    """RFC 7519 §4.1.5: before ``nbf`` (minus the leeway) the token is refused."""
    assert await rs.verify(rsa_key.sign(claims(clock.now, nbf=int(clock.now) + 120))) is None
    assert await rs.verify(rsa_key.sign(claims(clock.now, nbf=int(clock.now) + 20))) is not None


async def test_alg_none_is_refused(rs: ResourceServer, rsa_key: SigningKey, clock: FrozenClock) -> None:
    """RFC 8725 §3.1 / RFC 9068 §4 step 2: an unsigned token (``alg: none``) is never accepted."""
    token = unsigned_token({"alg": "none", "typ": "at+jwt", "kid": rsa_key.kid}, claims(clock.now))
    assert await rs.verify(token) is None


async def test_hs256_signed_with_the_public_key_is_refused(rs: ResourceServer, rsa_key: SigningKey,
                                                           issuer: FakeIssuer, clock: FrozenClock) -> None:
    """RFC 8725 §2.1, §3.1: the key confusion attack — HS256 "signed" with the issuer's public
    key as the HMAC secret — is refused, as is an ``oct`` key slipped into the JWK Set."""
    pem = rsa_key.public_pem()
    header = {"alg": "HS256", "typ": "at+jwt", "kid": rsa_key.kid}
    assert await rs.verify(unsigned_token(header, claims(clock.now), secret=pem)) is None
    with pytest.raises(ValueError, match="asymmetric"):
        IssuerConfig(ISSUER, algorithms=("RS256", "HS256"))
    with pytest.raises(ValueError, match="asymmetric"):
        IssuerConfig(ISSUER, algorithms=("none",))


async def test_hs256_with_an_oct_key_in_the_jwks_is_refused(issuer: FakeIssuer, clock: FrozenClock) -> None:
    """RFC 8725 §3.1: a symmetric key published in a JWK Set is dropped, never used."""
    secret = b"published-secret-published-secret"
    oct_jwk = {"kty": "oct", "kid": "hmac", "k": b64(secret)}
    issuer.bodies["/tenant/jwks"] = json.dumps({"keys": [oct_jwk]}).encode()
    rs = resource_server(clock, IssuerConfig(ISSUER, algorithms=("RS256",)), issuers=(issuer,))
    token = unsigned_token({"alg": "HS256", "kid": "hmac"}, claims(clock.now), secret=secret)
    assert await rs.verify(token) is None


@pytest.mark.parametrize("typ", ["JWT", "application/jwt", "id+jwt", "dpop+jwt"])
async def test_typ_other_than_at_jwt_is_refused(rs: ResourceServer, rsa_key: SigningKey, clock: FrozenClock,
                                                typ: str) -> None:
    """RFC 9068 §4 step 1, RFC 8725 §3.11: explicit typing keeps ID tokens and others out."""
    assert await rs.verify(rsa_key.sign(claims(clock.now), typ=typ)) is None


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", None])
async def test_typ_at_jwt_or_absent_is_accepted(rs: ResourceServer, rsa_key: SigningKey, clock: FrozenClock,
                                                typ: str | None) -> None:
    """RFC 9068 §2.1, RFC 7515 §4.1.9: compared case-insensitively, "application/" optional."""
    assert await rs.verify(rsa_key.sign(claims(clock.now), typ=typ)) is not None


async def test_typ_jwt_is_accepted_when_configured(issuer: FakeIssuer, rsa_key: SigningKey,
                                                   clock: FrozenClock) -> None:
    """``accept_typ_jwt`` (Keycloak, Entra send ``typ: JWT``); ``id+jwt`` stays refused."""
    rs = resource_server(clock, IssuerConfig(ISSUER, accept_typ_jwt=True), issuers=(issuer,))
    assert await rs.verify(rsa_key.sign(claims(clock.now), typ="JWT")) is not None
    assert await rs.verify(rsa_key.sign(claims(clock.now), typ="id+jwt")) is None


async def test_wrong_issuer_is_refused(rs: ResourceServer, rsa_key: SigningKey, clock: FrozenClock) -> None:
    """RFC 9068 §4 step 3: ``iss`` must be the configured issuer exactly (here with a trailing
    slash, or another tenant), even when the signature verifies."""
    assert await rs.verify(rsa_key.sign(claims(clock.now, iss=ISSUER + "/"))) is None
    assert await rs.verify(rsa_key.sign(claims(clock.now, iss="https://auth.example/other"))) is None


async def test_signature_by_another_key_with_a_known_kid_is_refused(rs: ResourceServer, rsa_key: SigningKey,
                                                                     clock: FrozenClock) -> None:
    """RFC 7515 §5.2: the signature must verify with the issuer's key of that ``kid``."""
    forger = SigningKey("RS256", rsa_key.kid)
    assert await rs.verify(forger.sign(claims(clock.now))) is None


async def test_key_of_another_type_never_checks_a_token(rs: ResourceServer, rsa_key: SigningKey,
                                                        ec_key: SigningKey, clock: FrozenClock) -> None:
    """RFC 7518 §3.1: an ES256 token naming the RSA key's ``kid`` finds no usable key."""
    token = ec_key.sign(claims(clock.now), kid=rsa_key.kid)
    assert await rs.verify(token) is None


async def test_token_without_kid_is_checked_against_fitting_keys(rs: ResourceServer, ec_key: SigningKey,
                                                                 clock: FrozenClock) -> None:
    """RFC 7515 §4.1.4: ``kid`` is optional; the keys of the token's algorithm are tried."""
    assert await rs.verify(ec_key.sign(claims(clock.now), kid=None)) is not None


async def test_sender_constrained_token_is_refused_as_bearer(rs: ResourceServer, rsa_key: SigningKey,
                                                             clock: FrozenClock) -> None:
    """RFC 9449 §7, RFC 8705 §3: a token bound to a key (``cnf``) needs its proof, which a
    bearer check does not verify."""
    assert await rs.verify(rsa_key.sign(claims(clock.now, cnf={"jkt": "abc"}))) is None


async def test_garbage_and_oversized_tokens_are_refused(rs: ResourceServer, issuer: FakeIssuer) -> None:
    """Nothing malformed is a 500: it is simply not a valid token (and costs no fetch)."""
    nested = b64(b"[" * 12_000)
    duplicate = b64(b'{"iss": "https://evil.example", "iss": "%s"}' % ISSUER.encode())
    for token in ("", "a.b.c", "x" * 20_000, "eyJhbGciOiJSUzI1NiJ9.e30.", "....", "é.é.é",
                  f"{nested}.{nested}.x", f"eyJhbGciOiJSUzI1NiJ9.{duplicate}.x"):
        assert await rs.verify(token) is None
    assert sum(issuer.hits.values()) == 0


async def test_token_of_an_unknown_issuer_is_refused(rs: ResourceServer, rsa_key: SigningKey,
                                                     issuer: FakeIssuer, clock: FrozenClock) -> None:
    """RFC 9728 §2: only the configured ``authorization_servers`` are trusted; an unknown
    ``iss`` is refused without fetching anything from it."""
    assert await rs.verify(rsa_key.sign(claims(clock.now, iss="https://evil.example"))) is None
    assert sum(issuer.hits.values()) == 0


async def test_jwks_endpoint_down_is_unavailable_never_accepted(rs: ResourceServer, rsa_key: SigningKey,
                                                                 issuer: FakeIssuer, clock: FrozenClock) -> None:
    """A failed JWKS fetch is 503 (VerifierUnavailable), not 401 and never acceptance; within
    the failure cooldown the issuer is not asked again."""
    issuer.fail["/tenant/jwks"] = 500
    token = rsa_key.sign(claims(clock.now))
    for _ in range(3):
        with pytest.raises(VerifierUnavailable):
            await rs.verify(token)
    assert issuer.hits["/tenant/jwks"] == 1
    del issuer.fail["/tenant/jwks"]
    clock.advance(6)
    assert await rs.verify(token) is not None


@pytest.mark.parametrize("body", [b"not json", b'{"keys": "nope"}', b"[]", b'{"no": "keys"}'])
async def test_broken_jwks_is_unavailable(rs: ResourceServer, rsa_key: SigningKey, issuer: FakeIssuer,
                                          clock: FrozenClock, body: bytes) -> None:
    """RFC 7517 §5: a JWK Set is an object with a ``keys`` array; anything else is a broken
    issuer (503), not a reason to refuse or accept the token."""
    issuer.bodies["/tenant/jwks"] = body
    with pytest.raises(VerifierUnavailable):
        await rs.verify(rsa_key.sign(claims(clock.now)))


async def test_verified_tokens_are_remembered_until_exp_and_at_most_a_minute(
    rs: ResourceServer, issuer: FakeIssuer, rsa_key: SigningKey, clock: FrozenClock
) -> None:
    """A repeated token skips the signature check, but never past its ``exp`` (RFC 7519 §4.1.4)
    nor past ``VERIFIED_CACHE_TTL``: a key withdrawn from the JWKS stops vouching for its tokens
    once the key set is refetched (here its max-age is the 60 s floor)."""
    issuer.jwks_headers = {"cache-control": "max-age=60"}
    token = rsa_key.sign(claims(clock.now))  # exp = now + 300
    assert await rs.verify(token) is not None
    jwks_path = issuer.jwks_uri.removeprefix(ISSUER)
    fetched = issuer.hits[jwks_path]
    issuer.keys.remove(rsa_key)  # the issuer withdraws the key
    assert await rs.verify(token) is not None  # remembered
    clock.advance(61)
    assert await rs.verify(token) is None  # rechecked: the key is gone (a refetch for the unknown kid)
    assert issuer.hits[jwks_path] >= fetched


async def test_a_remembered_token_still_expires(rs: ResourceServer, rsa_key: SigningKey, clock: FrozenClock) -> None:
    token = rsa_key.sign(claims(clock.now, exp=int(clock.now) + 20))
    assert await rs.verify(token) is not None
    clock.advance(20)
    assert await rs.verify(token) is not None  # past exp but within the 30 s leeway: rechecked, valid
    clock.advance(31)
    assert await rs.verify(token) is None
