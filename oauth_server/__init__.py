"""oauth_server: an OAuth 2.1 authorization server for MCP servers.

The public API is ``__all__``; everything else may change.
"""

from oauth_server.errors import OAuthError
from oauth_server.model.base import OAuthServerModel
from oauth_server.model.memory import MemoryOAuthServerModel
from oauth_server.records import AccessToken, AuthorizationCode, Client, PendingAuthorization, RefreshToken
from oauth_server.server import OAuthServer
from oauth_server.settings import OAuthServerSettings
from oauth_server.web.bearer import BearerAuthMiddleware, require_bearer_auth
from oauth_server.web.router import consent_router, mcp_auth_router

__all__ = [
    "AccessToken",
    "AuthorizationCode",
    "BearerAuthMiddleware",
    "Client",
    "MemoryOAuthServerModel",
    "OAuthError",
    "OAuthServer",
    "OAuthServerModel",
    "OAuthServerSettings",
    "PendingAuthorization",
    "RefreshToken",
    "consent_router",
    "mcp_auth_router",
    "require_bearer_auth",
]


def __getattr__(name: str) -> object:
    # The SQL model needs the optional sqlalchemy extra; import it only when asked for.
    if name == "SQLAlchemyOAuthServerModel":
        from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel

        return SQLAlchemyOAuthServerModel
    raise AttributeError(name)
