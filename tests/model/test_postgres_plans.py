"""On Postgres, every statement the SQL model runs by key or by batch uses an index.

With a few thousand rows and fresh statistics (``ANALYZE``; no planner switches), the token
lookups, the code consume, the issuance statements (which lock the grant row), the
``revoke_grant`` update and deletes, the ``delete_client`` transaction (RFC 7592 §2.3: every
grant of the client, by index), ``replace_client``, ``list_grants`` by subject or client,
``retire_signing_key``, the RFC 8628 device verbs and the ``purge_expired`` batches must show
an Index Scan, Index Only Scan, Bitmap Index Scan (or, for a batch keyed by two columns, a Tid
Scan after one) and no Seq Scan, in both the custom and the generic (prepared statement) plan.
``scripts/explain_plans.py`` does the work and writes the same plans into ``docs/query-plans.md``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.model.conftest import fresh_postgres_database

ROOT = Path(__file__).resolve().parents[2]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("explain_plans", ROOT / "scripts" / "explain_plans.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def plans_database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


async def test_statements_use_indexes(plans_database: str) -> None:
    script = load_script()
    plans = await script.collect(plans_database)
    names = [plan.name for plan in plans]
    for required in ("get_access_token", "get_refresh_token", "consume_authorization_code", "save_tokens",
                     "rotate_refresh_token", "retire_signing_key", "replace_client", "list_grants (subject)",
                     "list_grants (client_id)", "get_device_authorization", "approve_device_authorization",
                     "deny_device_authorization", "poll_device_authorization (on time)",
                     "poll_device_authorization (too soon)", "consume_device_authorization",
                     "save_tokens_recording_use", "rotate_refresh_token_recording_use",
                     "approve_pending_authorization"):
        assert required in names
    assert sum(name.startswith("revoke_grant") for name in names) == 4
    assert sum(name.startswith("delete_client") for name in names) == 7
    assert sum(name.startswith("purge_expired") for name in names) == 9
    for plan in plans:
        assert plan.uses_index(), f"{plan.name} does not use an index:\n{plan.custom}\n\n{plan.generic}"


def test_query_plans_document_lists_every_statement() -> None:
    document = (ROOT / "docs" / "query-plans.md").read_text()
    for name in ("get_access_token", "get_refresh_token", "consume_authorization_code", "save_tokens",
                 "rotate_refresh_token", "revoke_grant (1/4): oauth_grants", "revoke_grant (2/4): oauth_refresh_tokens",
                 "purge_expired: oauth_clients", "purge_expired: oauth_grants", "retire_signing_key",
                 "purge_expired: oauth_signing_keys", "purge_expired: oauth_assertion_jtis",
                 "delete_client (1/7): oauth_grants", "delete_client (5/7): oauth_pending_authorizations",
                 "delete_client (6/7): oauth_device_authorizations", "purge_expired: oauth_device_authorizations",
                 "poll_device_authorization (on time)", "consume_device_authorization",
                 "replace_client", "list_grants (subject)", "list_grants (client_id)",
                 "save_tokens_recording_use", "rotate_refresh_token_recording_use", "approve_pending_authorization"):
        assert f"## {name}\n" in document
    assert "Seq Scan" not in document
