"""``grants list|revoke`` and ``tokens revoke``: listing, revoking one grant, and every grant of a user or client."""

from __future__ import annotations

import json

from tests.cli.conftest import invoke, seed_grants


def _grants(url: str, *args: str) -> list[dict[str, object]]:
    result = invoke("grants", "list", "--database-url", url, "--json", *args)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_list_filters_and_shapes(url: str) -> None:
    alice, bob = seed_grants(url, ("alice", "c1", 3600), ("bob", "c2", 3600))
    rows = _grants(url)
    assert {row["grant_id"] for row in rows} == {alice, bob}
    assert set(rows[0]) == {"grant_id", "client_id", "subject", "scopes", "resource", "created_at", "expires_at",
                            "revoked_at", "last_used_at"}
    assert str(rows[0]["created_at"]).endswith("Z") and rows[0]["revoked_at"] is None
    assert rows[0]["last_used_at"] is None  # seeded grants issued no tokens
    assert [row["grant_id"] for row in _grants(url, "--subject", "alice")] == [alice]
    assert [row["grant_id"] for row in _grants(url, "--client", "c2")] == [bob]
    human = invoke("grants", "list", "--database-url", url)
    assert human.exit_code == 0 and alice in human.stdout and "GRANT_ID" in human.stdout


def test_revoke_one_grant(url: str) -> None:
    alice, bob = seed_grants(url, ("alice", "c1", 3600), ("bob", "c1", 3600))
    result = invoke("grants", "revoke", alice, "--database-url", url, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"revoked": [alice]}
    assert [row["grant_id"] for row in _grants(url)] == [bob]
    revoked = [row for row in _grants(url, "--include-revoked") if row["grant_id"] == alice]
    assert revoked and str(revoked[0]["revoked_at"]).endswith("Z")


def test_tokens_revoke_by_subject_and_by_client(url: str) -> None:
    seed_grants(url, ("alice", "c1", 3600), ("alice", "c2", 3600), ("bob", "c1", 3600), ("carol", "c3", 3600))
    by_subject = invoke("tokens", "revoke", "--subject", "alice", "--database-url", url, "--json")
    assert by_subject.exit_code == 0 and len(json.loads(by_subject.stdout)["revoked"]) == 2
    by_client = invoke("tokens", "revoke", "--client", "c1", "--database-url", url)
    assert by_client.exit_code == 0 and by_client.stdout == "revoked 1 grants\n"
    assert [row["subject"] for row in _grants(url)] == ["carol"]


def test_tokens_revoke_needs_a_filter(url: str) -> None:
    result = invoke("tokens", "revoke", "--database-url", url)
    assert result.exit_code == 2 and "--subject or --client" in result.stderr
