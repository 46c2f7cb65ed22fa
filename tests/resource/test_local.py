"""``LocalVerifier``: our own authorization server as a ``TokenVerifier``."""

from __future__ import annotations

import pytest

from oauth_server import LocalVerifier, OAuthServer, StorageUnavailable, VerifierUnavailable
from oauth_server.records import AccessToken
from oauth_server.resource.local import verified_token
from tests.conftest import ISSUER, RESOURCE


def record(resource: str = RESOURCE) -> AccessToken:
    return AccessToken(token_digest="d", grant_id="g", client_id="c", subject="alice", scopes=("mcp:tools",),
                       resource=resource, expires_at=2_000_000_000)


def test_record_converts_with_the_issuer() -> None:
    verified = verified_token(record(), ISSUER)
    assert (verified.subject, verified.client_id, verified.scopes) == ("alice", "c", ("mcp:tools",))
    assert verified.audience == (RESOURCE,) and verified.issuer == ISSUER
    assert verified.expires_at == 2_000_000_000 and verified.claims == {"iss": ISSUER}


async def test_token_for_another_of_our_resources_is_refused(server: OAuthServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 8707: the verifier protects one resource; a token for another is not valid here."""

    async def verify(token: str) -> AccessToken:
        return record("http://localhost:8000/other")

    monkeypatch.setattr(server, "verify_access_token", verify)
    assert await LocalVerifier(server).verify("t") is None
    assert await LocalVerifier(server, "http://localhost:8000/other").verify("t") is not None


async def test_storage_outage_is_verifier_unavailable(server: OAuthServer, monkeypatch: pytest.MonkeyPatch) -> None:
    async def verify(token: str) -> AccessToken:
        raise StorageUnavailable("down")

    monkeypatch.setattr(server, "verify_access_token", verify)
    with pytest.raises(VerifierUnavailable):
        await LocalVerifier(server).verify("t")
