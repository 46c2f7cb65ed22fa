"""``OAuthServerSettings`` refuses a bad value when it is built, not on the first request."""

from __future__ import annotations

from typing import Any

import pytest

from oauth_server import OAuthServerSettings

BASE: dict[str, Any] = {"issuer_url": "https://as.example", "resource_server_url": "https://as.example/mcp",
                        "authorization_url": "https://as.example/consent"}


@pytest.mark.parametrize(("changes", "message"), [
    ({"issuer_url": "http://as.example"}, "https"),
    ({"resource_server_url": "https://as.example/mcp#x"}, "fragment"),
    ({"extra_resources": ("not a url",)}, "extra_resources"),
    ({"extra_resources": ("http://other.example/mcp",)}, "https"),
    ({"scopes_supported": ("bad scope",)}, "invalid scope"),
    ({"scopes_supported": ("a",), "default_scopes": ("b",)}, "default_scopes"),
    ({"access_token_lifetime": 0}, "positive"),
    ({"client_secret_lifetime": -1}, ">= 0"),
    ({"access_token_format": "paseto"}, "access_token_format"),
    ({"signing_algorithm": "HS256"}, "signing_algorithm"),
])
def test_bad_settings_are_refused_at_construction(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OAuthServerSettings(**{**BASE, **changes})


def test_http_is_allowed_on_localhost_only() -> None:
    """OAuth 2.1 §1.5: TLS everywhere but loopback (development)."""
    settings = OAuthServerSettings(issuer_url="http://localhost:8000", resource_server_url="http://127.0.0.1:8000/mcp",
                                   authorization_url="http://localhost:8000/consent",
                                   extra_resources=("http://localhost:8001/mcp",))
    assert settings.resources == ("http://127.0.0.1:8000/mcp", "http://localhost:8001/mcp")
