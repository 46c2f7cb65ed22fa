"""EXPLAIN the SQL model's statements on Postgres and write ``docs/query-plans.md``.

Usage: ``.venv/bin/python scripts/explain_plans.py [--url postgresql+asyncpg://...] [--out PATH]``

It creates a scratch database next to ``--url`` (default ``PG_URL``, else the local server),
fills the token tables with a few thousand grants (and as many clients, signing keys and used
assertion jtis), runs ``ANALYZE`` (no planner switches such as ``enable_seqscan``), explains the
exact statements ``SQLAlchemyOAuthServerModel`` runs, and drops the database. Each statement is
explained twice: with literal values (a custom plan) and as a prepared statement under
``plan_cache_mode = force_generic_plan`` (the plan a server's cached prepared statements settle
on). ``tests/model/test_postgres_plans.py`` asserts the same plans use an index.

Explained: every statement that finds rows by a key or in a batch. Not explained: plain INSERTs
(``save_*``, ``upsert_client``, ``consume_assertion_jti``: an ``ON CONFLICT`` probes the primary
key's index itself, and their plans show no scan at all), and the operator's listings that read
a whole table by design: ``list_signing_keys`` (a handful of rows), ``list_clients`` (ordered by
code point, ``COLLATE "C"``, which the primary key's index in the database's collation cannot
provide: each page sorts the table's rows, fine for an operator's thousands of clients) and
``list_grants`` without a subject or client (no index on ``created_at``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.dml import UpdateBase

from oauth_server.model.sqlalchemy.client_statements import DELETE_CLIENT_POSTGRES, LIST_GRANTS, REPLACE_CLIENT
from oauth_server.model.sqlalchemy.device_statements import (
    APPROVE_DEVICE_POSTGRES,
    CONSUME_DEVICE,
    DENY_DEVICE,
    GET_DEVICE,
    POLL_ON_TIME,
    POLL_TOO_SOON,
)
from oauth_server.model.sqlalchemy.fold_statements import (
    APPROVE_PENDING_POSTGRES,
    ROTATE_AND_ISSUE_USED_POSTGRES,
    SAVE_PAIR_USED_POSTGRES,
)
from oauth_server.model.sqlalchemy.statements import (
    CONSUME_CODE,
    GET_ACCESS_TOKEN,
    GET_REFRESH_TOKEN,
    PURGE_POSTGRES,
    RECORD_GRANT_USE,
    RETIRE_SIGNING_KEY,
    REVOKE_GRANT,
    REVOKE_SUBJECT_GRANT,
    ROTATE_AND_ISSUE_POSTGRES,
    SAVE_PAIR_POSTGRES,
)
from oauth_server.model.sqlalchemy.tables import (
    access_tokens,
    assertion_jtis,
    authorization_codes,
    clients,
    device_authorizations,
    grants,
    metadata,
    pending_authorizations,
    refresh_tokens,
    signing_keys,
)

DEFAULT_URL = os.environ.get("PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
OUT = Path(__file__).resolve().parents[1] / "docs" / "query-plans.md"
GRANTS = int(os.environ.get("EXPLAIN_GRANTS", "5000"))
NOW = 1_800_000_000
INDEX_NODES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")


@dataclass(frozen=True)
class Plan:
    """One statement and its two plans."""

    name: str
    sql: str
    custom: str
    generic: str

    def uses_index(self) -> bool:
        return all(
            "Seq Scan" not in plan and any(node in plan for node in INDEX_NODES) for plan in (self.custom, self.generic)
        )


def _grant_rows(grant: int) -> dict[str, dict[str, Any]]:
    """A grant, its pending request, code, access token and refresh token; one grant in ten has expired."""
    grant_id = f"grant-{grant:06d}"
    expires = NOW - 10 if grant % 10 == 0 else NOW + 3600 + grant
    common = {"grant_id": grant_id, "client_id": f"client-{grant % 50}", "subject": f"user-{grant % 500}",
              "scopes": ("mcp:tools",), "resource": "https://mcp.example/mcp", "expires_at": expires}
    flow = {"redirect_uri": "http://127.0.0.1:33418/callback", "redirect_uri_provided_explicitly": True,
            "code_challenge": "c" * 43}
    return {
        "grant": {"grant_id": grant_id, "client_id": common["client_id"], "subject": common["subject"],
                  "scopes": common["scopes"], "resource": common["resource"], "created_at": NOW - 100,
                  "expires_at": expires + 86400 + 3600, "revoked_at": NOW - 50 if grant % 7 == 0 else None},
        "pending": {**flow, "request_digest": secrets.token_hex(32), "client_id": common["client_id"],
                    "scopes": common["scopes"], "resource": common["resource"], "state": None,
                    "expires_at": expires, "browser_digest": None},
        "code": {**common, **flow, "code_digest": secrets.token_hex(32), "consumed_at": NOW - 5},
        "access": {**common, "token_digest": secrets.token_hex(32)},
        "refresh": {**common, "token_digest": secrets.token_hex(32), "grant_expires_at": expires + 86400,
                    "rotated_at": None, "granted_scopes": ("mcp:tools",)},
        # RFC 8628: one device authorization per grant, half of them approved into it.
        "device": {"device_code_digest": secrets.token_hex(32), "user_code_digest": secrets.token_hex(32),
                   "client_id": common["client_id"], "scopes": common["scopes"], "resource": common["resource"],
                   "expires_at": expires, "poll_interval": 5, "last_polled_at": None,
                   "status": "approved" if grant % 2 else "pending",
                   "subject": common["subject"] if grant % 2 else None,
                   "grant_id": grant_id if grant % 2 else None, "consumed_at": None},
    }


async def fill(conn: AsyncConnection, count: int = GRANTS) -> dict[str, dict[str, Any]]:
    """Insert ``count`` grants, ``ANALYZE``, and return one grant's rows to look up."""
    rows = [_grant_rows(grant) for grant in range(count)]
    tables = {"grant": grants, "pending": pending_authorizations, "code": authorization_codes,
              "access": access_tokens, "refresh": refresh_tokens, "device": device_authorizations}
    for kind, table in tables.items():
        await conn.execute(insert(table), [row[kind] for row in rows])
    await conn.execute(insert(clients), [_client_row(number) for number in range(count)])
    await conn.execute(insert(signing_keys), [_key_row(number, count) for number in range(count)])
    await conn.execute(insert(assertion_jtis), [_jti_row(number) for number in range(count)])
    for table in (clients, signing_keys, assertion_jtis, *tables.values()):
        await conn.execute(text(f"ANALYZE {table.name}"))
    return rows[count // 2 + 1]


def _client_row(number: int) -> dict[str, Any]:
    """A confidential client; one in ten has an expired secret, one in two a secret that never expires."""
    expires = NOW - 10 if number % 10 == 0 else (0 if number % 2 else NOW + 86400)
    return {"client_id": f"client-{number}", "redirect_uris": ("http://127.0.0.1:33418/callback",),
            "token_endpoint_auth_method": "client_secret_post", "grant_types": ("authorization_code",),
            "response_types": ("code",), "client_id_issued_at": NOW - 100,
            "client_secret_digest": secrets.token_hex(32), "client_secret_expires_at": expires, "contacts": ()}


def _jti_row(number: int) -> dict[str, Any]:
    """A used client assertion jti; one in ten expired."""
    return {"client_id": f"client-{number % 50}", "jti": secrets.token_urlsafe(16),
            "expires_at": NOW - 10 if number % 10 == 0 else NOW + 60 + number}


def _key_row(number: int, count: int) -> dict[str, Any]:
    """An ES256 key, retired but for the newest; one in ten expired. Sizes as stored: a P-256 JWK,
    an encrypted PKCS#8 PEM."""
    retired = number < count - 1
    expires = (NOW - 10 if number % 10 == 0 else NOW + 86400 + number) if retired else None
    return {"kid": secrets.token_urlsafe(32), "algorithm": "ES256", "public_jwk": "j" * 180,
            "private_key": "k" * 330, "created_at": NOW - 100, "activates_at": NOW - 100 + number,
            "retires_at": NOW - 50 if retired else None, "expires_at": expires}


def _table(statement: UpdateBase) -> str:
    assert isinstance(statement.table, Table)
    return statement.table.name


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        value = json.dumps(list(value), separators=(",", ":"))  # as StringTuple stores it
    return "'" + str(value).replace("'", "''") + "'"


async def explain(conn: AsyncConnection, name: str, statement: Any, params: dict[str, Any]) -> Plan:
    """EXPLAIN ``statement`` with ``params``: as literal SQL, and as a generic prepared plan."""
    compiled = statement.compile(dialect=conn.dialect)  # $1, $2, ... in the order of positiontup
    sql = str(compiled)
    values = {**compiled.params, **params}  # constants such as "> 0" are bound parameters too
    literals = [_literal(values[key]) for key in compiled.positiontup]
    literal_sql = re.sub(r"\$(\d+)", lambda match: literals[int(match.group(1)) - 1], sql)
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    custom = "\n".join(row[0] for row in await driver.fetch("EXPLAIN " + literal_sql))
    args = ", ".join(literals)
    await driver.execute(f"SET plan_cache_mode = force_generic_plan; PREPARE explained AS {sql}")
    try:
        generic = "\n".join(row[0] for row in await driver.fetch(f"EXPLAIN EXECUTE explained({args})"))
    finally:
        await driver.execute("DEALLOCATE explained; RESET plan_cache_mode")
    return Plan(name, sql, custom, generic)


async def collect(url: str) -> list[Plan]:
    """Create the tables in the (empty) database at ``url``, fill them, and explain every statement."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            sample = await fill(conn)
            kid = await conn.scalar(select(signing_keys.c.kid).where(signing_keys.c.retires_at.is_(None)))
        async with engine.connect() as conn:
            grant = {"grant": sample["access"]["grant_id"], "now": NOW}
            new_pair = {**_prefixed("a_", {**sample["access"], "token_digest": secrets.token_hex(32)}),
                        **_prefixed("r_", {**sample["refresh"], "token_digest": secrets.token_hex(32)})}
            plans = [
                await explain(conn, "get_access_token", GET_ACCESS_TOKEN, {"key": sample["access"]["token_digest"]}),
                await explain(conn, "get_refresh_token", GET_REFRESH_TOKEN, {"key": sample["refresh"]["token_digest"]}),
                await explain(conn, "consume_authorization_code", CONSUME_CODE,
                              {"key": sample["code"]["code_digest"], "now": NOW}),
                await explain(conn, "save_tokens", SAVE_PAIR_POSTGRES, {**grant, **new_pair}),
                await explain(conn, "rotate_refresh_token", ROTATE_AND_ISSUE_POSTGRES,
                              {**grant, **new_pair, "key": sample["refresh"]["token_digest"]}),
                await explain(conn, "record_grant_use", RECORD_GRANT_USE, grant),
                await explain(conn, "save_tokens_recording_use", SAVE_PAIR_USED_POSTGRES, {**grant, **new_pair}),
                await explain(conn, "rotate_refresh_token_recording_use", ROTATE_AND_ISSUE_USED_POSTGRES,
                              {**grant, **new_pair, "key": sample["refresh"]["token_digest"], "reuse_after": None}),
                await explain(conn, "approve_pending_authorization", APPROVE_PENDING_POSTGRES, {
                    "key": sample["pending"]["request_digest"],
                    **_prefixed("g_", {**sample["grant"], "grant_id": secrets.token_urlsafe(16)}),
                    **_prefixed("c_", {**sample["code"], "code_digest": secrets.token_hex(32)})}),
                await explain(conn, "retire_signing_key", RETIRE_SIGNING_KEY,
                              {"key": kid, "retires_at": NOW, "expires_at": NOW + 3600}),
            ]
            device = sample["device"]
            decision = {"key": device["user_code_digest"], "now": NOW,
                        **_prefixed("g_", {**sample["grant"], "grant_id": secrets.token_urlsafe(16)})}
            plans += [
                await explain(conn, "get_device_authorization", GET_DEVICE, {"key": device["user_code_digest"]}),
                await explain(conn, "approve_device_authorization", APPROVE_DEVICE_POSTGRES, decision),
                await explain(conn, "deny_device_authorization", DENY_DEVICE, decision),
                await explain(conn, "poll_device_authorization (on time)", POLL_ON_TIME,
                              {"key": device["device_code_digest"], "now": NOW}),
                await explain(conn, "poll_device_authorization (too soon)", POLL_TOO_SOON,
                              {"key": device["device_code_digest"], "now": NOW}),
                await explain(conn, "consume_device_authorization", CONSUME_DEVICE,
                              {"key": device["device_code_digest"], "now": NOW}),
            ]
            for number, statement in enumerate(REVOKE_GRANT, 1):
                name = f"revoke_grant ({number}/{len(REVOKE_GRANT)}): {_table(statement)}"
                plans.append(await explain(conn, name, statement, grant))
            for number, statement in enumerate(REVOKE_SUBJECT_GRANT, 1):
                name = f"revoke_subject_grant ({number}/{len(REVOKE_SUBJECT_GRANT)}): {_table(statement)}"
                plans.append(await explain(conn, name, statement, {**grant, "owner": sample["grant"]["subject"]}))
            client_id = sample["grant"]["client_id"]
            for number, statement in enumerate(DELETE_CLIENT_POSTGRES, 1):
                name = f"delete_client ({number}/{len(DELETE_CLIENT_POSTGRES)}): {_table(statement)}"
                plans.append(await explain(conn, name, statement, {"client": client_id, "now": NOW}))
            replaced = {f"c_{column.name}": _client_row(7).get(column.name) for column in clients.columns}
            plans.append(await explain(conn, "replace_client", REPLACE_CLIENT, replaced))
            for by in ("subject", "client_id"):
                statement = LIST_GRANTS[by == "subject", by == "client_id", False, True]
                params = {"subject": sample["grant"]["subject"], "client": client_id, "limit": 100}
                plans.append(await explain(conn, f"list_grants ({by})", statement, params))
            for statement in PURGE_POSTGRES:
                name = f"purge_expired: {_table(statement)}"
                plans.append(await explain(conn, name, statement, {"now": NOW, "batch": 1000}))
            await conn.rollback()
    finally:
        await engine.dispose()
    return plans


def _prefixed(prefix: str, row: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}{name}": value for name, value in row.items()}


def render(plans: list[Plan]) -> str:
    lines = [
        "# Query plans (PostgreSQL)",
        "",
        "Generated by `scripts/explain_plans.py`; do not edit by hand. "
        f"{GRANTS} clients, {GRANTS} grants (a pending request, a code, an access and a refresh token each; "
        "one in ten expired, one in seven revoked; 50 clients, 500 users), "
        f"{GRANTS} used assertion jtis "
        f"and {GRANTS} signing keys (far more than a server keeps, one per rotation, so that their plans "
        "show the index at work; with the usual handful the planner rightly reads their one page instead), "
        "`ANALYZE`d, no planner switches. *Custom* is `EXPLAIN` with literal values; *generic* is the prepared "
        "statement under `plan_cache_mode = force_generic_plan`, the plan a server's cached prepared "
        "statements settle on. `tests/model/test_postgres_plans.py` asserts that every one of them "
        "uses an index, in both plans.",
        "",
    ]
    for plan in plans:
        lines += [f"## {plan.name}", "", "```sql", plan.sql, "```", "",
                  "Custom plan:", "", "```", plan.custom, "```", "",
                  "Generic plan:", "", "```", plan.generic, "```", ""]
    return "\n".join(lines)


async def main(base_url: str, out: Path) -> None:
    name = f"oauth_plans_{secrets.token_hex(6)}"
    admin = create_async_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            plans = await collect(make_url(base_url).set(database=name).render_as_string(hide_password=False))
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
    out.write_text(render(plans))
    for plan in plans:
        print(f"{'index' if plan.uses_index() else 'NO INDEX':8}  {plan.name}")
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--out", type=Path, default=OUT)
    options = parser.parse_args()
    asyncio.run(main(options.url, options.out))
