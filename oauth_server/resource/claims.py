"""Scopes and roles out of a token's claims, and the operator's role → scopes mapping.

Issuers disagree on where they put these. RFC 9068 §2.2.3 and RFC 8693 §4.2 define ``scope``
as one space-separated string; Microsoft Entra and Okta send ``scp`` (a list, or a string).
Roles have no standard claim: RFC 9068 §2.2.3.1 borrows SCIM's ``roles``, Keycloak nests them
under ``realm_access.roles`` and ``resource_access.<client>.roles``. So the claim paths are
configuration, and a mapping turns roles into the scopes routes ask for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: A claim path: ``"realm_access.roles"`` (split on dots) or the segments themselves, for keys
#: that contain dots (a Keycloak client id may be a URL).
ClaimPath = str | Sequence[str]


def keycloak_client_roles(client_id: str) -> tuple[str, ...]:
    """Keycloak's client roles: ``resource_access.<client_id>.roles``, as segments (client ids
    may contain dots)."""
    return ("resource_access", client_id, "roles")


def _segments(path: ClaimPath) -> tuple[str, ...]:
    segments = tuple(path.split(".")) if isinstance(path, str) else tuple(path)
    if not segments or not all(isinstance(s, str) and s for s in segments):
        raise ValueError(f"invalid claim path {path!r}")
    return segments


def claim_at(claims: Mapping[str, Any], path: Sequence[str]) -> object:
    """The value at ``path`` inside nested JSON objects, or None where any step is missing."""
    value: object = claims
    for segment in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(segment)
    return value


def _strings(value: object) -> tuple[str, ...]:
    """A space-separated string or a list of strings; anything else carries nothing."""
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return ()


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def token_scopes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """RFC 9068 §2.2.3 ``scope`` (space-separated); when absent, ``scp`` (list or string)."""
    if "scope" in claims:
        return _unique(_strings(claims["scope"]))
    return _unique(_strings(claims.get("scp")))


@dataclass(frozen=True, slots=True)
class RoleRules:
    """Where an issuer's tokens carry roles, and which scopes each role grants.

    ``RoleRules(role_claims=("realm_access.roles",), role_scopes={"mcp-user": ("mcp:tools",)})``:
    a Keycloak token with realm role ``mcp-user`` may call routes that require ``mcp:tools``.
    """

    role_claims: tuple[ClaimPath, ...] = ("roles",)
    role_scopes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    _paths: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_paths", tuple(_segments(path) for path in self.role_claims))
        for role, scopes in self.role_scopes.items():
            if isinstance(scopes, str):
                raise ValueError(f"role_scopes[{role!r}] must be a sequence of scopes, not a string")

    def roles(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        """Every role found at any configured claim path."""
        return _unique(role for path in self._paths for role in _strings(claim_at(claims, path)))

    def scopes(self, claims: Mapping[str, Any], roles: Sequence[str]) -> tuple[str, ...]:
        """The token's own scopes, then those its roles grant."""
        mapped = (scope for role in roles for scope in self.role_scopes.get(role, ()))
        return _unique((*token_scopes(claims), *mapped))
