"""The example's MCP server: tools and a prompt, each checking the scope it needs.

``BearerAuthMiddleware`` lets in only tokens with ``mcp:tools``; finer rights (``mcp:prompts``,
``mcp:admin``) are checked here, per tool, from the caller's token, so a guest can use the basic
tools and still gets a clear error (not a crash, not a silent empty answer) for the admin one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError

# JSON-RPC "invalid params": the request is well formed but this caller may not have it.
_INVALID_PARAMS = -32602


def _caller() -> AccessToken:
    token = get_access_token()
    if token is None:  # only reachable if the app is served without BearerAuthMiddleware
        raise ToolError("not authenticated")
    return token


def _require_tool_scope(scope: str) -> AccessToken:
    token = _caller()
    if scope not in token.scopes:
        raise ToolError(f"permission denied: this tool needs the {scope} scope, and your token has "
                        f"{' '.join(token.scopes) or 'no scopes'}")
    return token


def build_mcp_server() -> MCPServer:
    """The tools ``whoami``, ``echo``, ``get_time``, ``protected-data`` and the prompt ``greeting``."""
    mcp = MCPServer("oauth_server example", instructions="A demo MCP server behind oauth_server.")

    @mcp.tool()
    def whoami() -> dict[str, object]:
        """Who is calling: the signed-in user, the client and the granted scopes (never the token)."""
        token = _require_tool_scope("mcp:tools")
        return {"user": token.subject, "client_id": token.client_id, "scopes": sorted(token.scopes)}

    @mcp.tool()
    def echo(text: str) -> str:
        """Return ``text`` unchanged."""
        _require_tool_scope("mcp:tools")
        return text

    @mcp.tool()
    def get_time() -> str:
        """The server's current time, ISO 8601 in UTC."""
        _require_tool_scope("mcp:tools")
        return datetime.now(UTC).isoformat(timespec="seconds")

    @mcp.tool(name="protected-data")
    def protected_data() -> dict[str, object]:
        """Data only an admin may read (needs the ``mcp:admin`` scope)."""
        token = _require_tool_scope("mcp:admin")
        return {"secret_plan": "world domination, phase 2", "read_by": token.subject}

    @mcp.prompt()
    def greeting(name: str = "there") -> str:
        """A friendly greeting (needs the ``mcp:prompts`` scope)."""
        token = _caller()
        if "mcp:prompts" not in token.scopes:
            raise MCPError(_INVALID_PARAMS, "permission denied: the greeting prompt needs the mcp:prompts scope")
        return f"Say hello to {name} on behalf of {token.subject}."

    return mcp
