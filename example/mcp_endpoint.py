"""The MCP endpoint both roles of the example serve: the MCP server at exactly ``/mcp``, behind
``BearerAuthMiddleware``, whoever verifies the tokens (our authorization server in the same
process, or a ``ResourceServer`` trusting one elsewhere).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route

from example.settings import ExampleSettings
from example.tools import build_mcp_server
from oauth_server import AuthorizationServer, BearerAuthMiddleware, TokenVerifier


def transport_security(settings: ExampleSettings) -> TransportSecuritySettings:
    """DNS rebinding protection for the MCP endpoint that also accepts the public host name.

    The SDK's default for a local server allows only localhost hosts, which would refuse every
    request once the example runs behind a real ``PUBLIC_URL``.
    """
    public = urlsplit(settings.public_url)
    origin = f"{public.scheme}://{public.netloc}"
    return TransportSecuritySettings(
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", public.netloc, f"{settings.host}:{settings.port}"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", origin],
    )


def mcp_route(settings: ExampleSettings, verifier: TokenVerifier | AuthorizationServer) -> tuple[MCPServer, Route]:
    """The MCP server (its session manager must run in the app's lifespan) and its ``/mcp`` route.

    Only the MCP endpoint needs a token; any other unknown path is a 404, not a Bearer challenge
    for a resource that does not exist. A route (not a mount) leaves the path the MCP app sees
    at /mcp, where its own route is, and takes every method without a redirect: SDK clients use
    exactly the resource URL {PUBLIC_URL}/mcp, the identifier RFC 9728 §3.3 compares as it is.
    /mcp/ is another URL and gets the app-wide trailing-slash redirect.
    """
    mcp = build_mcp_server()
    # Stateless with JSON answers unless MCP_SESSIONS=on: a session lives in one process's memory,
    # so with several workers behind a load balancer the next request of a session reaches a
    # process that never saw it (404); stateless, each request is complete in itself, and no
    # per-session task and stream is set up per client.
    stateless = not settings.mcp_sessions
    mcp_app = mcp.streamable_http_app(streamable_http_path="/mcp", transport_security=transport_security(settings),
                                      stateless_http=stateless, json_response=stateless)
    return mcp, Route("/mcp", BearerAuthMiddleware(mcp_app, verifier, ["mcp:tools"]))
