"""``RateLimits.check``: a limit that counts only failures (the example's sign-in) tests the budget
without spending it, and refuses once ``hit`` has used it up."""

from __future__ import annotations

import pytest

from oauth_server.web.limits import RateLimited, RateLimits


async def test_check_does_not_count_and_refuses_once_hits_used_the_budget() -> None:
    limits = RateLimits({"login": "3/minute"})
    for _ in range(10):
        await limits.check("login", "alice")  # checks alone never use the budget
    for _ in range(3):
        await limits.hit("login", "alice")
    with pytest.raises(RateLimited) as refused:
        await limits.check("login", "alice")
    assert refused.value.status_code == 429 and refused.value.retry_after >= 1
    await limits.check("login", "bob")  # per key
    await limits.check("other", "alice")  # an unknown limit name limits nothing


async def test_check_is_off_when_limits_are_disabled() -> None:
    limits = RateLimits({"login": "1/minute"}, enabled=False)
    await limits.hit("login", "alice")
    await limits.hit("login", "alice")
    await limits.check("login", "alice")
