"""oauth_server: an OAuth 2.1 authorization server for MCP servers.

The public API is ``__all__``; everything else may change. The core (rules, records, models)
imports no web framework and not ``mcp``: the names that need them (the router, the bearer
checks, the MCP SDK adapter ``OAuthServer``) and the SQL model (an optional extra) are loaded
on first use.
"""

import importlib
import typing

from oauth_server.connected_apps import ConnectedApp
from oauth_server.errors import OAuthError, StorageUnavailable
from oauth_server.model.base import OAuthServerModel
from oauth_server.model.memory import MemoryOAuthServerModel
from oauth_server.records import (
    AccessToken,
    AuthorizationCode,
    Client,
    DeviceAuthorization,
    Grant,
    PendingAuthorization,
    RefreshToken,
)
from oauth_server.server import AuthorizationServer
from oauth_server.settings import OAuthServerSettings, TrustedIdentityProvider

if typing.TYPE_CHECKING:
    from oauth_server.integrations.mcp_sdk import OAuthServer
    from oauth_server.keys import SigningKeyError
    from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
    from oauth_server.resource import (
        IssuerConfig,
        LocalVerifier,
        ResourceServer,
        TokenVerifier,
        VerifiedToken,
        VerifierUnavailable,
    )
    from oauth_server.web.bearer import BearerAuthMiddleware, require_bearer_auth
    from oauth_server.web.limits import RateLimits
    from oauth_server.web.resource_metadata import protected_resource_router
    from oauth_server.web.router import consent_router, mcp_auth_router

#: Public names loaded on first use, and the module each lives in.
_LAZY = {
    "OAuthServer": "oauth_server.integrations.mcp_sdk",
    "SQLAlchemyOAuthServerModel": "oauth_server.model.sqlalchemy",
    "BearerAuthMiddleware": "oauth_server.web.bearer",
    "require_bearer_auth": "oauth_server.web.bearer",
    "RateLimits": "oauth_server.web.limits",
    "SigningKeyError": "oauth_server.keys",
    "IssuerConfig": "oauth_server.resource",
    "LocalVerifier": "oauth_server.resource",
    "ResourceServer": "oauth_server.resource",
    "TokenVerifier": "oauth_server.resource",
    "VerifiedToken": "oauth_server.resource",
    "VerifierUnavailable": "oauth_server.resource",
    "protected_resource_router": "oauth_server.web.resource_metadata",
    "consent_router": "oauth_server.web.router",
    "mcp_auth_router": "oauth_server.web.router",
}

__all__ = [
    "AccessToken",
    "AuthorizationCode",
    "AuthorizationServer",
    "BearerAuthMiddleware",
    "Client",
    "ConnectedApp",
    "DeviceAuthorization",
    "Grant",
    "IssuerConfig",
    "LocalVerifier",
    "MemoryOAuthServerModel",
    "OAuthError",
    "OAuthServer",
    "OAuthServerModel",
    "OAuthServerSettings",
    "PendingAuthorization",
    "RateLimits",
    "RefreshToken",
    "ResourceServer",
    "SQLAlchemyOAuthServerModel",
    "SigningKeyError",
    "StorageUnavailable",
    "TokenVerifier",
    "TrustedIdentityProvider",
    "VerifiedToken",
    "VerifierUnavailable",
    "consent_router",
    "mcp_auth_router",
    "protected_resource_router",
    "require_bearer_auth",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'oauth_server' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
