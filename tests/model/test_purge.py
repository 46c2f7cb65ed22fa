"""``OAuthServer.purge_expired``: clears a backlog of any size in bounded batches, and ends.

A model's ``purge_expired`` deletes one batch per kind; the server's loops over batches, so a
periodic purge cannot fall behind a server issuing more tokens per period than one batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from oauth_server import OAuthServer, OAuthServerModel, OAuthServerSettings
from tests.model.test_contract import NOW, access, code, open_grant

LATER = NOW + 10**6


async def long_grant(model: OAuthServerModel) -> None:
    """grant-1 and its code, outliving every token of these tests."""
    await open_grant(model, "grant-1", first_code=code(expires_at=LATER), expires_at=LATER)


def server_on(model: OAuthServerModel, clock: Callable[[], float]) -> OAuthServer:
    return OAuthServer(model, OAuthServerSettings(
        issuer_url="https://as.example", resource_server_url="https://as.example/mcp",
        authorization_url="https://as.example/consent", scopes_supported=("mcp:tools",),
    ), clock=clock)


async def test_server_purge_clears_a_backlog_larger_than_one_batch(model: OAuthServerModel) -> None:
    await long_grant(model)
    expired = [access(expires_at=NOW - 1 - n) for n in range(25)]
    live = access(expires_at=NOW + 10)
    for token in (*expired, live):
        await model.save_tokens(token, None)
    assert await server_on(model, lambda: NOW).purge_expired(batch=10, busy_share=1) == 25
    assert all([await model.get_access_token(t.token_digest) is None for t in expired])
    assert await model.get_access_token(live.token_digest) == live


async def test_server_purge_leaves_what_expires_after_it_began(model: OAuthServerModel) -> None:
    """The loop's cut-off is the time it began, so it ends even while records keep expiring."""
    ticks = itertools.count(NOW, 100)  # every reading of the clock is 100 s later
    await long_grant(model)
    later = access(expires_at=NOW + 50)
    await model.save_tokens(access(expires_at=NOW - 1), None)
    await model.save_tokens(later, None)
    assert await server_on(model, lambda: next(ticks)).purge_expired(batch=1, busy_share=1) == 1
    assert await model.get_access_token(later.token_digest) == later


async def test_server_purge_refuses_a_nonsense_share(model: OAuthServerModel) -> None:
    with pytest.raises(ValueError, match="busy_share"):
        await server_on(model, lambda: NOW).purge_expired(busy_share=0)
