"""Resource-server mode: protect an MCP server whose authorization server is elsewhere.

Framework-free, like the rest of the core: the web layer (``require_bearer_auth``,
``BearerAuthMiddleware``, ``protected_resource_router``) takes any ``TokenVerifier`` from here.
"""

from oauth_server.resource.claims import RoleRules, keycloak_client_roles
from oauth_server.resource.discovery import IssuerMetadata, oauth_metadata_url, oidc_metadata_url
from oauth_server.resource.introspection import IntrospectionVerifier
from oauth_server.resource.issuer import IssuerConfig, IssuerVerifier
from oauth_server.resource.jwks import KeySet
from oauth_server.resource.local import LocalVerifier
from oauth_server.resource.resource_server import ResourceServer, resource_fetch_policy
from oauth_server.resource.verified import TokenVerifier, VerifiedToken, VerifierUnavailable
from oauth_server.resource.verifier import DEFAULT_ALGORITHMS, JWTVerifier

__all__ = [
    "DEFAULT_ALGORITHMS",
    "IntrospectionVerifier",
    "IssuerConfig",
    "IssuerMetadata",
    "IssuerVerifier",
    "JWTVerifier",
    "KeySet",
    "LocalVerifier",
    "ResourceServer",
    "RoleRules",
    "TokenVerifier",
    "VerifiedToken",
    "VerifierUnavailable",
    "keycloak_client_roles",
    "oauth_metadata_url",
    "oidc_metadata_url",
    "resource_fetch_policy",
]
