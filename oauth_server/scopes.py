"""Scope strings (RFC 6749 §3.3): space-delimited, case-sensitive, order irrelevant."""

from __future__ import annotations

import re
from collections.abc import Iterable

from oauth_server.errors import InvalidScope

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
MAX_SCOPE_LENGTH = 2000
#: OpenID Connect Core §11: requests a refresh token. MCP 2026-07-28 (Refresh Tokens): an
#: authorization server scope, never a resource's ("refresh tokens are not a resource requirement").
OFFLINE_ACCESS = "offline_access"


def is_scope_token(name: str) -> bool:
    """Whether ``name`` is one scope as RFC 6749 §3.3 spells it."""
    return _SCOPE_TOKEN.fullmatch(name) is not None


def parse(scope: str | None) -> tuple[str, ...] | None:
    """Split a scope parameter. None or empty means "not requested"; duplicates collapse."""
    if scope is None:
        return None
    if len(scope) > MAX_SCOPE_LENGTH:
        raise InvalidScope("scope is too long")
    parts = scope.split(" ")
    names = [p for p in parts if p]
    if not names:
        return None
    for name in names:
        if not is_scope_token(name):
            raise InvalidScope("scope contains an invalid character")
    return tuple(dict.fromkeys(names))


def join(scopes: Iterable[str]) -> str:
    return " ".join(scopes)


def require_subset(requested: tuple[str, ...], allowed: Iterable[str], what: str) -> tuple[str, ...]:
    allowed_set = set(allowed)
    unknown = [s for s in requested if s not in allowed_set]
    if unknown:
        raise InvalidScope(f"scope not {what}: {' '.join(unknown)}")
    return requested


def resource_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes a protected resource names: all but ``offline_access``.

    MCP 2026-07-28 (Refresh Tokens): "MCP Servers (Protected Resources) SHOULD NOT include
    ``offline_access`` in ``WWW-Authenticate`` scope or Protected Resource Metadata
    ``scopes_supported``, as refresh tokens are not a resource requirement." A client that takes
    its scopes from those places then never asks for it unless it chooses to.
    """
    return [scope for scope in scopes if scope != OFFLINE_ACCESS]
