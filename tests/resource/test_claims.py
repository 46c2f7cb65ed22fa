"""Scopes and roles from the claims issuers actually send, and the role → scopes mapping."""

from __future__ import annotations

from typing import Any

import pytest

from oauth_server.resource import IssuerConfig, RoleRules, keycloak_client_roles
from oauth_server.resource.claims import token_scopes
from tests.helpers import FrozenClock
from tests.resource.support import ISSUER, FakeIssuer, SigningKey, claims, resource_server

KEYCLOAK_CLAIMS: dict[str, Any] = {
    "realm_access": {"roles": ["offline_access", "mcp-user"]},
    "resource_access": {
        "https://mcp.example/mcp": {"roles": ["tool-admin"]},
        "account": {"roles": ["manage-account"]},
    },
}


@pytest.mark.parametrize(("token_claims", "scopes"), [
    ({"scope": "a b  c"}, ("a", "b", "c")),
    ({"scp": ["a", "b"]}, ("a", "b")),
    ({"scp": "a b"}, ("a", "b")),
    ({"scope": "a", "scp": ["b"]}, ("a",)),
    ({"scope": ["not", "a", "string"]}, ("not", "a", "string")),
    ({"scp": [1, 2]}, ()),
    ({}, ()),
])
def test_scopes_from_scope_or_scp(token_claims: dict[str, Any], scopes: tuple[str, ...]) -> None:
    """RFC 9068 §2.2.3 ``scope`` (space-separated); ``scp`` as Entra and Okta send it."""
    assert token_scopes(token_claims) == scopes


def test_keycloak_realm_roles() -> None:
    rules = RoleRules(role_claims=("realm_access.roles",))
    assert rules.roles(KEYCLOAK_CLAIMS) == ("offline_access", "mcp-user")


def test_keycloak_client_roles_with_dots_in_the_client_id() -> None:
    """``resource_access.<client>.roles``: segments, since a client id may be a URL."""
    rules = RoleRules(role_claims=(keycloak_client_roles("https://mcp.example/mcp"), "realm_access.roles"))
    assert rules.roles(KEYCLOAK_CLAIMS) == ("tool-admin", "offline_access", "mcp-user")


def test_missing_or_malformed_role_claims_carry_no_roles() -> None:
    rules = RoleRules(role_claims=("roles", "realm_access.roles"))
    assert rules.roles({"roles": "admin"}) == ("admin",)
    assert rules.roles({"realm_access": ["x"]}) == ()
    assert rules.roles({"roles": [{"name": "admin"}]}) == ()


def test_roles_map_to_scopes() -> None:
    rules = RoleRules(role_claims=("realm_access.roles",), role_scopes={"mcp-user": ("mcp:tools", "mcp:prompts")})
    roles = rules.roles(KEYCLOAK_CLAIMS)
    assert rules.scopes({"scope": "openid mcp:tools", **KEYCLOAK_CLAIMS}, roles) == ("openid", "mcp:tools",
                                                                                     "mcp:prompts")


def test_role_scopes_must_be_sequences() -> None:
    with pytest.raises(ValueError):
        RoleRules(role_scopes={"admin": "mcp:tools"})
    with pytest.raises(ValueError):
        RoleRules(role_claims=("realm_access..roles",))


async def test_keycloak_token_end_to_end(issuer: FakeIssuer, rsa_key: SigningKey, clock: FrozenClock) -> None:
    """A Keycloak-shaped token (``typ: JWT``, ``scope`` without the MCP scope, realm roles):
    the mapping grants ``mcp:tools`` and the record carries the roles."""
    config = IssuerConfig(ISSUER, accept_typ_jwt=True, role_claims=("realm_access.roles",),
                          role_scopes={"mcp-user": ("mcp:tools",)})
    rs = resource_server(clock, config, issuers=(issuer,))
    token = rsa_key.sign(claims(clock.now, scope="openid profile", azp="inspector", client_id=None,
                                **KEYCLOAK_CLAIMS), typ="JWT")
    record = await rs.verify(token)
    assert record is not None
    assert record.roles == ("offline_access", "mcp-user")
    assert record.scopes == ("openid", "profile", "mcp:tools")
    assert record.client_id == "inspector"
