"""The public API is ``oauth_server.__all__``: sorted, importable, and nothing else is promised."""

from __future__ import annotations

import oauth_server


def test_all_is_sorted_and_importable() -> None:
    assert oauth_server.__all__ == sorted(oauth_server.__all__)
    for name in oauth_server.__all__:
        assert getattr(oauth_server, name) is not None


def test_readme_snippet_names_are_public() -> None:
    for name in ("OAuthServer", "MemoryOAuthServerModel", "mcp_auth_router", "require_bearer_auth",
                 "BearerAuthMiddleware", "OAuthServerModel", "consent_router"):
        assert name in oauth_server.__all__
