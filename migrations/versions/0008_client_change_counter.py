"""SQLite's client change counter: ``oauth_change_counters`` and three triggers on ``oauth_clients``.

Every INSERT, UPDATE and DELETE of a client row, by this server, another process, the operator
CLI or hand-written SQL, bumps the row ``clients`` of ``oauth_change_counters`` in the same
transaction (SQLite triggers, created on SQLite only). A server process then keeps client
records in memory and uses them while the count is unchanged: one single-row read instead of
reading and decoding the client, exact however many processes share the file
(``oauth_server/model/sqlalchemy/client_cache.py``). On Postgres the table is created and unused
(each client write is announced by ``pg_notify`` there). A server from before this revision
ignores the table; a server of this revision on a database without it caches no client records
on SQLite and says so once in its log. The downgrade drops the triggers and the table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: As ``oauth_server.model.sqlalchemy.tables.SQLITE_CLIENT_TRIGGERS`` (a migration keeps its own copy).
_COUNT_CLIENTS = ("BEGIN INSERT INTO oauth_change_counters (name, value) VALUES ('clients', 1) "
                  "ON CONFLICT (name) DO UPDATE SET value = value + 1; END")
_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS oauth_clients_counted_insert AFTER INSERT ON oauth_clients " + _COUNT_CLIENTS,
    "CREATE TRIGGER IF NOT EXISTS oauth_clients_counted_update AFTER UPDATE ON oauth_clients " + _COUNT_CLIENTS,
    "CREATE TRIGGER IF NOT EXISTS oauth_clients_counted_delete AFTER DELETE ON oauth_clients " + _COUNT_CLIENTS,
)


def upgrade() -> None:
    op.create_table(
        "oauth_change_counters",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_oauth_change_counters"),
    )
    if op.get_bind().dialect.name == "sqlite":
        for trigger in _TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS oauth_clients_counted_{event}")
    op.drop_table("oauth_change_counters")
