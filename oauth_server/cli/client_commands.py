"""``clients list|show|create|delete``: registered clients, for an operator.

``create`` goes through the same rules as dynamic registration (``clients.build_client``), so
a client made here is one the server could have registered itself; its secret is printed once
and stored only as a SHA-256 digest.
"""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

import click

from oauth_server import clients
from oauth_server.cli.common import (
    ConfigError,
    Failed,
    database_options,
    emit,
    iso,
    issuer_option,
    settings,
    split_commas,
    table,
    with_model,
)
from oauth_server.clients import CLIENT_CREDENTIALS, JWT_BEARER
from oauth_server.errors import OAuthError
from oauth_server.grants.device_code import GRANT_TYPE as DEVICE_CODE
from oauth_server.model.base import OAuthServerModel
from oauth_server.records import Client

#: Clients read per page while listing (``list_clients`` pages by ``client_id``).
PAGE = 100


def described(client: Client) -> dict[str, Any]:
    """The RFC 7591 client information (never a secret), with its times also in ISO 8601."""
    body = clients.client_information(client)
    body["client_id_issued_at_iso"] = iso(client.client_id_issued_at)
    expires = client.client_secret_expires_at
    body["has_secret"] = client.client_secret_digest is not None
    if expires is not None:
        body["client_secret_expires_at"] = expires
        body["client_secret_expires_at_iso"] = iso(expires) if expires else None
    return body


@click.group("clients")
def clients_group() -> None:
    """Registered clients: list, show, create, delete."""


@clients_group.command("list")
@database_options
def list_command(database_url: str | None, as_json: bool) -> None:
    """Every client, ordered by client_id (--json: a JSON array)."""

    async def every(model: OAuthServerModel) -> list[Client]:
        found: list[Client] = []
        while page := await model.list_clients(limit=PAGE, after=found[-1].client_id if found else None):
            found.extend(page)
        return found

    rows = [described(client) for client in with_model(database_url, every)]
    emit(rows, as_json, lambda: table(
        [{**row, "issued_at": row["client_id_issued_at_iso"], "name": row.get("client_name"),
          "auth_method": row["token_endpoint_auth_method"], "grant_types": ",".join(row["grant_types"])}
         for row in rows],
        ["client_id", "name", "auth_method", "grant_types", "issued_at"]))


@clients_group.command("show")
@database_options
@click.argument("client_id")
def show_command(database_url: str | None, as_json: bool, client_id: str) -> None:
    """One client's registration; exit 1 if there is no such client."""
    client = with_model(database_url, lambda model: model.get_client(client_id))
    if client is None:
        raise Failed(f"no such client: {client_id}")
    body = described(client)
    emit(body, as_json, lambda: _print_fields(body))


def _print_fields(body: dict[str, Any]) -> None:
    for name, value in body.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        click.echo(f"{name}: {shown}")


@clients_group.command("create")
@database_options
@issuer_option
@click.option("--name", help="client_name shown on the consent page.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="A redirect URI (repeatable); required with the authorization_code grant.")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(["authorization_code", "refresh_token", CLIENT_CREDENTIALS, JWT_BEARER, DEVICE_CODE]),
              help="A grant type (repeatable; default authorization_code and refresh_token). "
                   "client_credentials and jwt-bearer need a confidential --auth-method; the "
                   "device_code grant (RFC 8628) also suits public clients.")
@click.option("--auth-method", default="client_secret_basic", show_default=True,
              type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]),
              help="How the client authenticates at the token endpoint; 'none' makes a public client, "
                   "private_key_jwt needs --jwks-file or --jwks-uri.")
@click.option("--jwks-file", type=click.File("r"),
              help="private_key_jwt: a JSON file with the client's public JWK Set.")
@click.option("--jwks-uri", help="private_key_jwt: the https URL of the client's public JWK Set.")
@click.option("--scope", help="Space-separated scopes the client may ask for (must be in --scopes-supported).")
@click.option("--scopes-supported", multiple=True, callback=split_commas, envvar="OAUTH_SCOPES_SUPPORTED",
              help="The server's scopes (repeatable or comma list; default $OAUTH_SCOPES_SUPPORTED): "
                   "--scope is validated against them as registration would.")
def create_command(database_url: str | None, as_json: bool, issuer: str, name: str | None,
                   redirect_uris: tuple[str, ...], grant_types: tuple[str, ...], auth_method: str,
                   jwks_file: TextIO | None, jwks_uri: str | None, scope: str | None,
                   scopes_supported: tuple[str, ...]) -> None:
    """Register a client, confidential by default; its secret is printed once, stored hashed.

    Validated by the same rules as dynamic registration (RFC 7591), so --issuer and
    --scopes-supported should match the running server's settings; unlike registration, an
    operator may create client_credentials (machine) and jwt-bearer (ID-JAG) clients. Exit 2 if
    the metadata is refused.
    """
    metadata: dict[str, Any] = {"token_endpoint_auth_method": auth_method}
    if redirect_uris:
        metadata["redirect_uris"] = list(redirect_uris)
    if grant_types:
        metadata["grant_types"] = list(grant_types)
    if name is not None:
        metadata["client_name"] = name
    if scope is not None:
        metadata["scope"] = scope
    if jwks_uri is not None:
        metadata["jwks_uri"] = jwks_uri
    if jwks_file is not None:
        try:
            metadata["jwks"] = json.load(jwks_file)
        except ValueError:
            raise ConfigError("--jwks-file is not JSON") from None
    try:
        rules = settings(issuer, scopes_supported, device_authorization_grant=True)
        client, secret = clients.build_client(metadata, rules, int(time.time()),
                                              allow_client_credentials=True, allow_jwt_bearer=True)
    except OAuthError as exc:
        raise ConfigError(f"client refused: {exc}") from None

    async def save(model: OAuthServerModel) -> None:
        await model.save_client(client)

    with_model(database_url, save)
    body = {**clients.client_information(client, secret), "client_id_issued_at_iso": iso(client.client_id_issued_at)}

    def human() -> None:
        click.echo(f"client_id: {client.client_id}")
        if secret is not None:
            expires = iso(client.client_secret_expires_at) if client.client_secret_expires_at else "never"
            click.echo(f"client_secret: {secret}")
            click.echo(f"  shown once: only its SHA-256 digest is stored (expires {expires})")

    emit(body, as_json, human)


@clients_group.command("delete")
@database_options
@click.argument("client_id")
def delete_command(database_url: str | None, as_json: bool, client_id: str) -> None:
    """Delete a client and every grant, code and token it holds; exit 1 if there is no such client."""
    deleted = with_model(database_url, lambda model: model.delete_client(client_id, int(time.time())))
    if not deleted:
        raise Failed(f"no such client: {client_id}")
    emit({"deleted": client_id}, as_json, lambda: click.echo(f"deleted client {client_id}"))
