"""Resource indicators (RFC 8707): which protected resource a token is for.

The MCP authorization specification requires clients to send ``resource`` at /authorize and
/token, and servers to bind tokens to it, so a token for one MCP server is useless at another.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from oauth_server.errors import InvalidTarget
from oauth_server.settings import OAuthServerSettings


def canonical_resource(settings: OAuthServerSettings, values: Sequence[str]) -> str:
    """RFC 8707 §2: absolute URI, no fragment, one of ours. Returns our canonical spelling.

    No ``resource`` at all means the server's own MCP resource: clients that predate RFC 8707
    still get a token, and it is still audience-bound.
    """
    if not values:
        return settings.resource_server_url
    if len(values) > 1:
        raise InvalidTarget("only one resource may be requested")
    value = values[0]
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc or "#" in value:
        raise InvalidTarget("resource must be an absolute URI without a fragment (RFC 8707 §2)")
    for known in settings.resources:
        if same_resource(value, known):
            return known
    raise InvalidTarget("resource is not served by this authorization server")


def same_resource(a: str, b: str) -> bool:
    """Equal but for a trailing slash, which clients add or drop (MCP: canonical server URI)."""
    return a.rstrip("/") == b.rstrip("/")


def resource_matches(requested: str | None, granted: str) -> bool:
    """RFC 8707 §2.2: a resource at the token endpoint must be the one granted (None: not asked)."""
    return requested is None or same_resource(requested, granted)
