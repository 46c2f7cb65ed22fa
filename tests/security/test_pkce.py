"""PKCE rules: RFC 7636, OAuth 2.1 §4.1.1 and §4.1.3, RFC 9700 §2.1.1 and §4.8."""

from __future__ import annotations

import httpx
import pytest

from oauth_server import pkce
from oauth_server.errors import InvalidRequest
from tests.helpers import authorize_params, exchange, get_code, query, register


async def reject_at_authorize(http: httpx.AsyncClient, **overrides: str | None) -> str:
    client = await register(http)
    response = await http.get("/authorize", params=authorize_params(client.client_id, **overrides))
    return query(response.headers["location"])["error"]


async def test_pkce_required_on_every_code_request(http: httpx.AsyncClient) -> None:
    """OAuth 2.1 §4.1.1: code_challenge is REQUIRED."""
    assert await reject_at_authorize(http, code_challenge=None, code_challenge_method=None) == "invalid_request"


async def test_pkce_plain_method_refused(http: httpx.AsyncClient) -> None:
    """RFC 9700 §2.1.1: S256 only; plain would leak the verifier to whoever sees the request."""
    assert await reject_at_authorize(http, code_challenge_method="plain") == "invalid_request"


async def test_pkce_challenge_without_method_counts_as_plain(http: httpx.AsyncClient) -> None:
    """RFC 7636 §4.3: method defaults to plain when absent, so absence is refused."""
    assert await reject_at_authorize(http, code_challenge_method=None) == "invalid_request"


@pytest.mark.parametrize("challenge", ["a" * 42, "a" * 44, "a" * 42 + "=", "a" * 42 + "+", "a" * 42 + "/", ""])
def test_pkce_challenge_length_and_charset(challenge: str) -> None:
    """RFC 7636 §4.2: an S256 challenge is exactly 43 base64url characters."""
    with pytest.raises(InvalidRequest):
        pkce.check_challenge(challenge, "S256")


@pytest.mark.parametrize("verifier", ["a" * 42, "a" * 129, "a" * 42 + "!", "a" * 42 + " ", "é" * 43])
def test_pkce_verifier_length_and_charset(verifier: str) -> None:
    """RFC 7636 §4.1: verifier is 43-128 unreserved characters; anything else never verifies."""
    assert not pkce.verify(verifier, pkce.s256("a" * 43))


async def test_pkce_wrong_verifier_refused_and_code_burned(http: httpx.AsyncClient) -> None:
    """RFC 7636 §4.6: mismatch → invalid_grant; the code cannot be tried again."""
    client = await register(http)
    code = await get_code(http, client.client_id)
    assert (await exchange(http, client.client_id, code, code_verifier="x" * 43)).json()["error"] == "invalid_grant"
    assert (await exchange(http, client.client_id, code)).json()["error"] == "invalid_grant"


def test_pkce_downgrade_code_without_challenge_never_redeems() -> None:
    """RFC 9700 §4.8.2: a code stored without a challenge cannot be redeemed with any verifier."""
    for verifier in ("a" * 43, "", "plain"):
        assert not pkce.verify(verifier, "")
