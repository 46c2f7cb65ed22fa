"""``grants list|revoke`` and ``tokens revoke``: what users have authorized, and taking it back.

Every issued code and token belongs to a grant, so revoking grants is how tokens are revoked:
``revoke_grant`` ends the grant and every credential of it in one step.
"""

from __future__ import annotations

import time
from typing import Any

import click

from oauth_server.cli.common import ConfigError, database_options, emit, iso, table, with_model
from oauth_server.model.base import OAuthServerModel
from oauth_server.records import Grant

#: Grants revoked per round by ``tokens revoke`` (each round lists the ones still live).
PAGE = 100


def described(grant: Grant) -> dict[str, Any]:
    return {"grant_id": grant.grant_id, "client_id": grant.client_id, "subject": grant.subject,
            "scopes": list(grant.scopes), "resource": grant.resource, "created_at": iso(grant.created_at),
            "expires_at": iso(grant.expires_at), "revoked_at": iso(grant.revoked_at),
            "last_used_at": iso(grant.last_used_at)}


@click.group("grants")
def grants_group() -> None:
    """Grants: one user's authorization of one client."""


@grants_group.command("list")
@database_options
@click.option("--subject", help="Only this user's grants.")
@click.option("--client", "client_id", help="Only this client's grants.")
@click.option("--include-revoked", is_flag=True, help="Also revoked grants (kept until they expire).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1), help="At most this many.")
def list_command(database_url: str | None, as_json: bool, subject: str | None, client_id: str | None,
                 include_revoked: bool, limit: int) -> None:
    """Grants, newest first (--json: a JSON array)."""
    grants = with_model(database_url, lambda model: model.list_grants(
        subject=subject, client_id=client_id, include_revoked=include_revoked, limit=limit))
    rows = [described(grant) for grant in grants]
    emit(rows, as_json, lambda: table([{**row, "scopes": " ".join(row["scopes"])} for row in rows],
                                      ["grant_id", "client_id", "subject", "scopes", "created_at", "expires_at",
                                       "revoked_at"]))


@grants_group.command("revoke")
@database_options
@click.argument("grant_id")
def revoke_command(database_url: str | None, as_json: bool, grant_id: str) -> None:
    """Revoke a grant and every code and token issued under it.

    Idempotent: the model has no lookup by grant ID, so an unknown ID is revoked as a no-op
    (exit 0); `grants list` shows the IDs.
    """

    async def revoke(model: OAuthServerModel) -> None:
        await model.revoke_grant(grant_id, int(time.time()))

    with_model(database_url, revoke)
    emit({"revoked": [grant_id]}, as_json, lambda: click.echo(f"revoked grant {grant_id}"))


@click.group("tokens")
def tokens_group() -> None:
    """Tokens, revoked by their grants."""


@tokens_group.command("revoke")
@database_options
@click.option("--subject", help="Revoke every grant (and token) of this user.")
@click.option("--client", "client_id", help="Revoke every grant (and token) of this client.")
def tokens_revoke_command(database_url: str | None, as_json: bool, subject: str | None,
                          client_id: str | None) -> None:
    """Revoke every live grant of a subject or a client, with all of its tokens.

    Both options together revoke that user's grants of that client only. The client itself
    stays registered (`clients delete` removes it).
    """
    if subject is None and client_id is None:
        raise ConfigError("tokens revoke needs --subject or --client")

    async def revoke_all(model: OAuthServerModel) -> list[str]:
        revoked: list[str] = []
        while True:
            live = await model.list_grants(subject=subject, client_id=client_id, limit=PAGE)
            fresh = [grant.grant_id for grant in live if grant.grant_id not in revoked]
            if not fresh:  # revoked grants leave the listing; this also stops a model that ignored one
                return revoked
            now = int(time.time())
            for grant_id in fresh:
                await model.revoke_grant(grant_id, now)
            revoked.extend(fresh)

    revoked = with_model(database_url, revoke_all)
    emit({"revoked": revoked}, as_json, lambda: click.echo(f"revoked {len(revoked)} grants"))
