"""``clients list|show|create|delete``: JSON shapes, the secret shown once and stored hashed, exit codes."""

from __future__ import annotations

import asyncio
import json

import pytest

from oauth_server import tokens
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.records import Client
from tests.cli.conftest import invoke


def _stored(url: str, client_id: str) -> Client | None:
    async def get() -> Client | None:
        model = SQLAlchemyOAuthServerModel(url, access_token_cache_ttl=0, client_cache_ttl=0)
        try:
            return await model.get_client(client_id)
        finally:
            await model.close()

    return asyncio.run(get())


def test_create_list_show_delete(url: str) -> None:
    created = invoke("clients", "create", "--database-url", url, "--json", "--name", "billing",
                     "--redirect-uri", "https://app.example/cb", "--redirect-uri", "http://127.0.0.1/cb",
                     "--scope", "mcp:read", "--scopes-supported", "mcp:read,mcp:tools")
    assert created.exit_code == 0, created.output
    body = json.loads(created.stdout)
    client_id, secret = body["client_id"], body["client_secret"]
    assert body["redirect_uris"] == ["https://app.example/cb", "http://127.0.0.1/cb"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic" and body["scope"] == "mcp:read"
    stored = _stored(url, client_id)
    assert stored is not None and stored.client_secret_digest == tokens.digest(secret)

    listed = invoke("clients", "list", "--database-url", url, "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert isinstance(rows, list) and [row["client_id"] for row in rows] == [client_id]
    assert "client_secret" not in rows[0] and rows[0]["has_secret"] is True
    assert rows[0]["client_id_issued_at_iso"].endswith("Z")
    assert client_id in invoke("clients", "list", "--database-url", url).stdout

    shown = invoke("clients", "show", client_id, "--database-url", url, "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["client_name"] == "billing"
    assert secret not in shown.stdout
    assert "client_name: billing" in invoke("clients", "show", client_id, "--database-url", url).stdout

    deleted = invoke("clients", "delete", client_id, "--database-url", url, "--json")
    assert deleted.exit_code == 0 and json.loads(deleted.stdout) == {"deleted": client_id}
    assert _stored(url, client_id) is None


def test_human_create_prints_the_secret_once(url: str) -> None:
    created = invoke("clients", "create", "--database-url", url, "--redirect-uri", "https://app.example/cb",
                     "--auth-method", "client_secret_post")
    assert created.exit_code == 0, created.output
    lines = created.stdout.splitlines()
    assert lines[0].startswith("client_id: ") and lines[1].startswith("client_secret: ")
    assert "SHA-256 digest" in lines[2]


def test_public_client_has_no_secret(url: str) -> None:
    created = invoke("clients", "create", "--database-url", url, "--json", "--redirect-uri", "http://127.0.0.1/cb",
                     "--auth-method", "none")
    assert created.exit_code == 0 and "client_secret" not in json.loads(created.stdout)


def test_no_such_client_is_1(url: str) -> None:
    for args in (("clients", "show", "nope"), ("clients", "delete", "nope")):
        result = invoke(*args, "--database-url", url)
        assert result.exit_code == 1 and result.stderr == "Error: no such client: nope\n"


def test_refused_metadata_is_2_and_stores_nothing(url: str) -> None:
    for extra in (("--redirect-uri", "ftp://x/cb"), ("--redirect-uri", "https://a/cb", "--scope", "admin")):
        result = invoke("clients", "create", "--database-url", url, *extra)
        assert result.exit_code == 2 and result.stderr.startswith("Error: client refused:"), result.output
    assert json.loads(invoke("clients", "list", "--database-url", url, "--json").stdout) == []


def test_many_clients_page_through(sqlite_url: str) -> None:
    assert invoke("migrate", "--database-url", sqlite_url).exit_code == 0
    for _ in range(105):
        assert invoke("clients", "create", "--database-url", sqlite_url, "--redirect-uri",
                      "https://app.example/cb").exit_code == 0
    rows = json.loads(invoke("clients", "list", "--database-url", sqlite_url, "--json").stdout)
    assert len(rows) == 105 and len({row["client_id"] for row in rows}) == 105


def test_generated_ids_never_look_like_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client id is passed to this command line as an argument; one starting with ``-`` was read
    as an option (``clients show -abc`` → "No such option"). ``new_id`` draws again instead."""
    draws = iter(["-looks-like-an-option", "-again", "fine-id"])
    monkeypatch.setattr("oauth_server.tokens.secrets.token_urlsafe", lambda _: next(draws))
    assert tokens.new_id() == "fine-id"
